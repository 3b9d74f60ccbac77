package incident

import (
	"fmt"
	"testing"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// A quiet incident clears when its road recovered (the judge found its links flowing after its last
// evidence), or, known from cameras, at the last frame that saw the scene; known from a call alone, it is
// not shown cleared at the call (a call comes once, minutes into a closure, and says nothing of its end) but
// when the wait for more evidence ended. A snapshot between the recovery and the clearance clears the same.
func TestAQuietIncidentClearsWhenItsRoadRecovers(t *testing.T) {
	net := chain(t, 12)
	at := func(li int) (float64, float64, uint64) {
		p, _ := net.Links()[li].PointAt(150)
		cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
		return p.Lat, p.Lng, cell
	}
	call := func(li int, ts int64) Evidence {
		la, ln, c := at(li)
		return Evidence{Kind: schema.KindReport, Source: fmt.Sprint("call-", li), Type: "crash", TS: ts, Lat: la, Lng: ln,
			Cell: c, Weight: 0.69, Sev: 3}
	}
	frame := func(li int, ts int64) Evidence {
		la, ln, c := at(li)
		return Evidence{Kind: schema.KindVideo, Source: "cam-9", Type: "stalled_vehicle", TS: ts, Lat: la, Lng: ln, Cell: c, Weight: 0.8}
	}
	flowing := func(li int, ts int64) Evidence {
		return Evidence{Kind: schema.KindProbe, Type: flowingType, TS: ts, LinkRef: int32(li) + 1}
	}
	const min = 60_000
	// Three events 1.2 km apart: a closure on link 1 that the judge alarms on for two minutes, called in
	// at +1 min, its link flowing again from +6 min; a crash on link 5 called in at +1 min and nothing else;
	// a stalled vehicle on link 9 that one camera sees every minute from +2 to +7 min, called in at +3 min.
	var log []Evidence
	for k := int64(0); k <= 4; k++ {
		log = append(log, linkEvidence(t, net, 1, t0+k*30_000, 0.7))
	}
	log = append(log, call(1, t0+1*min), call(5, t0+1*min), call(9, t0+3*min))
	for k := int64(2); k <= 7; k++ {
		log = append(log, frame(9, t0+k*min))
	}
	for k := int64(12); k <= 40; k++ {
		log = append(log, flowing(1, t0+k*30_000))
	}
	run := func(snapAt int64) map[string]Incident {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		for _, ev := range log {
			if snapAt > 0 && ev.TS >= snapAt {
				tr, snapAt = restarted(t, tr, net), 0
			}
			tr.Track(ev.TS-30_000, everySeq, []Evidence{ev})
		}
		tr.Track(t0+30*min, everySeq, nil)
		out := map[string]Incident{}
		for _, in := range tr.Incidents() {
			for _, li := range []int{1, 5, 9} {
				la, ln, _ := at(li)
				if geo.DistanceM(geo.LatLng{Lat: la, Lng: ln}, geo.LatLng{Lat: in.Lat, Lng: in.Lng}) < 300 {
					if _, dup := out[fmt.Sprint(li)]; dup {
						t.Errorf("two incidents at link %d", li)
					}
					out[fmt.Sprint(li)] = in
				}
			}
		}
		return out
	}
	for _, snap := range []int64{0, t0 + 7*min} {
		inc := run(snap)
		want := map[string]int64{
			"1": t0 + 6*min,                  // the judge's first flowing note after the alarms and the call
			"5": t0 + 1*min + int64(QuietMs), // the call, then nothing for the wait
			"9": t0 + 7*min,                  // the camera's last frame
		}
		for k, w := range want {
			in, ok := inc[k]
			if !ok {
				t.Fatalf("snapshot at %d: no incident at link %s: %+v", snap, k, inc)
			}
			if in.Status != StatusCleared || in.ClearedAt != w {
				t.Errorf("snapshot at %d: link %s: %s, cleared at %+d s, want cleared at %+d s", snap, k, in.Status,
					(in.ClearedAt-t0)/1000, (w-t0)/1000)
			}
		}
	}
}
