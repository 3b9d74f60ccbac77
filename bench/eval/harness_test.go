package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
)

// harnessConfig is the configuration of an opt-in diagnosis harness over an eval cache: the cache from the
// environment variable PREFIX_CACHE, the cities from PREFIX_CITIES and the seeds from PREFIX_SEEDS (comma
// lists; every corpus city and the given seeds by default; the cache defaults to the eval's, where a run not cached
// is simulated).
func harnessConfig(t *testing.T, prefix string, seeds ...int64) *Config {
	t.Helper()
	cfg := &Config{Cache: os.Getenv(prefix + "_CACHE"), DataRoot: os.Getenv("CITYBRAIN_DATA"), Seeds: seeds, Log: os.Stderr, NoDemo: true}
	if c := os.Getenv(prefix + "_CITIES"); c != "" {
		cfg.Cities = strings.Split(c, ",")
	}
	if s := os.Getenv(prefix + "_SEEDS"); s != "" {
		cfg.Seeds = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("%s_SEEDS: %q is not a seed: %v", prefix, f, err)
			}
			cfg.Seeds = append(cfg.Seeds, v)
		}
	}
	cfg.fill()
	return cfg
}

// eachRun builds every city of cfg (calling built, when not nil, once per city) and runs each of its seeds
// (from the cache when it holds them), calling run for each.
func eachRun(t *testing.T, cfg *Config, built func(name string, cf *cityFiles), run func(name string, cf *cityFiles, seed int64, r *simRun)) {
	t.Helper()
	ctx := context.Background()
	for _, name := range cfg.Cities {
		c, ok := cityByName(name)
		if !ok {
			t.Fatalf("no city %q in the corpus", name)
		}
		cf, err := buildCity(ctx, cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		if built != nil {
			built(name, cf)
		}
		for _, seed := range cfg.Seeds {
			r, err := simulate(ctx, cfg, c, cf, seed, float64(cfg.Minutes)*60)
			if err != nil {
				t.Fatal(err)
			}
			run(name, cf, seed, r)
		}
	}
}

// eachCity builds every city of cfg and hands run, once per city, the set of its runs (runSet: the runs from the
// cache when it holds them, each seed's warm-up as cfg says), so a harness extracts rows as the eval does.
func eachCity(t *testing.T, cfg *Config, run func(name string, cf *cityFiles, rs *runSet)) {
	t.Helper()
	for _, name := range cfg.Cities {
		c, ok := cityByName(name)
		if !ok {
			t.Fatalf("no city %q in the corpus", name)
		}
		cf, err := buildCity(t.Context(), cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		run(name, cf, newRunSet(t.Context(), cfg, c, cf, float64(cfg.Minutes)*60))
	}
}

// eachRowSet hands write the rows of every run of cfg's cities (eachCity, runSet.rows) and, when "demo" is among
// the cities, of the demo city's seeds 1 and 2, cold, as eval --no-sumo runs them, moved in time to the corpus's
// start (extractRows keeps rows from there). The judges' dumps (TestSqueezeDump, TestHoldDump) share it.
func eachRowSet(t *testing.T, cfg *Config, write func(name string, links []*geo.Link, seed int64, run *simRun, low bool, rows []Row)) {
	t.Helper()
	if i := slices.Index(cfg.Cities, "demo"); i >= 0 {
		cfg.Cities = slices.Delete(cfg.Cities, i, i+1)
		for _, seed := range []int64{1, 2} {
			run, net := demoRun(t, seed)
			shift := simStart.Sub(demoStart)
			for _, es := range [][]engine.Event{run.Probes, run.Transit, run.Loops} {
				for i := range es {
					es[i].TS += shift.Milliseconds()
				}
			}
			for i := range run.Truths {
				run.Truths[i].Start, run.Truths[i].End = run.Truths[i].Start.Add(shift), run.Truths[i].End.Add(shift)
			}
			write("demo", net.Links(), seed, run, false, extractRows(run, net, false))
		}
	}
	eachCity(t, cfg, func(name string, cf *cityFiles, rs *runSet) {
		err := rs.rows(cfg.Seeds, cf.net, func(seed int64, run *simRun, low bool, rows []Row) {
			write(name, cf.net.Links(), seed, run, low, rows)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// sinceTruth is a row's time since the start of the blockage it is labelled with (s; -99999: none) and whether it
// lies on that blockage's own link (1) or another (0), for the dumps' since and onlink columns.
func sinceTruth(run *simRun, links []*geo.Link) func(r *Row) (since int64, on int) {
	start := map[string]int64{}
	link := map[string]string{}
	for _, tr := range run.Truths {
		start[tr.ID], link[tr.ID] = tr.Start.UnixMilli(), tr.Link
	}
	return func(r *Row) (int64, int) {
		if r.Truth == "" {
			return -99999, 0
		}
		on := 0
		if link[r.Truth] == links[r.Link].ID {
			on = 1
		}
		return (r.T - start[r.Truth]) / 1000, on
	}
}

// onsets follows the engine's alarm rule (detect.Operating.Step) over a harness's rows, one link at a time, and
// reports the rows where a link's alarm begins. A row that is not judged (young, or past no gate) breaks the
// link's run as the engine's judge does.
type onsets struct {
	op  detect.Operating
	run map[onsetKey]*onsetRun
}

type onsetKey struct {
	link int32
	low  bool
}

type onsetRun struct {
	detect.Run
	on bool
}

func newOnsets(op detect.Operating) *onsets { return &onsets{op: op, run: map[onsetKey]*onsetRun{}} }

// step takes the link's probability at the row (below 0: not judged) and says whether its alarm begins there.
func (o *onsets) step(link int32, low bool, p float64) bool {
	k := onsetKey{link, low}
	r := o.run[k]
	if r == nil {
		r = &onsetRun{}
		o.run[k] = r
	}
	alarm, _ := o.op.Step(&r.Run, p)
	began := alarm && !r.on
	r.on = alarm
	return began
}

// judged is the probability the engine's judge gives a row (below 0 when it does not judge it).
func judged(m *detect.Model, x *[detect.NumFeatures]float64, young bool) float64 {
	if young || !detect.Gate(x) {
		return -1
	}
	return m.Prob(x)
}

// lineRoad is a straight road of six 300-m one-lane links (L0..L5, 50 km/h, every junction signalised) named
// name, and the point x metres along it.
func lineRoad(t *testing.T, name string) (*geo.Network, func(x float64) geo.LatLng) {
	t.Helper()
	const lat, lng = 30.25, 120.15
	mLng := 1 / (111320.0 * math.Cos(lat*math.Pi/180))
	pt := func(x float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng + x*mLng} }
	var nodes []geo.Node
	var links []geo.Link
	for i := 0; i <= 6; i++ {
		nodes = append(nodes, geo.Node{ID: fmt.Sprint("N", i), LatLng: pt(300 * float64(i)), Signalised: true})
	}
	for i := 0; i < 6; i++ {
		links = append(links, geo.Link{ID: fmt.Sprint("L", i), From: fmt.Sprint("N", i), To: fmt.Sprint("N", i+1), Lanes: 1,
			SpeedLimitKmh: 50, Geometry: []geo.LatLng{pt(300 * float64(i)), pt(300 * float64(i+1))}})
	}
	net, err := geo.NewNetwork(name, nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return net, pt
}
