package engine

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"

	"citybrain/engine/detect"
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
	// One frame, and a repeat, stay a candidate: a classifier's mistake can repeat once (issue 12's
	// planted false alarms do), debris stays where it fell. (Frames that are not stall alarms: a camera's stall
	// alarms repeat each other only as one standing vehicle's, engine/incident's twelfth-pass tests.)
	r.apply(video(t0, "cam-1", lat, lng, "debris", 0.4))
	r.apply(video(t0+5000, "cam-1", lat, lng, "debris", 0.45))
	if got := r.e.Incidents(); len(got) != 0 {
		t.Fatalf("two frames of one camera made an incident: %+v", got)
	}
	// The third frame counts in full.
	r.apply(video(t0+65_000, "cam-1", lat, lng, "debris", 0.5))
	got := r.e.Incidents()
	if len(got) != 1 {
		t.Fatalf("%d incidents, want 1", len(got))
	}
	in := got[0]
	if in.Status != StatusSuspected || in.DetectedAt != t0+65_000 || in.FirstEvidenceAt != t0 || in.Score >= ConfirmScore {
		t.Errorf("incident %+v: want suspected, detected at the third frame, first evidence at t0", in)
	}
	// A single frame from a second camera nearby raises the score but does not confirm.
	first := in.Score
	r.apply(video(t0+69_000, "cam-2", lat+0.0005, lng, "crash", 0.7))
	if in = r.e.Incidents()[0]; in.Status != StatusSuspected || in.DetectedAt != t0+65_000 || in.Score <= first {
		t.Errorf("after the second camera: %+v", in)
	}
	// A hotline call 40 s later, 100 m away, merges and names the type and severity.
	r.apply(report(t0+100_000, "call-1", lat+0.0009, lng, "crash", 4))
	in = r.e.Incidents()[0]
	if in.Status != StatusConfirmed || in.Type != "crash" || in.Severity != 4 || in.EvidenceCount != 5 {
		t.Errorf("after the call: %+v", in)
	}
	if len(r.e.Incidents()) != 1 {
		t.Errorf("the call made a second incident")
	}
	// A single frame 2 km away, however sure, is a candidate; any other evidence there (a call 80 m off)
	// makes it an incident at once: faster than either alone.
	r.apply(video(t0+105_000, "cam-9", lat-0.02, lng, "crash", 0.85))
	if got := r.e.Incidents(); len(got) != 1 {
		t.Fatalf("a single frame made an incident: %+v", got)
	}
	r.apply(report(t0+110_000, "call-9", lat-0.0207, lng, "hazard", 1))
	if got := r.e.Incidents(); len(got) != 2 || got[1].DetectedAt != t0+110_000 || got[1].Type != "crash" {
		t.Fatalf("a frame and a call did not make an incident at the call: %+v", got)
	}
	// A call 3 km away is another incident.
	r.apply(report(t0+120_000, "call-2", lat+0.03, lng, "fire", 5))
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
	r.action(Action{ID: "a1", IncidentID: in.ID, Status: StatusDismissed, By: "kim", Role: "commander", Note: "prank", TS: 1})
	r.action(Action{ID: "a2", IncidentID: "nope", Status: StatusConfirmed})
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

// Probe vehicles on a link of L m and on into the one after it (D m; 0: they leave the map at the link's end):
// vehicle k enters every 15 s at 40 km/h, a fix every 5 s.
const (
	trajEveryMs = 15_000
	trajV       = 40 / 3.6 // m/s
	trajOnset   = 12 * 60_000
	trajEnd     = 22 * 60_000
)

// trajectoryIncidents drives vehicle k along up and on into down (nil: it leaves the map at up's end) at the
// position pos(k, ms) gives, through the whole engine (map matching, the dispatcher's tracker, the shipped
// model, fusion), and returns the engine's incidents.
func trajectoryIncidents(t *testing.T, net *geo.Network, up, down *geo.Link, pos func(k int, ms int64) float64) []Incident {
	L, D := up.GeomLengthM(), 0.0
	if down != nil {
		D = down.GeomLengthM()
	}
	r := newRig(t, func(c *Config) { c.Network = net })
	for b := int64(0); b < trajEnd/10_000; b++ {
		var evs []Event
		for ms := b * 10_000; ms < (b+1)*10_000; ms += 5000 {
			for k := 0; int64(k)*trajEveryMs <= ms; k++ {
				p := pos(k, ms)
				sp := math.Max(0, p-pos(k, ms-5000)) / 5 * 3.6
				var ll geo.LatLng
				var bearing float64
				switch {
				case p < L:
					ll, bearing = up.PointAt(p)
				case p < L+D:
					ll, bearing = down.PointAt(p - L)
				default:
					continue // gone
				}
				e := probe(t0+ms, ll.Lat, ll.Lng, sp)
				e.ID, e.HeadingDeg = fmt.Sprintf("veh-%d", k), bearing
				evs = append(evs, e)
			}
		}
		r.apply(evs...)
	}
	return r.e.Incidents()
}

