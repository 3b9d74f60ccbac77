package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
)

// Row is one link at one bucket end, with the detector's features and what was true there: the training and
// analysis data of the traffic detector.
type Row struct {
	City  string
	Seed  int64
	Low   bool // 5 % probes
	Link  int32
	T     int64
	X     [detect.NumFeatures]float64
	HeadM float64
	Young bool // the link's baselines have not learned yet: judged as a learned link, not trained or calibrated on
	// FullFlow, Discharging: the link passes its usual flow, or no fewer exits than its usual rate makes likely
	// (detect.Features); for reading the rows (TestRowDump), not in the model's key: nothing fitted reads them.
	FullFlow, Discharging bool
	// Squeeze: the squeeze judge's reading (detect.Features.Squeeze); for reading the rows, not in the key.
	Squeeze detect.SqueezeReading
	// Junction: the junction judge's reading (detect.Features.Junction); for reading the rows, not in the key.
	Junction detect.JunctionReading
	// Hold: the hold reading (detect.Features.Hold); for reading the rows, not in the key.
	Hold detect.HoldReading
	// Label: 1 the link is blocked (from 30 s after the blockage started to its end), 0 nothing is wrong
	// within MatchRadiusM, -1 near a blockage (its queue, its detour: neither a hit nor a false alarm).
	Label int8
	Truth string // the blockage, for positives and near rows
	Class string
}

// rowLabel labels link li at t against the truths.
func rowLabel(links []*geo.Link, li int32, t int64, truths []Truth, near func(li int32, tr *Truth) bool) (int8, string, string) {
	label, id, class := int8(0), "", ""
	for i := range truths {
		tr := &truths[i]
		s, e := tr.Start.UnixMilli(), tr.End.UnixMilli()
		if links[li].ID == tr.Link && t >= s+30_000 && t <= e {
			return 1, tr.ID, tr.Class
		}
		if t >= s-MatchBefore.Milliseconds() && t <= e+MatchAfter.Milliseconds() && near(li, tr) {
			label, id, class = -1, tr.ID, tr.Class
		}
	}
	return label, id, class
}

// feederOfClosure reports the full closure (its ID) whose link the link li feeds directly at t (from 30 s
// after it began to its end, as rowLabel's positives). A row of such a feeder whose vehicles hold at its end
// while the closed link gets nothing (detect.FDownGone) shows the closure as well as a row of its own link
// does, and better when the closure is just past the junction and its own link is empty: it is labelled a
// positive of the closure (otherwise a near row, neither hit nor false alarm).
func feederOfClosure(idx map[string]int32, topo []detect.Link, li int32, t int64, truths []Truth) (string, bool) {
	for i := range truths {
		tr := &truths[i]
		if tr.Class != ClassFull || t < tr.Start.UnixMilli()+30_000 || t > tr.End.UnixMilli() {
			continue
		}
		if bl, ok := idx[tr.Link]; ok && slices.Contains(topo[li].Down, bl) {
			return tr.ID, true
		}
	}
	return "", false
}

// Feeders is a training recipe for a full closure's feeder positives (feederOfClosure: a row of a link feeding
// the closed link directly whose vehicles hold while the closed link gets nothing). The default recipe (nil)
// fits every one as a positive weighing as much as a row of the closed link itself: the leave-one-city-out models
// since 8d6b07d (session 18). Weight 0 fits none of them (they stay out as near rows, neither hit nor false alarm):
// the shipped model's recipe (SR1-c6; with them its trees lean less on the queue head's place and found fewer
// closures outside the corpus: docs/incidents.md, session 19, engineer model).
type Feeders struct {
	// Weight is each feeder positive's weight relative to a row of the closed link (0 to 1; 0: not fitted on).
	Weight float64
	// Empty keeps as positives only the feeder rows at a bucket end where the closed link itself has no row
	// past the gate (the emptied link, which the feeder's view was built for); the others are near rows.
	Empty bool
}

// isDefault reports whether f is the default recipe (every feeder positive at full weight).
func (f *Feeders) isDefault() bool { return f == nil || (f.Weight == 1 && !f.Empty) }

// String names the recipe for the log and a model's notes.
func (f *Feeders) String() string {
	switch {
	case f.isDefault():
		return "every feeder positive at the weight of a closed link's row"
	case f.Weight == 0:
		return "no feeder positive fitted on"
	}
	s := fmt.Sprintf("feeder positives at %g of a closed link's row", f.Weight)
	if f.Empty {
		s += ", only where the closed link has no row"
	}
	return s
}

