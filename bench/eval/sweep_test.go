package eval

import (
	"strings"
	"testing"

	"citybrain/engine/detect"
)

// sweepReport is a synthetic sweep of two held-out cities whose curve is known: city a, two hours, and city b,
// two hours, each at five points of the grid and at its own point.
func sweepReport() []SweepPoint {
	pt := func(city string, thr float64, k, ff, pf, fa int, own bool) SweepPoint {
		return SweepPoint{City: city, Threshold: thr, Persist: k, Own: own, Full: 8, FullFast: ff, Part: 4, PartFast: pf, FalseAlarms: fa, Hours: 2}
	}
	return []SweepPoint{
		pt("a", 0.8, 4, 2, 0, 0, true),
		pt("a", 0.9, 3, 1, 0, 0, false),
		pt("a", 0.7, 3, 3, 1, 1, false), // 0.5/h
		pt("a", 0.5, 3, 5, 1, 2, false), // 1/h
		pt("a", 0.5, 2, 4, 1, 2, false), // 1/h, fewer found
		pt("a", 0.3, 2, 7, 3, 5, false), // 2.5/h
		pt("b", 0.95, 6, 1, 1, 0, true),
		pt("b", 0.9, 3, 2, 1, 0, false),
		pt("b", 0.7, 3, 2, 1, 3, false), // 1.5/h, no more found
		pt("b", 0.5, 3, 6, 2, 4, false), // 2/h
		pt("b", 0.5, 2, 6, 2, 6, false), // 3/h
		pt("b", 0.3, 2, 6, 2, 6, false),
		// a city not scored in this report: left out of the corpus rows
		pt("c", 0.9, 3, 8, 4, 0, false),
	}
}

// Per city the curve keeps, within each false-alarm budget, the point finding the most closures (fewer false
// alarms breaking a tie), never the model's own point; the corpus adds each city's best, or takes the one grid
// point whose summed false alarms stay within the budget.
func TestTheSweepReadsTheCurveAtEachFalseAlarmBudget(t *testing.T) {
	pts := sweepReport()
	type want struct {
		city   string
		budget float64
		thr    float64
		k      int
		ok     bool
	}
	for _, w := range []want{
		{"a", 0, 0.9, 3, true}, {"a", 0.5, 0.7, 3, true}, {"a", 1, 0.5, 3, true}, {"a", 2, 0.5, 3, true}, {"a", 3, 0.3, 2, true},
		{"b", 0.5, 0.9, 3, true}, {"b", 1, 0.9, 3, true}, {"b", 2, 0.5, 3, true},
		{"a", -1, 0, 0, false},
	} {
		got, ok := sweepBest(pts, w.city, false, w.budget)
		if ok != w.ok || (ok && (got.Threshold != w.thr || got.Persist != w.k)) {
			t.Errorf("%s at %g/h: got (%g, %d, ok %v), want (%g, %d, ok %v)", w.city, w.budget, got.Threshold, got.Persist, ok, w.thr, w.k, w.ok)
		}
	}
	if _, ok := sweepBest(pts, "a", true, 2); ok {
		t.Error("a 5 % curve from 15 % points")
	}
	cities := []string{"a", "b"}
	for _, w := range []struct {
		budget                  float64
		perFull, perPart, perFA int
		shFull, shPart, shFA    int
		shThr                   float64
		shK                     int
	}{
		{0.5, 5, 2, 1, 3, 1, 0, 0.9, 3},
		{1, 7, 2, 2, 5, 2, 4, 0.7, 3},
		{2, 11, 3, 6, 11, 3, 6, 0.5, 3},
	} {
		pc, sh, ok := sweepCorpus(pts, cities, false, w.budget)
		if pc.Full != 16 || pc.Part != 8 || pc.Hours != 4 || pc.FullFast != w.perFull || pc.PartFast != w.perPart || pc.FalseAlarms != w.perFA {
			t.Errorf("corpus at %g/h, each city at its point: %+v", w.budget, pc)
		}
		if !ok || sh.FullFast != w.shFull || sh.PartFast != w.shPart || sh.FalseAlarms != w.shFA || sh.Threshold != w.shThr || sh.Persist != w.shK {
			t.Errorf("corpus at %g/h, one point: %+v (ok %v)", w.budget, sh, ok)
		}
	}
	table := sweepTable(pts, cities)
	for _, line := range []string{
		"| a | 15 % | 2/8 / 0/4, 0.00 (0.8, 4) | 3/8 / 1/4 | 5/8 / 1/4 | 5/8 / 1/4 |",
		"| b | 15 % | 1/8 / 1/4, 0.00 (0.95, 6) | 2/8 / 1/4 | 2/8 / 1/4 | 6/8 / 2/4 |",
		"| corpus, each city at its own point | 15 % | 3/16 / 1/8, 0.00 | 5/16 / 2/8 | 7/16 / 2/8 | 11/16 / 3/8 |",
		"| corpus, one point for every model | 15 % | | 3/16 / 1/8 (0.9, 3) | 5/16 / 2/8 (0.7, 3) | 11/16 / 3/8 (0.5, 3) |",
		"not the product's operating point",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("the table lacks %q:\n%s", line, table)
		}
	}
	if strings.Contains(table, "| c |") || strings.Contains(table, "| 5 % |") {
		t.Errorf("the table shows a city or probe share not in the report:\n%s", table)
	}
}

