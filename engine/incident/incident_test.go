package incident

import (
	"encoding/json"
	"testing"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// everySeq marks a tick that covers every log message (these tests queue no operator actions).
const everySeq = ^uint64(0)

// t0 is 2026-11-27T00:00:00Z, a bucket boundary.
const t0 = int64(1795737600000)

const lat, lng = 30.2528, 120.1675

func TestChronicFalseAlarmCameraLosesWeight(t *testing.T) {
	tr := NewTracker(30_000)
	cams := tr.t.cams
	cams["cam-bad"] = &camRecord{Detections: 30, Dismissed: 30}
	if w := tr.t.camWeight("cam-bad", t0); w > 0.4 {
		t.Errorf("a camera with 30 dismissed alarms keeps weight %g", w)
	}
	cams["cam-good"] = &camRecord{Detections: 30, Confirmed: 28, Dismissed: 2}
	if w := tr.t.camWeight("cam-good", t0); w < 0.95 {
		t.Errorf("a reliable camera has weight %g", w)
	}
	if w := tr.t.camWeight("cam-new", t0); w != 1 {
		t.Errorf("an unknown camera has weight %g", w)
	}
	// Unconfirmed candidates count against their camera: a weak frame (a candidate that never reaches
	// detection) at t0, then the watermark less the allowed lateness passes its time to live.
	cell, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	tr.Track(t0-30_000, everySeq, []Evidence{{Kind: schema.KindVideo, Source: "cam-x", Type: "debris", TS: t0, Lat: lat, Lng: lng,
		Cell: cell, Weight: 0.3}})
	tr.Track(t0+CandidateTTL+30_000+1_000, everySeq, nil)
	if c := cams["cam-x"]; c != nil {
		c.settle(t0 + CandidateTTL + 60_000)
	}
	if c := cams["cam-x"]; c == nil || c.Dismissed != 1 {
		t.Errorf("cam-x record %+v, want one uncorroborated detection", c)
	}
}

// restarted is what a restart from a snapshot of tr makes: its state encoded as state.json is, decoded, and
// restored into a fresh tracker on net.
func restarted(t *testing.T, tr *Tracker, net *geo.Network) *Tracker {
	t.Helper()
	data, err := json.Marshal(tr.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	back := NewTracker(30_000)
	back.SetTopology(NewTopology(net, 9))
	back.Restore(st)
	return back
}

// An incident that lives long keeps the evidence that raised it beside its newest: a planner replaying it,
// or an operator opening it an hour on, asks what raised it first.
func TestALongIncidentKeepsTheEvidenceThatRaisedIt(t *testing.T) {
	tr := NewTracker(30_000)
	cell, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	call := Evidence{Kind: schema.KindReport, Source: "call-1", Type: "crash", TS: t0, Lat: lat, Lng: lng, Cell: cell,
		Weight: 0.69, Sev: 3}
	tr.Track(t0, everySeq, []Evidence{call})
	const frames = 4 * maxEvidence
	var last int64
	for i := 1; i <= frames; i++ {
		last = t0 + int64(i)*10_000
		tr.Track(last, everySeq, []Evidence{{Kind: schema.KindVideo, Source: "cam-1", Type: "crash", TS: last, Lat: lat,
			Lng: lng, Cell: cell, Weight: 0.8}})
	}
	ins := tr.Incidents()
	if len(ins) != 1 {
		t.Fatalf("%d incidents, want the one", len(ins))
	}
	in := ins[0]
	if in.EvidenceCount != frames+1 {
		t.Fatalf("evidence count %d, want %d", in.EvidenceCount, frames+1)
	}
	if len(in.Evidence) != maxEvidence {
		t.Fatalf("%d evidence kept, want %d", len(in.Evidence), maxEvidence)
	}
	if e := in.Evidence[0]; e.Kind != schema.KindReport.String() || e.TS != t0 {
		t.Errorf("first evidence kept %+v, want the call at t0", e)
	}
	for i := 1; i < firstEvidence; i++ {
		if e := in.Evidence[i]; e.TS != t0+int64(i)*10_000 {
			t.Errorf("evidence %d kept at %d, want the frame at %d", i, e.TS, t0+int64(i)*10_000)
		}
	}
	for i := firstEvidence; i < maxEvidence; i++ {
		want := last - int64(maxEvidence-1-i)*10_000
		if e := in.Evidence[i]; e.TS != want {
			t.Errorf("evidence %d kept at %d, want the newest frames (%d)", i, e.TS, want)
		}
	}
}
