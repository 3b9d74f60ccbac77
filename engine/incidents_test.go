package engine

import (
	"fmt"
	"math"
	"testing"

	"github.com/uber/h3-go/v4"

	"citybrain/engine/incident"
	"citybrain/geo"
)

// road is a row of adjacent base cells: index 0 upstream, the last downstream.
func road(t *testing.T, n int) []geo.LatLng {
	t.Helper()
	start := h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.16}, 9)
	cells := []h3.Cell{start}
	for len(cells) < n {
		last := cells[len(cells)-1]
		// Walk east: the neighbour with the largest longitude not yet used.
		var best h3.Cell
		bestLng := -1e9
		for _, nb := range last.GridDisk(1) {
			ll := nb.LatLng()
			used := false
			for _, c := range cells {
				used = used || c == nb
			}
			if !used && ll.Lng > bestLng && math.Abs(ll.Lat-30.25) < 0.003 {
				best, bestLng = nb, ll.Lng
			}
		}
		cells = append(cells, best)
	}
	out := make([]geo.LatLng, n)
	for i, c := range cells {
		ll := c.LatLng()
		out[i] = geo.LatLng{Lat: ll.Lat, Lng: ll.Lng}
	}
	return out
}

// drive feeds the engine 10-second batches from t0 for minutes, with 4 probes per cell per bucket at the
// speed speedAt(cell index, ms since t0) returns, and returns the incidents at the end.
func drive(t *testing.T, r *rig, cells []geo.LatLng, minutes int, speedAt func(i int, ms int64) float64) []Incident {
	t.Helper()
	for b := int64(0); b < int64(minutes)*6; b++ {
		var evs []Event
		for i, c := range cells {
			for k := int64(0); k < 4; k++ {
				ms := b*10_000 + k*2500
				evs = append(evs, probe(t0+ms, c.Lat, c.Lng, speedAt(i, ms)))
			}
		}
		r.apply(evs...)
	}
	return r.e.Incidents()
}

func TestBlockageIsDetectedRedLightAndRushHourAreNot(t *testing.T) {
	const n = 5
	cells := road(t, n)
	const onset = 12 * 60_000
	cases := []struct {
		name   string
		speed  func(i int, ms int64) float64
		detect bool
	}{
		{"blockage at cell 2: it and upstream collapse, downstream flows", func(i int, ms int64) float64 {
			if ms >= onset && i <= 2 {
				return 4
			}
			return 48
		}, true},
		{"red light at cell 2: 60 s red, 30 s green, all along", func(i int, ms int64) float64 {
			if i == 2 && ms%90_000 < 60_000 {
				return 4
			}
			return 45
		}, false},
		{"rush hour: every cell slows from 50 to 8 over 30 minutes", func(i int, ms int64) float64 {
			f := math.Min(1, float64(ms)/float64(30*60_000))
			return 50 - 42*f
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(cfg *Config) { cfg.DefaultFreeFlowKmh = 50 })
			got := drive(t, r, cells, 30, c.speed)
			if !c.detect {
				if len(got) != 0 {
					t.Fatalf("false alarm: %+v", got[0])
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d incidents, want 1: %+v", len(got), got)
			}
			in := got[0]
			delay := in.DetectedAt - (t0 + onset)
			if in.Type != "congestion_anomaly" || delay <= 0 || delay > 180_000 {
				t.Errorf("incident %s detected %d s after onset (want within 180 s): %+v", in.Type, delay/1000, in)
			}
			// Located at the head of the queue: cell 2, or one cell off.
			d := geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, cells[2])
			if d > 450 {
				t.Errorf("incident %0.f m from the blockage", d)
			}
			if in.EvidenceCount == 0 || in.Evidence[0].Type != "speed_collapse" {
				t.Errorf("evidence %+v", in.Evidence)
			}
		})
	}
}

func video(ts int64, id string, lat, lng float64, typ string, conf float64) Event {
	e := NewEvent(KindVideo)
	e.TS, e.ID, e.Lat, e.Lng, e.Type, e.Confidence = ts, id, lat, lng, typ, conf
	return e
}

func report(ts int64, id string, lat, lng float64, typ string, sev int8) Event {
	e := NewEvent(KindReport)
	e.TS, e.ID, e.Lat, e.Lng, e.Type, e.Severity = ts, id, lat, lng, typ, sev
	return e
}

