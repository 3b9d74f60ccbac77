package incident

import (
	"fmt"
	"math"
	"sort"

	"citybrain/engine/detect"
	"citybrain/engine/schema"
	"citybrain/geo"
)

// The blockage judge: on a road network, every link with traffic is judged at every bucket end by the
// detector's calibrated model (engine/detect) on the features the window room measured. A link whose
// probability has stayed at or above the model's threshold for its persistence (either of its operating
// points: detect.Operating) is an alarm: evidence strong
// enough to make an incident on its own. A link whose probability is above candidateShare of the threshold
// is a candidate: evidence too weak alone, which a camera frame or a call nearby confirms at once (fusion is
// faster than either alone).
const (
	candidateShare = 0.5
	candidateW     = 0.4  // the weight of a candidate (alone it stays under DetectScore)
	alarmMinW      = 0.6  // an alarm's weight at the threshold, rising to alarmMaxW at certainty
	alarmMaxW      = 0.84 // below automatic confirmation: that takes a second kind of evidence
	trafficType    = "speed_collapse"
	// flowingType marks a note (weight 0, no incident evidence) that the judge found a link flowing at a
	// bucket end, with at least flowingFixesLog (log2 1+fixes: 5 fixes) in its last two minutes, or
	// discharging (detect.Features.Discharging: probes keep leaving it at its usual rate) however few, once
	// the link has learned its usual rate (not young).
	flowingType     = "flowing"
	flowingFixesLog = 2.585
)

// blockageJudge holds the per-link persistence of the model's judgement. Tick goroutine.
type blockageJudge struct {
	model *detect.Model
	topo  *Topology
	runs  map[int32]detect.Run // consecutive bucket ends at or above each point's threshold, by link
}

// judgeFeatures judges the features of some bucket ends (their order does not matter).
func (b *blockageJudge) judgeFeatures(feats []detect.Features) []Evidence {
	if len(feats) == 0 {
		return nil
	}
	sort.Slice(feats, func(i, j int) bool {
		if feats[i].T != feats[j].T {
			return feats[i].T < feats[j].T
		}
		return feats[i].Link < feats[j].Link
	})
	var out []Evidence
	for i := 0; i < len(feats); {
		k := i
		for k < len(feats) && feats[k].T == feats[i].T {
			k++
		}
		seen := map[int32]bool{}
		for j := i; j < k; j++ {
			f := &feats[j]
			seen[f.Link] = true
			p := 0.0
			if detect.Gate(&f.X) {
				p = b.model.Prob(&f.X)
			}
			thr := b.model.Threshold
			alarm := false
			if f.FullFlow {
				// A link that passes its usual flow (detect.Features.FullFlow) may be a candidate or
				// flowing, never an alarm on its own: what slows it is not a blockage on it (the demo
				// city's dense queues creeping up to their signals, issue 12's demo pass). A young link
				// (baselines not learned yet: every link of a new user's first hour, a quiet street for
				// longer) is judged as a learned one: on corpus c5 the model scores a young link's
				// ordinary traffic as low as a learned one's, and cold, the shipped model's alarms on
				// young links were all at blockages (issue 12, seventeenth pass).
				delete(b.runs, f.Link)
				p = math.Min(p, math.Nextafter(thr, 0))
			} else {
				run := b.runs[f.Link]
				var at float64
				if alarm, at = b.model.Step(&run, p); alarm {
					thr = at
				}
				if run == (detect.Run{}) {
					delete(b.runs, f.Link)
				} else {
					b.runs[f.Link] = run
				}
			}
			var w float64
			switch {
			case alarm:
				w = alarmMinW + (alarmMaxW-alarmMinW)*math.Min(1, (p-thr)/math.Max(1e-9, 1-thr))
			case f.Squeeze.Squeezed:
				// The squeeze judge (detect.SqueezeReading): vehicles squeezed past one point of the link, so
				// many that its own history there makes it surprising: a lane closed at that point, placed
				// there (squeezeEvidence).
				out = append(out, b.squeezeEvidence(f))
				continue
			case f.Junction.Blocked:
				// The junction judge (detect.JunctionReading): vehicles held at the link's start and nothing
				// on it past them, at its start longer than any stop its history holds there: a closure
				// just past the junction, placed ahead of them (junctionEvidence).
				out = append(out, b.junctionEvidence(f))
				continue
			case f.Hold.Held:
				// The hold judge (detect.HoldReading): a queue's head that no vehicle has passed, and no
				// probe has left the link, since it began to hold, at a point where the link's own stops
				// are rare and never that long: a closure just ahead of its head. An alarm's least
				// weight, placed as the blockage judge's (evidence: at the head), so it joins the link's
				// own judgements rather than opening a second incident beside them.
				w = alarmMinW
			case p >= candidateShare*b.model.Threshold && !f.Discharging:
				w = candidateW
			default:
				// Below suspicion, or suspicious but discharging (probes keep leaving it at its usual rate:
				// a signal's queue moving on each cycle, issue 12 fifth pass). A young link has no usual
				// rate yet: its exits alone make no flowing note (in a full closure's first minutes the
				// vehicles past it still leave; issue 12, eleventh pass).
				if f.X[detect.FFixes] >= flowingFixesLog || f.Discharging && !f.Young {
					// Judged flowing on enough probe fixes: the tracker doubts a stall alarm here.
					out = append(out, Evidence{Kind: schema.KindProbe, Type: flowingType, TS: f.T, LinkRef: f.Link + 1,
						Seq: f.Seq, WmBefore: f.WmBefore})
				}
				continue
			}
			out = append(out, b.evidence(f, w))
		}
		// A link with no features at this bucket end (no recent traffic) breaks its run.
		for li := range b.runs {
			if !seen[li] {
				delete(b.runs, li)
			}
		}
		i = k
	}
	return out
}

