package incident

import (
	"fmt"
	"testing"

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
