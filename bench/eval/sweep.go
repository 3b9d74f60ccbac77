package eval

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"citybrain/engine/detect"
)

// The sweep (issue 12, tenth pass): a measure of a detector change that does not move with the calibration.
// The leave-one-city-out table judges each city at the threshold and persistence its model was calibrated to
// on the other cities; any change to the rows moves that calibration, and a feature of pure noise moved the
// table by a closure and 0.3 false alarms/h (ninth pass). The sweep instead runs each held-out model over its
// own city's rows through the proxy fusion (proxyDetections) at every operating point of a fixed grid and
// keeps, per false-alarm budget, the point that finds the most closures: a detection-against-false-alarms
// curve of the model's ranking. It is a measuring instrument, not an operating point the product can use (the
// point is chosen on the city it is scored on).

// sweepPersist and sweepThresholds are the grid of operating points the sweep tries (calibrate's persistences;
// its thresholds and the ones between).
var (
	sweepPersist    = []int{2, 3, 4, 6}
	sweepThresholds = []float64{0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995}
)

// SweepBudgets are the false-alarm rates (per hour) the sweep's table reads the curve at.
var SweepBudgets = []float64{0.5, 1, 2}

// SweepPoint is one operating point of a held-out city's model on that city's own runs at one probe share,
// scored through the proxy fusion.
type SweepPoint struct {
	City      string  `json:"city"`
	Low       bool    `json:"low,omitempty"` // 5 % probes
	Threshold float64 `json:"threshold"`
	Persist   int     `json:"persist"`
	// The second point of an own rule that has one (detect.Operating).
	Threshold2 float64 `json:"threshold2,omitempty"`
	Persist2   int     `json:"persist2,omitempty"`
	// Own marks the model's own operating point (calibrated on the other cities): the shipped table's, through
	// the proxy.
	Own         bool    `json:"own,omitempty"`
	Full        int     `json:"full"`
	FullFast    int     `json:"full_180"`
	Part        int     `json:"partial"`
	PartFast    int     `json:"partial_300"`
	FalseAlarms int     `json:"false_alarms"`
	Hours       float64 `json:"hours"`
}

func (p SweepPoint) faPH() float64 { return float64(p.FalseAlarms) / math.Max(p.Hours, 1e-9) }

// pointString writes p's operating point as the tables print it: (threshold, persistence), and the second
// point after a bar.
func (p SweepPoint) pointString() string {
	if p.Persist2 > 0 {
		return fmt.Sprintf("(%.3g, %d | %.3g, %d)", p.Threshold, p.Persist, p.Threshold2, p.Persist2)
	}
	return fmt.Sprintf("(%.3g, %d)", p.Threshold, p.Persist)
}

// add sums q's closures, false alarms and hours into p.
func (p *SweepPoint) add(q SweepPoint) {
	p.Full += q.Full
	p.FullFast += q.FullFast
	p.Part += q.Part
	p.PartFast += q.PartFast
	p.FalseAlarms += q.FalseAlarms
	p.Hours += q.Hours
}

// probeShareName names a probe share in the tables: 15 %, or 5 % when low.
func probeShareName(low bool) string {
	if low {
		return "5 %"
	}
	return "15 %"
}

// SweepTruth is one closure of a held-out city under the sweep: the fewest false alarms per hour of a grid
// point that finds it within its bar (full closures within 180 s, partial within 300 s), -1 when no point
// does. Two reports' closures, paired, tell a change of the detector from a refit (pairedTable).
type SweepTruth struct {
	City  string  `json:"city"`
	Seed  int64   `json:"seed"`
	Low   bool    `json:"low,omitempty"`
	Truth string  `json:"truth"`
	Class string  `json:"class"`
	FAPH  float64 `json:"false_per_h"`
	// RowS: when the first row of the blocked link past the gate came, in seconds after its start (-1: none by
	// the bar); MaxP: the model's highest probability on those rows by the bar (rows that only a feeder's
	// queue shows are not the blocked link's and count in neither).
	RowS float64 `json:"row_s"`
	MaxP float64 `json:"max_p"`
	// Own: the proxy finds it within its bar at the model's own (calibrated) point, the one the engine uses.
	Own bool `json:"own,omitempty"`
}