// The sweep of a held-out model scores its own city's runs through the same proxy fusion as calibrate: its
// own point equals proxyAll at the model's threshold and persistence, each grid point proxyAll at that point,
// and a looser budget never finds fewer closures.
func TestTheSweepScoresTheHeldOutCityThroughTheProxy(t *testing.T) {
	runs := cacheCorpus(t)
	m, err := fitModel(runs, TrainOptions{Kind: "logistic"})
	if err != nil {
		t.Fatal(err)
	}
	pts, sts := sweepCity("line", runs, m)
	if len(pts) != 1+len(sweepPersist)*len(sweepThresholds) {
		t.Fatalf("%d points, want the own point and the grid", len(pts))
	}
	for _, p := range pts {
		if p.Low {
			t.Fatal("a 5 % point from 15 % runs")
		}
		want := proxyAll(runs, m, detect.Operating{Threshold: p.Threshold, Persist: p.Persist, Threshold2: p.Threshold2, Persist2: p.Persist2})
		if p.FullFast != want.fullFast || p.Full != want.full || p.FalseAlarms != want.fa || p.Hours != want.hours {
			t.Errorf("point (%g, %d): %+v, proxy %+v", p.Threshold, p.Persist, p, want)
		}
		if p.Own != (p == pts[0]) || (p.Own && (p.Threshold != m.Threshold || p.Persist != m.Persist || p.Threshold2 != m.Threshold2 || p.Persist2 != m.Persist2)) {
			t.Errorf("own point wrong: %+v (model %g, %d)", p, m.Threshold, m.Persist)
		}
	}
	prev := -1
	for _, bu := range []float64{0, 0.5, 1, 2, 100} {
		b, ok := sweepBest(pts, "line", false, bu)
		if !ok {
			continue
		}
		if n := b.FullFast + b.PartFast; n < prev {
			t.Errorf("at %g/h %d closures, fewer than %d at a tighter budget", bu, n, prev)
		} else {
			prev = n
		}
	}
	if b, ok := sweepBest(pts, "line", false, 100); !ok || b.FullFast != 2 {
		t.Errorf("with any false alarms allowed the sweep finds %d of the 2 blockages (ok %v)", b.FullFast, ok)
	}
	// Each closure's rate is that of a grid point, and no point with fewer false alarms finds both.
	if len(sts) != 2 {
		t.Fatalf("%d closures, want 2: %+v", len(sts), sts)
	}
	for _, st := range sts {
		if st.FAPH < 0 || st.Class != ClassFull || st.City != "line" || st.RowS != 30 || st.MaxP < 0.5 {
			t.Errorf("closure %+v (its blocked link's rows start 30 s in and stand out)", st)
		}
		at := false
		for _, p := range pts {
			if p.Own {
				continue
			}
			at = at || (p.faPH() == st.FAPH && p.FullFast > 0)
			if p.faPH() < st.FAPH && p.FullFast == 2 {
				t.Errorf("closure %s at %g/h, but (%g, %d) finds both at %g/h", st.Truth, st.FAPH, p.Threshold, p.Persist, p.faPH())
			}
		}
		if !at {
			t.Errorf("closure %s at %g/h: no grid point finds a closure at that rate", st.Truth, st.FAPH)
		}
	}
	// The closures marked found at the own point are as many as the own point finds within their bars.
	own := 0
	for _, st := range sts {
		if st.Own {
			own++
		}
	}
	if own != pts[0].FullFast+pts[0].PartFast {
		t.Errorf("%d closures marked found at the own point, which finds %d", own, pts[0].FullFast+pts[0].PartFast)
	}
}

