package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
	"citybrain/ingest/demo"
)

// TestDemoDiag (DEMODIAG=seed): which links of the demo city the detector alarms on, and what the fixes there do.
func TestDemoDiag(t *testing.T) {
	s := os.Getenv("DEMODIAG")
	if s == "" {
		t.Skip("set DEMODIAG=seed")
	}
	seed, _ := strconv.ParseInt(s, 10, 64)
	net := geo.GenerateWestLake(seed)
	city, err := demo.New(demo.Config{Network: net, Seed: seed, Speedup: 0, Start: demoStart, DayLength: 24 * time.Hour,
		Duration: 120 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var events []engine.Event
	err = city.Run(context.Background(), func(evs []engine.Event) error {
		for _, e := range evs {
			if e.Kind == engine.KindProbe || e.Kind == engine.KindTransit || e.Kind == engine.KindDetector {
				events = append(events, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TS < events[j].TS })
	model, _ := detect.DefaultModel()
	links := net.Links()
	idx := make(map[string]int32, len(links))
	for i, l := range links {
		idx[l.ID] = int32(i)
	}
	topo := detect.LinksOf(net)
	tk := detect.NewTracker(topo, BatchSpan.Milliseconds())
	type mfix struct {
		id  string
		ts  int64
		off float64
		kmh float64
		lat float64
		lng float64
	}
	byLink := map[int32][]mfix{}
	on := newOnsets(model.Operating)
	t0 := demoStart.UnixMilli()
	at := func(end int64, feats []detect.Features) {
		for _, f := range feats {
			p := judged(model, &f.X, f.Young || f.FullFlow) // as the judge
			if !on.step(f.Link, false, p) {
				continue
			}
			l := links[f.Link]
			hp, _ := l.PointAt(math.Max(0, f.HeadM))
			fmt.Printf("ALARM t=%.1fmin link=%d %s len=%.0f lanes=%d sig=%v class=%v p=%.2f head=%.0f at %.4f,%.4f\n", float64(end-t0)/60000,
				f.Link, l.ID, l.GeomLengthM(), l.Lanes, topo[f.Link].Signal, l.Class, p, f.HeadM, hp.Lat, hp.Lng)
			for i, n := range detect.FeatureNames {
				fmt.Printf(" %s=%.2f", n, f.X[i])
			}
			fmt.Println()
			for _, x := range byLink[f.Link] {
				if x.ts >= end-150_000 && x.ts < end {
					fmt.Printf("   %6.1fs %-22s off=%6.1f kmh=%5.1f\n", float64(x.ts-end)/1000, x.id, x.off, x.kmh)
				}
			}
		}
	}
	if err := feedTracker(context.Background(), tk, net, idx, topo, events, at, func(li int32, e *engine.Event, offsetM float64) {
		byLink[li] = append(byLink[li], mfix{e.ID, e.TS, offsetM, e.SpeedKmh, e.Lat, e.Lng})
	}); err != nil {
		t.Fatal(err)
	}
	for _, g := range city.GroundTruth() {
		fmt.Printf("TRUTH %s %s link=%s off=%.0f %.4f,%.4f %.1f-%.1fmin lanes %d/%d\n", g.ID, g.Type, g.LinkID, g.OffsetM, g.Lat, g.Lng,
			g.Start.Sub(demoStart).Minutes(), g.End.Sub(demoStart).Minutes(), g.LanesBlocked, g.Lanes)
	}
}

func demoRun(t *testing.T, seed int64) (*simRun, *geo.Network) {
	net := geo.GenerateWestLake(seed)
	city, err := demo.New(demo.Config{Network: net, Seed: seed, Speedup: 0, Start: demoStart, DayLength: 24 * time.Hour,
		Duration: 120 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	run := &simRun{City: "demo", Seed: seed}
	err = city.Run(context.Background(), func(evs []engine.Event) error {
		for _, e := range evs {
			switch e.Kind {
			case engine.KindProbe:
				run.Probes = append(run.Probes, e)
				run.Low = append(run.Low, false)
			case engine.KindTransit:
				run.Transit = append(run.Transit, e)
			case engine.KindDetector:
				run.Loops = append(run.Loops, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range city.GroundTruth() {
		run.Truths = append(run.Truths, Truth{ID: g.ID, Class: g.Type, Lat: g.Lat, Lng: g.Lng, Start: g.Start.UTC(), End: g.End.UTC(), Link: g.LinkID})
	}
	return run, net
}

func summarize(name string, run *simRun, net *geo.Network) {
	rows := extractRows(run, net, false)
	model, _ := detect.DefaultModel()
	var n, crawly, alarmy int
	for _, r := range rows {
		if r.Label != 0 || r.Young || r.X[detect.FFixes] < 3 {
			continue
		}
		n++
		if r.X[detect.FCrawlShare] > 1.0/3 {
			crawly++
		}
		if detect.Gate(&r.X) && model.Prob(&r.X) >= model.Threshold {
			alarmy++
		}
	}
	// Alarm onsets on label-0 rows (the engine's rule over the model's operating point), per hour and per 100
	// link-hours of judged links.
	on := newOnsets(model.Operating)
	onsets := 0
	links := map[int32]bool{}
	var t0, t1 int64 = math.MaxInt64, 0
	for _, r := range rows {
		t0, t1 = min(t0, r.T), max(t1, r.T)
		links[r.Link] = true
		p := judged(model, &r.X, r.Young || r.Label != 0)
		if on.step(r.Link, r.Low, p) {
			onsets++
		}
	}
	hours := float64(t1-t0) / 3.6e6
	fmt.Printf("%s: %d rows over %.2f h (%.0f link-buckets/h, %d links judged), %d alarm onsets on label-0 rows: %.1f/h, %.2f per 100 link-hours\n",
		name, len(rows), hours, float64(len(rows))/hours, len(links), onsets, float64(onsets)/hours, float64(onsets)/(float64(len(rows))/360)*100)
	var sp [7]int
	edges := []float64{0.5, 3, 8, 15, 25, 40}
	for _, e := range run.Probes {
		k := sort.SearchFloat64s(edges, e.SpeedKmh)
		sp[k]++
	}
	tot := float64(len(run.Probes))
	fmt.Printf("%s: label-0 learned rows with ≥7 fixes %d: crawl_share>1/3 %.3f, over threshold %.4f; fixes by km/h <0.5 %.2f, <3 %.2f, <8 %.2f, <15 %.2f, <25 %.2f, <40 %.2f, ≥40 %.2f\n",
		name, n, float64(crawly)/float64(n), float64(alarmy)/float64(n), float64(sp[0])/tot, float64(sp[1])/tot, float64(sp[2])/tot, float64(sp[3])/tot, float64(sp[4])/tot, float64(sp[5])/tot, float64(sp[6])/tot)
}

// TestDemoVsCorpus (DEMOCMP=1, DEMOCMP_CACHE=the eval cache; DEMOCMP=demo for the demo alone): the demo's rows
// and fixes against the corpus's (seed 1, or DEMOCMP_SEEDS).
func TestDemoVsCorpus(t *testing.T) {
	if os.Getenv("DEMOCMP") == "" {
		t.Skip("set DEMOCMP=1")
	}
	for _, seed := range []int64{1, 2} {
		run, net := demoRun(t, seed)
		summarize(fmt.Sprintf("demo s%d", seed), run, net)
	}
	if os.Getenv("DEMOCMP") == "demo" {
		return
	}
	eachRun(t, harnessConfig(t, "DEMOCMP", 1), nil, func(name string, cf *cityFiles, _ int64, run *simRun) {
		summarize(name, run, cf.net)
	})
}

// TestDemoOnsets (DEMOONSETS=1, DEMOONSETS_CACHE=the eval cache): the features at alarm onsets, demo false alarms
// against the corpus's hits.
func TestDemoOnsets(t *testing.T) {
	if os.Getenv("DEMOONSETS") == "" {
		t.Skip("set DEMOONSETS=1")
	}
	model, _ := detect.DefaultModel()
	began := func(rows []Row, label int8) [][detect.NumFeatures]float64 {
		on := newOnsets(model.Operating)
		var out [][detect.NumFeatures]float64
		for _, r := range rows {
			if on.step(r.Link, r.Low, judged(model, &r.X, r.Young)) && r.Label == label {
				out = append(out, r.X)
			}
		}
		return out
	}
	show := func(name string, xs [][detect.NumFeatures]float64) {
		fmt.Printf("%-22s n=%4d", name, len(xs))
		for _, f := range []int{detect.FStandRatio, detect.FHeadGapM, detect.FExitDeficit, detect.FStandShare, detect.FCrawlShare, detect.FSpeedRatio, detect.FPassing, detect.FStopLine, detect.FFixRatio, detect.FUpStand, detect.FFeedHeld, detect.FMainDown, detect.FSpeedBefore, detect.FFixes} {
			v := make([]float64, len(xs))
			for i := range xs {
				v[i] = xs[i][f]
			}
			sort.Float64s(v)
			if len(v) == 0 {
				continue
			}
			fmt.Printf(" %s=%.2f/%.2f/%.2f", detect.FeatureNames[f], v[len(v)/4], v[len(v)/2], v[3*len(v)/4])
		}
		dis := 0
		for _, x := range xs {
			if x[detect.FExitDeficit] < 1 && x[detect.FNoExit] == 0 {
				dis++
			}
		}
		fmt.Printf(" exit_deficit<1: %d\n", dis)
	}
	for _, seed := range []int64{1, 2} {
		run, net := demoRun(t, seed)
		show(fmt.Sprintf("demo s%d FA", seed), began(extractRows(run, net, false), 0))
	}
	cfg := harnessConfig(t, "DEMOONSETS", 1, 2)
	var full, part, fa [][detect.NumFeatures]float64
	eachRun(t, cfg, nil, func(_ string, cf *cityFiles, _ int64, run *simRun) {
		rows := extractRows(run, cf.net, false)
		fa = append(fa, began(rows, 0)...)
		// The hits, by class.
		on := newOnsets(model.Operating)
		for _, r := range rows {
			if on.step(r.Link, r.Low, judged(model, &r.X, r.Young)) && r.Label == 1 {
				if r.Class == "partial_closure" {
					part = append(part, r.X)
				} else {
					full = append(full, r.X)
				}
			}
		}
	})
	show("corpus FA", fa)
	show("corpus full hits", full)
	show("corpus partial hits", part)
}

// TestDemoRuns (DEMORUNS=1, DEMORUNS_CACHE=the eval cache): how long the model's suspicion lasts at a link once over the threshold, demo
// false alarms against the corpus's hits, and whether the link was discharging at onset.
func TestDemoRuns(t *testing.T) {
	if os.Getenv("DEMORUNS") == "" {
		t.Skip("set DEMORUNS=1")
	}
	model, _ := detect.DefaultModel()
	// runs returns, per alarm onset of the given label (and class), the run length in buckets.
	runs := func(rows []Row, label int8, class string) (lens []int, dis []bool) {
		type st struct {
			n     int
			label int8
			class string
			dis   bool
		}
		cur := map[int32]*st{}
		flush := func(s *st) {
			if s.n >= model.Persist && s.label == label && (class == "" || s.class == class) {
				lens = append(lens, s.n)
				dis = append(dis, s.dis)
			}
		}
		for _, r := range rows {
			if r.Low {
				continue
			}
			over := !r.Young && detect.Gate(&r.X) && model.Prob(&r.X) >= model.Threshold
			s := cur[r.Link]
			if !over {
				if s != nil {
					flush(s)
					delete(cur, r.Link)
				}
				continue
			}
			if s == nil {
				s = &st{}
				cur[r.Link] = s
			}
			s.n++
			if s.n == model.Persist {
				s.label, s.class = r.Label, r.Class
				s.dis = r.X[detect.FExitDeficit] < 1 && r.X[detect.FNoExit] == 0
			}
		}
		for _, s := range cur {
			flush(s)
		}
		return lens, dis
	}
	show := func(name string, lens []int, dis []bool) {
		sort.Ints(lens)
		n := len(lens)
		if n == 0 {
			fmt.Printf("%s: none\n", name)
			return
		}
		le := func(k int) int {
			c := 0
			for _, l := range lens {
				if l <= k {
					c++
				}
			}
			return c
		}
		fmt.Printf("%-22s onsets %4d: run buckets p25/p50/p75 %d/%d/%d; ≤2: %d, ≤3: %d, ≤5: %d\n", name, n, lens[n/4], lens[n/2], lens[3*n/4], le(2), le(3), le(5))
	}
	for _, seed := range []int64{1, 2} {
		run, net := demoRun(t, seed)
		l, d := runs(extractRows(run, net, false), 0, "")
		show(fmt.Sprintf("demo s%d FA", seed), l, d)
	}
	var fa, full, part []int
	var dfa, dfull, dpart []bool
	eachRun(t, harnessConfig(t, "DEMORUNS", 1, 2), nil, func(_ string, cf *cityFiles, _ int64, run *simRun) {
		rows := extractRows(run, cf.net, false)
		l, d := runs(rows, 0, "")
		fa, dfa = append(fa, l...), append(dfa, d...)
		l, d = runs(rows, 1, "full_closure")
		full, dfull = append(full, l...), append(dfull, d...)
		l, d = runs(rows, 1, "partial_closure")
		part, dpart = append(part, l...), append(dpart, d...)
	})
	show("corpus FA", fa, dfa)
	show("corpus full hits", full, dfull)
	show("corpus partial hits", part, dpart)
}
