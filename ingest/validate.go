package ingest

import (
	"fmt"
	"math"
	"strings"

	"citybrain/engine"
)

// FieldError is a rule of spec/events.md that an event breaks, naming the field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks e against every rule of wire format version 1 (the tables of rules.go and the cross-field
// rules below) and returns a *FieldError naming the first field that breaks one. Adapters call it before
// they emit an event.
func Validate(e *engine.Event) error {
	if e.Kind == engine.KindUnknown || e.Kind > engine.KindSensor {
		return fieldErr("kind", "must be one of probe, detector, transit, video, report, unit, sensor")
	}
	if e.TS < MinTS || e.TS > MaxTS {
		return fieldErr("ts", "%d ms is outside 2000-01-01..2200-01-01 (milliseconds expected)", e.TS)
	}
	if len(e.ID) == 0 {
		return fieldErr("id", "must be 1 to %d bytes, got 0", MaxIDBytes)
	}
	if math.IsNaN(e.Lat) || e.Lat < -90 || e.Lat > 90 {
		return fieldErr("lat", "must be a number in [-90, 90]")
	}
	if math.IsNaN(e.Lng) || e.Lng < -180 || e.Lng > 180 {
		return fieldErr("lng", "must be a number in [-180, 180]")
	}
	if e.Lat == 0 && e.Lng == 0 {
		return fieldErr("lat", "lat and lng are both 0 (no position)")
	}
	for i := range StringRules {
		r := &StringRules[i]
		if n := len(r.Get(e)); n > r.Max {
			return fieldErr(r.Field, "must be at most %d bytes, got %d", r.Max, n)
		}
	}
	for i := range NumberRules {
		r := &NumberRules[i]
		if x := r.Get(e); !math.IsNaN(x) && (math.IsInf(x, 0) || x < r.Min || x > r.Max) {
			return fieldErr(r.Field, "must be a finite number in [%g, %g], got %g", r.Min, r.Max, x)
		}
	}
	if e.Severity != 0 && (e.Severity < 1 || e.Severity > 5) {
		return fieldErr("severity", "must be an integer 1..5")
	}
	for _, f := range Required[e.Kind] {
		if !present(e, f) {
			return fieldErr(f, "is required for %s", e.Kind)
		}
	}
	for _, es := range enumsOf[e.Kind] {
		if v := stringRuleOf[es.rule.Field].Get(e); !es.values[v] {
			return fieldErr(es.rule.Field, "%q is not a %s %s (%s)", v, e.Kind, es.rule.Field, strings.Join(es.rule.Values, ", "))
		}
	}
	// Cross-field rules.
	switch e.Kind {
	case engine.KindDetector:
		if e.IntervalS == 0 {
			return fieldErr("interval_s", "must be > 0")
		}
		if e.FlowVph > 0 && !engine.Has(e.SpeedKmh) {
			return fieldErr("speed_kmh", "is required for a detector that counted vehicles (flow_vph > 0)")
		}
	case engine.KindVideo:
		switch e.Type {
		case "vehicle_count":
			if !engine.Has(e.Count) {
				return fieldErr("count", "is required for video type vehicle_count")
			}
		case "queue":
			if !engine.Has(e.QueueM) {
				return fieldErr("queue_m", "is required for video type queue")
			}
		default:
			if !engine.Has(e.Confidence) {
				return fieldErr("confidence", "is required for video type %s", e.Type)
			}
		}
	}
	return nil
}

// present reports whether the field named f has a value in e.
func present(e *engine.Event, f string) bool {
	if r := numberRuleOf[f]; r != nil {
		return engine.Has(r.Get(e))
	}
	if r := stringRuleOf[f]; r != nil {
		return r.Get(e) != ""
	}
	if f == "severity" {
		return e.Severity != 0
	}
	panic("BUG: ingest rules name an unknown field " + f)
}
