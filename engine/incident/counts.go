package incident

import (
	"math"

	"citybrain/engine/schema"
)

// A camera's vehicle counts against its stall alarms (issue 12, tenth pass). A stall alarm is a vehicle that
// has stood two minutes in the camera's view. When the camera counted vehicles into its junction through
// those two minutes at no less than its usual rate (its mean over the ten minutes before, of which at least
// five were counted), the junction discharged as usual and the vehicle stood in a moving queue, not behind a
// blockage holding traffic back: the frame is doubted, as one on a link the judge finds flowing is (a camera
// whose frames are mostly doubted stays a candidate until a second camera, a call or the judge corroborates
// it). The ratio 1 is the physical boundary ("no fewer than usual"), not fitted: with the counts' noise a
// blockage on one approach of a busy junction often stays above it, and then its frames are not doubted.
const (
	countType     = "vehicle_count"
	countRecentMs = 2 * 60_000  // the two minutes the alarm's vehicle stood
	countBaseMs   = 10 * 60_000 // the usual rate: the ten minutes before them
	countKeepMs   = countRecentMs + countBaseMs
	countMinBase  = 5 * 60_000 // at least this much of the usual rate must have been counted
)

// camCounts is a camera's vehicle counts of the last countKeepMs, in log order (snapshotted).
type camCounts struct {
	TS []int64   `json:"ts"`
	N  []float64 `json:"n"`
}

// noteCount records a camera's vehicle count (a note, not evidence).
func (t *tracker) noteCount(ev Evidence) {
	if t.counts == nil {
		t.counts = map[string]*camCounts{}
	}
	c := t.counts[ev.Source]
	if c == nil {
		if len(t.counts) > 200_000 {
			clear(t.counts)
		}
		c = &camCounts{}
		t.counts[ev.Source] = c
	}
	c.TS = append(c.TS, ev.TS)
	c.N = append(c.N, ev.Count)
	k := 0
	for k < len(c.TS) && c.TS[k] <= ev.TS-countKeepMs {
		k++
	}
	if k > 0 {
		c.TS = append(c.TS[:0], c.TS[k:]...)
		c.N = append(c.N[:0], c.N[k:]...)
	}
}

// countsFlow reports whether a stall frame's camera counted at least its usual rate through the two minutes
// before the frame.
func (t *tracker) countsFlow(ev Evidence) bool {
	if ev.Kind != schema.KindVideo || !queueConfusable[ev.Type] {
		return false
	}
	c := t.counts[ev.Source]
	if c == nil {
		return false
	}
	var recent, base float64
	var nr, nb int
	first := int64(math.MaxInt64)
	for i, ts := range c.TS {
		switch {
		case ts > ev.TS:
		case ts > ev.TS-countRecentMs:
			recent += c.N[i]
			nr++
		case ts > ev.TS-countKeepMs:
			base += c.N[i]
			nb++
			first = min(first, ts)
		}
	}
	if nr == 0 || nb == 0 || ev.TS-countRecentMs-first < countMinBase {
		return false
	}
	return recent/float64(nr) >= base/float64(nb)
}