// trajFree is where vehicle k is at ms on a free road.
func trajFree(k int, ms int64) float64 {
	return math.Max(0, trajV*float64(ms-int64(k)*trajEveryMs)/1000)
}

// trajBlocked: from trajOnset a blockage at at m stops every vehicle that reaches it, each 7 m behind the one
// before it (k0: the first still short of the blockage at its onset).
func trajBlocked(at float64) func(k int, ms int64) float64 {
	k0 := int(math.Ceil((float64(trajOnset)/1000 - at/trajV) / (trajEveryMs / 1000)))
	return func(k int, ms int64) float64 {
		x := trajFree(k, ms)
		if ms < trajOnset || k < k0 {
			return x
		}
		return math.Min(x, math.Max(at-7*float64(k-k0), trajFree(k, trajOnset)))
	}
}

// trajRed: a red light at line m, 45 s of every 90: a vehicle arriving on red waits, 7 m behind any that
// arrived before it in the same red, and leaves 2 s after it.
func trajRed(line float64) func(k int, ms int64) float64 {
	return func(k int, ms int64) float64 {
		arrive := int64(k)*trajEveryMs + int64(line/trajV*1000)
		if arrive%90_000 >= 45_000 { // green
			return trajFree(k, ms)
		}
		j := 0
		for o := k - 1; o >= 0 && int64(o)*trajEveryMs+int64(line/trajV*1000) >= arrive-arrive%90_000; o-- {
			j++
		}
		green := arrive - arrive%90_000 + 45_000 + int64(2000*j)
		stop := line - 7*float64(j)
		switch {
		case trajFree(k, ms) < stop:
			return trajFree(k, ms)
		case ms < green:
			return stop
		default:
			return stop + trajV*float64(ms-green)/1000
		}
	}
}

// wantTrajectoryHit fails unless an incident within 300 m of at along up was detected within five minutes of
// the onset.
func wantTrajectoryHit(t *testing.T, got []Incident, up *geo.Link, at float64) {
	t.Helper()
	head, _ := up.PointAt(at)
	for i := range got {
		d := geo.DistanceM(geo.LatLng{Lat: got[i].Lat, Lng: got[i].Lng}, head)
		if dt := got[i].DetectedAt - (t0 + trajOnset); d < 300 && dt >= -60_000 && dt <= 5*60_000 {
			t.Logf("blockage detected %d s after it started, %.0f m from it", dt/1000, d)
			return
		}
	}
	for _, in := range got {
		t.Logf("incident %s detected %d s after the onset, %.0f m from the blockage", in.ID, (in.DetectedAt-(t0+trajOnset))/1000, geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, head))
	}
	t.Fatalf("blockage at %.0f m along %s: no incident within 300 m and 5 minutes", at, up.ID)
}

