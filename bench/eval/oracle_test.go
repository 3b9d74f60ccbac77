package eval

import (
	"strings"
	"testing"

	"citybrain/engine/detect"
	"citybrain/engine/evtime"
)

// The oracle bound reads each observation at the first bucket end that shows it: a probe standing a minute
// on the blocked link, its exits stopping, a feeder holding past its stop reference, or, while the blocked
// link has no row at all, a feeder's own queue head held at its end.
func TestObserveFindsTheFirstSignOfAClosure(t *testing.T) {
	topo := []detect.Link{{LengthM: 200, Up: []int32{1}}, {LengthM: 100, Down: []int32{0}}}
	start := int64(1_000_000_005_000) // 5 s past a bucket end
	const bucket = 10_000
	first := evtime.Floor(start, bucket) + bucket // the first bucket end after the start (+5 s)
	row := func(li int32, t int64, set func(x *[detect.NumFeatures]float64), headM float64) *Row {
		r := &Row{Link: li, T: t, HeadM: headM}
		set(&r.X)
		return r
	}
	by := map[[2]int64]*Row{}
	// The blocked link has no row for its first 40 s; its feeder's queue head stands at its end past its
	// stop reference from +25 s.
	by[[2]int64{1, first + 20_000}] = row(1, first+20_000, func(x *[detect.NumFeatures]float64) { x[detect.FStandRatio] = 1.2 }, 95)
	// A feeder queue not at its end does not count.
	by[[2]int64{1, first + 10_000}] = row(1, first+10_000, func(x *[detect.NumFeatures]float64) { x[detect.FStandRatio] = 3 }, 20)
	for k := int64(4); k < 30; k++ {
		tt := first + k*bucket
		by[[2]int64{0, tt}] = row(0, tt, func(x *[detect.NumFeatures]float64) {
			if k >= 9 {
				x[detect.FStanding60] = 1
				x[detect.FStandLog] = 1
			}
			if k >= 12 {
				x[detect.FExitDeficit] = 2.5
			}
		}, -1)
	}
	o := observe(by, topo, 0, start, start+20*60_000, bucket)
	want := Observable{FirstS: 25, StandS: 95, ExitsS: 125, FeederS: 25}
	if o != want {
		t.Errorf("observed %+v, want %+v", o, want)
	}
	// Nothing shows: never.
	if o := observe(map[[2]int64]*Row{}, topo, 0, start, start+20*60_000, bucket); o.FirstS != -1 || o.StandS != -1 {
		t.Errorf("no rows observed %+v, want -1 throughout", o)
	}
	// A sign after the closure's end does not count.
	if o := observe(by, topo, 0, start, start+60_000, bucket); o.StandS != -1 || o.FirstS != 25 {
		t.Errorf("a closure of a minute observed %+v, want only its feeder at 25 s", o)
	}
	tab := observableTable([]Observable{want, {City: "x", FirstS: 200, StandS: -1, ExitsS: -1, FeederS: 200}}, []string{"x"})
	for _, line := range []string{"| x | 15 % | 0/1 (0 %) | 0/1 (0 %) | 1/1 (100 %) | 0 / 0 / 0 |",
		"| corpus | 15 % | 1/2 (50 %) | 1/2 (50 %) | 2/2 (100 %) | 1 / 1 / 1 |"} {
		if !strings.Contains(tab, line) {
			t.Errorf("the table lacks %q:\n%s", line, tab)
		}
	}
}

// The evidence bound takes, per scored blockage of the all-evidence variants, the earliest of its first
// stall alarm, its first call and the traffic oracle's first sign at the same probe share, and averages them
// over the blockages with any; the observable table counts full closures only.
func TestTheEvidenceBoundTakesEachBlockagesEarliestSource(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	tr := func(id, class string, video, call *float64, ttd *float64) TruthResult {
		return TruthResult{Truth: Truth{ID: id, Class: class, FirstVideoS: video, FirstCallS: call}, Scored: true,
			Detected: ttd != nil, TTDS: ttd}
	}
	scs := []*Scenario{
		{Source: "x", Variant: VarAll, Seed: 1, Truths: []TruthResult{
			tr("a", ClassFull, f(150), f(200), f(160)),   // traffic at 40 s is first
			tr("b", ClassPartial, nil, f(130), f(140)),   // the call (its traffic sign is at 5 % only)
			tr("f", ClassPartial, nil, f(200), f(50)),    // detected before the call: the detection counts in the last column
			tr("g", ClassPartial, nil, f(220), f(220.5)), // detected at its call
			tr("c", ClassFull, f(300), nil, nil),         // the camera
			tr("d", ClassFull, nil, nil, nil),            // nothing at all: not in the mean
			{Truth: Truth{ID: "e", FirstCallS: f(1)}},    // not scored
		}},
		{Source: "x", Variant: VarTraffic, Seed: 1, Truths: []TruthResult{tr("a", ClassFull, nil, nil, f(1))}},
	}
	obs := []Observable{
		{City: "x", Seed: 1, Truth: "a", Class: ClassFull, FirstS: 40},
		{City: "x", Seed: 1, Low: true, Truth: "b", Class: ClassPartial, FirstS: 10},
		{City: "x", Seed: 1, Truth: "c", Class: ClassFull, FirstS: -1},
	}
	tab := evidenceBoundTable(scs, obs, []string{"x"})
	// (40 + 130 + 300 + 200 + 220) / 5 = 178; cameras and calls: (150 + 130 + 300 + 200 + 220) / 5 = 200;
	// detector (160 + 140 + 50 + 220.5) / 4 = 143; its lag: none found video-first, (10 − 150 + 0.5) / 3 = −47 s
	// call-first, 160 − 40 = 120 s traffic-first; with the detection: (40 + 130 + 300 + 50 + 220) / 5 = 148, f's
	// detection first; found at the call: g (220.5 s), before it: a and f (b came 10 s after its call).
	for _, line := range []string{"| x | 15 % | 5/6 (83 %) | 178 s | 1 / 3 / 1 | 5, 200 s | 143 s | – / -47 s / 120 s | 148 s (1) | 1 / 2, 221 s |",
		"| corpus | 15 % | 5/6 (83 %) | 178 s | 1 / 3 / 1 | 5, 200 s | 143 s | – / -47 s / 120 s | 148 s (1) | 1 / 2, 221 s |"} {
		if !strings.Contains(tab, line) {
			t.Errorf("the bound table lacks %q:\n%s", line, tab)
		}
	}
	if strings.Contains(tab, "| 5 % |") {
		t.Errorf("the bound table has a 5 %% row without an all5 scenario:\n%s", tab)
	}
	if got := observableTable(obs, []string{"x"}); !strings.Contains(got, "| x | 15 % | 1/2 (50 %)") {
		t.Errorf("the observable table counts a partial closure or misses a full one:\n%s", got)
	}
}
