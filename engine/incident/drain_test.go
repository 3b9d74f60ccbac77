package incident

import (
	"fmt"
	"testing"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// An incident's queue that outlives its road by minutes does not open an incident of its own while it drains:
// a closure on A with its queue on U stands five minutes; then A and U flow again, and a minute later W, the
// road feeding U (one link further upstream, 700 m from the closure), alarms for two minutes. Held as the
// incident's draining queue: one incident, at the closure. The same alarms six minutes after A and U flowed
// again, past the drain, are a new event: an incident of their own. The same with a snapshot and a restart in
// the middle. (Issue 12, session 17: in grid at 5 % a closure's queue one link upstream of its road alarmed 6
// minutes after the closure ended, a minute after the road flowed again, and was a false alarm.)
func TestAQueueDrainingAfterItsRoadFlowsOpensNoIncident(t *testing.T) {
	hn := newHeadsNet(t)
	net, at, flowing := hn.net, hn.at, hn.flowing
	const U, A, W = headsU, headsA, headsW
	closure := at(A, 250, 0, 0)
	for _, tc := range []struct {
		name  string
		after int64 // when W alarms, after A and U flow again (ms)
		want  int
	}{
		{"a minute after the road flows again", 60_000, 1},
		{"six minutes after the road flows again", 360_000, 2},
	} {
		var log []Evidence
		ts := t0
		for k := 0; k < 30; k++ {
			ts += 10_000
			log = append(log, at(A, 250, ts, 0.75), at(U, 250, ts+1, 0.75))
		}
		flows := ts + 10_000
		for ts = flows; ts < flows+tc.after+120_000; ts += 10_000 {
			log = append(log, flowing(A, ts), flowing(U, ts+1))
			if ts >= flows+tc.after {
				log = append(log, at(W, 150, ts+2, 0.75))
			}
		}
		for run, inc := range runHeads(t, net, log, flows+tc.after+30_000) {
			var where []string
			atClosure := false
			for _, in := range inc {
				d := geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, geo.LatLng{Lat: closure.Lat, Lng: closure.Lng})
				atClosure = atClosure || d < 30
				where = append(where, fmt.Sprintf("%.0f m from the closure", d))
			}
			if len(inc) != tc.want || !atClosure {
				t.Errorf("W alarming %s, %s: %d incidents (%v), want %d, one at the closure", tc.name, run, len(inc), where, tc.want)
			}
		}
	}
}

// The judgements that were joining an incident when it cleared are its aftermath for a while, not a new
// event: a call about a closure on A makes an incident; nothing more comes for almost its quiet wait, then the
// judge's candidates on E, a road beside A that meets none of its links, join it for 40 s, it clears, and
// E's alarms go on for two more minutes. They open no second incident. Alarms on E that never joined it (E
// silent until it cleared), or E's alarms six minutes after it cleared, do: a new event. The same with a
// snapshot and a restart in the middle. (Issue 12, session 18: in Bologna a closure's call-placed incident
// cleared while a road beside it was judged suspicious; the same road's alarms made a duplicate 34 s later.)
func TestTheJudgementsAClearedIncidentTookOpenNoNewOne(t *testing.T) {
	hn := newHeadsNet(t)
	net, at := hn.net, hn.at
	const A, E = headsA, headsE
	p := at(A, 250, 0, 0)
	call := Evidence{Kind: schema.KindReport, Source: "call-1", Type: "crash", TS: t0 + 60_000, Lat: p.Lat, Lng: p.Lng,
		Cell: p.Cell, Weight: 0.77}
	clears := call.TS + QuietMs
	for _, tc := range []struct {
		name       string
		joined     bool  // E's candidates join the incident before it clears
		alarmAfter int64 // when E's alarms begin, after it clears (ms)
		want       int
	}{
		{"E's candidates joined it, alarms right after it cleared", true, 10_000, 1},
		{"E silent until it cleared", false, 10_000, 2},
		{"E's candidates joined it, alarms six minutes after it cleared", true, 360_000, 2},
	} {
		log := []Evidence{call}
		if tc.joined {
			for ts := clears - 40_000; ts < clears; ts += 10_000 {
				log = append(log, at(E, 150, ts, 0.4))
			}
		}
		for ts := clears + tc.alarmAfter; ts < clears+tc.alarmAfter+120_000; ts += 10_000 {
			log = append(log, at(E, 150, ts, 0.8))
		}
		for run, inc := range runHeads(t, net, log, clears-20_000) {
			var got []string
			for _, in := range inc {
				got = append(got, fmt.Sprintf("%s %s detected %+d s after the call", in.ID, in.Status, (in.DetectedAt-call.TS)/1000))
			}
			if len(inc) != tc.want {
				t.Errorf("%s, %s: %d incidents %v, want %d", tc.name, run, len(inc), got, tc.want)
			}
		}
	}
}