// TestBlockageDetectorOnTrajectories drives probe vehicles along a long link of the West Lake network and
// on into the link after it, one every 15 s at 40 km/h, through the whole engine (map matching, the
// dispatcher's tracker, the shipped model, fusion). From minute 12 a blockage half-way along the first
// link stops every vehicle that reaches it, each behind the one before: an incident within five minutes,
// at the queue's head. A red light at the link's end that holds vehicles 45 s of every 90 s is no incident.
func TestBlockageDetectorOnTrajectories(t *testing.T) {
	net := geo.GenerateWestLake(1)
	var up, down *geo.Link
	for _, l := range net.Links() {
		if l.GeomLengthM() < 300 {
			continue
		}
		n, _ := net.Node(l.To)
		for _, id := range n.Out {
			d, _ := net.Link(id)
			if d.To != l.From && d.GeomLengthM() >= 200 {
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
	L := up.GeomLengthM()
	wantTrajectoryHit(t, trajectoryIncidents(t, net, up, down, trajBlocked(L/2)), up, L/2)
	if got := trajectoryIncidents(t, net, up, down, trajRed(L-5)); len(got) != 0 {
		t.Errorf("a red light made incidents: %+v", got)
	}
}

// A blocked link fed from outside the map: no link comes before it, so its vehicles appear at its start, as
// where a city's map ends, and no probe is ever seen entering it; it has no loop. The corpus never puts a
// closure on such a link (bench/eval plans closures where vehicles are routed on from a junction: on c4 no
// blocked link's rows have no link before them, against 2.2 % of the others'), and every real city's map ends
// somewhere: the shipped model must find the blockage from what the link itself shows (a refit on c4 that read
// entries never seen as 0 did not: docs/incidents.md, "Why a refit on c4 fails the engine's synthetic blockage
// test"), and a red light at its end is still no incident. Not asked of it here, because no model so far does
// it within five minutes (docs/incidents.md, fifteenth pass, audit): the same link when its vehicles also
// leave the map at its end (no exit ever seen), or the same on a link that ends at no signal.
func TestBlockageFedFromOutsideTheMap(t *testing.T) {
	net := geo.GenerateWestLake(1)
	links := detect.LinksOf(net)
	var up *geo.Link
	for i, l := range net.Links() {
		if len(links[i].Up) == 0 && len(links[i].Down) > 0 && links[i].Signal && l.GeomLengthM() >= 300 {
			up = l
			break
		}
	}
	if up == nil {
		t.Skip("no long signalised link without a link before it in the generated network")
	}
	var down *geo.Link
	n, _ := net.Node(up.To)
	for _, id := range n.Out {
		if d, _ := net.Link(id); d.To != up.From && (down == nil || d.GeomLengthM() > down.GeomLengthM()) {
			down = d
		}
	}
	L := up.GeomLengthM()
	wantTrajectoryHit(t, trajectoryIncidents(t, net, up, down, trajBlocked(L/2)), up, L/2)
	if got := trajectoryIncidents(t, net, up, down, trajRed(L-5)); len(got) != 0 {
		t.Errorf("a red light made incidents: %+v", got)
	}
}

// A camera or a caller naming a new cause at a place that has been an incident for a while (10 minutes)
// opens its own incident (instead of hiding under the old detection time); the same cause, or any evidence
// within 10 minutes of the detection (callers are minutes late: issue 12), joins.
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
	r.apply(report(t0+6*60_000, "call-2", lat, lng, "flood", 3))
	if got := r.e.Incidents(); len(got) != 1 || got[0].EvidenceCount != 3 {
		t.Fatalf("a call naming the same cause 6 min later did not join: %+v", got)
	}
	// A call naming a crash 4 min after the detection joins (callers are minutes late); one 11 min after
	// it is a new event there.
	r.apply(report(t0+4*60_000, "call-3", lat, lng, "crash", 3))
	if got := r.e.Incidents(); len(got) != 1 {
		t.Fatalf("a crash called in 4 min after the flood was detected opened another incident: %+v", got)
	}
	r.apply(report(t0+11*60_000, "call-4", lat, lng, "hazard", 3))
	got := r.e.Incidents()
	if len(got) != 2 {
		t.Fatalf("a hazard called in 11 min after the flood incident was detected: %d incidents, want 2: %+v", len(got), got)
	}
	for _, in := range got {
		if in.Type == "hazard" && in.DetectedAt != t0+11*60_000 {
			t.Errorf("the hazard is detected at %d, want its call's time %d", in.DetectedAt, t0+11*60_000)
		}
	}
}

// A stall alarm is a vehicle standing two minutes in a camera's view. While the camera counts vehicles into its
// junction at its usual rate, the junction discharges and the vehicle stands in a moving queue: the camera's
// stall alarms stay a candidate however often they repeat (issue 12, tenth pass). At a camera whose counts
// fell through those two minutes (a blockage holding traffic back) the same frames are an incident at its
// first vehicle's third alarm (a camera's stall alarms repeat each other only as one vehicle's: issue 12,
// twelfth pass), and at the counting camera a call nearby makes one at once.
func TestAStallAlarmAtACameraCountingAsUsualNeedsCorroboration(t *testing.T) {
	r := newRig(t, nil)
	far := lat - 0.02 // the second camera, 2.2 km south
	count := func(ts int64, id string, la float64, n float64) Event {
		e := video(ts, id, la, lng, "vehicle_count", 0.9)
		e.Count, e.IntervalS = n, 10
		return e
	}
	// Twelve minutes of counts at both cameras, 6 vehicles every 10 s; the second's stop after ten minutes.
	for k := int64(1); k <= 72; k++ {
		ts := t0 + k*10_000
		n := 6.0
		if k > 60 {
			n = 0
		}
		r.apply(count(ts, "cam-1", lat, 6), count(ts, "cam-2", far, n))
	}
	// Then each camera's stall alarms while the counts go on: three vehicles of a queue standing at spots
	// 11 m apart, each alarmed every minute it stands (20 s after the one ahead), three times.
	for m := int64(0); m < 3; m++ {
		for j := int64(0); j < 3; j++ {
			ts := t0 + 725_000 + j*20_000 + m*60_000
			off := float64(j) * 0.0001
			r.apply(video(ts, "cam-1", lat+off, lng, "stalled_vehicle", 0.8), video(ts, "cam-2", far+off, lng, "stalled_vehicle", 0.8),
				count(ts+5_000, "cam-1", lat, 6), count(ts+5_000, "cam-2", far, 0))
		}
	}
	got := r.e.Incidents()
	if len(got) != 1 || math.Abs(got[0].Lat-far) > 0.001 {
		t.Fatalf("incidents %+v: want one, at the camera whose counts fell", got)
	}
	if want := t0 + 725_000 + 2*60_000; got[0].DetectedAt != want {
		t.Errorf("the incident at the camera whose counts fell was detected at %d, want at its first vehicle's third alarm (%d)", got[0].DetectedAt, want)
	}
	ts := t0 + 900_000
	r.apply(report(ts, "call-1", lat+0.0008, lng, "crash", 3))
	got = r.e.Incidents()
	atCall := slices.IndexFunc(got, func(in Incident) bool { return math.Abs(in.Lat-far) > 0.001 })
	if len(got) != 2 || atCall < 0 || got[atCall].DetectedAt != ts || got[atCall].EvidenceCount != 10 {
		t.Errorf("after a call at the counting camera: %+v, want a second incident at the call holding its nine frames", got)
	}
}
