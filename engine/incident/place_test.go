package incident

import (
	"fmt"
	"testing"

	"citybrain/geo"
)

// A detected incident of traffic alone stays where its alarms placed it when alarms on a road nearby that
// meets none of its links join it by distance: they are more evidence of it, not where it stands. The same
// with a snapshot and a restart in the middle. (Issue 12, session 14: in Bologna such alarms 150-300 m away
// carried detected incidents 100 m off their closures, towards later ones.)
func TestAnIncidentIsNotMovedByARoadThatMeetsNoneOfItsLinks(t *testing.T) {
	hn := newHeadsNet(t)
	net, at := hn.net, hn.at
	const U, A, R2, E = headsU, headsA, headsR2, headsE
	closure := at(A, 250, 0, 0)
	// A closure on A, its queue on U and R2 from the first minute; from the second minute on, alarms on E,
	// 200 m north of A (within mergeM) on a road that meets none of A's.
	var log []Evidence
	ts := t0
	for k := 0; k < 54; k++ {
		ts += 10_000
		log = append(log, at(A, 250, ts, 0.75))
		if k >= 6 {
			log = append(log, at(U, 250, ts+2, 0.75), at(R2, 250, ts+3, 0.75))
		}
		if k >= 12 {
			log = append(log, at(E, 150, ts+1, 0.75))
		}
	}
	split := 0
	for split < len(log) && log[split].TS < t0+300_000 {
		split++
	}
	live := NewTracker(30_000)
	live.SetTopology(NewTopology(net, 9))
	first := NewTracker(30_000)
	first.SetTopology(NewTopology(net, 9))
	for _, ev := range log[:split] {
		live.Track(ev.TS-30_000, everySeq, []Evidence{ev})
		first.Track(ev.TS-30_000, everySeq, []Evidence{ev})
	}
	restored := restarted(t, first, net)
	for _, ev := range log[split:] {
		live.Track(ev.TS-30_000, everySeq, []Evidence{ev})
		restored.Track(ev.TS-30_000, everySeq, []Evidence{ev})
	}
	for _, run := range []struct {
		name string
		tr   *Tracker
	}{{"live", live}, {"restored from a snapshot", restored}} {
		inc := run.tr.Incidents()
		var where []string
		at := false
		for _, in := range inc {
			d := geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, geo.LatLng{Lat: closure.Lat, Lng: closure.Lng})
			at = at || d < 30
			where = append(where, fmt.Sprintf("%.0f m from the closure", d))
		}
		if len(inc) != 1 || !at {
			t.Errorf("%s: %d incidents (%v), want one, at the closure", run.name, len(inc), where)
		}
	}
}
