package engine

import (
	"math"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/uber/h3-go/v4"
)

// Evidence is one observation that something is wrong at a place: an incident-type video detection, a
// report, a sensor over its threshold, a sudden transit delay, or a traffic anomaly the engine found in a
// cell. Shards produce it; the incident tracker fuses it.
type Evidence struct {
	Kind   Kind   // the kind of the event behind it; traffic anomalies use KindProbe or KindDetector
	Source string // who saw it: camera, call, sensor, bus route, or the cell for traffic
	Type   string // crash, stalled_vehicle, speed_collapse, water_pressure, ...
	TS     int64
	Lat    float64
	Lng    float64
	Cell   uint64
	Weight float64 // 0..1: how strongly this observation alone says "incident here"
	Sev    int8    // severity hint 1..5 (reports; 0 unknown)
}

// incidentVideo are the video types that are incident evidence, with the incident type they suggest.
var incidentVideo = map[string]string{
	"crash": "crash", "stalled_vehicle": "stalled_vehicle", "debris": "debris", "wrong_way": "wrong_way",
	"pedestrian": "pedestrian", "fire_smoke": "fire",
}

// pointEvidence turns row r of rec into evidence when it is an incident signal.
func pointEvidence(rec arrow.Record, r int, cell uint64, lat, lng float64, k Kind, ts int64) (Evidence, bool) {
	typ := rec.Column(ColType).(*array.String)
	ev := Evidence{Kind: k, TS: ts, Lat: lat, Lng: lng, Cell: cell}
	id := rec.Column(ColID).(*array.String)
	switch k {
	case KindVideo:
		if typ.IsNull(r) {
			return ev, false
		}
		t, ok := incidentVideo[typ.Value(r)]
		if !ok {
			return ev, false
		}
		conf := rec.Column(ColConfidence).(*array.Float32)
		if conf.IsNull(r) {
			return ev, false
		}
		ev.Type, ev.Weight, ev.Source = t, float64(conf.Value(r)), cloneStr(id.Value(r))
	case KindReport:
		sev := rec.Column(ColSeverity).(*array.Int8)
		s := int8(3)
		if sev.IsValid(r) {
			s = sev.Value(r)
		}
		ev.Type, ev.Sev, ev.Source = cloneStr(typ.Value(r)), s, cloneStr(id.Value(r))
		ev.Weight = 0.45 + 0.08*float64(s) // severity 3: 0.69; 5: 0.85
	case KindSensor:
		val := rec.Column(ColValue).(*array.Float64)
		thr := rec.Column(ColThreshold).(*array.Float64)
		if thr.IsNull(r) || val.IsNull(r) || !(val.Value(r) > thr.Value(r)) {
			return ev, false
		}
		ev.Source, ev.Type = cloneStr(id.Value(r)), cloneStr(typ.Value(r))
		over := (val.Value(r) - thr.Value(r)) / math.Max(math.Abs(thr.Value(r)), 1e-9)
		ev.Weight = math.Min(0.9, 0.6+over)
	default:
		return ev, false
	}
	return ev, true
}

// sensorIncidentType maps a sensor type to the incident type it suggests.
func sensorIncidentType(t string) string {
	switch {
	case containsAny(t, "water", "flood", "rain", "pipe"):
		return "flood"
	case containsAny(t, "gas", "smoke", "fire", "temperature"):
		return "hazard"
	default:
		return "hazard"
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

// Traffic anomaly rule (a comparative, persistence-checked rule in the family of the California and
// McMaster loop-detector algorithms, applied to fused probe, detector and transit speeds per cell):
//
//  1. collapse: the cell's 1-minute speed is below collapseRatio × its reference, where the reference is the
//     cell's own speed 5–10 minutes earlier (so a slow build-up such as rush hour does not count), and below
//     collapseFF × its free-flow speed;
//  2. discontinuity: where neighbouring cells have data, at least one of them moves at least
//     neighbourRatio × faster (the head of a queue ends at the blockage; rush hour slows a whole area);
//     without neighbour data the drop must be deeper (lonelyRatio);
//  3. persistence: conditions 1–2 hold at persistBuckets consecutive bucket ends (a red light's queue
//     clears within a cycle and breaks the run).
//
// A detector's occupancy above occupancyHigh and at least twice its earlier level counts as a collapse too.
const (
	collapseRatio  = 0.55
	collapseFF     = 0.5
	neighbourRatio = 1.6
	lonelyRatio    = 0.35
	persistBuckets = 9
	occupancyHigh  = 0.35
	minAnomalyN    = 2 // speed samples in the last minute
)

// anomalyState is the per-cell state of the traffic rule.
type anomalyState struct {
	run      int   // consecutive bucket ends with the condition
	lastEval int64 // bucket end last evaluated
}

// evalTraffic checks cell cs at bucket end t (ms) and returns evidence when the anomaly has persisted.
// neighbour returns the 1-minute speed and free-flow speed of a neighbouring cell from the published views.
func (s *shard) evalTraffic(cell uint64, cs *cellState, t int64, neighbour func(uint64) (float64, float64, bool)) (Evidence, bool) {
	bucketMs := s.e.bucketMs
	var now1, early WindowStats
	for j := range cs.aggs {
		a := &cs.aggs[j]
		end := a.start + bucketMs
		switch {
		case end <= t && end > t-60_000:
			now1.add(&a.WindowStats)
		case end <= t-5*60_000 && end > t-10*60_000:
			early.add(&a.WindowStats)
		}
	}
	ff := s.freeFlow(cell, cs)
	cond := false
	sp, ok := now1.Speed()
	ref, refOK := early.Speed()
	ratio := 1.0
	if ok && refOK && now1.Samples >= minAnomalyN {
		ratio = sp / ref
		cond = ratio < collapseRatio && sp < collapseFF*ff
	}
	if !cond && now1.FlowN > 0 && early.FlowN > 0 {
		o, o0 := now1.Occupancy(), early.Occupancy()
		if o > occupancyHigh && o > 2*o0 {
			cond, ratio = true, math.Min(ratio, o0/o)
		}
	}
	if cond {
		// Spatial discontinuity against the six neighbours.
		var fastest float64
		seen := false
		for _, nb := range h3.Cell(cell).GridDisk(1) {
			if uint64(nb) == cell {
				continue
			}
			if nsp, nff, ok := neighbour(uint64(nb)); ok {
				seen = true
				if nsp >= 0.5*nff {
					fastest = math.Max(fastest, nsp)
				}
			}
		}
		switch {
		case seen && ok:
			cond = fastest >= neighbourRatio*sp
		case seen:
			cond = fastest > 0
		default:
			cond = ratio < lonelyRatio
		}
	}
	if !cond {
		cs.anomaly.run = 0
		return Evidence{}, false
	}
	cs.anomaly.run++
	if cs.anomaly.run < persistBuckets {
		return Evidence{}, false
	}
	w := 0.55 + 0.3*(1-math.Min(1, ratio/collapseRatio)) // deeper collapse, stronger evidence
	k := KindProbe
	if now1.FlowN > 0 {
		k = KindDetector
	}
	return Evidence{Kind: k, Source: "cell:" + h3.Cell(cell).String(), Type: "speed_collapse", TS: t,
		Lat: cs.lat, Lng: cs.lng, Cell: cell, Weight: math.Min(0.85, w)}, true
}

// sortEvidence orders evidence by event time, then place and source, so fusion is deterministic.
func sortEvidence(ev []Evidence) {
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := &ev[i], &ev[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		if a.Cell != b.Cell {
			return a.Cell < b.Cell
		}
		return a.Source < b.Source
	})
}