// feederRows reports for each row of r whether it is a full closure's feeder positive (a positive of a full
// closure on another link than the closure's) and, for those, whether the closed link has a row (past the gate:
// r.rows are gated) at the same bucket end.
func feederRows(r *corpusRun) (feeder, ownRow []bool) {
	at := make(map[string]int32, len(r.truths))
	for _, tr := range r.truths {
		if l, ok := r.net.Link(tr.Link); ok {
			at[tr.ID] = int32(l.Index())
		}
	}
	closed := map[int32]bool{}
	for _, li := range at {
		closed[li] = true
	}
	rowAt := map[[2]int64]bool{}
	for i := range r.rows {
		if row := &r.rows[i]; closed[row.Link] {
			rowAt[[2]int64{int64(row.Link), row.T}] = true
		}
	}
	feeder, ownRow = make([]bool, len(r.rows)), make([]bool, len(r.rows))
	for i := range r.rows {
		row := &r.rows[i]
		if li, ok := at[row.Truth]; ok && row.Label == 1 && row.Class == ClassFull && li != row.Link {
			feeder[i] = true
			ownRow[i] = rowAt[[2]int64{int64(li), row.T}]
		}
	}
	return feeder, ownRow
}

// feederWeights is each row's weight under the recipe f: nil for the default recipe (every row as labelled),
// else per row 1, or a feeder positive's weight (0: not fitted on, as a near row). It returns how many feeder
// positives runs hold and how many the recipe keeps.
func feederWeights(runs []*corpusRun, f *Feeders) (w [][]float64, all, kept int) {
	if f.isDefault() {
		return nil, 0, 0
	}
	w = make([][]float64, len(runs))
	for k, r := range runs {
		feeder, ownRow := feederRows(r)
		w[k] = make([]float64, len(r.rows))
		for i := range r.rows {
			w[k][i] = 1
			if !feeder[i] {
				continue
			}
			all++
			if f.Weight == 0 || (f.Empty && ownRow[i]) {
				w[k][i] = 0
				continue
			}
			w[k][i] = f.Weight
			kept++
		}
	}
	return w, all, kept
}

// trafficEvents are a run's probes (only those of the 5 % penetration when low), transit vehicles and loop
// readings, in a new slice.
func (run *simRun) trafficEvents(low bool) []engine.Event {
	var events []engine.Event
	for i := range run.Probes {
		if !low || run.Low[i] {
			events = append(events, run.Probes[i])
		}
	}
	events = append(events, run.Transit...)
	return append(events, run.Loops...)
}

// extractRows runs the detector's tracker over a run's traffic data as the engine does (map matching in
// feed order, fixes processed bucket by bucket behind the watermark) and labels every row, from cold.
func extractRows(run *simRun, net *geo.Network, low bool) []Row {
	rows, _ := extractRowsWarm(context.Background(), run, nil, net, low) // a context that never ends: no error
	return rows
}

// extractRowsWarm is extractRows after the tracker was fed warm's traffic data as the day before (warm.go;
// nil: cold), as feedRun feeds the engine; the warm-up's rows are not kept. It stops with ctx's error when ctx
// ends (a day of a dense city's fixes takes tens of seconds: SIGTERM must not wait for it).
func extractRowsWarm(ctx context.Context, run, warm *simRun, net *geo.Network, low bool) ([]Row, error) {
	events := run.trafficEvents(low)
	sort.SliceStable(events, func(i, j int) bool { return events[i].TS < events[j].TS })
	events = append(warm.warmEvents(low), events...)
	from := simStart.UnixMilli()
	links := net.Links()
	idx := make(map[string]int32, len(links))
	for i, l := range links {
		idx[l.ID] = int32(i)
	}
	mid := make([]geo.LatLng, len(links))
	for i, l := range links {
		mid[i], _ = l.PointAt(l.GeomLengthM() / 2)
	}
	topo := detect.LinksOf(net)
	// The links from which a blocked link can be reached in three steps hold its queue when it spills back:
	// neither hits nor false alarms.
	upstream := map[string]map[int32]bool{}
	for _, tr := range run.Truths {
		li, ok := idx[tr.Link]
		if !ok {
			continue
		}
		set := map[int32]bool{li: true}
		frontier := []int32{li}
		for hop := 0; hop < 3; hop++ {
			var next []int32
			for _, l := range frontier {
				for _, u := range topo[l].Up {
					if !set[u] {
						set[u] = true
						next = append(next, u)
					}
				}
			}
			frontier = next
		}
		upstream[tr.ID] = set
	}
	near := func(li int32, tr *Truth) bool {
		return upstream[tr.ID][li] || geo.DistanceM(mid[li], geo.LatLng{Lat: tr.Lat, Lng: tr.Lng}) <= MatchRadiusM
	}
	tk := detect.NewTracker(topo, BatchSpan.Milliseconds())
	var rows []Row
	at := func(end int64, feats []detect.Features) {
		if end < from {
			return
		}
		for _, f := range feats {
			label, id, class := rowLabel(links, f.Link, end, run.Truths, near)
			if label != 1 && f.X[detect.FDownGone] > 0 {
				if tid, ok := feederOfClosure(idx, topo, f.Link, end, run.Truths); ok {
					label, id, class = 1, tid, ClassFull
				}
			}
			rows = append(rows, Row{City: run.City, Seed: run.Seed, Low: low, Link: f.Link, T: end, X: f.X, HeadM: f.HeadM, Young: f.Young, FullFlow: f.FullFlow, Discharging: f.Discharging,
				Squeeze: f.Squeeze, Junction: f.Junction, Hold: f.Hold, Label: label, Truth: id, Class: class})
		}
	}
	if err := feedTracker(ctx, tk, net, idx, topo, events, at, nil); err != nil {
		return nil, err
	}
	return rows, nil
}

