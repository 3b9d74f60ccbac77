package detect

import (
	"math"
	"slices"
	"sort"
)

// The squeeze judge (issue 12, partial closures). A lane closed at one point of a link of two or three lanes
// squeezes the traffic past it: vehicles slow to 10–20 km/h over a few tens of metres and are back to speed
// past the point, on the same link (corpus c6). Read over the whole link the squeeze barely moves the link's
// features, so the trees (fitted on full closures) do not see it; read per vehicle it is plain: a fix slow
// (standKmh to crawlKmh) away from the link's end, then, within squeezeWithinMs, a fix on the same link at
// crawlKmh or more at least squeezePastM further along. Ordinary traffic does that too, at its habitual slow
// spots (a give-way line, a bend, a merge, the back of a queue leaving): so the squeezes are judged against
// the link's own history at that offset, learned online from what it did histLagMs earlier (as the slowness
// history, history.go), blended with the network's rate per metre for a link with little history. The
// judge: squeezeMinN vehicles or more (one each) squeezed within squeezeSpanM of one point in the last
// squeezeWindowMs, so many that the link's history at that point makes it surprising (−log10 of the Poisson
// chance of so many, at least squeezeMinSurprise), on a link of two lanes or more (one lane closed of one is
// a full closure). A queue at a red light does not count: its vehicles are slow up to the stop line and
// recover on the next link, and a vehicle that stood on the link shortly before its slow fix is leaving a
// queue, not squeezing past a point; nor one in the link's first metres, slow because it has just turned onto
// it (the end zone's size, at its start). Nor does a full closure's queue: nothing passes it. And a squeeze is
// a point of this link with traffic back to speed past it: where the links after it crawl (the fastest of
// them with fixes, its mean fix speed in 2 minutes, under crawlKmh, the speed a squeezed vehicle recovers to),
// the squeezes are the back of their queue.
//
// A second judge reads the same squeezes per vehicle passing the point (the exposure, session 19): a closed
// lane squeezes a good share of the vehicles that pass it, ordinary traffic a few of the many that pass a
// spot. Each link keeps its vehicles' stints (from the first offset a vehicle was seen at to its furthest)
// and its history counts, per bin, the vehicles that passed it beside the squeezes there; the network's
// share by zone is squeezes per metre passed. Two squeezed of few passing can then be as telling as three
// squeezes spanning two minutes, and a few squeezed in a stream of many are not.
const (
	squeezeWithinMs = 30_000  // the recovering fix follows the slow one within this
	squeezePastM    = 10      // and this far further along the link
	squeezeStoodMs  = 30_000  // a slow fix this soon after the vehicle stood on the link is a queue leaving
	squeezeSpanM    = 40      // the squeeze's stretch
	squeezeWindowMs = 180_000 // the recent window the judge counts
	squeezeHistM    = 10      // the history's margin around the stretch
	squeezeBinM     = 10      // the history's bins (wider on links longer than squeezeBins of them)
	squeezeBins     = 48
	squeezePrior    = 60.0 // pseudo bucket ends of the network's rate a link's own is blended with
	maxSqueezes     = 256  // per link (the newest)
	maxPasses       = 256  // per link (the newest)
	passPrior       = 30.0 // pseudo passes of the network's squeezes per pass-metre a link's own is blended with
	// The network's squeezes are learned by where on a link they are (squeezeZone): in its first
	// squeezeStartM (vehicles turning in), in its last squeezeEndM before a signal or before another kind of
	// junction (the back of a queue, a give-way line), or between.
	squeezeStartM = 40
	squeezeEndM   = 100
	squeezeZones  = 4

	squeezeMinN        = 3
	squeezeMinSurprise = 7.0
	squeezeMinLanes    = 2
	// squeezeLastsMs: a closed lane squeezes the vehicles that pass it one after another; a platoon held
	// behind one slow vehicle (a turning car) squeezes at one moment. The squeezes counted must span this.
	squeezeLastsMs = 120_000

	// The exposure judge: exposureMinK vehicles or more squeezed at the point, their squeezes spanning
	// exposureLastsMs, at least one in Lanes of the vehicles that passed it in the window (a closed lane
	// squeezes its own lane's traffic at least; ordinary slowing squeezes a few of the many passing), so
	// many of them that −log10 of their binomial chance, given the share of passing vehicles the link's
	// history (blended with the network's) squeezes there, is exposureMinSurprise or more.
	exposureMinK        = 2
	exposureLastsMs     = 60_000
	exposureMinSurprise = 6.0
)

