package eval

import (
	"fmt"
	"math"
	"strings"

	"citybrain/engine/detect"
	"citybrain/engine/evtime"
	"citybrain/geo"
)

// The oracle bound (issue 12, seventh pass): how much of the traffic-only bar the traffic data allows at
// all. For each full closure, the earliest bucket end at which the tracker's rows show it by any of three
// observations, however a model would weigh them:
//   - stand: a probe on the blocked link has held still for a minute (standing60 > 0);
//   - exits: probes should have left the link and did not (no_exit, or an exit deficit of 2, a chance of
//     1 % or less, with something holding on it);
//   - feeder: a vehicle on a link feeding it has held longer than a stop reference (feed_held or up_stand
//     ≥ 1), or, when the blocked link has no row at all (no probe on it for ten minutes), a feeder's own
//     queue head holds at its end past that feeder's stop reference.
// It is an upper bound on what a detector of these rows can call, and a generous one: a queue standing at a
// red light when the closure begins counts from the closure's first bucket end.

// observeMaxMs: a closure not observable within this long of its start (or by its end) counts as never.
const observeMaxMs = 15 * 60_000

// Observable is one full closure's earliest observation from traffic data, in seconds after its start
// (-1: none within observeMaxMs or by its end).
type Observable struct {
	City     string  `json:"city"`
	Seed     int64   `json:"seed"`
	Low      bool    `json:"low,omitempty"` // 5 % probes
	Truth    string  `json:"truth"`
	Position string  `json:"position"`
	FirstS   float64 `json:"first_s"`
	StandS   float64 `json:"stand_s"`
	ExitsS   float64 `json:"exits_s"`
	FeederS  float64 `json:"feeder_s"`
}

// observables measures every full closure of a run on its rows (all of them: before the gate and young
// links included).
func observables(run *simRun, net *geo.Network, topo []detect.Link, rows []Row, low bool) []Observable {
	idx := map[string]int32{}
	for i, l := range net.Links() {
		idx[l.ID] = int32(i)
	}
	want := map[int32]bool{}
	for _, tr := range run.Truths {
		if li, ok := idx[tr.Link]; ok && tr.Class == ClassFull {
			want[li] = true
			for _, u := range topo[li].Up {
				want[u] = true
			}
		}
	}
	by := map[[2]int64]*Row{}
	for i := range rows {
		if want[rows[i].Link] {
			by[[2]int64{int64(rows[i].Link), rows[i].T}] = &rows[i]
		}
	}
	var out []Observable
	for i := range run.Truths {
		tr := &run.Truths[i]
		li, ok := idx[tr.Link]
		if !ok || tr.Class != ClassFull {
			continue
		}
		o := observe(by, topo, li, tr.Start.UnixMilli(), tr.End.UnixMilli(), BatchSpan.Milliseconds())
		o.City, o.Seed, o.Low, o.Truth, o.Position = run.City, run.Seed, low, tr.ID, tr.Position
		out = append(out, o)
	}
	return out
}

// observe walks the bucket ends (of bucketMs) after a closure of link li from start to end.
func observe(by map[[2]int64]*Row, topo []detect.Link, li int32, start, end, bucketMs int64) Observable {
	o := Observable{FirstS: -1, StandS: -1, ExitsS: -1, FeederS: -1}
	mark := func(s *float64, t int64) {
		if *s < 0 {
			*s = float64(t-start) / 1000
		}
	}
	for t := evtime.Floor(start, bucketMs) + bucketMs; t <= end && t <= start+observeMaxMs; t += bucketMs {
		if r := by[[2]int64{int64(li), t}]; r != nil {
			x := &r.X
			if x[detect.FStanding60] > 0 {
				mark(&o.StandS, t)
			}
			if x[detect.FNoExit] > 0 || (x[detect.FExitDeficit] >= 2 && x[detect.FStandLog] > 0) {
				mark(&o.ExitsS, t)
			}
			if x[detect.FFeedHeld] >= 1 || x[detect.FUpStand] >= 1 {
				mark(&o.FeederS, t)
			}
		} else {
			for _, u := range topo[li].Up {
				ru := by[[2]int64{int64(u), t}]
				if ru != nil && ru.X[detect.FStandRatio] >= 1 && ru.HeadM >= topo[u].LengthM-math.Max(30, 0.15*topo[u].LengthM) {
					mark(&o.FeederS, t)
				}
			}
		}
	}
	for _, s := range []float64{o.StandS, o.ExitsS, o.FeederS} {
		if s >= 0 && (o.FirstS < 0 || s < o.FirstS) {
			o.FirstS = s
		}
	}
	return o
}

// observableTable prints, per city and probe share, how many full closures the traffic data shows by 180 s,
// by 120 s and at all, and by which observation by 180 s.
func observableTable(obs []Observable, cities []string) string {
	if len(obs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Full closures observable at all from traffic data (the oracle bound on the traffic-only bar: a probe standing a minute on the blocked link, its exits stopping, a feeder holding past its stop reference)\n\n")
	b.WriteString("| city | probes | by 180 s | by 120 s | within 15 min | by 180 s: stand / exits / feeder |\n|---|---|---|---|---|---|\n")
	for _, low := range []bool{false, true} {
		for _, c := range append(append([]string(nil), cities...), corpusKey) {
			var n, f180, f120, any, st, ex, fe int
			for _, o := range obs {
				if o.Low != low || (c != corpusKey && o.City != c) {
					continue
				}
				n++
				in := func(s, lim float64) bool { return s >= 0 && s <= lim }
				if in(o.FirstS, FastS) {
					f180++
				}
				if in(o.FirstS, 120) {
					f120++
				}
				if o.FirstS >= 0 {
					any++
				}
				if in(o.StandS, FastS) {
					st++
				}
				if in(o.ExitsS, FastS) {
					ex++
				}
				if in(o.FeederS, FastS) {
					fe++
				}
			}
			if n == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d / %d / %d |\n", c, map[bool]string{false: "15 %", true: "5 %"}[low],
				frac(f180, n), frac(f120, n), frac(any, n), st, ex, fe)
		}
	}
	b.WriteString("\n")
	return b.String()
}
