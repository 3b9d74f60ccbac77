package incident

import (
	"math"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// Evidence is one observation that something is wrong at a place: an incident-type video detection, a
// report, a sensor over its threshold, a sudden transit delay, or a traffic anomaly the engine found in a
// cell. Shards produce it; the incident tracker fuses it.
type Evidence struct {
	Kind   schema.Kind // the kind of the event behind it; traffic anomalies use schema.KindProbe or schema.KindDetector
	Source string      // who saw it: camera, call, sensor, bus route, or the cell for traffic
	Type   string      // crash, stalled_vehicle, speed_collapse, water_pressure, ...
	TS     int64
	Lat    float64
	Lng    float64
	Cell   uint64
	Weight float64 // 0..1: how strongly this observation alone says "incident here"
	Sev    int8    // severity hint 1..5 (reports; 0 unknown)
	// LinkRef is 1 + the index of the road link a traffic judgement is about (0: none), so that fusion can
	// follow a queue from link to link.
	LinkRef int32 `json:",omitempty"`
	// Seq is the log sequence of the batch that made this evidence known (for a traffic judgement, the batch
	// whose watermark passed its bucket end), and WmBefore the watermark before that batch. The tracker takes
	// evidence in log order, so that its judgement does not depend on how wall-clock ticks group batches.
	Seq      uint64 `json:"-"`
	WmBefore int64  `json:"-"`
	// Count: a camera's vehicle count for the interval ending at TS (a note of Type countType, weight 0).
	Count float64 `json:",omitempty"`
	// Squeeze: a traffic judgement of the squeeze judge (blockageJudge.squeezeEvidence): a point of its link,
	// not the head of a queue, so it never moves an incident detected before it along the road.
	Squeeze bool `json:",omitempty"`
}

// incidentVideo are the video types that are incident evidence, with the incident type they suggest.
var incidentVideo = map[string]string{
	"crash": "crash", "stalled_vehicle": "stalled_vehicle", "debris": "debris", "wrong_way": "wrong_way",
	"pedestrian": "pedestrian", "fire_smoke": "fire",
}

// PointEvidence turns row r of rec into evidence when it is an incident signal.
func PointEvidence(rec arrow.Record, r int, cell uint64, lat, lng float64, k schema.Kind, ts int64) (Evidence, bool) {
	typ := rec.Column(schema.ColType).(*array.String)
	ev := Evidence{Kind: k, TS: ts, Lat: lat, Lng: lng, Cell: cell}
	id := rec.Column(schema.ColID).(*array.String)
	switch k {
	case schema.KindVideo:
		if typ.IsNull(r) {
			return ev, false
		}
		if typ.Value(r) == countType {
			n := rec.Column(schema.ColCount).(*array.Float32)
			if n.IsNull(r) {
				return ev, false
			}
			ev.Type, ev.Count, ev.Source = countType, float64(n.Value(r)), schema.CloneStr(id.Value(r))
			return ev, true
		}
		t, ok := incidentVideo[typ.Value(r)]
		if !ok {
			return ev, false
		}
		conf := rec.Column(schema.ColConfidence).(*array.Float32)
		if conf.IsNull(r) {
			return ev, false
		}
		ev.Type, ev.Weight, ev.Source = t, float64(conf.Value(r)), schema.CloneStr(id.Value(r))
	case schema.KindReport:
		sev := rec.Column(schema.ColSeverity).(*array.Int8)
		s := int8(3)
		if sev.IsValid(r) {
			s = sev.Value(r)
		}
		ev.Type, ev.Sev, ev.Source = schema.CloneStr(typ.Value(r)), s, schema.CloneStr(id.Value(r))
		ev.Weight = 0.45 + 0.08*float64(s) // severity 3: 0.69; 5: 0.85
	case schema.KindSensor:
		val := rec.Column(schema.ColValue).(*array.Float64)
		thr := rec.Column(schema.ColThreshold).(*array.Float64)
		if thr.IsNull(r) || val.IsNull(r) || !(val.Value(r) > thr.Value(r)) {
			return ev, false
		}
		ev.Source, ev.Type = schema.CloneStr(id.Value(r)), schema.CloneStr(typ.Value(r))
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

// sortEvidence orders evidence by the log batch that made it known, then event time, place and source, so
// fusion is deterministic.
func sortEvidence(ev []Evidence) {
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := &ev[i], &ev[j]
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		if a.Cell != b.Cell {
			return a.Cell < b.Cell
		}
		return a.Source < b.Source
	})
}