// SqueezeReading is the squeeze judge's reading of a link at a bucket end: the point (m from the link's
// start) where the most surprising stretch of squeezes lies, how many vehicles squeezed there, and how
// surprising so many are on this link at that point (−log10 of their chance given its history).
type SqueezeReading struct {
	N        int
	Surprise float64
	OffM     float64
	Lambda   float64 // the squeezes the link's history expects there in the window
	// Squeezed: the judge finds the link squeezed at OffM (squeezeMinN, squeezeMinSurprise, two lanes or more).
	Squeezed bool
	// The exposure reading: at XOffM, XK of the XN vehicles that passed the stretch in the window squeezed
	// there, where the link's history (blended with the network's) says a vehicle passing squeezes with
	// chance XP; XSurprise = −log10 of the binomial chance of so many; XSpanMs: their squeezes' span.
	XK, XN    int
	XP        float64
	XSurprise float64
	XOffM     float64
	XSpanMs   int64
	Able      bool // two lanes or more and the links after it not crawling
}

// squeeze is a vehicle that recovered at ts on a link after a slow fix at offM.
type squeeze struct {
	ts      int64
	offM    float32
	vehicle string
}

// pass is a vehicle's stint on a link as its fixes saw it: from its first offset there to its furthest, the
// last fix at ts (the exposure: which vehicles passed a point, squeezed or not).
type pass struct {
	ts       int64
	from, to float32
	vehicle  string
}

// squeezeHist is a link's history of squeezes by offset: the mean number per judged bucket end (exponentially
// weighted over histTau of them) in each bin of binM metres.
type squeezeHist struct {
	bins []float32
	// pass: the mean number of vehicles whose stint covered each bin per judged bucket end (same weights).
	pass []float32
	n    float64
	binM float32
}

// squeezeStep follows a vehicle's fix f for squeezes (after the fix moved it; prev: its link before): a fast
// fix on the vehicle's link past its last slow fix there records a squeeze of the link; a slow fix away from
// the link's end, not soon after the vehicle stood there, becomes its last slow fix. A fix not believed on
// the vehicle's link (a candidate for the next one) changes nothing; a move to another link forgets both.
func (t *Tracker) squeezeStep(v *vehicle, f *fix, prev int32) {
	if f.link != v.link {
		return
	}
	if prev != v.link {
		v.slowTS, v.stoodTS = 0, 0
	}
	t.passStep(f, prev != v.link)
	if v.slowTS != 0 && f.ts-v.slowTS <= squeezeWithinMs && f.kmh >= crawlKmh && f.offM >= v.slowOff+squeezePastM {
		ls := &t.st[f.link]
		ls.squeezes = append(ls.squeezes, squeeze{ts: f.ts, offM: v.slowOff, vehicle: f.vehicle})
		if len(ls.squeezes) > maxSqueezes {
			ls.squeezes = slices.Delete(ls.squeezes, 0, len(ls.squeezes)-maxSqueezes)
		}
		v.slowTS = 0
	}
	length := t.links[f.link].LengthM
	switch zone := endZoneM(length); {
	case f.kmh < standKmh:
		v.stoodTS, v.slowTS = f.ts, 0
	case f.kmh < crawlKmh && length-float64(f.offM) >= zone && float64(f.offM) >= zone &&
		(v.stoodTS == 0 || f.ts-v.stoodTS > squeezeStoodMs):
		v.slowTS, v.slowOff = f.ts, f.offM
	}
}

// passStep records the vehicle's fix f on its link in the link's passes: a new stint when it has just come
// onto the link, else its stint there extended to f.
func (t *Tracker) passStep(f *fix, fresh bool) {
	ls := &t.st[f.link]
	if !fresh {
		for i := len(ls.passes) - 1; i >= 0; i-- {
			if p := &ls.passes[i]; p.vehicle == f.vehicle {
				p.ts, p.to = f.ts, max(p.to, f.offM)
				return
			}
		}
	}
	ls.passes = append(ls.passes, pass{ts: f.ts, from: f.offM, to: f.offM, vehicle: f.vehicle})
	if len(ls.passes) > maxPasses {
		ls.passes = slices.Delete(ls.passes, 0, len(ls.passes)-maxPasses)
	}
}

// binOf is the bin of offset offM on a link of lengthM.
func (h *squeezeHist) binOf(offM float64) int {
	return min(len(h.bins)-1, max(0, int(offM/float64(h.binM))))
}

