package incident

import (
	"fmt"
	"math"
	"testing"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// An incident keeps its head, the blocked point: its queue's links join it without placing it, however often
// they are judged, and a later blockage elsewhere is an incident of its own, whether it lies past the queue
// through another branch of a queue link's junction or downstream of the head on a road the judge found
// flowing while the first closure's queue stood. The head still moves downstream to where the queue is
// held when the first alarm was on a feeder. The same with a snapshot and a restart in the middle.
// (Issue 12, session 13: in Nanchang one incident of traffic alone took its closure's queue links, was
// carried 400 m by their later judgements, then took the alarms of two later closures 600-1000 m away as
// its queue's head further on: three closures lost, one false alarm.)
func TestAnIncidentKeepsItsHead(t *testing.T) {
	hn := newHeadsNet(t)
	net, at, flowing := hn.net, hn.at, hn.flowing
	const (
		U, A, R2, B, C, D = headsU, headsA, headsR2, headsB, headsC, headsD
	)
	closure := at(A, 250, 0, 0)
	for _, tc := range []struct {
		name   string
		first  int     // the link of the first alarm
		second int     // the link of the later blockage (-1: none)
		m      float64 // its alarms, this far along it
		want   int     // incidents
	}{
		{"a later blockage past the queue, through the other branch of a queue link's junction", A, C, 250, 2},
		{"a later blockage downstream of the head, six minutes after the detection", A, D, 500, 2},
		{"the first alarm on a feeder, then the blocked link's own", U, -1, 0, 1},
	} {
		var log []Evidence
		ts := t0
		for k := 0; k < 54; k++ {
			ts += 10_000
			switch {
			case k < 6 && tc.first == U:
				log = append(log, at(U, 250, ts, 0.75))
			case k < 6:
				log = append(log, at(A, 250, ts, 0.75))
			case k < 36:
				// Five minutes of the closure's alarms and its queue's, 180-300 m upstream; traffic flows
				// past A's end (D), and nobody is judged on B or C.
				log = append(log, at(A, 250, ts, 0.75), at(U, 250, ts+1, 0.75), at(R2, 250, ts+2, 0.75))
				if k%3 == 0 {
					log = append(log, flowing(D, ts+3))
				}
			default:
				// Three minutes later, the closure still standing: a second blockage's alarms.
				log = append(log, at(A, 250, ts, 0.75))
				if tc.second >= 0 {
					log = append(log, at(tc.second, tc.m, ts+1, 0.75))
				}
			}
		}
		for run, inc := range runHeads(t, net, log, t0+360_000) {
			var atClosure, atSecond bool
			var where []string
			for _, in := range inc {
				p := geo.LatLng{Lat: in.Lat, Lng: in.Lng}
				atClosure = atClosure || geo.DistanceM(p, geo.LatLng{Lat: closure.Lat, Lng: closure.Lng}) < 30
				if tc.second >= 0 {
					s := at(tc.second, tc.m, 0, 0)
					atSecond = atSecond || geo.DistanceM(p, geo.LatLng{Lat: s.Lat, Lng: s.Lng}) < 30
				}
				where = append(where, fmt.Sprintf("%.0f m from the closure", geo.DistanceM(p, geo.LatLng{Lat: closure.Lat, Lng: closure.Lng})))
			}
			if len(inc) != tc.want || !atClosure || tc.second >= 0 && !atSecond {
				t.Errorf("%s, %s: %d incidents (%v), one at the closure %v, one at the second blockage %v: want %d, each at its blockage",
					tc.name, run, len(inc), where, atClosure, atSecond, tc.want)
			}
		}
	}
}

// A judgement on a link that is a detected incident's own (here its queue) stays with it, even where the link
// also lies just downstream of a newer incident's head within the time its head may still be found further
// on: the newer one is not carried onto the older one's queue (issue 12, session 13: in grid a closure's
// incident was carried 314 m onto another incident's queue link 20 s after it was detected).
func TestAJudgementStaysWithTheIncidentWhoseLinkItIs(t *testing.T) {
	net := chain(t, 8)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	tt := tr.t
	mk := func(id string, detected int64, head int32, queue ...int32) *Incident {
		ev := linkEvidence(t, net, int(head), detected, 0.75)
		in := &Incident{ID: id, Status: StatusSuspected, Lat: ev.Lat, Lng: ev.Lng, FirstEvidenceAt: detected,
			DetectedAt: detected, LastEvidenceAt: detected, links: map[int32]bool{head: true}, heads: map[int32]bool{head: true}}
		for _, q := range queue {
			in.links[q] = true
		}
		tt.byID[id] = in
		tt.order = append(tt.order, in)
		return in
	}
	// The older incident is held on link 4, its queue spilled back onto link 1 (three links upstream); the
	// newer one was detected on link 0, whose road leads onto link 1.
	older := mk("older", t0, 4, 1)
	newer := mk("newer", t0+30_000, 0)
	ev := linkEvidence(t, net, 1, t0+40_000, 0.75)
	if rel := tt.relate(newer, 1, ev.TS); rel != relHead {
		t.Fatalf("link 1 to the newer incident: relation %d, want relHead (%d): the case this test is about", rel, relHead)
	}
	if got := tt.nearest(ev); got != older {
		name := "none"
		if got != nil {
			name = got.ID
		}
		t.Fatalf("a judgement on the older incident's queue link joined %s, want the older incident", name)
	}
}

// The small road network of the heads tests, metres east (x) and north (y). A closure on A, 250 m along it,
// queues back onto U and, round a short loop (R1, R2: downstream of A and upstream of it), onto R2. B leaves
// U's end junction as A's other branch and leads to C; D continues past A's end. E is a road 200 m north of
// A that meets none of them; W feeds U from the west.
const (
	headsU = iota
	headsA
	headsR1
	headsR2
	headsB
	headsC
	headsD
	headsE
	headsW
)

type headsNet struct {
	net *geo.Network
	// at is the judge's evidence on link li, m metres along it, at ts with weight w.
	at func(li int, m float64, ts int64, w float64) Evidence
	// flowing is the judge's note that link li flows at ts.
	flowing func(li int, ts int64) Evidence
}

func newHeadsNet(t *testing.T) headsNet {
	t.Helper()
	mLat, mLng := 1/111320.0, 1/(111320.0*math.Cos(lat*math.Pi/180))
	pt := func(x, y float64) geo.LatLng { return geo.LatLng{Lat: lat + y*mLat, Lng: lng + x*mLng} }
	xy := map[string][2]float64{"N0": {0, 0}, "N1": {300, 0}, "N2": {600, 0}, "N3": {600, -150}, "N4": {300, 400},
		"N5": {300, 800}, "N6": {1200, 0}, "N7": {700, 200}, "N8": {400, 200}, "N9": {-300, 0}}
	var nodes []geo.Node
	for _, id := range []string{"N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"} {
		nodes = append(nodes, geo.Node{ID: id, LatLng: pt(xy[id][0], xy[id][1]), Signalised: true})
	}
	ends := [][2]string{headsU: {"N0", "N1"}, headsA: {"N1", "N2"}, headsR1: {"N2", "N3"}, headsR2: {"N3", "N1"},
		headsB: {"N1", "N4"}, headsC: {"N4", "N5"}, headsD: {"N2", "N6"}, headsE: {"N7", "N8"}, headsW: {"N9", "N0"}}
	var links []geo.Link
	for i, e := range ends {
		a, b := xy[e[0]], xy[e[1]]
		links = append(links, geo.Link{ID: fmt.Sprint("L", i), From: e[0], To: e[1], Lanes: 1, SpeedLimitKmh: 50,
			Geometry: []geo.LatLng{pt(a[0], a[1]), pt(b[0], b[1])}})
	}
	net, err := geo.NewNetwork("heads", nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return headsNet{
		net: net,
		at: func(li int, m float64, ts int64, w float64) Evidence {
			ev := linkEvidence(t, net, li, ts, w)
			p, _ := net.Links()[li].PointAt(m)
			cell, err := geo.CellOf(p.Lat, p.Lng, 9)
			if err != nil {
				t.Fatal(err)
			}
			ev.Lat, ev.Lng, ev.Cell = p.Lat, p.Lng, cell
			return ev
		},
		flowing: func(li int, ts int64) Evidence {
			return Evidence{Kind: schema.KindProbe, Type: flowingType, TS: ts, LinkRef: int32(li) + 1}
		},
	}
}