// feedTracker feeds events (sorted by time) to tk as the engine does: probe and transit fixes map-matched onto
// net's links (idx: link ID to index, topo: detect.LinksOf(net)), loop readings to the nearest link, and the
// tracker advanced to the watermark (the newest event less the engine's lateness) at each batch's end and
// after the last event; at receives the features of every bucket end. onFix, when not nil, sees each fix
// matched to a link with its offset along it (a diagnosis harness's hook). It returns ctx's error, the
// tracker fed part of events, when ctx ends first.
func feedTracker(ctx context.Context, tk *detect.Tracker, net *geo.Network, idx map[string]int32, topo []detect.Link, events []engine.Event,
	at func(end int64, feats []detect.Features), onFix func(li int32, e *engine.Event, offsetM float64)) error {
	m := geo.NewMatcher(net, geo.MatcherConfig{})
	lateness := engine.DefaultConfig().Lateness.Milliseconds()
	batch := BatchSpan.Milliseconds()
	var newest int64
	end := int64(math.MinInt64)
	for i := range events {
		if i%ctxCheckEvents == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		e := &events[i]
		if e.TS >= end {
			if newest > 0 {
				tk.Advance(newest-lateness, at)
			}
			end = (e.TS/batch + 1) * batch
		}
		newest = max(newest, e.TS)
		switch e.Kind {
		case engine.KindProbe, engine.KindTransit:
			mt, ok := m.Match(e.ID, time.UnixMilli(e.TS), e.Lat, e.Lng, e.HeadingDeg)
			if !ok {
				continue
			}
			if li, ok := idx[mt.LinkID]; ok {
				tk.AddFix(e.ID, e.TS, li, detect.Fraction(topo[li].LengthM, mt.OffsetM), speed32(e.SpeedKmh))
				if onFix != nil {
					onFix(li, e, mt.OffsetM)
				}
			}
		case engine.KindDetector:
			if c := net.Nearest(e.Lat, e.Lng, 30, 1); len(c) > 0 {
				if li, ok := idx[c[0].Link.ID]; ok {
					tk.AddLoop(e.TS, li, speed32(e.FlowVph), speed32(e.Occupancy), speed32(e.SpeedKmh), speed32(e.IntervalS))
				}
			}
		}
	}
	tk.Advance(newest-lateness, at)
	return nil
}

// ctxCheckEvents is how many events feedTracker feeds between looks at its context (a look costs little; a
// few thousand fixes take about a millisecond).
const ctxCheckEvents = 4096

// speed32 is x as the engine's Arrow columns hold it (float32).
func speed32(x float64) float64 { return float64(float32(x)) }

// FeatureRows builds (or reads from the cache) every run of the configured cities and seeds and returns
// the detector's rows, at 15 % and at 5 % probes.
func FeatureRows(ctx context.Context, cfg Config) ([]Row, error) {
	cfg.fill()
	if why := sumoMissing(&cfg); why != "" {
		return nil, fmt.Errorf("cannot build the corpus: %s", why)
	}
	var rows []Row
	for _, name := range cfg.Cities {
		c, ok := cityByName(name)
		if !ok {
			return nil, fmt.Errorf("cannot extract features of city %q: not in the corpus", name)
		}
		cf, err := buildCity(ctx, &cfg, c)
		if err != nil {
			return nil, err
		}
		rs := newRunSet(ctx, &cfg, c, cf, float64(cfg.Minutes)*60)
		err = rs.rows(cfg.Seeds, cf.net, func(seed int64, _ *simRun, low bool, got []Row) {
			rows = append(rows, got...)
			if low {
				fmt.Fprintf(cfg.Log, "eval: %s/seed%d: %d rows so far\n", name, seed, len(rows))
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return rows, nil
}