// squeezeZone is the zone of the network's history offset offM lies in on link l.
func squeezeZone(l *Link, offM float64) int {
	switch {
	case offM < squeezeStartM:
		return 0
	case l.LengthM-offM < squeezeEndM && l.Signal:
		return 1
	case l.LengthM-offM < squeezeEndM:
		return 2
	}
	return 3
}

// zoneMetres adds to m the whole metres of each zone of link l.
func zoneMetres(l *Link, m *[squeezeZones]int64) {
	L := math.Max(0, l.LengthM)
	start := math.Min(L, squeezeStartM)
	end := math.Min(L-start, squeezeEndM)
	z := 2
	if l.Signal {
		z = 1
	}
	m[0] += int64(math.Round(start))
	m[z] += int64(math.Round(end))
	m[3] += int64(math.Round(L - start - end))
}

// poolRate is the network's squeezes per judged bucket end expected on [lo, hi] of link l.
func (t *Tracker) poolRate(l *Link, lo, hi float64) float64 {
	return alongZones(l, lo, hi, func(z int) float64 { return t.sqPool[z].mean })
}

// alongZones sums perM (a rate per metre in each zone) over [lo, hi] of link l, in 5-m steps.
func alongZones(l *Link, lo, hi float64, perM func(z int) float64) float64 {
	lo, hi = math.Max(0, lo), math.Min(l.LengthM, hi)
	r := 0.0
	for x := lo; x < hi; x += 5 {
		r += perM(squeezeZone(l, x+2.5)) * math.Min(5, hi-x)
	}
	return r
}

// newSqueezeHist is an empty history for a link of lengthM.
func newSqueezeHist(lengthM float64) *squeezeHist {
	binM := math.Max(squeezeBinM, lengthM/squeezeBins)
	n := max(1, min(squeezeBins, int(math.Ceil(lengthM/binM))))
	return &squeezeHist{bins: make([]float32, n), pass: make([]float32, n), binM: float32(binM)}
}

// learnSqueezes learns, for the judged bucket ending at e on link li, its squeezes recovered in that bucket,
// and adds how many there were in each zone to n (for the network's rate).
func (t *Tracker) learnSqueezes(li int32, e int64, zn *[squeezeZones]int64, pm *[squeezeZones]int64) {
	ls := &t.st[li]
	length := t.links[li].LengthM
	if ls.sqHist == nil {
		ls.sqHist = newSqueezeHist(length)
	}
	h := ls.sqHist
	h.n++
	a := float32(1 / math.Min(h.n, histTau))
	for i := range h.bins {
		h.bins[i] -= a * h.bins[i]
		h.pass[i] -= a * h.pass[i]
	}
	for _, s := range ls.squeezes {
		if s.ts >= e-t.bucketMs && s.ts < e {
			h.bins[h.binOf(float64(s.offM))] += a
			zn[squeezeZone(&t.links[li], float64(s.offM))]++
		}
	}
	for _, p := range ls.passes {
		if p.ts >= e-t.bucketMs && p.ts < e && p.to > p.from {
			for k := h.binOf(float64(p.from)); k <= h.binOf(float64(p.to)); k++ {
				h.pass[k] += a
			}
			passMetres(&t.links[li], float64(p.from), float64(p.to), pm)
		}
	}
}

// passMetres adds to m the whole metres of [from, to] of link l in each zone (integers, so the order links
// are learned in does not change the network's rate).
func passMetres(l *Link, from, to float64, m *[squeezeZones]int64) {
	for x := from; x < to; x += 5 {
		m[squeezeZone(l, x+math.Min(5, to-x)/2)] += int64(math.Round(math.Min(5, to-x)))
	}
}

// passRate is the network's chance that a vehicle passing [lo, hi] of link l squeezes there.
func (t *Tracker) passRate(l *Link, lo, hi float64) float64 {
	return alongZones(l, lo, hi, func(z int) float64 {
		if pm := t.sqPassM[z].mean; pm > 0 {
			return t.sqPassN[z].mean / pm
		}
		return 0
	})
}

// binomTail is P(X >= k) for X binomial(n, p).
func binomTail(k, n int, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n || p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	lc, _ := math.Lgamma(float64(n + 1))
	s := 0.0
	for i := k; i <= n; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		s += math.Exp(lc - a - b + float64(i)*lp + float64(n-i)*lq)
	}
	return math.Min(1, s)
}

