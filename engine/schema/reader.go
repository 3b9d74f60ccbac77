package schema

import (
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// EventReader reads rows of one record (which has Schema) into Events as ReadEvent does, with the columns
// looked up once for the record instead of once a row and field.
type EventReader struct {
	ts                                                 *array.Timestamp
	kind                                               *array.Uint8
	id, source, lane, route, mode, typ, text, unitType *array.String
	status, unit                                       *array.String
	lat, lng, value, threshold                         *array.Float64
	speed, heading, flow, occ, interval, delay, load   *array.Float32
	conf, count, queue                                 *array.Float32
	sev                                                *array.Int8
}

// NewEventReader returns a reader of rec's rows, valid while rec is.
func NewEventReader(rec arrow.Record) *EventReader {
	str := func(c int) *array.String { return rec.Column(c).(*array.String) }
	f32 := func(c int) *array.Float32 { return rec.Column(c).(*array.Float32) }
	f64 := func(c int) *array.Float64 { return rec.Column(c).(*array.Float64) }
	return &EventReader{
		ts: rec.Column(ColTS).(*array.Timestamp), kind: rec.Column(ColKind).(*array.Uint8),
		id: str(ColID), source: str(ColSource), lane: str(ColLane), route: str(ColRoute), mode: str(ColMode),
		typ: str(ColType), text: str(ColText), unitType: str(ColUnitType), status: str(ColStatus), unit: str(ColUnit),
		lat: f64(ColLat), lng: f64(ColLng), value: f64(ColValue), threshold: f64(ColThreshold),
		speed: f32(ColSpeed), heading: f32(ColHeading), flow: f32(ColFlow), occ: f32(ColOccupancy),
		interval: f32(ColInterval), delay: f32(ColDelay), load: f32(ColLoad), conf: f32(ColConfidence),
		count: f32(ColCount), queue: f32(ColQueue), sev: rec.Column(ColSeverity).(*array.Int8),
	}
}

// Read decodes row i into e, as ReadEvent(rec, i, e) does. A string equal to the one e holds in the same
// field is kept instead of copied again (an asset's id, source, type, route rarely change): e's strings must
// be strings of their own, never views into a record.
func (r *EventReader) Read(i int, e *Event) {
	e.TS = int64(r.ts.Value(i))
	e.Kind = Kind(r.kind.Value(i))
	e.ID = keepStr(r.id.Value(i), e.ID)
	e.Lat, e.Lng = r.lat.Value(i), r.lng.Value(i)
	e.Source = readStr(r.source, i, e.Source)
	e.Lane = readStr(r.lane, i, e.Lane)
	e.Route = readStr(r.route, i, e.Route)
	e.Mode = readStr(r.mode, i, e.Mode)
	e.Type = readStr(r.typ, i, e.Type)
	e.Text = readStr(r.text, i, e.Text)
	e.UnitType = readStr(r.unitType, i, e.UnitType)
	e.Status = readStr(r.status, i, e.Status)
	e.Unit = readStr(r.unit, i, e.Unit)
	e.SpeedKmh = readF32(r.speed, i)
	e.HeadingDeg = readF32(r.heading, i)
	e.FlowVph = readF32(r.flow, i)
	e.Occupancy = readF32(r.occ, i)
	e.IntervalS = readF32(r.interval, i)
	e.DelayS = readF32(r.delay, i)
	e.Load = readF32(r.load, i)
	e.Confidence = readF32(r.conf, i)
	e.Count = readF32(r.count, i)
	e.QueueM = readF32(r.queue, i)
	e.Value = readF64(r.value, i)
	e.Threshold = readF64(r.threshold, i)
	e.Severity = 0
	if r.sev.IsValid(i) {
		e.Severity = r.sev.Value(i)
	}
}

// keepStr is v (a view into a record) as a string of its own: old when equal, else a copy.
func keepStr(v, old string) string {
	if v == old {
		return old
	}
	return CloneStr(v)
}

func readStr(a *array.String, i int, old string) string {
	if a.IsNull(i) {
		return ""
	}
	return keepStr(a.Value(i), old)
}

func readF32(a *array.Float32, i int) float64 {
	if a.IsNull(i) {
		return math.NaN()
	}
	return F32(a.Value(i))
}

func readF64(a *array.Float64, i int) float64 {
	if a.IsNull(i) {
		return math.NaN()
	}
	return a.Value(i)
}
