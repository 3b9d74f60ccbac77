package ingest

import (
	"fmt"
	"math"

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

// Bounds of event time accepted: 2000-01-01 .. 2200-01-01. Anything outside is a unit mistake (seconds for
// milliseconds, microseconds), not a real observation.
const (
	minTS = 946684800000
	maxTS = 7258118400000
)

var (
	videoTypes  = set("vehicle_count", "queue", "stalled_vehicle", "crash", "wrong_way", "pedestrian", "debris", "fire_smoke", "congestion")
	reportTypes = set("crash", "fire", "medical", "flood", "hazard", "road_closure", "other")
	unitTypes   = set("ambulance", "police", "fire", "tow", "rescue")
	unitStatus  = set("available", "en_route", "on_scene", "busy", "offline")
	transitMode = set("bus", "tram", "metro")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Validate checks e against every rule of wire format version 1 and returns a *FieldError naming the first
// field that breaks one. Adapters call it before they emit an event.
func Validate(e *engine.Event) error {
	if e.Kind == engine.KindUnknown || e.Kind > engine.KindSensor {
		return fieldErr("kind", "must be one of probe, detector, transit, video, report, unit, sensor")
	}
	if e.TS < minTS || e.TS > maxTS {
		return fieldErr("ts", "%d ms is outside 2000-01-01..2200-01-01 (milliseconds expected)", e.TS)
	}
	if len(e.ID) == 0 || len(e.ID) > 128 {
		return fieldErr("id", "must be 1 to 128 bytes, got %d", len(e.ID))
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
	switch e.Kind {
	case engine.KindProbe:
		if err := required("speed_kmh", e.SpeedKmh, 0, math.Inf(1)); err != nil {
			return err
		}
		if err := optional("heading_deg", e.HeadingDeg, 0, 360); err != nil {
			return err
		}
	case engine.KindDetector:
		if err := required("flow_vph", e.FlowVph, 0, math.Inf(1)); err != nil {
			return err
		}
		if err := required("occupancy", e.Occupancy, 0, 1); err != nil {
			return err
		}
		if err := required("interval_s", e.IntervalS, 0, math.Inf(1)); err != nil {
			return err
		}
		if e.IntervalS == 0 {
			return fieldErr("interval_s", "must be > 0")
		}
		if e.FlowVph > 0 {
			if err := required("speed_kmh", e.SpeedKmh, 0, math.Inf(1)); err != nil {
				return err
			}
		} else if err := optional("speed_kmh", e.SpeedKmh, 0, math.Inf(1)); err != nil {
			return err
		}
	case engine.KindTransit:
		if e.Route == "" {
			return fieldErr("route", "is required for transit")
		}
		if err := required("speed_kmh", e.SpeedKmh, 0, math.Inf(1)); err != nil {
			return err
		}
		if !transitMode[e.Mode] {
			return fieldErr("mode", "must be one of bus, tram, metro")
		}
		if err := optional("delay_s", e.DelayS, math.Inf(-1), math.Inf(1)); err != nil {
			return err
		}
		if err := optional("load", e.Load, 0, 1); err != nil {
			return err
		}
	case engine.KindVideo:
		if !videoTypes[e.Type] {
			return fieldErr("type", "%q is not a video type (vehicle_count, queue, stalled_vehicle, crash, wrong_way, pedestrian, debris, fire_smoke, congestion)", e.Type)
		}
		switch e.Type {
		case "vehicle_count":
			if err := required("count", e.Count, 0, math.Inf(1)); err != nil {
				return err
			}
			if err := optional("confidence", e.Confidence, 0, 1); err != nil {
				return err
			}
		case "queue":
			if err := required("queue_m", e.QueueM, 0, math.Inf(1)); err != nil {
				return err
			}
			if err := optional("confidence", e.Confidence, 0, 1); err != nil {
				return err
			}
		default:
			if err := required("confidence", e.Confidence, 0, 1); err != nil {
				return err
			}
		}
		if err := optional("interval_s", e.IntervalS, 0, math.Inf(1)); err != nil {
			return err
		}
	case engine.KindReport:
		if !reportTypes[e.Type] {
			return fieldErr("type", "%q is not a report type (crash, fire, medical, flood, hazard, road_closure, other)", e.Type)
		}
		if e.Severity < 1 || e.Severity > 5 {
			return fieldErr("severity", "must be an integer 1..5")
		}
	case engine.KindUnit:
		if !unitTypes[e.UnitType] {
			return fieldErr("unit_type", "%q is not a unit type (ambulance, police, fire, tow, rescue)", e.UnitType)
		}
		if !unitStatus[e.Status] {
			return fieldErr("status", "%q is not a unit status (available, en_route, on_scene, busy, offline)", e.Status)
		}
		if err := optional("speed_kmh", e.SpeedKmh, 0, math.Inf(1)); err != nil {
			return err
		}
	case engine.KindSensor:
		if e.Type == "" {
			return fieldErr("type", "is required for sensor")
		}
		if err := required("value", e.Value, math.Inf(-1), math.Inf(1)); err != nil {
			return err
		}
		if e.Unit == "" {
			return fieldErr("unit", "is required for sensor")
		}
		if err := optional("threshold", e.Threshold, math.Inf(-1), math.Inf(1)); err != nil {
			return err
		}
	}
	return nil
}

func required(field string, x, lo, hi float64) error {
	if math.IsNaN(x) {
		return fieldErr(field, "is required")
	}
	return optional(field, x, lo, hi)
}

func optional(field string, x, lo, hi float64) error {
	if math.IsNaN(x) {
		return nil
	}
	if math.IsInf(x, 0) || x < lo || x > hi {
		switch {
		case math.IsInf(lo, -1) && math.IsInf(hi, 1):
			return fieldErr(field, "must be a finite number")
		case math.IsInf(hi, 1):
			return fieldErr(field, "must be >= %g, got %g", lo, x)
		default:
			return fieldErr(field, "must be in [%g, %g], got %g", lo, hi, x)
		}
	}
	return nil
}