// sweepCity scores the held-out model m over its city's runs (test) at every point of the grid and at its own
// point, at each probe share; and per closure the fewest false alarms per hour at which a grid point finds it.
func sweepCity(city string, test []*corpusRun, m *detect.Model) ([]SweepPoint, []SweepTruth) {
	var out []SweepPoint
	var truths []SweepTruth
	for _, low := range []bool{false, true} {
		var runs []*corpusRun
		for _, r := range test {
			if r.low == low {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			continue
		}
		probs := probsAll(runs, m)
		idx := map[[2]string]int{} // seed, truth → index in truths
		at := func(op detect.Operating, own bool) {
			var found [][2]string
			each := func(r *corpusRun, tr *TruthResult) {
				key := [2]string{fmt.Sprint(r.seed), tr.ID}
				if _, ok := idx[key]; !ok {
					idx[key] = len(truths)
					truths = append(truths, SweepTruth{City: city, Seed: r.seed, Low: low, Truth: tr.ID, Class: tr.Class, FAPH: -1, RowS: -1})
				}
				bar := barOf(tr.Class)
				if tr.Detected && *tr.TTDS <= bar {
					if own {
						truths[idx[key]].Own = true
					} else {
						found = append(found, key)
					}
				}
			}
			p := proxyAllP(runs, probs, op, each)
			pt := SweepPoint{City: city, Low: low, Threshold: op.Threshold, Persist: op.Persist, Threshold2: op.Threshold2,
				Persist2: op.Persist2, Own: own, Full: p.full, FullFast: p.fullFast,
				Part: p.part, PartFast: p.partFast, FalseAlarms: p.fa, Hours: p.hours}
			out = append(out, pt)
			for _, key := range found {
				if st := &truths[idx[key]]; st.FAPH < 0 || pt.faPH() < st.FAPH {
					st.FAPH = pt.faPH()
				}
			}
		}
		at(m.Operating, true)
		for ri, r := range runs {
			for i := range r.rows {
				row := &r.rows[i]
				if row.Label != 1 || probs[ri][i] < 0 {
					continue
				}
				j, ok := idx[[2]string{fmt.Sprint(r.seed), row.Truth}]
				if !ok {
					continue // not scored
				}
				st := &truths[j]
				var start int64
				for _, tr := range r.truths {
					if tr.ID == row.Truth {
						start = tr.Start.UnixMilli()
					}
				}
				sinceS := float64(row.T-start) / 1000
				if sinceS > barOf(st.Class) {
					continue
				}
				if st.RowS < 0 || sinceS < st.RowS {
					st.RowS = sinceS
				}
				st.MaxP = math.Max(st.MaxP, probs[ri][i])
			}
		}
		for _, k := range sweepPersist {
			for _, thr := range sweepThresholds {
				at(detect.Operating{Threshold: thr, Persist: k}, false)
			}
		}
	}
	return out, truths
}

// better reports whether a finds more closures (full within 180 s and partial within 300 s, counted alike, as
// calibrate counts them) than b, or as many with fewer false alarms.
func (a SweepPoint) better(b SweepPoint) bool {
	if sa, sb := a.FullFast+a.PartFast, b.FullFast+b.PartFast; sa != sb {
		return sa > sb
	}
	return a.faPH() < b.faPH()
}

// barOf is the time a closure of class must be found within: 180 s for a full closure, 300 s for a partial.
func barOf(class string) float64 {
	if class == ClassFull {
		return FastS
	}
	return SlowS
}

// sweepBest is the point of the city's grid (own point left out) that finds the most closures with at most
// budget false alarms per hour; ok is false when no point stays within it.
func sweepBest(pts []SweepPoint, city string, low bool, budget float64) (best SweepPoint, ok bool) {
	for _, p := range pts {
		if p.City != city || p.Low != low || p.Own || p.faPH() > budget+1e-9 {
			continue
		}
		if !ok || p.better(best) {
			best, ok = p, true
		}
	}
	return best, ok
}

// ownPoint is city's calibrated point (the held-out model's own operating point) at the probe share low, if
// the sweep has it (the last one listed).
func ownPoint(pts []SweepPoint, city string, low bool) (own SweepPoint, found bool) {
	for _, p := range pts {
		if p.City == city && p.Low == low && p.Own {
			own, found = p, true
		}
	}
	return own, found
}

// sweepCorpus sums the curve over cities two ways: each city at its own best point within the budget
// (perCity), and one point of the grid shared by every held-out model, the best whose false alarms summed
// over the corpus stay within the budget (shared). A city without a point within the budget counts its
// closures as not found and its hours in perCity.
func sweepCorpus(pts []SweepPoint, cities []string, low bool, budget float64) (perCity, shared SweepPoint, sharedOK bool) {
	perCity = SweepPoint{City: corpusKey, Low: low}
	for _, c := range cities {
		own, found := ownPoint(pts, c, low)
		if !found {
			continue
		}
		perCity.Full += own.Full
		perCity.Part += own.Part
		perCity.Hours += own.Hours
		if b, ok := sweepBest(pts, c, low, budget); ok {
			perCity.FullFast += b.FullFast
			perCity.PartFast += b.PartFast
			perCity.FalseAlarms += b.FalseAlarms
		}
	}
	sum := map[[2]float64]*SweepPoint{}
	var keys [][2]float64
	in := map[string]bool{}
	for _, c := range cities {
		in[c] = true
	}
	for _, p := range pts {
		if !in[p.City] || p.Low != low || p.Own {
			continue
		}
		k := [2]float64{p.Threshold, float64(p.Persist)}
		s := sum[k]
		if s == nil {
			s = &SweepPoint{City: corpusKey, Low: low, Threshold: p.Threshold, Persist: p.Persist}
			sum[k] = s
			keys = append(keys, k)
		}
		s.add(p)
	}
	for _, k := range keys {
		s := *sum[k]
		if s.faPH() > budget+1e-9 {
			continue
		}
		if !sharedOK || s.better(shared) {
			shared, sharedOK = s, true
		}
	}
	return perCity, shared, sharedOK
}

// sweepTable prints the curve per held-out city and probe share, and for the corpus.
func sweepTable(pts []SweepPoint, cities []string) string {
	if len(pts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Detection against false alarms, traffic only (a measuring instrument for detector changes, not the product's operating point: each held-out model's threshold and persistence are swept over its own city's rows through the proxy fusion, and the table gives the most closures found, full within 180 s / partial within 300 s, at no more than 0.5, 1 and 2 false alarms per hour; \"own\" is the proxy at the point the model was calibrated to on the other cities, which the table above uses in the engine; the corpus rows add each city's own best point, or use one point for every model)\n\n")
	b.WriteString("| city | probes | own point: full / partial, false/h (thr, persist) |")
	for _, bu := range SweepBudgets {
		fmt.Fprintf(&b, " ≤ %g/h: full / partial |", bu)
	}
	b.WriteString("\n|---|---|---|")
	for range SweepBudgets {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	cell := func(p SweepPoint, ok bool) string {
		if !ok {
			return "–"
		}
		return fmt.Sprintf("%d/%d / %d/%d", p.FullFast, p.Full, p.PartFast, p.Part)
	}
	for _, low := range []bool{false, true} {
		share := probeShareName(low)
		var ownSum SweepPoint
		any := false
		for _, c := range cities {
			own, found := ownPoint(pts, c, low)
			if !found {
				continue
			}
			any = true
			ownSum.add(own)
			fmt.Fprintf(&b, "| %s | %s | %s, %.2f %s |", c, share, cell(own, true), own.faPH(), own.pointString())
			for _, bu := range SweepBudgets {
				p, ok := sweepBest(pts, c, low, bu)
				b.WriteString(" " + cell(p, ok) + " |")
			}
			b.WriteString("\n")
		}
		if !any {
			continue
		}
		fmt.Fprintf(&b, "| corpus, each city at its own point | %s | %s, %.2f |", share, cell(ownSum, true), ownSum.faPH())
		var shared []string
		for _, bu := range SweepBudgets {
			pc, sh, ok := sweepCorpus(pts, cities, low, bu)
			b.WriteString(" " + cell(pc, true) + " |")
			if ok {
				shared = append(shared, fmt.Sprintf(" %s %s |", cell(sh, true), sh.pointString()))
			} else {
				shared = append(shared, " – |")
			}
		}
		fmt.Fprintf(&b, "\n| corpus, one point for every model | %s | |%s\n", share, strings.Join(shared, ""))
	}
	b.WriteString("\n")
	return b.String()
}

// truthKey names one blockage of one scenario: its city, seed, probe share and truth.
type truthKey struct {
	city  string
	seed  int64
	low   bool
	truth string
}

// pairedTable compares two reports' closures under the sweep, paired closure by closure (cur against base,
// both leave-one-city-out): per city and probe share, how many a grid point finds within its bar with at most
// 1 and 2 false alarms per hour in each, and how many closures the change made easier (found at a lower false-
// alarm rate, or found where it was not) or harder. Paired, a change is read against what a feature of pure
// noise does to the same closures (docs/incidents.md, tenth pass), not against the spread of a whole table.
func pairedTable(base, cur []SweepTruth, cities []string, against string) string {
	if len(base) == 0 || len(cur) == 0 {
		return ""
	}
	was := map[truthKey]float64{}
	for _, t := range base {
		was[truthKey{t.City, t.Seed, t.Low, t.Truth}] = t.FAPH
	}
	within := func(f, bu float64) bool { return f >= 0 && f <= bu+1e-9 }
	var b strings.Builder
	fmt.Fprintf(&b, "The sweep's closures paired against %s (found by any grid point within its bar at ≤ 1 and ≤ 2 false alarms/h, before → now: a union over the points, so these counts are at or above the sweep table's “each city at its own point”; easier: found at fewer false alarms/h than before, or found at all; harder: the reverse)\n\n", against)
	b.WriteString("| city | probes | closures | full ≤ 1/h | partial ≤ 1/h | full ≤ 2/h | partial ≤ 2/h | easier / harder |\n|---|---|---|---|---|---|---|---|\n")
	for _, low := range []bool{false, true} {
		for _, c := range append(append([]string(nil), cities...), corpusKey) {
			var n, easier, harder int
			var cnt [2][2][2]int // class full?, budget 2?, before/now
			for _, t := range cur {
				if t.Low != low || (c != corpusKey && t.City != c) {
					continue
				}
				if c == corpusKey && !slices.Contains(cities, t.City) {
					continue
				}
				old, ok := was[truthKey{t.City, t.Seed, t.Low, t.Truth}]
				if !ok {
					continue
				}
				n++
				cl := 0
				if t.Class == ClassFull {
					cl = 1
				}
				for bi, bu := range []float64{1, 2} {
					if within(old, bu) {
						cnt[cl][bi][0]++
					}
					if within(t.FAPH, bu) {
						cnt[cl][bi][1]++
					}
				}
				switch {
				case t.FAPH >= 0 && (old < 0 || t.FAPH < old):
					easier++
				case old >= 0 && (t.FAPH < 0 || t.FAPH > old):
					harder++
				}
			}
			if n == 0 {
				continue
			}
			ba := func(cl, bi int) string { return fmt.Sprintf("%d → %d", cnt[cl][bi][0], cnt[cl][bi][1]) }
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %d / %d |\n", c, probeShareName(low), n,
				ba(1, 0), ba(0, 0), ba(1, 1), ba(0, 1), easier, harder)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// lossTable follows the closures of each class from the traffic data to the engine: per city and probe
// share, the full closures observable by 180 s (the oracle's signs; partial closures have no such column: a
// squeeze need not stand), those with a row of the blocked link past the gate by their bar (180 s full, 300 s
// partial), those the model ranks high enough that some grid point finds them within the bar at any false-alarm
// rate, at ≤ 2 and ≤ 1 false alarms per hour (each closure at the point that finds it with the fewest), at the
// model's own calibrated point through the proxy, and by the engine in the traffic-only variant. Where the count
// falls is where the detector loses them: the ranking (row → any rate → ≤ 1/h), the operating point (≤ 1/h →
// own point), or the engine's fusion (own point → engine).
func lossTable(sts []SweepTruth, obs []Observable, scs []*Scenario, cities []string) string {
	if len(sts) == 0 {
		return ""
	}
	oracle := map[truthKey]bool{}
	for _, o := range obs {
		if o.Class == "" || o.Class == ClassFull {
			oracle[truthKey{o.City, o.Seed, o.Low, o.Truth}] = o.FirstS >= 0 && o.FirstS <= FastS
		}
	}
	engine := map[truthKey]bool{}
	for _, sc := range scs {
		if sc.Variant != VarTraffic && sc.Variant != VarTraffic5 {
			continue
		}
		for _, tr := range sc.Truths {
			if tr.Scored && tr.Detected && tr.TTDS != nil && *tr.TTDS <= barOf(tr.Class) {
				engine[truthKey{sc.Source, sc.Seed, sc.Variant == VarTraffic5, tr.ID}] = true
			}
		}
	}
	var b strings.Builder
	for _, class := range []string{ClassFull, ClassPartial} {
		full := class == ClassFull
		if full {
			b.WriteString("Where the full closures are lost, traffic only (the oracle's, then a row of the blocked link past the gate by 180 s, then found within 180 s by some point of the sweep's grid at any false-alarm rate, at ≤ 2 and at ≤ 1 false alarms/h, at the model's own point through the proxy, and by the engine; rows a feeder's queue alone shows are not counted as the blocked link's)\n\n")
			b.WriteString("| city | probes | full closures | observable by 180 s | a row past the gate by 180 s | found at any rate | at ≤ 2/h | at ≤ 1/h | at its own point | engine |\n|---|---|---|---|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("Where the partial closures are lost, traffic only (a row of the blocked link past the gate by 300 s, then found within 300 s by some point of the sweep's grid at any false-alarm rate, at ≤ 2 and at ≤ 1 false alarms/h, at the model's own point through the proxy, and by the engine)\n\n")
			b.WriteString("| city | probes | partial closures | a row past the gate by 300 s | found at any rate | at ≤ 2/h | at ≤ 1/h | at its own point | engine |\n|---|---|---|---|---|---|---|---|---|\n")
		}
		for _, low := range []bool{false, true} {
			for _, c := range append(append([]string(nil), cities...), corpusKey) {
				var n, ob, row, any, two, one, own, eng int
				for _, t := range sts {
					if t.Low != low || (t.Class == ClassFull) != full || (c != corpusKey && t.City != c) || (c == corpusKey && !slices.Contains(cities, t.City)) {
						continue
					}
					n++
					k := truthKey{t.City, t.Seed, t.Low, t.Truth}
					if oracle[k] {
						ob++
					}
					if t.RowS >= 0 {
						row++
					}
					if t.FAPH >= 0 {
						any++
						if t.FAPH <= 2+1e-9 {
							two++
						}
						if t.FAPH <= 1+1e-9 {
							one++
						}
					}
					if t.Own {
						own++
					}
					if engine[k] {
						eng++
					}
				}
				if n == 0 {
					continue
				}
				if full {
					fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", c, probeShareName(low), n, ob, row, any, two, one, own, eng)
				} else {
					fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d |\n", c, probeShareName(low), n, row, any, two, one, own, eng)
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
