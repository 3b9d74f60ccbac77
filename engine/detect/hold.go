package detect

import (
	"math"
)

// The hold judge (issue 12, session 20): a full closure is a point no vehicle passes. Every probe reaching
// it stops behind it and stays, through several of the link's cycles, while no probe leaves the link past
// that point; a red light's queue discharges every cycle. The reading gives, at a bucket end, the queue's
// head (the most downstream vehicle holding holdHeadS or more), how long it has held, how many vehicles hold
// behind it, how many left the link or passed the head since it began to hold, and what the link's own
// completed stops near that offset say (how many stopped there, and whether any stood as long).
//
// The judge (Held): the head has held heldMinS and at least the link's stop reference (the p90 of its own
// stops, the network's until it has 20), holdMinNear vehicles hold a minute or more within holdNearM behind
// it, no probe left the link or passed the head since it began to hold while the link's learned exit rate
// expects holdMinExits or more in that time, the link's history near the head has at most holdMaxOwn of its
// newest stops there and none lasting as long (vehicles rarely stop there, and never that long), the link
// most of its traffic goes to is not standing (its speed at least holdMainDown of its free flow, or no fixes:
// a queue spilling back from a jammed link after it holds the same way), no queue held on the link 5 to
// 10 minutes before (stand_before under 1: a jam already standing), and on a link ending at a signal the head
// stands before its end zone (endZoneM: where a red light's queue stands; on a cold start the link has not
// yet learned its own stops there, and a long red held two vehicles a minute in the demo city).
const (
	holdHeadS  = 30     // a vehicle holding this long is in a queue (longestStand's head)
	holdNearM  = 60     // vehicles holding within this far behind the head are its queue
	holdStopsM = 40     // the link's completed stops within this of the head are its history there
	holdPastM  = 20     // a vehicle seen this far past the head passed it
	holdExitMs = 10_000 // exits this soon after the head began to hold are vehicles that were past it

	heldMinS     = 60
	holdMinNear  = 2
	holdMinExits = 1.0
	holdMaxOwn   = 10
	holdMainDown = 0.2
)

// HoldReading is the hold reading of a link at a bucket end (HeadM < 0: no vehicle holds holdHeadS).
type HoldReading struct {
	HeadM   float64 // the head's offset (m from the link's start)
	HeadS   float64 // how long the head has held (s)
	Near    int     // vehicles holding holdHeadS or more within holdNearM behind the head (the head included)
	Near60  int     // of those, holding a minute or more
	Exits   int     // exits from the link since the head began to hold (after holdExitMs)
	ExitLam float64 // the exits the link's learned rate expects in that time
	Passed  int     // vehicles whose stint began at or behind the head and reached holdPastM past it since
	OwnN    int     // the link's completed stops within holdStopsM of the head (of its newest eventsKept)
	OwnGE   int     // of those, lasting HeadS or more
	Ref     float64 // the link's stop reference (stopRef)
	// Held: the judge finds a point no vehicle passes at HeadM (judge, above).
	Held bool
}

// judge sets r.Held from the reading and the link's features x (measure's, complete).
func (r *HoldReading) judge(l *Link, x *[NumFeatures]float64) {
	r.Held = r.HeadM >= 0 && r.HeadS >= heldMinS && r.HeadS >= r.Ref && r.Near60 >= holdMinNear && r.Exits == 0 &&
		r.Passed == 0 && r.ExitLam >= holdMinExits && r.OwnGE == 0 && r.OwnN <= holdMaxOwn &&
		x[FMainDown] >= holdMainDown && x[FStandBefore] < 1 && (!l.Signal || l.LengthM-r.HeadM >= endZoneM(l.LengthM))
}

// readHold is the hold reading of link li at bucket end b; ref is its stop reference (stopRef, as measure took it).
func (t *Tracker) readHold(li int32, b int64, ref float64) HoldReading {
	ls := &t.st[li]
	r := HoldReading{HeadM: -1, Ref: ref}
	var since int64
	for i := range ls.active {
		a := &ls.active[i]
		if d, ok := a.heldAt(b); ok && d >= holdHeadS && float64(a.offM) > r.HeadM {
			r.HeadM, r.HeadS, since = float64(a.offM), d, a.since
		}
	}
	if r.HeadM < 0 {
		return r
	}
	for i := range ls.active {
		a := &ls.active[i]
		if d, ok := a.heldAt(b); ok && d >= holdHeadS && r.HeadM-float64(a.offM) <= holdNearM {
			r.Near++
			if d >= 60 {
				r.Near60++
			}
		}
	}
	r.Exits = countSince(ls.exits, since+holdExitMs, b)
	if rate, ok := ls.exitRate.value(); ok {
		r.ExitLam = rate * float64(max(0, b-since-holdExitMs)) / 1000
	}
	for _, p := range ls.passes {
		if p.ts > since && float64(p.from) <= r.HeadM && float64(p.to) >= r.HeadM+holdPastM {
			r.Passed++
		}
	}
	for _, s := range ls.stops {
		if math.Abs(float64(s.offM)-r.HeadM) <= holdStopsM {
			r.OwnN++
			if float64(s.dur) >= r.HeadS {
				r.OwnGE++
			}
		}
	}
	return r
}