// Paired closure by closure, a report's closures count as easier when found at fewer false alarms per hour
// than in the base (or found where they were not), harder in reverse; closures of one report only are left
// out, and each city and the corpus are counted at 1 and 2 false alarms per hour, before and now.
func TestThePairedTableCountsClosuresThatGotEasierOrHarder(t *testing.T) {
	st := func(city string, seed int64, id, class string, f float64) SweepTruth {
		return SweepTruth{City: city, Seed: seed, Truth: id, Class: class, FAPH: f}
	}
	base := []SweepTruth{
		st("a", 1, "blk-1", ClassFull, 0.5), st("a", 1, "blk-2", ClassFull, -1), st("a", 2, "blk-1", ClassPartial, 2),
		st("a", 2, "blk-2", ClassFull, 1), st("b", 1, "blk-1", ClassFull, 1.5), st("b", 1, "blk-9", ClassFull, 0),
	}
	cur := []SweepTruth{
		st("a", 1, "blk-1", ClassFull, 0.5),    // same
		st("a", 1, "blk-2", ClassFull, 1),      // easier: found where it was not
		st("a", 2, "blk-1", ClassPartial, 0.5), // easier
		st("a", 2, "blk-2", ClassFull, -1),     // harder: lost
		st("b", 1, "blk-1", ClassFull, 2),      // harder
		st("b", 2, "blk-7", ClassFull, 0),      // not in the base: left out
	}
	table := pairedTable(base, cur, []string{"a", "b"}, "base.json")
	for _, line := range []string{
		"| a | 15 % | 4 | 2 → 2 | 0 → 1 | 2 → 2 | 1 → 1 | 2 / 1 |",
		"| b | 15 % | 1 | 0 → 0 | 0 → 0 | 1 → 1 | 0 → 0 | 0 / 1 |",
		"| corpus | 15 % | 5 | 2 → 2 | 0 → 1 | 3 → 3 | 1 → 1 | 2 / 2 |",
		"paired against base.json",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("the table lacks %q:\n%s", line, table)
		}
	}
	if pairedTable(nil, cur, []string{"a"}, "x") != "" {
		t.Error("a paired table without a base")
	}
}

// The loss table counts each closure of a city at every step from the traffic data to the engine, full
// closures (from the oracle, by 180 s) and partial ones (by 300 s) apart; cities not scored are left out.
func TestTheLossTableFollowsEachClassToTheEngine(t *testing.T) {
	st := func(city, id, class string, rowS, f float64, own bool) SweepTruth {
		return SweepTruth{City: city, Seed: 1, Truth: id, Class: class, RowS: rowS, FAPH: f, Own: own}
	}
	sts := []SweepTruth{
		st("a", "blk-1", ClassFull, 60, 0.5, true),  // found at 0.5/h, and at its own point
		st("a", "blk-2", ClassFull, 90, 1.5, false), // at 1.5/h
		st("a", "blk-3", ClassFull, 120, -1, false), // a row, never found
		st("a", "blk-4", ClassFull, -1, -1, false),  // no row
		st("a", "blk-5", ClassPartial, 30, 0, true), // found at 0/h and at its own point
		st("a", "blk-6", ClassPartial, 200, 1, false),
		st("a", "blk-7", ClassPartial, 250, -1, false),
		st("z", "blk-1", ClassFull, 30, 0, true),
	}
	obs := []Observable{
		{City: "a", Seed: 1, Truth: "blk-1", FirstS: 30}, {City: "a", Seed: 1, Truth: "blk-2", FirstS: 150},
		{City: "a", Seed: 1, Truth: "blk-3", FirstS: 200}, {City: "a", Seed: 1, Truth: "blk-4", FirstS: 60},
		{City: "a", Seed: 1, Truth: "blk-5", Class: ClassPartial, FirstS: 10},
	}
	ttd := func(s float64) *float64 { return &s }
	tr := func(id, class string, found bool, s float64) TruthResult {
		return TruthResult{Truth: Truth{ID: id, Class: class}, Scored: true, Detected: found, TTDS: ttd(s)}
	}
	scs := []*Scenario{
		{Source: "a", Variant: VarTraffic, Seed: 1, Truths: []TruthResult{
			tr("blk-1", ClassFull, true, 100), tr("blk-2", ClassFull, true, 200), // found, then too late for its bar
			tr("blk-5", ClassPartial, true, 280), tr("blk-6", ClassPartial, false, 0)}},
		{Source: "a", Variant: VarAll, Seed: 1, Truths: []TruthResult{tr("blk-6", ClassPartial, true, 10)}}, // not traffic only
	}
	table := lossTable(sts, obs, scs, []string{"a"})
	for _, line := range []string{
		"| a | 15 % | 4 | 3 | 3 | 2 | 2 | 1 | 1 | 1 |", "| corpus | 15 % | 4 | 3 | 3 | 2 | 2 | 1 | 1 | 1 |",
		"Where the partial closures are lost", "| a | 15 % | 3 | 3 | 2 | 2 | 2 | 1 | 1 |",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("the table lacks %q:\n%s", line, table)
		}
	}
}