// evidence places a judgement on its link: at the head of the standing queue when there is one (the
// blockage is just ahead of it), else near the link's start when nothing gets onto it while its upstream
// stands (a closure just past the junction), else where a queue behind a blockage would have its head.
func (b *blockageJudge) evidence(f *detect.Features, w float64) Evidence {
	l := b.topo.net.Links()[f.Link]
	length := l.GeomLengthM()
	off := 0.7 * length
	switch {
	case f.HeadM >= 0:
		off = math.Min(length, f.HeadM+10)
	case f.X[detect.FUpStand] >= 1 && f.X[detect.FFixRatio] < 0.5:
		off = math.Min(length, 20)
	}
	p, _ := l.PointAt(off)
	cell, _ := geo.CellOf(p.Lat, p.Lng, b.topo.res)
	return Evidence{Kind: schema.KindProbe, Source: fmt.Sprintf("link:%d", f.Link), Type: trafficType, TS: f.T,
		Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: round3(w), LinkRef: f.Link + 1, Seq: f.Seq, WmBefore: f.WmBefore}
}

// junctionEvidence places the junction judge's word just ahead of the vehicles held at its link's start, with
// an alarm's least weight, as a source of its own ("junction:LINK"): a traffic hit, under unrepeatedCap until
// it has repeated trafficRepeats times (fuse), as the squeeze judge's.
func (b *blockageJudge) junctionEvidence(f *detect.Features) Evidence {
	l := b.topo.net.Links()[f.Link]
	p, _ := l.PointAt(math.Min(l.GeomLengthM(), f.Junction.HeadM+10))
	cell, _ := geo.CellOf(p.Lat, p.Lng, b.topo.res)
	return Evidence{Kind: schema.KindProbe, Source: fmt.Sprintf("junction:%d", f.Link), Type: trafficType, TS: f.T,
		Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: alarmMinW, LinkRef: f.Link + 1, Seq: f.Seq, WmBefore: f.WmBefore}
}

// squeezeAheadM: the squeeze judge's point is where the squeezed vehicles were slow; the closed lane's
// obstacle is about this much further on.
const squeezeAheadM = 20.0

// squeezeEvidence places the squeeze judge's word at its point of the link, with an alarm's least weight, as a
// source of its own ("squeeze:LINK"): a traffic hit, under unrepeatedCap until it has repeated trafficRepeats
// times (fuse), so a squeeze read at three bucket ends running is an incident.
func (b *blockageJudge) squeezeEvidence(f *detect.Features) Evidence {
	l := b.topo.net.Links()[f.Link]
	p, _ := l.PointAt(math.Min(l.GeomLengthM(), f.Squeeze.OffM+squeezeAheadM))
	cell, _ := geo.CellOf(p.Lat, p.Lng, b.topo.res)
	return Evidence{Kind: schema.KindProbe, Source: fmt.Sprintf("squeeze:%d", f.Link), Type: trafficType, TS: f.T,
		Lat: p.Lat, Lng: p.Lng, Cell: cell, Weight: alarmMinW, LinkRef: f.Link + 1, Seq: f.Seq, WmBefore: f.WmBefore, Squeeze: true}
}