func TestVideoAndReportFuse(t *testing.T) {
	r := newRig(t, nil)
	// One low-confidence detection stays a candidate.
	r.apply(video(t0, "cam-1", lat, lng, "stalled_vehicle", 0.4))
	if got := r.e.Incidents(); len(got) != 0 {
		t.Fatalf("one 0.4 detection made an incident: %+v", got)
	}
	// A repeated detection from the same camera raises it over the detection threshold.
	r.apply(video(t0+5000, "cam-1", lat, lng, "stalled_vehicle", 0.45))
	got := r.e.Incidents()
	if len(got) != 1 {
		t.Fatalf("%d incidents, want 1", len(got))
	}
	in := got[0]
	if in.Status != StatusSuspected || in.DetectedAt != t0+5000 || in.FirstEvidenceAt != t0 || in.Score >= ConfirmScore {
		t.Errorf("incident %+v: want suspected, detected at the repeat, first evidence at t0", in)
	}
	// A single frame from a second camera nearby raises the score but does not confirm.
	first := in.Score
	r.apply(video(t0+9000, "cam-2", lat+0.0005, lng, "crash", 0.7))
	if in = r.e.Incidents()[0]; in.Status != StatusSuspected || in.DetectedAt != t0+5000 || in.Score <= first {
		t.Errorf("after the second camera: %+v", in)
	}
	// A hotline call 40 s later, 100 m away, merges and names the type and severity.
	r.apply(report(t0+40_000, "call-1", lat+0.0009, lng, "crash", 4))
	in = r.e.Incidents()[0]
	if in.Status != StatusConfirmed || in.Type != "crash" || in.Severity != 4 || in.EvidenceCount != 4 {
		t.Errorf("after the call: %+v", in)
	}
	if len(r.e.Incidents()) != 1 {
		t.Errorf("the call made a second incident")
	}
	// A single sure frame (0.85, camera without a bad record) 2 km away is an incident at once.
	r.apply(video(t0+45_000, "cam-9", lat-0.02, lng, "crash", 0.85))
	if got := r.e.Incidents(); len(got) != 2 || got[1].DetectedAt != t0+45_000 {
		t.Fatalf("a sure frame did not make an incident at once: %+v", got)
	}
	// A call 3 km away is another incident.
	r.apply(report(t0+50_000, "call-2", lat+0.03, lng, "fire", 5))
	if n := len(r.e.Incidents()); n != 3 {
		t.Errorf("%d incidents, want 3", n)
	}
	// The incident cell carries the score (one tick later, as the tracker's scores reach the shards).
	r.e.Flush()
	if v := r.view(in.Lat, in.Lng); v == nil || v.IncidentScore != in.Score {
		t.Errorf("cell incident score %v, want %g", v, in.Score)
	}
}

func TestOperatorActionsAndClearance(t *testing.T) {
	r := newRig(t, nil)
	r.apply(report(t0, "call-1", lat, lng, "hazard", 3))
	in := r.e.Incidents()[0]
	r.e.ApplyAction(Action{ID: "a1", IncidentID: in.ID, Status: StatusDismissed, By: "kim", Role: "commander", Note: "prank", TS: 1})
	r.e.ApplyAction(Action{ID: "a2", IncidentID: "nope", Status: StatusConfirmed})
	r.e.Flush()
	if err, ok := r.e.ActionResult("a1"); !ok || err != nil {
		t.Errorf("a1: %v %v", err, ok)
	}
	if err, ok := r.e.ActionResult("a2"); !ok || err == nil {
		t.Errorf("a2 on a missing incident: %v %v", err, ok)
	}
	got := r.e.Incidents()[0]
	if got.Status != StatusDismissed || len(got.Audit) != 1 || got.Audit[0].By != "kim" || got.Audit[0].Note != "prank" {
		t.Errorf("after dismissal: %+v", got)
	}
	// Dismissed incidents take no more evidence: a new call there opens a new candidate.
	r.apply(report(t0+60_000, "call-2", lat, lng, "hazard", 3))
	if n := len(r.e.Incidents()); n != 2 {
		t.Errorf("%d incidents, want 2", n)
	}
	// With no more evidence, the active one clears once the watermark is past its quiet time.
	r.apply(probe(t0+60_000+incident.QuietMs+60_000+30_000, 31, 121, 40))
	for _, in := range r.e.Incidents() {
		if in.Active() {
			t.Errorf("incident still active long after its last evidence: %+v", in)
		}
	}
}

func TestSensorOverThreshold(t *testing.T) {
	r := newRig(t, nil)
	s := NewEvent(KindSensor)
	s.TS, s.ID, s.Lat, s.Lng, s.Type, s.Value, s.Unit, s.Threshold = t0, "wl-3", lat, lng, "water_level", 0.9, "m", 0.5
	ok := s
	ok.Value, ok.ID = 0.2, "wl-4"
	r.apply(ok, s)
	got := r.e.Incidents()
	if len(got) != 1 || got[0].Type != "flood" || got[0].Evidence[0].ID != "wl-3" {
		t.Errorf("incidents %+v, want one flood from wl-3", got)
	}
}

