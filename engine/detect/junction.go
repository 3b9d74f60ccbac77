package detect

import "math"

// The junction judge (issue 12, full closures just past a junction). A closure 10–25 m into a link holds the
// few vehicles that got onto the link before it at the link's start, and nothing moves on the link past it:
// the vehicles that were beyond it drive away and no new one comes. The link's own features read that as
// little (a short queue with few fixes, its head far from the stop line) and its feeders' queues as red
// lights; read together it is plain and rare in ordinary traffic: a vehicle has stood at the link's start
// (its first junctionStartM, not its first junctionMinHeadM, where a vehicle standing at the previous link's
// stop line is placed by GPS noise) for longer than the link's stop reference, no fix at all on the link
// beyond its start in the window (an emptied link, not the back of a queue spilling back from its end),
// and the link's own history of completed stops holds none at its start that long (a bus stop, a give-way
// merge at its start, a driveway stand up there as often as they happen). Links shorter than
// junctionMinLinkM are not judged: their start is their stop line's queue.
const (
	junctionStartM   = 40
	junctionMinHeadM = 5
	junctionMinLinkM = 80
)

// JunctionReading is the junction judge's reading of a link at a bucket end.
type JunctionReading struct {
	// HoldS: the longest hold ongoing at the link's start (s); HeadM: the most downstream position of a
	// vehicle holding 30 s or more (-1: none); Ref: the link's stop reference (s).
	HoldS, HeadM, Ref float64
	// Far: fixes on the link beyond its start in the window; Starts: its completed stops at its start (of
	// the newest eventsKept), Longer: those lasting HoldS or more.
	Far, Starts, Longer int
	// Blocked: the judge finds the link closed at its start.
	Blocked bool
}

// readJunction is the junction judge's reading of link li at bucket end b; ref is its stop reference and
// head the most downstream position of a vehicle holding 30 s or more (longestStand).
func (t *Tracker) readJunction(li int32, b int64, ref, head float64) JunctionReading {
	ls := &t.st[li]
	r := JunctionReading{HeadM: head, Ref: ref}
	for i := range ls.active {
		a := &ls.active[i]
		if d, ok := a.heldAt(b); ok && a.offM < junctionStartM {
			r.HoldS = math.Max(r.HoldS, d)
		}
	}
	if r.HoldS == 0 {
		return r
	}
	for _, f := range ls.recent {
		if f.ts >= b-windowMs && f.ts < b && f.offM >= junctionStartM {
			r.Far++
		}
	}
	for _, s := range ls.stops {
		if s.offM < junctionStartM {
			r.Starts++
			if float64(s.dur) >= r.HoldS {
				r.Longer++
			}
		}
	}
	r.Blocked = t.links[li].LengthM >= junctionMinLinkM && head >= junctionMinHeadM && head < junctionStartM &&
		r.HoldS >= ref && r.Far == 0 && r.Longer == 0
	return r
}
