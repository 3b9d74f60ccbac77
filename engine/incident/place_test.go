package incident

import (
	"fmt"
	"testing"

	"citybrain/engine/schema"
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
	for run, inc := range runHeads(t, net, log, t0+300_000) {
		if atClosure, where := within(inc, closure); len(inc) != 1 || !atClosure {
			t.Errorf("%s: %d incidents (%v from the closure), want one, at the closure", run, len(inc), where)
		}
	}
}

// runHeads feeds log to a tracker on the heads network, live and with a snapshot and a restart before the first
// evidence at or after restartAt, and returns both trackers' incidents.
func runHeads(t *testing.T, net *geo.Network, log []Evidence, restartAt int64) map[string][]Incident {
	t.Helper()
	split := 0
	for split < len(log) && log[split].TS < restartAt {
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
	return map[string][]Incident{"live": live.Incidents(), "restored from a snapshot": restored.Incidents()}
}

// within reports whether an incident of inc lies within 30 m of p, and where each lies from p.
func within(inc []Incident, p Evidence) (bool, []string) {
	var where []string
	at := false
	for _, in := range inc {
		d := geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, geo.LatLng{Lat: p.Lat, Lng: p.Lng})
		at = at || d < 30
		where = append(where, fmt.Sprintf("%.0f m", d))
	}
	return at, where
}

// A queue spills back only from a link that still stands: once the judge has found a closure's link and its
// queue's flowing again, an alarm upstream of them is a new event, not the old incident's queue, even while that
// incident is still open. (Issue 12, session 14, engineers found2 and place: in spider and Nanchang incidents
// whose roads flowed again took later closures' alarms 3 hops upstream as their queue, 5-23 minutes after they
// were detected, and the closures were never reported.)
func TestAQueueSpillsBackOnlyFromALinkThatStands(t *testing.T) {
	hn := newHeadsNet(t)
	net, at, flowing := hn.net, hn.at, hn.flowing
	const U, A, R2, W = headsU, headsA, headsR2, headsW
	closure, second := at(A, 250, 0, 0), at(W, 250, 0, 0)
	// Three minutes of a closure on A with its queue on U and R2, then A, U and R2 flow; from minute 4 alarms
	// on W, which feeds U, 600 m west of the closure.
	var log []Evidence
	ts := t0
	for k := 0; k < 54; k++ {
		ts += 10_000
		switch {
		case k < 18:
			log = append(log, at(A, 250, ts, 0.75))
			if k >= 6 {
				log = append(log, at(U, 250, ts+2, 0.75), at(R2, 250, ts+3, 0.75))
			}
		default:
			log = append(log, flowing(A, ts), flowing(U, ts+2), flowing(R2, ts+3))
		}
		if k >= 24 {
			log = append(log, at(W, 250, ts+1, 0.75))
		}
	}
	for run, inc := range runHeads(t, net, log, t0+300_000) {
		atClosure, where := within(inc, closure)
		atSecond, _ := within(inc, second)
		if len(inc) != 2 || !atClosure || !atSecond {
			t.Errorf("%s: %d incidents (%v from the closure), one at the closure %v, one at the later blockage %v: want 2, each at its blockage",
				run, len(inc), where, atClosure, atSecond)
		}
	}
}

// A fixed sensor's incident stays at the sensor when traffic alarms nearby join it, and the sensor's later
// readings stay with it. (Issue 12, session 14: in the demo city a flood sensor's incident took a queue's alarm
// 400 m off as its first link, was carried onto that queue's head further on, 530 m from the sensor, and the
// sensor's next reading made a second incident.)
func TestASensorsIncidentStaysAtTheSensor(t *testing.T) {
	hn := newHeadsNet(t)
	net, at := hn.net, hn.at
	const A, D, E = headsA, headsD, headsE
	// The sensor stands 150 m along E, 200 m north of A's alarms; it reads every minute. A's alarms from the
	// second bucket end on, D's (downstream of A) from two minutes on.
	s := at(E, 150, 0, 0)
	var log []Evidence
	ts := t0
	for k := 0; k < 54; k++ {
		ts += 10_000
		if k%6 == 0 {
			log = append(log, Evidence{Kind: schema.KindSensor, Source: "sensor-1", Type: "water_level", TS: ts + 5, Lat: s.Lat,
				Lng: s.Lng, Cell: s.Cell, Weight: 0.75})
		}
		if k >= 1 {
			log = append(log, at(A, 250, ts, 0.75))
		}
		if k >= 12 {
			log = append(log, at(D, 300, ts+1, 0.75))
		}
	}
	for run, inc := range runHeads(t, net, log, t0+300_000) {
		atSensor, where := within(inc, s)
		if len(inc) != 1 || !atSensor {
			t.Errorf("%s: %d incidents (%v from the sensor), want one, at the sensor", run, len(inc), where)
		}
	}
}