// TestLinkRuleComparesDownstream drives a long link and the link downstream of it on the West Lake network.
func TestLinkRuleComparesDownstream(t *testing.T) {
	net := geo.GenerateWestLake(1)
	var up, down *geo.Link
	for _, l := range net.Links() {
		if l.GeomLengthM() < 250 {
			continue
		}
		n, _ := net.Node(l.To)
		for _, id := range n.Out {
			d, _ := net.Link(id)
			if d.To != l.From && d.GeomLengthM() >= 250 {
				up, down = l, d
			}
		}
		if up != nil {
			break
		}
	}
	if up == nil {
		t.Skip("no pair of long consecutive links in the generated network")
	}
	const onset = 12 * 60_000
	// run drives 2 probes per link every 2.5 s; from onset the upstream link moves at upSp and the
	// downstream one at downSp (0: no probe reaches it any more, as downstream of a full closure).
	// Probes on the upstream link stand at 20% and 50% of it (behind a blockage), or at 85% and 97% with
	// atStopLine (a queue at the junction).
	run := func(upSp, downSp float64, atStopLine ...bool) []Incident {
		at := [2]float64{0.2, 0.5}
		if len(atStopLine) > 0 && atStopLine[0] {
			at = [2]float64{0.85, 0.97}
		}
		r := newRig(t, func(c *Config) { c.Network = net })
		for b := int64(0); b < 25*6; b++ {
			var evs []Event
			for k := int64(0); k < 4; k++ {
				ms := b*10_000 + k*2500
				for _, l := range []*geo.Link{up, down} {
					sp := 45.0
					if ms >= onset {
						sp = map[bool]float64{true: upSp, false: downSp}[l == up]
						if sp == 0 && l == down {
							continue
						}
					}
					for v := 0; v < 2; v++ {
						p, bearing := l.PointAt(l.GeomLengthM() * at[v])
						e := probe(t0+ms, p.Lat, p.Lng, sp)
						e.ID = fmt.Sprintf("%s-%d-%d", l.ID, v, ms)
						e.HeadingDeg = bearing
						evs = append(evs, e)
					}
				}
			}
			r.apply(evs...)
		}
		return r.e.Incidents()
	}
	got := run(1, 45)
	if len(got) != 1 || got[0].DetectedAt-(t0+onset) > 180_000 || got[0].Type != "congestion_anomaly" {
		t.Fatalf("blockage on %s with %s flowing: %+v", up.ID, down.ID, got)
	}
	head, _ := up.PointAt(0.7 * up.GeomLengthM())
	if d := geo.DistanceM(geo.LatLng{Lat: got[0].Lat, Lng: got[0].Lng}, head); d > 100 {
		t.Errorf("incident %.0f m from the link's queue head", d)
	}
	if got := run(1, 0); len(got) != 1 || got[0].DetectedAt-(t0+onset) > 180_000 {
		t.Errorf("full closure on %s, %s empty downstream: %+v", up.ID, down.ID, got)
	}
	if got := run(1, 45, true); len(got) != 0 {
		t.Errorf("a queue standing at the junction's stop line is not a blockage: %+v", got)
	}
	if got := run(10, 45); len(got) != 0 {
		t.Errorf("a queue still moving at 10 km/h (a signal queue) is not a blockage: %+v", got)
	}
	if got := run(1, 4); len(got) != 0 {
		t.Errorf("both links slow (congestion, not a blockage): %+v", got)
	}
}

// A camera naming a new cause at a place that has been an incident for a while opens its own incident
// (instead of hiding under the old detection time); the same cause, or any evidence soon after the
// detection, joins.
func TestNewCauseIsNotHiddenInAnOldIncident(t *testing.T) {
	r := newRig(t, nil)
	r.apply(report(t0, "call-1", lat, lng, "flood", 3))
	if got := r.e.Incidents(); len(got) != 1 || got[0].DetectedAt != t0 {
		t.Fatalf("the call made %+v", got)
	}
	r.apply(video(t0+30_000, "cam-1", lat, lng, "stalled_vehicle", 0.8))
	if got := r.e.Incidents(); len(got) != 1 || got[0].EvidenceCount != 2 {
		t.Fatalf("a frame 30 s after the detection did not join: %+v", got)
	}
	r.apply(report(t0+3*60_000, "call-2", lat, lng, "flood", 3))
	if got := r.e.Incidents(); len(got) != 1 || got[0].EvidenceCount != 3 {
		t.Fatalf("a call naming the same cause 3 min later did not join: %+v", got)
	}
	r.apply(video(t0+4*60_000, "cam-1", lat, lng, "crash", 0.85))
	got := r.e.Incidents()
	if len(got) != 2 {
		t.Fatalf("a crash seen 4 min after the flood incident was detected: %d incidents, want 2: %+v", len(got), got)
	}
	for _, in := range got {
		if in.Type == "crash" && in.DetectedAt != t0+4*60_000 {
			t.Errorf("the crash is detected at %d, want its frame's time %d", in.DetectedAt, t0+4*60_000)
		}
	}
}
