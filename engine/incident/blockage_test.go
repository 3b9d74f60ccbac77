package incident

import (
	"fmt"
	"math"
	"testing"

	"citybrain/engine/detect"
	"citybrain/engine/schema"
	"citybrain/geo"
)

// chain is a straight road of n links of 300 m going east: link i runs from node i to node i+1.
func chain(t *testing.T, n int) *geo.Network {
	t.Helper()
	mLng := 1 / (111320.0 * math.Cos(lat*math.Pi/180))
	pt := func(x float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng + x*mLng} }
	var nodes []geo.Node
	var links []geo.Link
	for i := 0; i <= n; i++ {
		nodes = append(nodes, geo.Node{ID: fmt.Sprint("N", i), LatLng: pt(300 * float64(i)), Signalised: true})
	}
	for i := 0; i < n; i++ {
		links = append(links, geo.Link{ID: fmt.Sprint("L", i), From: fmt.Sprint("N", i), To: fmt.Sprint("N", i+1), Lanes: 1,
			SpeedLimitKmh: 50, Geometry: []geo.LatLng{pt(300 * float64(i)), pt(300 * float64(i+1))}})
	}
	net, err := geo.NewNetwork("test", nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// linkEvidence is the blockage judge's evidence on link li of net, 250 m along it, with weight w.
func linkEvidence(t *testing.T, net *geo.Network, li int, ts int64, w float64) Evidence {
	t.Helper()
	p, _ := net.Links()[li].PointAt(250)
	cell, err := geo.CellOf(p.Lat, p.Lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	return Evidence{Kind: schema.KindProbe, Source: fmt.Sprintf("link:%d", li), Type: trafficType, TS: ts, Lat: p.Lat,
		Lng: p.Lng, Cell: cell, Weight: w, LinkRef: int32(li) + 1}
}

// Candidates on links that are not an incident's own corroborate it but do not carry it along the road, keep
// it open or let it swallow a call about another event; candidates on its own links keep it open.
func TestCandidatesDoNotCarryAnIncidentAway(t *testing.T) {
	net := chain(t, 8)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	alarm := linkEvidence(t, net, 0, t0, 0.7)
	tr.Track(t0, everySeq, []Evidence{alarm})
	inc := tr.Incidents()
	if len(inc) != 1 || inc[0].Status != StatusSuspected {
		t.Fatalf("an alarm made %+v, want one suspected incident", inc)
	}
	// Twenty minutes of candidates moving down the road, a link every two minutes, each link one step
	// downstream of the last (each would have reset the incident's position to itself).
	var last Incident
	for k := 1; k <= 120; k++ {
		ts := t0 + int64(k)*10_000
		li := min(7, 1+(k-1)/12)
		tr.Track(ts-30_000, everySeq, []Evidence{linkEvidence(t, net, li, ts, 0.4)})
		inc = tr.Incidents()
		if len(inc) != 1 {
			t.Fatalf("at %d s: %d incidents, want the one (candidates make none of their own next to it)", k*10, len(inc))
		}
		last = inc[0]
		if d := geo.DistanceM(geo.LatLng{Lat: alarm.Lat, Lng: alarm.Lng}, geo.LatLng{Lat: last.Lat, Lng: last.Lng}); d > 1 {
			t.Fatalf("at %d s the incident moved %.0f m along the road with candidates", k*10, d)
		}
	}
	// Nothing said its road recovered (no flowing note on link 0): cleared when the wait after the alarm ended.
	if last.Status != StatusCleared || last.ClearedAt != t0+QuietMs {
		t.Errorf("after 20 min of candidates elsewhere: status %q cleared at %d, want cleared at the alarm + the wait (%d)", last.Status, last.ClearedAt, t0+QuietMs)
	}
	if last.EvidenceCount < 2 {
		t.Errorf("evidence count %d: the candidates did not join the incident while it was open (they corroborate it)", last.EvidenceCount)
	}

	// Candidates on the incident's own link keep it open.
	tr2 := NewTracker(30_000)
	tr2.SetTopology(NewTopology(net, 9))
	tr2.Track(t0, everySeq, []Evidence{linkEvidence(t, net, 3, t0, 0.7)})
	for k := 1; k <= 120; k++ {
		ts := t0 + int64(k)*10_000
		tr2.Track(ts-30_000, everySeq, []Evidence{linkEvidence(t, net, 3, ts, 0.4)})
	}
	if inc := tr2.Incidents(); len(inc) != 1 || !inc[0].Active() || inc[0].LastEvidenceAt != t0+1_200_000 {
		t.Errorf("candidates on its own link: %+v, want one incident still open with its last evidence at 20 min", inc)
	}
	// A call 1.2 km down the road, about something else, is an incident of its own.
	p, _ := net.Links()[7].PointAt(150)
	cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
	ts := t0 + 1_210_000
	tr2.Track(ts-30_000, everySeq, []Evidence{{Kind: schema.KindReport, Source: "hotline", Type: "crash", TS: ts, Lat: p.Lat, Lng: p.Lng,
		Cell: cell, Weight: 0.69, Sev: 3}})
	if inc := tr2.Incidents(); len(inc) != 2 {
		t.Errorf("a call 1.2 km away joined the open incident: %d incidents, want 2", len(inc))
	}
}

// A camera's stall alarms from a queue (vehicles standing at spots a vehicle's length apart, in turn) on a
// link the blockage judge found flowing on enough probe fixes stay a candidate however often they repeat,
// until a call corroborates them; the judge's note older than two minutes, or a crash frame, is not doubted.
// The outcome does not depend on how ticks group the log.
func TestStallAlarmOnFlowingLinkNeedsCorroboration(t *testing.T) {
	net := chain(t, 4)
	at := func(li int, m float64) (float64, float64, uint64) {
		p, _ := net.Links()[li].PointAt(m)
		cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
		return p.Lat, p.Lng, cell
	}
	flowing := func(li int, ts int64, seq uint64) Evidence {
		return Evidence{Kind: schema.KindProbe, Type: flowingType, TS: ts, LinkRef: int32(li) + 1, Seq: seq, WmBefore: ts - 30_000}
	}
	frameAt := func(typ string, li int, m float64, ts int64, seq uint64) Evidence {
		la, ln, c := at(li, m)
		return Evidence{Kind: schema.KindVideo, Source: "cam-" + typ, Type: typ, TS: ts, Lat: la, Lng: ln, Cell: c, Weight: 0.8,
			Seq: seq, WmBefore: ts - 30_000}
	}
	frame := func(typ string, li int, ts int64, seq uint64) Evidence { return frameAt(typ, li, 150, ts, seq) }
	// The log: the judge finds link 1 flowing every 30 s; a stall alarm on it every minute for five minutes,
	// from the queue's vehicles in turn (12 m apart).
	var log []Evidence
	seq := uint64(0)
	for k := int64(0); k <= 10; k++ {
		seq++
		log = append(log, flowing(1, t0+k*30_000, seq))
		if k%2 == 1 {
			seq++
			log = append(log, frameAt("stalled_vehicle", 1, 150-12*float64((k/2)%3), t0+k*30_000+5_000, seq))
		}
	}
	run := func(group int) []Incident {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		for i := 0; i < len(log); i += group {
			b := append([]Evidence(nil), log[i:min(len(log), i+group)]...)
			tr.Track(b[len(b)-1].TS, everySeq, b)
		}
		return tr.Incidents()
	}
	for _, g := range []int{1, 3, len(log)} {
		if inc := run(g); len(inc) != 0 {
			t.Fatalf("ticks of %d batches: five stall alarms on a flowing link made %+v, want a candidate only", g, inc)
		}
	}

	// The same frames with the judge's last note over two minutes old are an incident on their own.
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	tr.Track(t0, everySeq, []Evidence{flowing(1, t0, 1)})
	for k := int64(0); k < 4; k++ {
		ts := t0 + 150_000 + k*60_000
		tr.Track(ts, everySeq, []Evidence{frame("stalled_vehicle", 1, ts, uint64(2+k))})
	}
	if inc := tr.Incidents(); len(inc) != 1 {
		t.Errorf("stall alarms 2.5 min after the judge's last note: %d incidents, want 1", len(inc))
	}

	// A crash frame on the flowing link is as strong as before; a stall alarm with a call is an incident.
	for _, c := range []struct {
		name  string
		extra Evidence
	}{
		{"crash frames", frame("crash", 1, t0+200_000, 100)},
		{"a call", func() Evidence {
			la, ln, cell := at(1, 120)
			return Evidence{Kind: schema.KindReport, Source: "call-1", Type: "hazard", TS: t0 + 200_000, Lat: la, Lng: ln,
				Cell: cell, Weight: 0.61, Sev: 2, Seq: 100, WmBefore: t0 + 170_000}
		}()},
	} {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		ev := append([]Evidence(nil), log...)
		ev = append(ev, c.extra)
		if c.extra.Type == "crash" {
			for k := int64(1); k <= 2; k++ {
				x := frame("crash", 1, t0+200_000+k*60_000, 100+uint64(k))
				ev = append(ev, x)
			}
		}
		tr.Track(t0+600_000, everySeq, ev)
		if inc := tr.Incidents(); len(inc) != 1 || !inc[0].Active() && inc[0].Status != StatusCleared {
			t.Errorf("%s on the flowing link: %+v, want one incident", c.name, inc)
		}
	}
}

// A link whose baselines have not learned yet (a quiet link judged from its fifth minute, every link of a new
// user's first hour) is judged like any other: a model sure that it is blocked, over more bucket ends than its
// persistence, makes an alarm on a young link as on a learned one (until session 16 a young link was at most a
// candidate). A link passing its usual flow stays a candidate, young or learned.
func TestAYoungLinkTheModelIsSureOfIsAnAlarm(t *testing.T) {
	net := chain(t, 2)
	sure := constantModel(10)
	for _, c := range []struct {
		young, fullFlow bool
		alarm           bool
	}{{false, false, true}, {true, false, true}, {true, true, false}, {false, true, false}} {
		j := &blockageJudge{model: sure, topo: NewTopology(net, 9), runs: map[int32]detect.Run{}}
		var feats []detect.Features
		for k := int64(1); k <= 4; k++ {
			f := detect.Features{Link: 0, T: t0 + k*10_000, HeadM: 150, Young: c.young, FullFlow: c.fullFlow}
			f.X[detect.FStandLog] = 2
			f.X[detect.FFixes] = 4
			feats = append(feats, f)
		}
		ev := j.judgeFeatures(feats)
		if len(ev) != 4 {
			t.Fatalf("young %v, full flow %v: %d judgements of 4 bucket ends", c.young, c.fullFlow, len(ev))
		}
		last := ev[3].Weight
		switch {
		case c.alarm && last < alarmMinW:
			t.Errorf("young %v: a link the model is sure of weighs %.2f after 4 bucket ends, want an alarm (≥ %.2f)", c.young, last, alarmMinW)
		case !c.alarm && (last != candidateW || !weakTraffic(ev[3])):
			t.Errorf("young %v, full flow: a link the model is sure of weighs %.2f after 4 bucket ends, want a candidate (%.2f)", c.young, last, candidateW)
		}
	}
}

// Each source places an incident once: a camera repeating its stall alarm every few seconds from the far end
// of a queue, or a link judged every bucket, does not pull the incident towards itself by repeating; the
// call and the alarm about the blockage keep their say however long the camera goes on.
func TestARepeatingSourceDoesNotCarryThePosition(t *testing.T) {
	net := chain(t, 4)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	alarm := linkEvidence(t, net, 2, t0, 0.7) // the blockage: link 2, 250 m along
	p, _ := net.Links()[2].PointAt(200)       // a caller 50 m from it
	callCell, _ := geo.CellOf(p.Lat, p.Lng, 9)
	call := Evidence{Kind: schema.KindReport, Source: "call-1", Type: "crash", TS: t0 + 5_000, Lat: p.Lat, Lng: p.Lng, Cell: callCell,
		Weight: 0.69, Sev: 3}
	q, _ := net.Links()[1].PointAt(250) // a camera seeing the queue 300 m upstream
	camCell, _ := geo.CellOf(q.Lat, q.Lng, 9)
	frame := func(k int64) Evidence {
		return Evidence{Kind: schema.KindVideo, Source: "cam-1", Type: "stalled_vehicle", TS: t0 + 10_000 + k*2_000, Lat: q.Lat, Lng: q.Lng,
			Cell: camCell, Weight: 0.8}
	}
	tr.Track(t0, everySeq, []Evidence{alarm, call, frame(0)})
	inc := tr.Incidents()
	if len(inc) != 1 {
		t.Fatalf("an alarm, a call and a frame made %+v, want one incident", inc)
	}
	at := geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}
	var more []Evidence
	for k := int64(1); k <= 60; k++ {
		more = append(more, frame(k))
		if k%5 == 0 {
			more = append(more, linkEvidence(t, net, 2, t0+k*2_000, 0.7))
		}
	}
	tr.Track(t0+120_000, everySeq, more)
	inc = tr.Incidents()
	if len(inc) != 1 || inc[0].EvidenceCount != 3+len(more) {
		t.Fatalf("after the repeats: %+v, want the one incident with all its evidence", inc)
	}
	if d := geo.DistanceM(at, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 1 {
		t.Errorf("sixty more frames of the camera and twelve of the alarm moved the incident %.0f m, want it where its sources put it", d)
	}
	blk := geo.LatLng{Lat: alarm.Lat, Lng: alarm.Lng}
	if d := geo.DistanceM(blk, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 150 {
		t.Errorf("the incident is %.0f m from the blockage its alarm and call are about, want it nearer to them than to the camera 300 m off", d)
	}
}

// A candidate (suspicion never detected) does not follow the queue: an alarm on a link two steps upstream of a
// candidate's link, 600 m from it, makes its own incident where it is, instead of joining the candidate and
// being placed between the two (or, upstream, not at all).
func TestAnAlarmDoesNotJoinACandidateFarDownstream(t *testing.T) {
	net := chain(t, 4)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	var log []Evidence
	for k := int64(0); k < 12; k++ {
		log = append(log, linkEvidence(t, net, 3, t0+k*10_000, candidateW))
	}
	for k := int64(12); k < 18; k++ {
		log = append(log, linkEvidence(t, net, 1, t0+k*10_000, 0.7), linkEvidence(t, net, 3, t0+k*10_000, candidateW))
	}
	tr.Track(t0+180_000, everySeq, log)
	inc := tr.Incidents()
	if len(inc) != 1 {
		t.Fatalf("candidates on link 3 and an alarm on link 1 made %+v, want one incident (the alarm's)", inc)
	}
	blk := linkEvidence(t, net, 1, 0, 0)
	if d := geo.DistanceM(geo.LatLng{Lat: blk.Lat, Lng: blk.Lng}, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 1 {
		t.Errorf("the alarm's incident is %.0f m from the alarm, want at it", d)
	}
}

// A link the model finds suspicious whose probes keep leaving it at its usual rate (a signal's queue that
// discharges each cycle) is judged flowing, not a candidate: a stall alarm there stays a candidate however
// often the camera repeats it, and no candidate corroborates it. A link as suspicious that nobody leaves is a
// candidate.
func TestADischargingQueueIsNotACandidate(t *testing.T) {
	unsure := constantModel(0)
	for _, discharging := range []bool{false, true} {
		inc := stallAlarmsOnJudgedLink(t, unsure, func(f *detect.Features) {
			f.HeadM, f.Discharging = 150, discharging
			f.X[detect.FStandLog] = 2
		})
		switch {
		case discharging && len(inc) != 0:
			t.Errorf("stall alarms on a suspicious link whose queue discharges made %+v, want a candidate only", inc)
		case !discharging && len(inc) != 1:
			t.Errorf("stall alarms on a suspicious link nobody leaves made %d incidents, want one", len(inc))
		}
	}
}

// stallAlarmsOnJudgedLink judges link 0 of a two-link chain under model every 10 s for three minutes, on features
// set by feat (fewer fixes than a flowing note needs on its own), while a camera on it reports a stall alarm
// every 30 s: of a vehicle standing at the queue's head every minute, and of the queue's other vehicles in turn
// between (so the head's alarms are not one vehicle standing alone), and returns the incidents the tracker makes.
func stallAlarmsOnJudgedLink(t *testing.T, model *detect.Model, feat func(*detect.Features)) []Incident {
	t.Helper()
	net := chain(t, 2)
	j := &blockageJudge{model: model, topo: NewTopology(net, 9), runs: map[int32]detect.Run{}}
	tr := NewTracker(30_000)
	tr.SetTopology(j.topo)
	var log []Evidence
	for k := int64(1); k <= 18; k++ {
		ts := t0 + k*10_000
		f := detect.Features{Link: 0, T: ts, HeadM: -1}
		f.X[detect.FFixes] = 2
		feat(&f)
		log = append(log, j.judgeFeatures([]detect.Features{f})...)
		if k%3 == 0 {
			x := 150.0 // the head
			if k%6 != 0 {
				x -= 4 * float64(k) // the queue's other vehicles in turn, 24 m apart
			}
			p, _ := net.Links()[0].PointAt(x)
			cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
			log = append(log, Evidence{Kind: schema.KindVideo, Source: "cam-1", Type: "stalled_vehicle", TS: ts + 1_000, Lat: p.Lat,
				Lng: p.Lng, Cell: cell, Weight: 0.8})
		}
	}
	tr.Track(t0+200_000, everySeq, log)
	return tr.Incidents()
}

// A camera streaming stall alarms from a queue (its vehicles in turn) the judge finds flowing stays doubted while most of its frames
// are: one frame that lands on a moment the judge found the link suspicious (an hour of gridlock has such
// moments) no longer clears it for good.
func TestOneUndoubtedFrameDoesNotClearACamera(t *testing.T) {
	net := chain(t, 4)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	for k := int64(0); k < 8; k++ {
		ts := t0 + k*30_000
		tr.Track(ts, everySeq, []Evidence{{Kind: schema.KindProbe, Type: flowingType, TS: ts, LinkRef: 2}})
		if k == 4 {
			tr.t.flow[1].Suspect = ts + 1 // the judge found the link suspicious just before this frame
		}
		p, _ := net.Links()[1].PointAt(150 - 12*float64(k%3)) // the queue's vehicles in turn
		cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
		tr.Track(ts+2_000, everySeq, []Evidence{{Kind: schema.KindVideo, Source: "cam-1", Type: "stalled_vehicle", TS: ts + 2_000,
			Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: 0.8}})
	}
	if inc := tr.Incidents(); len(inc) != 0 {
		t.Errorf("eight stall alarms on a flowing link, one of them just after a suspicious moment, made %+v, want a candidate only", inc)
	}
}

// constantModel is a logistic model that ignores the features: every link's probability is that of bias
// (10: sure it is blocked; 0: a probability of one half, under the 0.7 threshold), persistence 2.
func constantModel(bias float64) *detect.Model {
	m := &detect.Model{Kind: "logistic", Features: detect.FeatureNames[:], Mean: make([]float64, detect.NumFeatures),
		Scale: make([]float64, detect.NumFeatures), Weights: make([]float64, detect.NumFeatures), Bias: bias, Operating: detect.Operating{Threshold: 0.7, Persist: 2}}
	for i := range m.Scale {
		m.Scale[i] = 1
	}
	return m
}

// One vehicle standing alone at one spot, its camera's stall alarm every minute (± 2 m), on a link the judge
// finds flowing every 30 s, is a stalled vehicle that traffic passes (a lane blocked), not a queue: an
// incident at the third frame, where the vehicle stands, however ticks group the log. Its frames are the
// same as a queue's in TestStallAlarmOnFlowingLinkNeedsCorroboration but for the spot: there they churn.
func TestALoneStandingVehicleOnAFlowingLinkIsAnIncident(t *testing.T) {
	net := chain(t, 4)
	var log []Evidence
	seq := uint64(0)
	jitter := []float64{0, 1.5, -2, 2.5, -1, 0.5}
	for k := int64(0); k <= 10; k++ {
		seq++
		log = append(log, Evidence{Kind: schema.KindProbe, Type: flowingType, TS: t0 + k*30_000, LinkRef: 2, Seq: seq,
			WmBefore: t0 + k*30_000 - 30_000})
		if k%2 == 1 {
			seq++
			ts := t0 + k*30_000 + 5_000
			p, _ := net.Links()[1].PointAt(150 + jitter[k/2])
			cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
			log = append(log, Evidence{Kind: schema.KindVideo, Source: "cam-9", Type: "stalled_vehicle", TS: ts, Lat: p.Lat,
				Lng: p.Lng, Cell: cell, Weight: 0.8, Seq: seq, WmBefore: ts - 30_000})
		}
	}
	third := t0 + 5*30_000 + 5_000
	spot, _ := net.Links()[1].PointAt(150)
	for _, g := range []int{1, 3, len(log)} {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		for i := 0; i < len(log); i += g {
			b := append([]Evidence(nil), log[i:min(len(log), i+g)]...)
			tr.Track(b[len(b)-1].TS, everySeq, b)
		}
		inc := tr.Incidents()
		if len(inc) != 1 || !inc[0].Active() {
			t.Fatalf("ticks of %d: a vehicle standing alone five minutes on a flowing link made %+v, want one incident", g, inc)
		}
		if inc[0].DetectedAt != third {
			t.Errorf("ticks of %d: detected at %+d ms from the third frame, want at it", g, inc[0].DetectedAt-third)
		}
		if d := geo.DistanceM(spot, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 5 {
			t.Errorf("ticks of %d: the incident is %.0f m from the vehicle", g, d)
		}
	}
}

// A link the model is sure of is an alarm, unless it passes its usual flow (detect.Features.FullFlow): a
// blockage queues traffic by passing fewer vehicles than come, so a link that passes as many is slow for
// another reason (the demo city's dense queues moving up to their signals, issue 12's demo pass).
func TestALinkPassingItsUsualFlowIsNoAlarm(t *testing.T) {
	sure := constantModel(10)
	for _, full := range []bool{false, true} {
		j := &blockageJudge{model: sure, topo: NewTopology(chain(t, 2), 9), runs: map[int32]detect.Run{}}
		alarms := 0
		for k := int64(1); k <= 6; k++ {
			f := detect.Features{Link: 0, T: t0 + k*10_000, HeadM: -1, FullFlow: full, Discharging: full}
			f.X[detect.FCrawlShare] = 0.5
			f.X[detect.FFixes] = 8
			for _, ev := range j.judgeFeatures([]detect.Features{f}) {
				if ev.Weight >= alarmMinW {
					alarms++
				}
			}
		}
		switch {
		case full && alarms != 0:
			t.Errorf("a sure link passing its usual flow gave %d alarms, want none", alarms)
		case !full && alarms != 5:
			t.Errorf("a sure link gave %d alarms in 6 bucket ends, want 5 (persistence 2)", alarms)
		}
	}
}

// A partial closure shows as a sustained moderate probability: with the model's second operating point (a
// lower threshold held longer, detect.Operating) the link is alarmed once the probability has held over it
// for the second persistence, and a snapshot taken on the way (Judge.Runs, SetRuns) carries both counts, so
// a restarted judge alarms at the same bucket end. A model with one point never alarms on it.
func TestASustainedModerateProbabilityAlarmsAtTheSecondPoint(t *testing.T) {
	moderate := constantModel(0) // probability 0.5, under the first point's 0.7
	two := *moderate
	two.Threshold2, two.Persist2 = 0.45, 6
	topo := NewTopology(chain(t, 2), 9)
	feat := func(k int64) []detect.Features {
		f := detect.Features{Link: 0, T: t0 + k*10_000, HeadM: -1}
		f.X[detect.FCrawlShare] = 0.5 // past the gate
		return []detect.Features{f}
	}
	alarmAt := func(m *detect.Model, restartAt int64) int64 {
		j, err := NewJudge(topo, m)
		if err != nil {
			t.Fatal(err)
		}
		for k := int64(1); k <= 10; k++ {
			if k == restartAt {
				runs := j.Runs()
				if j, err = NewJudge(topo, m); err != nil {
					t.Fatal(err)
				}
				j.SetRuns(runs)
			}
			for _, ev := range j.Judge(nil, feat(k)) {
				if ev.Weight >= alarmMinW {
					return k
				}
			}
		}
		return -1
	}
	if k := alarmAt(moderate, 0); k != -1 {
		t.Errorf("one point (0.7, 2): a probability of 0.5 alarmed at bucket end %d", k)
	}
	for _, restart := range []int64{0, 4, 6} {
		if k := alarmAt(&two, restart); k != 6 {
			t.Errorf("second point (0.45, 6), restarted before bucket end %d: alarmed at %d, want 6", restart, k)
		}
	}
}

// A young link (its baselines not yet learned) has no usual exit rate for its exits to match: probes leaving
// it say nothing of whether its queue discharges as usual (a full closure lets the vehicles past it leave in its
// first minutes), so the judge makes no flowing note of it on that alone, and a camera's stall alarms there are
// not doubted: three of them are an incident. On a learned link that discharges they stay doubted.
func TestAYoungLinksExitsDoNotDoubtAStallAlarm(t *testing.T) {
	calm := constantModel(-10) // far under the candidate share
	for _, young := range []bool{false, true} {
		inc := stallAlarmsOnJudgedLink(t, calm, func(f *detect.Features) { f.Young, f.Discharging = young, true })
		switch {
		case young && len(inc) != 1:
			t.Errorf("three stall alarms on a young link with exits made %d incidents, want one (its exits doubt nothing)", len(inc))
		case !young && len(inc) != 0:
			t.Errorf("three stall alarms on a learned link discharging as usual made %+v, want a candidate only", inc)
		}
	}
}

// An incident a caller placed stays where the call put it: the judge's alarms downstream of its links after
// the detection join it but do not carry it to their queue's head (issue 12, eleventh pass: calls placed
// incidents 7-145 m from their closures, queues joining minutes later carried them 444-675 m away, and the
// closures counted as not found). An incident of traffic alone still moves to the queue's head downstream.
func TestACallersIncidentStaysWhereTheCallPlacedIt(t *testing.T) {
	net := chain(t, 4)
	run := func(call bool) Incident {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		first := linkEvidence(t, net, 0, t0, 0.4) // a candidate on link 0, 250 m along it
		if !call {
			first.Weight = 0.7 // an alarm: traffic alone detects
		}
		tr.Track(t0, everySeq, []Evidence{first})
		if call {
			p, _ := net.Links()[0].PointAt(150)
			cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
			tr.Track(t0+30_000, everySeq, []Evidence{{Kind: schema.KindReport, Source: "call-1", Type: "crash",
				TS: t0 + 60_000, Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: 0.69, Sev: 3}})
		}
		if inc := tr.Incidents(); len(inc) != 1 || !inc[0].Active() {
			t.Fatalf("call %v: %+v, want one detected incident", call, inc)
		}
		// Five minutes of alarms on link 1, one step downstream of link 0.
		for k := int64(1); k <= 30; k++ {
			ts := t0 + 60_000 + k*10_000
			tr.Track(ts-30_000, everySeq, []Evidence{linkEvidence(t, net, 1, ts, 0.75)})
		}
		inc := tr.Incidents()
		if len(inc) != 1 {
			t.Fatalf("call %v: %d incidents, want the one (the alarms downstream join it)", call, len(inc))
		}
		return inc[0]
	}
	link1, _ := net.Links()[1].PointAt(250)
	called, _ := net.Links()[0].PointAt(150)
	in := run(true)
	if d := geo.DistanceM(called, geo.LatLng{Lat: in.Lat, Lng: in.Lng}); d > 120 {
		t.Errorf("the called-in incident is %.0f m from the call, want it to stay within 120 m (between the call and its candidate)", d)
	}
	if in.EvidenceCount < 30 {
		t.Errorf("evidence count %d: the alarms downstream did not join the called-in incident", in.EvidenceCount)
	}
	in = run(false)
	if d := geo.DistanceM(link1, geo.LatLng{Lat: in.Lat, Lng: in.Lng}); d > 1 {
		t.Errorf("an incident of traffic alone is %.0f m from the alarms downstream, want it moved to them", d)
	}
}

// The squeeze judge's word (detect.SqueezeReading: vehicles squeezed past one point of a link, new to its
// history there) is evidence of its own, placed at that point, whatever the trees make of the link (a model
// that finds nothing, a link passing its usual flow as a partial closure's does): read at trafficRepeats
// bucket ends running, it is an incident at the point; read twice, a candidate (no incident yet). A reading short of the
// judge's (not Squeezed) is a flowing note.
func TestASqueezedLinkIsAnIncidentAtItsPoint(t *testing.T) {
	net := chain(t, 2)
	never := constantModel(-10)
	judge := func(squeezed bool, n int) []Evidence {
		j := &blockageJudge{model: never, topo: NewTopology(net, 9), runs: map[int32]detect.Run{}}
		var feats []detect.Features
		for k := 1; k <= n; k++ {
			f := detect.Features{Link: 0, T: t0 + int64(k)*10_000, HeadM: -1, FullFlow: true, Discharging: true,
				Squeeze: detect.SqueezeReading{N: 3, Surprise: 8, OffM: 100, Squeezed: squeezed}}
			f.X[detect.FFixes] = 4
			feats = append(feats, f)
		}
		return j.judgeFeatures(feats)
	}
	if ev := judge(false, 1); len(ev) != 1 || ev[0].Type != flowingType {
		t.Errorf("a reading short of a squeeze: %+v, want a flowing note", ev)
	}
	p, _ := net.Links()[0].PointAt(100 + squeezeAheadM)
	repeatsToIncident(t, net, p, func(n int) []Evidence { return judge(true, n) }, func(ev []Evidence) bool {
		return ev[0].Weight >= alarmMinW && ev[0].LinkRef == 1 && ev[0].Squeeze
	}, fmt.Sprintf("a squeeze's evidence (≥ %.2f) on link 0 at %.0f m", alarmMinW, 100+squeezeAheadM))
}

// repeatsToIncident feeds a fresh tracker what judge gives at n = 2 … trafficRepeats bucket ends running: each
// time n pieces of evidence that ok accepts (want describes them), placed within a metre of p; under
// trafficRepeats a candidate only (no incident listed), at trafficRepeats one incident suspected at that bucket
// end, within a metre of p. (A judge's word of a source of its own, under unrepeatedCap until it repeats.)
func repeatsToIncident(t *testing.T, net *geo.Network, p geo.LatLng, judge func(n int) []Evidence, ok func([]Evidence) bool, want string) {
	t.Helper()
	for n := 2; n <= trafficRepeats; n++ {
		ev := judge(n)
		if len(ev) != n || !ok(ev) || geo.DistanceM(p, geo.LatLng{Lat: ev[0].Lat, Lng: ev[0].Lng}) > 1 {
			t.Fatalf("read %d times: %+v, want %s per bucket end", n, ev, want)
		}
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		tr.Track(t0+int64(n)*10_000, everySeq, ev)
		inc := tr.Incidents()
		if n < trafficRepeats {
			if len(inc) != 0 {
				t.Errorf("read %d times: %+v, want a candidate only (no incident listed)", n, inc)
			}
			continue
		}
		if len(inc) != 1 || inc[0].Status != StatusSuspected || inc[0].DetectedAt != t0+int64(n)*10_000 {
			t.Fatalf("read %d times: %+v, want one incident suspected at its %dth bucket end", n, inc, n)
		}
		if d := geo.DistanceM(p, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 1 {
			t.Errorf("the incident stands %.0f m from its judge's point", d)
		}
	}
}

// Traffic passes a squeezed point, so an alarm of the blockage judge on a link downstream of a squeeze's
// incident is another event, not its queue's head found further on, and so is one upstream but farther than
// mergeM: each opens an incident of its own, and the squeeze's incident stays at its point (issue 12, session
// 18: in spider a full closure's alarm 750 m away, three links upstream of a partial closure's squeeze, was
// taken as its queue and the full closure was lost). An alarm just upstream is the squeeze's queue: it joins.
func TestAnAlarmBesideASqueezeIsItsOwnIncident(t *testing.T) {
	net := chain(t, 4)
	for _, c := range []struct {
		link int
		want int
	}{{3, 2}, {0, 2}, {1, 1}} {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		var log []Evidence
		for k := int64(1); k <= 3; k++ {
			log = append(log, squeezeOn(t, net, 2, t0+k*10_000))
		}
		log = append(log, linkEvidence(t, net, c.link, t0+40_000, 0.7))
		tr.Track(t0+40_000, everySeq, log)
		inc := tr.Incidents()
		if len(inc) != c.want {
			t.Errorf("an alarm on link %d after a squeeze on link 2: %d incidents, want %d", c.link, len(inc), c.want)
			continue
		}
		for _, in := range inc {
			if in.Status != StatusSuspected {
				t.Errorf("an alarm on link %d after a squeeze on link 2: incident %s %q, want suspected", c.link, in.ID, in.Status)
			}
		}
	}
}

// The squeeze judge's word on a link beside a detected incident, not one of its links, is its own incident:
// traffic passes a squeezed point, so it is neither that incident's queue nor the same event (a partial
// closure 300 m from a full closure's incident, which its queue kept open). On one of the incident's own
// links it joins it, and it joins an incident a caller placed near it.
func TestASqueezeBesideAnIncidentIsItsOwn(t *testing.T) {
	net := chain(t, 4)
	for _, c := range []struct {
		link int
		want int
	}{{3, 2}, {1, 2}, {2, 1}} {
		tr := NewTracker(30_000)
		tr.SetTopology(NewTopology(net, 9))
		var log []Evidence
		for k := int64(1); k <= 3; k++ {
			log = append(log, linkEvidence(t, net, c.link, t0+k*10_000, 0.8))
		}
		for k := int64(4); k <= 6; k++ {
			log = append(log, squeezeOn(t, net, 2, t0+k*10_000))
		}
		tr.Track(t0+60_000, everySeq, log)
		if inc := tr.Incidents(); len(inc) != c.want {
			t.Errorf("a squeeze on link 2 after an incident on link %d: %d incidents, want %d", c.link, len(inc), c.want)
		}
	}
	// A caller's incident 50 m from the squeezed point: the squeeze is the event the caller saw.
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	p, _ := net.Links()[2].PointAt(200)
	cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
	log := []Evidence{{Kind: schema.KindReport, Source: "call-1", Type: "crash", TS: t0 + 5_000, Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: 0.9}}
	for k := int64(4); k <= 6; k++ {
		log = append(log, squeezeOn(t, net, 2, t0+k*10_000))
	}
	tr.Track(t0+60_000, everySeq, log)
	if inc := tr.Incidents(); len(inc) != 1 {
		t.Errorf("a squeeze 50 m from a caller's incident: %d incidents, want 1", len(inc))
	}
}

// squeezeOn is the squeeze judge's word on link li of net at ts (source squeeze:li, weight alarmMinW).
func squeezeOn(t *testing.T, net *geo.Network, li int, ts int64) Evidence {
	t.Helper()
	ev := linkEvidence(t, net, li, ts, alarmMinW)
	ev.Source, ev.Squeeze = fmt.Sprint("squeeze:", li), true
	return ev
}

// The junction judge's word (detect.JunctionReading: vehicles held at a link's start and nothing on it past
// them) is evidence of its own, placed just ahead of the held vehicles, whatever the trees make of the link:
// read at trafficRepeats bucket ends, it is an incident there; read twice, a candidate (no incident yet).
func TestALinkHeldAtItsStartIsAnIncidentThere(t *testing.T) {
	net := chain(t, 2)
	never := constantModel(-10)
	judge := func(blocked bool, n int) []Evidence {
		j := &blockageJudge{model: never, topo: NewTopology(net, 9), runs: map[int32]detect.Run{}}
		var feats []detect.Features
		for k := 1; k <= n; k++ {
			f := detect.Features{Link: 1, T: t0 + int64(k)*10_000, HeadM: 15,
				Junction: detect.JunctionReading{HoldS: 120, HeadM: 15, Ref: 40, Blocked: blocked}}
			f.X[detect.FFixes] = 4
			feats = append(feats, f)
		}
		return j.judgeFeatures(feats)
	}
	if ev := judge(false, 1); len(ev) != 1 || ev[0].Type != flowingType {
		t.Errorf("a reading short of the judge's: %+v, want a flowing note", ev)
	}
	p, _ := net.Links()[1].PointAt(25)
	repeatsToIncident(t, net, p, func(n int) []Evidence { return judge(true, n) }, func(ev []Evidence) bool {
		return ev[0].Weight >= alarmMinW && ev[0].LinkRef == 2 && ev[0].Source == "junction:1"
	}, fmt.Sprintf("the junction judge's evidence (≥ %.2f) on link 1 at 25 m", alarmMinW))
}

// The hold judge's word (detect.HoldReading.Held: a queue's head no vehicle has passed, at a point where the
// link's own stops are rare) is the blockage judge's alarm on its link, placed at the head, whatever the
// trees make of the link: read at trafficRepeats bucket ends running, it is an incident there. The same
// reading short of the judge is no alarm.
func TestAPointNoVehiclePassesIsAnAlarmAtItsHead(t *testing.T) {
	net := chain(t, 2)
	never := constantModel(-10)
	judge := func(held bool, n int) []Evidence {
		j := &blockageJudge{model: never, topo: NewTopology(net, 9), runs: map[int32]detect.Run{}}
		var feats []detect.Features
		for k := 1; k <= n; k++ {
			f := detect.Features{Link: 0, T: t0 + int64(k)*10_000, HeadM: 120,
				Hold: detect.HoldReading{HeadM: 120, HeadS: 90, Near: 2, Near60: 2, Held: held}}
			feats = append(feats, f)
		}
		return j.judgeFeatures(feats)
	}
	if ev := judge(false, trafficRepeats); len(ev) != 0 {
		t.Errorf("a hold short of the judge: %+v, want nothing", ev)
	}
	p, _ := net.Links()[0].PointAt(130)
	ev := judge(true, trafficRepeats)
	if len(ev) != trafficRepeats || ev[0].Weight < alarmMinW || ev[0].LinkRef != 1 || ev[0].Source != "link:0" ||
		geo.DistanceM(p, geo.LatLng{Lat: ev[0].Lat, Lng: ev[0].Lng}) > 1 {
		t.Fatalf("a held link: %+v, want the blockage judge's alarm (≥ %.2f) on link 0 at 130 m per bucket end", ev, alarmMinW)
	}
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	tr.Track(t0+int64(trafficRepeats)*10_000, everySeq, ev)
	inc := tr.Incidents()
	if len(inc) != 1 || inc[0].EvidenceCount != trafficRepeats {
		t.Fatalf("held %d times: %+v, want one incident of the %d alarms", trafficRepeats, inc, trafficRepeats)
	}
	if d := geo.DistanceM(p, geo.LatLng{Lat: inc[0].Lat, Lng: inc[0].Lng}); d > 1 {
		t.Errorf("the incident stands %.0f m from the head", d)
	}
}
