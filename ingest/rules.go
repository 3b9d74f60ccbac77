package ingest

import (
	"math"

	"citybrain/engine"
)

// The field rules of wire format version 1 in one declarative place: string lengths, number ranges, the
// fields each kind requires and the names an enumerated field may take. The row path (Validate) applies them
// to an engine.Event; a columnar path applies the same tables to the columns of a record batch (each rule
// names its engine.Schema column). Cross-field rules (a detector's speed when it counted vehicles, the video
// fields each video type needs) are in Validate.

// String limits in bytes (after JSON unescaping).
const (
	MaxIDBytes    = 128     // id
	MaxShortBytes = 256     // source, lane, route, mode, type, unit_type, status, unit
	MaxTextBytes  = 4 << 10 // text
)

// Event time accepted at all: 2000-01-01 .. 2200-01-01 (ms). Anything outside is a unit mistake (seconds for
// milliseconds, microseconds), not a real observation. The ingest doors also refuse event times more than
// Config.MaxAhead ahead of their wall clock.
const (
	MinTS = 946684800000
	MaxTS = 7258118400000
)

// StringRule bounds one string field.
type StringRule struct {
	Field string
	Col   int // column of engine.Schema
	Max   int // bytes
	Get   func(*engine.Event) string
}

// NumberRule bounds one number field: when present it must be finite and in [Min, Max]. The bounds are
// physical (no road vehicle is faster than 600 km/h) and, for the float32 columns, inside float32's range,
// so a value never turns into ±Inf when it is stored.
type NumberRule struct {
	Field    string
	Col      int
	Min, Max float64
	Get      func(*engine.Event) float64
}

// StringRules lists every string field.
var StringRules = []StringRule{
	{"id", engine.ColID, MaxIDBytes, func(e *engine.Event) string { return e.ID }},
	{"source", engine.ColSource, MaxShortBytes, func(e *engine.Event) string { return e.Source }},
	{"lane", engine.ColLane, MaxShortBytes, func(e *engine.Event) string { return e.Lane }},
	{"route", engine.ColRoute, MaxShortBytes, func(e *engine.Event) string { return e.Route }},
	{"mode", engine.ColMode, MaxShortBytes, func(e *engine.Event) string { return e.Mode }},
	{"type", engine.ColType, MaxShortBytes, func(e *engine.Event) string { return e.Type }},
	{"text", engine.ColText, MaxTextBytes, func(e *engine.Event) string { return e.Text }},
	{"unit_type", engine.ColUnitType, MaxShortBytes, func(e *engine.Event) string { return e.UnitType }},
	{"status", engine.ColStatus, MaxShortBytes, func(e *engine.Event) string { return e.Status }},
	{"unit", engine.ColUnit, MaxShortBytes, func(e *engine.Event) string { return e.Unit }},
}

// maxMeasure bounds the free-unit sensor numbers (float64 columns): within float32's range like every
// other measurement.
const maxMeasure = math.MaxFloat32

// NumberRules lists every optional number field (lat, lng and severity have rules of their own in Validate).
var NumberRules = []NumberRule{
	{"speed_kmh", engine.ColSpeed, 0, 600, func(e *engine.Event) float64 { return e.SpeedKmh }},
	{"heading_deg", engine.ColHeading, 0, 360, func(e *engine.Event) float64 { return e.HeadingDeg }},
	{"flow_vph", engine.ColFlow, 0, 100_000, func(e *engine.Event) float64 { return e.FlowVph }},
	{"occupancy", engine.ColOccupancy, 0, 1, func(e *engine.Event) float64 { return e.Occupancy }},
	{"interval_s", engine.ColInterval, 0, 86_400, func(e *engine.Event) float64 { return e.IntervalS }},
	{"delay_s", engine.ColDelay, -86_400, 86_400, func(e *engine.Event) float64 { return e.DelayS }},
	{"load", engine.ColLoad, 0, 1, func(e *engine.Event) float64 { return e.Load }},
	{"confidence", engine.ColConfidence, 0, 1, func(e *engine.Event) float64 { return e.Confidence }},
	{"count", engine.ColCount, 0, 1_000_000, func(e *engine.Event) float64 { return e.Count }},
	{"queue_m", engine.ColQueue, 0, 100_000, func(e *engine.Event) float64 { return e.QueueM }},
	{"value", engine.ColValue, -maxMeasure, maxMeasure, func(e *engine.Event) float64 { return e.Value }},
	{"threshold", engine.ColThreshold, -maxMeasure, maxMeasure, func(e *engine.Event) float64 { return e.Threshold }},
}

// Required lists the fields each kind must have besides kind, ts, id, lat and lng.
var Required = map[engine.Kind][]string{
	engine.KindProbe:    {"speed_kmh"},
	engine.KindDetector: {"flow_vph", "occupancy", "interval_s"},
	engine.KindTransit:  {"route", "speed_kmh", "mode"},
	engine.KindVideo:    {"type"},
	engine.KindReport:   {"type", "severity"},
	engine.KindUnit:     {"unit_type", "status"},
	engine.KindSensor:   {"type", "value", "unit"},
}

// EnumRule names the values an enumerated string field of a kind may take.
type EnumRule struct {
	Kind   engine.Kind
	Field  string
	Col    int
	Values []string
}

// EnumRules lists the enumerated fields.
var EnumRules = []EnumRule{
	{engine.KindTransit, "mode", engine.ColMode, []string{"bus", "tram", "metro"}},
	{engine.KindVideo, "type", engine.ColType, []string{"vehicle_count", "queue", "stalled_vehicle", "crash", "wrong_way", "pedestrian", "debris", "fire_smoke", "congestion"}},
	{engine.KindReport, "type", engine.ColType, []string{"crash", "fire", "medical", "flood", "hazard", "road_closure", "other"}},
	{engine.KindUnit, "unit_type", engine.ColUnitType, []string{"ambulance", "police", "fire", "tow", "rescue"}},
	{engine.KindUnit, "status", engine.ColStatus, []string{"available", "en_route", "on_scene", "busy", "offline"}},
}

// Lookups built from the tables.
var (
	stringRuleOf = map[string]*StringRule{}
	numberRuleOf = map[string]*NumberRule{}
	enumsOf      [8][]enumSet // by kind
)

type enumSet struct {
	rule   *EnumRule
	values map[string]bool
}

func init() {
	for i := range StringRules {
		stringRuleOf[StringRules[i].Field] = &StringRules[i]
	}
	for i := range NumberRules {
		numberRuleOf[NumberRules[i].Field] = &NumberRules[i]
	}
	for i := range EnumRules {
		r := &EnumRules[i]
		enumsOf[r.Kind] = append(enumsOf[r.Kind], enumSet{rule: r, values: set(r.Values...)})
	}
}

// StringLimit returns the byte limit of a string field (0 for a name that is not one).
func StringLimit(field string) int {
	if r := stringRuleOf[field]; r != nil {
		return r.Max
	}
	return 0
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
