// Package schema is the vocabulary every room of the engine shares: the event row type and its kinds, the one
// Arrow schema of every event batch (log, windows, exports, binary ingest), and the additive window sums.
// It holds no state.
package schema

import (
	"math"
)

// Kind is the kind of an event (spec/events.md "Fields every event has").
type Kind uint8

// The event kinds of wire format version 1. KindUnknown is never valid on an accepted event.
const (
	KindUnknown Kind = iota
	KindProbe
	KindDetector
	KindTransit
	KindVideo
	KindReport
	KindUnit
	KindSensor
	// NumKinds is the number of kinds including KindUnknown: arrays indexed by Kind have this length.
	NumKinds
)

var kindNames = [...]string{"unknown", "probe", "detector", "transit", "video", "report", "unit", "sensor"}

// Kinds lists every valid kind in wire order.
var Kinds = []Kind{KindProbe, KindDetector, KindTransit, KindVideo, KindReport, KindUnit, KindSensor}

// String returns the wire name of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind returns the Kind with wire name s, or KindUnknown.
func ParseKind(s string) Kind {
	for i := 1; i < len(kindNames); i++ {
		if kindNames[i] == s {
			return Kind(i)
		}
	}
	return KindUnknown
}

// Event is one validated event in the engine's terms: the row type of the Arrow schema. Optional numbers hold
// NaN when absent (see Has); optional strings are empty when absent; Severity is 0 when absent.
type Event struct {
	Kind   Kind
	TS     int64 // event time, Unix milliseconds
	ID     string
	Lat    float64
	Lng    float64
	Source string

	SpeedKmh   float64 // probe, detector, transit, unit
	HeadingDeg float64 // probe
	FlowVph    float64 // detector
	Occupancy  float64 // detector, 0..1
	IntervalS  float64 // detector, video
	Lane       string  // detector
	Route      string  // transit
	DelayS     float64 // transit
	Mode       string  // transit
	Load       float64 // transit
	Type       string  // video, report, sensor
	Confidence float64 // video
	Count      float64 // video vehicle_count
	QueueM     float64 // video queue
	Severity   int8    // report, 1..5
	Text       string  // report
	UnitType   string  // unit
	Status     string  // unit
	Value      float64 // sensor
	Unit       string  // sensor
	Threshold  float64 // sensor
}

// Absent is the value of an optional number that was not given.
var Absent = math.NaN()

// Has reports whether the optional number x was given.
func Has(x float64) bool { return !math.IsNaN(x) }

// NewEvent returns an Event of kind k with every optional number absent.
func NewEvent(k Kind) Event {
	return Event{
		Kind: k, SpeedKmh: Absent, HeadingDeg: Absent, FlowVph: Absent, Occupancy: Absent, IntervalS: Absent,
		DelayS: Absent, Load: Absent, Confidence: Absent, Count: Absent, QueueM: Absent, Value: Absent,
		Threshold: Absent,
	}
}
