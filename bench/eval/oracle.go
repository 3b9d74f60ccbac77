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
	Class    string  `json:"class,omitempty"` // full_closure (the table's), or partial_closure (the evidence bound's)
	Position string  `json:"position"`
	FirstS   float64 `json:"first_s"`
	StandS   float64 `json:"stand_s"`
	ExitsS   float64 `json:"exits_s"`
	FeederS  float64 `json:"feeder_s"`
}

// observables measures every closure of a run on its rows (all of them: before the gate and young links
// included). The observable table counts the full closures; the evidence bound (evidenceBoundTable) reads
// the partial ones too, by the same three signs.
func observables(run *simRun, net *geo.Network, topo []detect.Link, rows []Row, low bool) []Observable {
	idx := map[string]int32{}
	for i, l := range net.Links() {
		idx[l.ID] = int32(i)
	}
	want := map[int32]bool{}
	for _, tr := range run.Truths {
		if li, ok := idx[tr.Link]; ok {
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
		if !ok {
			continue
		}
		o := observe(by, topo, li, tr.Start.UnixMilli(), tr.End.UnixMilli(), BatchSpan.Milliseconds())
		o.City, o.Seed, o.Low, o.Truth, o.Class, o.Position = run.City, run.Seed, low, tr.ID, tr.Class, tr.Position
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
				if o.Low != low || (c != corpusKey && o.City != c) || (o.Class != "" && o.Class != ClassFull) {
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
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d / %d / %d |\n", c, probeShareName(low),
				frac(f180, n), frac(f120, n), frac(any, n), st, ex, fe)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// evidenceBoundTable prints, per city and probe share, the bound on the all-evidence mean time to detect
// (issue 12, ninth pass): per blockage of the all-evidence variants, the earliest evidence any source fed or
// the traffic data shows (the first incident-type video detection of it, the first hotline call, the
// oracle's first sign on its rows), and the mean of those earliest times over the blockages with any. No
// fusion can report a blockage before its first evidence, so no mean time to detect can be below it (over
// the same blockages). Generous like the oracle: a red queue standing when a closure begins counts as its
// sign at the first bucket end.
func evidenceBoundTable(scs []*Scenario, obs []Observable, cities []string) string {
	first := map[string]float64{}
	for _, o := range obs {
		if o.FirstS >= 0 {
			first[fmt.Sprintf("%s/%d/%v/%s", o.City, o.Seed, o.Low, o.Truth)] = o.FirstS
		}
	}
	type acc struct {
		n, any, video, call, traffic, camCall int
		sum, sumCamCall, sumTTD               float64
		ttdN                                  int
		// The detection's lag behind the earliest evidence, of the found blockages, by that evidence's
		// source (video, call, traffic).
		lagSum [3]float64
		lagN   [3]int
		// The earliest evidence counting the detector's own detection as one more source (the oracle's signs
		// are not all a detector can read: crawling past a partial closure, a queue farther up): its sum and
		// count, and how often the detection came before every other source.
		sumDet        float64
		nDet, detWins int
		// Found blockages with a call: detected at its first call (within a second: the call made or joined
		// the incident that matched) and their TTD's sum, and detected before it.
		atCall, beforeCall int
		sumAtCall          float64
	}
	by := map[string]*acc{}
	for _, sc := range scs {
		if sc.Source == "demo" || (sc.Variant != VarAll && sc.Variant != VarAll5) {
			continue
		}
		low := sc.Variant == VarAll5
		for _, tr := range sc.Truths {
			if !tr.Scored {
				continue
			}
			best, src := math.Inf(1), ""
			if tr.FirstVideoS != nil && *tr.FirstVideoS < best {
				best, src = *tr.FirstVideoS, "video"
			}
			if tr.FirstCallS != nil && *tr.FirstCallS < best {
				best, src = *tr.FirstCallS, "call"
			}
			camCall := best
			if s, ok := first[fmt.Sprintf("%s/%d/%v/%s", sc.Source, sc.Seed, low, tr.ID)]; ok && s < best {
				best, src = s, "traffic"
			}
			for _, k := range []string{sc.Source, corpusKey} {
				key := fmt.Sprintf("%s/%v", k, low)
				a := by[key]
				if a == nil {
					a = &acc{}
					by[key] = a
				}
				a.n++
				withDet := best
				if tr.Detected && tr.TTDS != nil {
					a.ttdN++
					a.sumTTD += *tr.TTDS
					if *tr.TTDS < withDet {
						withDet = *tr.TTDS
						a.detWins++
					}
				}
				if !math.IsInf(withDet, 1) {
					a.nDet++
					a.sumDet += withDet
				}
				if tr.Detected && tr.TTDS != nil && tr.FirstCallS != nil {
					switch d := *tr.TTDS - *tr.FirstCallS; {
					case math.Abs(d) <= 1:
						a.atCall++
						a.sumAtCall += *tr.TTDS
					case d < 0:
						a.beforeCall++
					}
				}
				if src == "" {
					continue
				}
				a.any++
				a.sum += best
				if !math.IsInf(camCall, 1) {
					a.camCall++
					a.sumCamCall += camCall
				}
				si := 2
				switch src {
				case "video":
					a.video++
					si = 0
				case "call":
					a.call++
					si = 1
				default:
					a.traffic++
				}
				if tr.Detected && tr.TTDS != nil {
					a.lagSum[si] += *tr.TTDS - best
					a.lagN[si]++
				}
			}
		}
	}
	if len(by) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("The bound on the all-evidence mean time to detect (bar 90 s): per blockage, the earliest evidence of any source (a stall alarm, a call, the traffic oracle's first sign), averaged\n\n")
	b.WriteString("| city | probes | blockages with evidence | mean earliest evidence | earliest from video / call / traffic | cameras and calls only: with evidence, mean | detector's mean TTD (found) | its mean lag behind the earliest evidence: video / call / traffic first | counting the detection as evidence too: mean earliest (detection first) | found at its first call / before it (of those with a call): n / n, mean TTD of those at the call |\n|---|---|---|---|---|---|---|---|---|---|\n")
	mean := func(s float64, n int) string {
		if n == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f s", math.Round(s/float64(n))+0) // +0: no "-0 s"
	}
	for _, low := range []bool{false, true} {
		for _, c := range append(append([]string(nil), cities...), corpusKey) {
			a := by[fmt.Sprintf("%s/%v", c, low)]
			if a == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d / %d / %d | %d, %s | %s | %s / %s / %s | %s (%d) | %d / %d, %s |\n", c, probeShareName(low),
				frac(a.any, a.n), mean(a.sum, a.any), a.video, a.call, a.traffic, a.camCall, mean(a.sumCamCall, a.camCall), mean(a.sumTTD, a.ttdN),
				mean(a.lagSum[0], a.lagN[0]), mean(a.lagSum[1], a.lagN[1]), mean(a.lagSum[2], a.lagN[2]), mean(a.sumDet, a.nDet), a.detWins,
				a.atCall, a.beforeCall, mean(a.sumAtCall, a.atCall))
		}
	}
	b.WriteString("\n")
	return b.String()
}