// dropSqueezes forgets a link's squeezes recovered before from.
func dropSqueezes(ls *linkState, from int64) {
	drop := 0
	for drop < len(ls.squeezes) && ls.squeezes[drop].ts < from {
		drop++
	}
	if drop > 0 {
		ls.squeezes = slices.Delete(ls.squeezes, 0, drop)
	}
	ls.passes = slices.DeleteFunc(ls.passes, func(p pass) bool { return p.ts < from })
}

// readSqueeze is the squeeze judge's reading of link li at bucket end b; downSlow: the links after it crawl.
func (t *Tracker) readSqueeze(li int32, b int64, downSlow bool) SqueezeReading {
	ls := &t.st[li]
	type sq struct {
		off     float64
		ts      int64
		vehicle string
	}
	var pts []sq
	var seen []string
	for _, s := range ls.squeezes {
		if s.ts >= b || s.ts < b-squeezeWindowMs || slices.Contains(seen, s.vehicle) {
			continue
		}
		seen = append(seen, s.vehicle)
		pts = append(pts, sq{float64(s.offM), s.ts, s.vehicle})
	}
	var r SqueezeReading
	if len(pts) == 0 {
		return r
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].off < pts[j].off })
	buckets := float64(squeezeWindowMs / t.bucketMs)
	ne := 0.0
	if h := ls.sqHist; h != nil {
		ne = math.Min(h.n, histTau)
	}
	able := t.links[li].Lanes >= squeezeMinLanes && !downSlow
	r.Able = able
	r.Surprise, r.XSurprise = -1, -1
	var passers []string
	xBest := false
	for i := range pts {
		j := i
		sum := 0.0
		first, last := pts[i].ts, pts[i].ts
		for j < len(pts) && pts[j].off-pts[i].off <= squeezeSpanM {
			sum += pts[j].off
			first, last = min(first, pts[j].ts), max(last, pts[j].ts)
			j++
		}
		lo, hi := pts[i].off-squeezeHistM, pts[i].off+squeezeSpanM+squeezeHistM
		// The link's own squeezes there per judged bucket end, and the vehicles passing there (the bins' mean).
		own, ownPass := 0.0, 0.0
		if h := ls.sqHist; h != nil {
			for k := h.binOf(lo); k <= h.binOf(hi); k++ {
				own += float64(h.bins[k])
				ownPass += float64(h.pass[k])
			}
			ownPass /= float64(h.binOf(hi) - h.binOf(lo) + 1)
		}
		rate := (ne*own + squeezePrior*t.poolRate(&t.links[li], lo, hi)) / (ne + squeezePrior)
		lambda := buckets * rate
		n := j - i
		s := math.Min(12, -math.Log10(math.Max(1e-300, 1-poissonCDF(n-1, lambda))))
		if lambda <= 0 {
			s = 12
		}
		ok := able && n >= squeezeMinN && s >= squeezeMinSurprise && last-first >= squeezeLastsMs
		// Exposure: the vehicles that passed the stretch in the window, squeezed or not.
		passers = passers[:0]
		for _, p := range ls.passes {
			if p.ts < b && p.ts >= b-squeezeWindowMs && float64(p.from) <= pts[j-1].off &&
				float64(p.to) >= pts[i].off+squeezePastM && !slices.Contains(passers, p.vehicle) {
				passers = append(passers, p.vehicle)
			}
		}
		xn := len(passers)
		for k := i; k < j; k++ {
			if !slices.Contains(passers, pts[k].vehicle) {
				xn++
			}
		}
		xp := (ne*own + passPrior*t.passRate(&t.links[li], lo, hi)) / (ne*ownPass + passPrior)
		xp = math.Min(0.95, xp)
		xs := math.Min(12, -math.Log10(math.Max(1e-300, binomTail(n, xn, xp))))
		xok := able && n >= exposureMinK && xs >= exposureMinSurprise && last-first >= exposureLastsMs &&
			n*t.links[li].Lanes >= xn
		if xok && !xBest || xok == xBest && (xs > r.XSurprise || xs == r.XSurprise && n > r.XK) {
			r.XK, r.XN, r.XP, r.XSurprise, r.XOffM, r.XSpanMs, xBest = n, xn, xp, xs, sum/float64(n), last-first, xok
		}
		if ok && !r.Squeezed || ok == r.Squeezed && (s > r.Surprise || s == r.Surprise && n > r.N) {
			r.N, r.Surprise, r.OffM, r.Lambda, r.Squeezed = n, s, sum/float64(n), lambda, ok
		}
	}
	if xBest && !r.Squeezed {
		r.Squeezed, r.OffM = true, r.XOffM
	}
	return r
}
