package detect

import (
	"math"

	"citybrain/engine/evtime"
)

// How slow a link's traffic usually is, learned online from its own judged bucket ends (issue 12's item 3:
// "unusual" judged against the link's own history). An arterial that crawls to its signal every cycle, or a
// street that jams every evening, is slow as its normal and its history says so; the same slowness on a link
// that always flowed is rare. The learned speed (ls.speed) cannot say so: it skips the buckets where a vehicle
// held a minute (so that a blockage is not learned as normal), so on a link where a queue always stands it
// never learns the queue. The history learns every judged bucket end, held or not, histLagMs late, so a
// blockage's first minutes are judged against the link as it was before it began. It keeps the share of bucket
// ends (exponentially weighted over histTau of them) at which the link's traffic was at least each of slowBins
// slow against free flow; the feature is how rare the present slowness is on this link: −log10 of that share,
// blended with the whole network's for a link with little history of its own.

// slowBins: the levels whose shares are learned, as 1 − the two minutes' mean fix speed / free flow (0.9: at
// a tenth of free flow).
var slowBins = [...]float64{0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95}

const (
	histLagMs = 5 * 60_000 // a bucket end is learned this long after it (within the buckets kept)
	histTau   = 360.0      // bucket ends: an hour of 10-s buckets
	histPrior = 30.0       // pseudo bucket ends of the network's history a link's own is blended with
)

// history is the share of bucket ends at which traffic was at least each of slowBins slow, over n bucket ends.
type history struct {
	slow [len(slowBins)]float64
	n    float64
}

// add learns one bucket end with weight 1/min(n, histTau): the shares of its levels (0 or 1 for a link; for
// the network, the share of its judged links).
func (h *history) add(slow *[len(slowBins)]float64) {
	h.n++
	a := 1 / math.Min(h.n, histTau)
	for i := range h.slow {
		h.slow[i] += a * (slow[i] - h.slow[i])
	}
}

// levels are the indicators of traffic slow against free flow (< 0: no reading, no level reached).
func levels(slow float64) (sl [len(slowBins)]float64) {
	for i, x := range slowBins {
		if slow >= x {
			sl[i] = 1
		}
	}
	return sl
}

// rarity is −log10 of the share of bucket ends at the highest level slow reaches (0 below the lowest), the
// link's own share blended with the network's by histPrior pseudo bucket ends, and at least half a bucket end
// in all.
func rarity(slow float64, own, pool *history) float64 {
	k := -1
	for i, b := range slowBins {
		if slow >= b {
			k = i
		}
	}
	if k < 0 {
		return 0
	}
	ne := math.Min(own.n, histTau)
	s := (ne*own.slow[k] + histPrior*pool.slow[k]) / (ne + histPrior)
	return -math.Log10(math.Max(s, 0.5/(ne+histPrior)))
}

// learnHistory learns, at bucket end b, the judged bucket end histLagMs before it on every active link, and
// the network's share of those links at each level; and their squeezes (squeeze.go), with the network's
// squeezes per metre. Counts (and metres) are integers, so the order links are visited in does not change
// what is learned.
func (t *Tracker) learnHistory(b int64) {
	e := b - histLagMs
	idx := evtime.Index(e-1, t.bucketMs)
	var slow [len(slowBins)]float64
	n := 0
	var squeezes, metres [squeezeZones]int64
	var passM [squeezeZones]int64
	for li := range t.active {
		ls := &t.st[li]
		bk := &ls.b[slot(idx)]
		if bk.idx != idx || !bk.measured {
			dropSqueezes(ls, e)
			continue
		}
		t.learnSqueezes(li, e, &squeezes, &passM)
		dropSqueezes(ls, e)
		zoneMetres(&t.links[li], &metres)
		sl := levels(float64(bk.slow))
		ls.hist.add(&sl)
		for i := range slow {
			slow[i] += sl[i]
		}
		n++
	}
	if n == 0 {
		return
	}
	for z := range t.sqPool {
		if metres[z] > 0 {
			t.sqPool[z].add(float64(squeezes[z]) / float64(metres[z]))
		}
		t.sqPassN[z].add(float64(squeezes[z]))
		t.sqPassM[z].add(float64(passM[z]))
	}
	for i := range slow {
		slow[i] /= float64(n)
	}
	t.pool.add(&slow)
}