// weakTraffic reports whether ev is a candidate of the blockage judge: a link it finds suspicious but has
// not judged blocked (an alarm weighs at least alarmMinW).
func weakTraffic(ev Evidence) bool { return ev.LinkRef > 0 && ev.Weight < alarmMinW }

// Stall alarms against the judge. A camera's stall alarm (a vehicle standing in view for a minute) is most
// often a vehicle waiting in an ordinary queue: in the corpus of issue 12, 15 of 27 false alarms with all
// evidence were one camera's stall alarms alone. When the judge, on enough probe fixes, found the link under
// the frame flowing at a bucket end at most flowRecentMs before the frame (and not suspicious since), the
// frame is doubted: however often the camera repeats it, it stays a candidate until something else (a
// second camera, a call, the judge turning) corroborates it. Crash, fire and wrong-way frames are not doubted.
const (
	flowRecentMs = 2 * 60_000
	flowNearM    = 20.0 // a frame is on the links within this distance
)

// queueConfusable are the video types a standing queue can pass for.
var queueConfusable = map[string]bool{"stalled_vehicle": true}

// linkFlow is what the judge last said of a link, in log order: the newest bucket end it found the link
// flowing (on enough fixes) and the newest it found it suspicious or blocked.
type linkFlow struct {
	Flowing int64 `json:"flowing,omitempty"`
	Suspect int64 `json:"suspect,omitempty"`
	// Since: the first flowing note of the link's current run of them (no suspicion since): when its traffic
	// recovered, for an incident's clearance.
	Since int64 `json:"since,omitempty"`
}

// flows reports whether the judge's latest word on the link is that it flows (false with no word at all).
func (lf *linkFlow) flows() bool { return lf != nil && lf.Flowing > lf.Suspect }

// noteLink records a traffic judgement of a link (a flowing note or a candidate or alarm).
func (t *tracker) noteLink(ev Evidence) {
	if t.flow == nil {
		t.flow = map[int32]*linkFlow{}
	}
	lf := t.flow[ev.LinkRef-1]
	if lf == nil {
		lf = &linkFlow{}
		t.flow[ev.LinkRef-1] = lf
	}
	if ev.Type == flowingType {
		if lf.Since == 0 || lf.Suspect >= lf.Since {
			lf.Since = ev.TS
		}
		lf.Flowing = max(lf.Flowing, ev.TS)
	} else {
		lf.Suspect = max(lf.Suspect, ev.TS)
	}
}

// doubted reports whether a camera frame is a stall alarm on links the judge last found flowing: at least
// one link under it was found flowing at most flowRecentMs before it, and none suspicious since then.
func (t *tracker) doubted(ev Evidence) bool {
	if ev.Kind != schema.KindVideo || !queueConfusable[ev.Type] || t.topo == nil || len(t.flow) == 0 {
		return false
	}
	flowing := false
	for _, c := range t.topo.net.Nearest(ev.Lat, ev.Lng, flowNearM, 4) {
		li, ok := t.topo.index[c.Link]
		lf := t.flow[li]
		if !ok || lf == nil {
			continue
		}
		if lf.Suspect >= ev.TS-flowRecentMs && !lf.flows() {
			return false
		}
		if lf.Flowing >= ev.TS-flowRecentMs {
			flowing = true
		}
	}
	return flowing
}

// recoveredAt is when an incident's road recovered after its last evidence: when the last of its links
// whose latest word is flowing began to flow after that evidence (0: none seen, or no links of its own).
func (t *tracker) recoveredAt(in *Incident) int64 {
	var last int64
	for li := range in.links {
		lf := t.flow[li]
		if !lf.flows() || lf.Flowing <= in.LastEvidenceAt {
			continue
		}
		last = max(last, lf.Since, in.LastEvidenceAt)
	}
	return last
}
