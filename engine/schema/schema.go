package schema

import (
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Column indexes of Schema, in order.
const (
	ColTS = iota
	ColKind
	ColID
	ColLat
	ColLng
	ColCell
	ColSource
	ColSpeed
	ColHeading
	ColFlow
	ColOccupancy
	ColInterval
	ColLane
	ColRoute
	ColDelay
	ColMode
	ColLoad
	ColType
	ColConfidence
	ColCount
	ColQueue
	ColSeverity
	ColText
	ColUnitType
	ColStatus
	ColValue
	ColUnit
	ColThreshold
	NumCols
)

// SchemaVersion is written into the schema metadata; readers refuse other versions.
const SchemaVersion = "citybrain.events.v1"

// Schema is the one engine schema of every event batch: the log, the windows, exports and the binary ingest
// path all carry it. `cell` is the H3 cell at the engine's base resolution, assigned at the edge. Measurement
// columns are float32 (sensor precision); absent optional fields are null.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "kind", Type: arrow.PrimitiveTypes.Uint8},
	{Name: "id", Type: arrow.BinaryTypes.String},
	{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
	{Name: "lng", Type: arrow.PrimitiveTypes.Float64},
	{Name: "cell", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "source", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "speed_kmh", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "heading_deg", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "flow_vph", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "occupancy", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "interval_s", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "lane", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "route", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "delay_s", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "mode", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "load", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "type", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "confidence", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "count", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "queue_m", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "severity", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "unit_type", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "unit", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "threshold", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, func() *arrow.Metadata { m := arrow.NewMetadata([]string{"schema"}, []string{SchemaVersion}); return &m }())

// CheckSchema returns an error naming the first difference between s and Schema.
func CheckSchema(s *arrow.Schema) error {
	if s.NumFields() != Schema.NumFields() {
		return fmt.Errorf("cannot use batch schema: %d columns, want %d (%s)", s.NumFields(), Schema.NumFields(), SchemaVersion)
	}
	for i, f := range Schema.Fields() {
		g := s.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return fmt.Errorf("cannot use batch schema: column %d is %s %s, want %s %s", i, g.Name, g.Type, f.Name, f.Type)
		}
		if !f.Nullable && g.Nullable {
			// A nullable column where the engine needs a value is only a problem if it holds nulls; the
			// binary ingest path checks null counts row by row.
			continue
		}
	}
	return nil
}

// BatchBuilder builds record batches of Schema from events. Owned by one goroutine.
type BatchBuilder struct {
	b    *array.RecordBuilder
	rows int

	ts       *array.TimestampBuilder
	kind     *array.Uint8Builder
	id       *array.StringBuilder
	lat, lng *array.Float64Builder
	cell     *array.Uint64Builder
	f32      [NumCols]*f32Col // the measurement columns (f32col.go); their builders in b stay empty
	f64      [NumCols]*array.Float64Builder
	str      [NumCols]*strCol // the optional string columns (strcol.go); their builders in b stay empty
	severity *array.Int8Builder
}

// NewBatchBuilder returns a builder allocating from mem. Call Release when done.
func NewBatchBuilder(mem memory.Allocator) *BatchBuilder {
	rb := array.NewRecordBuilder(mem, Schema)
	bb := &BatchBuilder{b: rb}
	bb.ts = rb.Field(ColTS).(*array.TimestampBuilder)
	bb.kind = rb.Field(ColKind).(*array.Uint8Builder)
	bb.id = rb.Field(ColID).(*array.StringBuilder)
	bb.lat = rb.Field(ColLat).(*array.Float64Builder)
	bb.lng = rb.Field(ColLng).(*array.Float64Builder)
	bb.cell = rb.Field(ColCell).(*array.Uint64Builder)
	bb.severity = rb.Field(ColSeverity).(*array.Int8Builder)
	for i := ColSource; i < NumCols; i++ {
		switch fb := rb.Field(i).(type) {
		case *array.Float32Builder:
			bb.f32[i] = &f32Col{mem: mem}
		case *array.Float64Builder:
			bb.f64[i] = fb
		case *array.StringBuilder:
			bb.str[i] = &strCol{mem: mem}
		}
	}
	return bb
}

// Reserve makes room for n more rows in every column (and n short ids), so that appending them does not
// grow the buffers step by step (each growth a reallocation and a copy).
func (bb *BatchBuilder) Reserve(n int) {
	if n <= 0 {
		return
	}
	for i, f := range bb.b.Fields() {
		if bb.str[i] != nil {
			bb.str[i].reserve(n)
		} else if bb.f32[i] != nil {
			bb.f32[i].reserve(n)
		} else {
			f.Reserve(n)
		}
	}
	bb.id.ReserveData(16 * n)
}

// Len is the number of rows appended since the last NewRecord.
func (bb *BatchBuilder) Len() int { return bb.rows }

// Release frees the builder.
func (bb *BatchBuilder) Release() {
	bb.b.Release()
	for i := range bb.str {
		if bb.str[i] != nil {
			bb.str[i].release()
		}
		if bb.f32[i] != nil {
			bb.f32[i].release()
		}
	}
}

// Append adds e with its base-resolution cell.
func (bb *BatchBuilder) Append(e *Event, cell uint64) {
	bb.rows++
	bb.ts.Append(arrow.Timestamp(e.TS))
	bb.kind.Append(uint8(e.Kind))
	bb.id.Append(e.ID)
	bb.lat.Append(e.Lat)
	bb.lng.Append(e.Lng)
	bb.cell.Append(cell)
	bb.appendStr(ColSource, e.Source)
	bb.appendF32(ColSpeed, e.SpeedKmh)
	bb.appendF32(ColHeading, e.HeadingDeg)
	bb.appendF32(ColFlow, e.FlowVph)
	bb.appendF32(ColOccupancy, e.Occupancy)
	bb.appendF32(ColInterval, e.IntervalS)
	bb.appendStr(ColLane, e.Lane)
	bb.appendStr(ColRoute, e.Route)
	bb.appendF32(ColDelay, e.DelayS)
	bb.appendStr(ColMode, e.Mode)
	bb.appendF32(ColLoad, e.Load)
	bb.appendStr(ColType, e.Type)
	bb.appendF32(ColConfidence, e.Confidence)
	bb.appendF32(ColCount, e.Count)
	bb.appendF32(ColQueue, e.QueueM)
	if e.Severity == 0 {
		bb.severity.AppendNull()
	} else {
		bb.severity.Append(e.Severity)
	}
	bb.appendStr(ColText, e.Text)
	bb.appendStr(ColUnitType, e.UnitType)
	bb.appendStr(ColStatus, e.Status)
	bb.appendF64(ColValue, e.Value)
	bb.appendStr(ColUnit, e.Unit)
	bb.appendF64(ColThreshold, e.Threshold)
}

// AppendRow copies row i of rec (which has Schema) into the builder.
func (bb *BatchBuilder) AppendRow(rec arrow.Record, i int) {
	var e Event
	ReadEvent(rec, i, &e)
	bb.Append(&e, rec.Column(ColCell).(*array.Uint64).Value(i))
}

func (bb *BatchBuilder) appendF32(col int, x float64) {
	if math.IsNaN(x) {
		bb.f32[col].appendNull()
	} else {
		bb.f32[col].appendValue(float32(x))
	}
}

func (bb *BatchBuilder) appendF64(col int, x float64) {
	if math.IsNaN(x) {
		bb.f64[col].AppendNull()
	} else {
		bb.f64[col].Append(x)
	}
}

func (bb *BatchBuilder) appendStr(col int, s string) { bb.str[col].appendString(s) }

// NewRecord returns the rows appended so far as a record (the caller owns it and must Release it) and resets
// the builder.
func (bb *BatchBuilder) NewRecord() arrow.Record {
	rows := bb.rows
	bb.rows = 0
	var cols [NumCols]arrow.Array
	for i, f := range bb.b.Fields() {
		if bb.str[i] != nil {
			cols[i] = bb.str[i].newArray()
		} else if bb.f32[i] != nil {
			cols[i] = bb.f32[i].newArray()
		} else {
			cols[i] = f.NewArray()
		}
		if cols[i].Len() != rows {
			panic(fmt.Sprintf("schema: column %d has %d rows, the batch %d", i, cols[i].Len(), rows))
		}
	}
	rec := array.NewRecord(Schema, cols[:], int64(rows))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// ReadEvent decodes row i of rec (which has Schema) into e. Strings are copied out of the record's buffers,
// so e stays valid after rec is released.
func ReadEvent(rec arrow.Record, i int, e *Event) {
	*e = Event{
		TS:       int64(rec.Column(ColTS).(*array.Timestamp).Value(i)),
		Kind:     Kind(rec.Column(ColKind).(*array.Uint8).Value(i)),
		ID:       CloneStr(rec.Column(ColID).(*array.String).Value(i)),
		Lat:      rec.Column(ColLat).(*array.Float64).Value(i),
		Lng:      rec.Column(ColLng).(*array.Float64).Value(i),
		Source:   ReadStr(rec, ColSource, i),
		Lane:     ReadStr(rec, ColLane, i),
		Route:    ReadStr(rec, ColRoute, i),
		Mode:     ReadStr(rec, ColMode, i),
		Type:     ReadStr(rec, ColType, i),
		Text:     ReadStr(rec, ColText, i),
		UnitType: ReadStr(rec, ColUnitType, i),
		Status:   ReadStr(rec, ColStatus, i),
		Unit:     ReadStr(rec, ColUnit, i),

		SpeedKmh:   ReadF32(rec, ColSpeed, i),
		HeadingDeg: ReadF32(rec, ColHeading, i),
		FlowVph:    ReadF32(rec, ColFlow, i),
		Occupancy:  ReadF32(rec, ColOccupancy, i),
		IntervalS:  ReadF32(rec, ColInterval, i),
		DelayS:     ReadF32(rec, ColDelay, i),
		Load:       ReadF32(rec, ColLoad, i),
		Confidence: ReadF32(rec, ColConfidence, i),
		Count:      ReadF32(rec, ColCount, i),
		QueueM:     ReadF32(rec, ColQueue, i),
		Value:      ReadF64(rec, ColValue, i),
		Threshold:  ReadF64(rec, ColThreshold, i),
	}
	if sev := rec.Column(ColSeverity).(*array.Int8); sev.IsValid(i) {
		e.Severity = sev.Value(i)
	}
}

// CloneStr copies s (a view into an Arrow buffer) so it outlives the record.
func CloneStr(s string) string { return string([]byte(s)) }

// ReadStr returns the string in column col, row i of rec (copied), or "" when null.
func ReadStr(rec arrow.Record, col, i int) string {
	a := rec.Column(col).(*array.String)
	if a.IsNull(i) {
		return ""
	}
	return CloneStr(a.Value(i))
}

// ReadF32 widens a float32 measurement back to the shortest float64 that prints the same, so 18.2 stays 18.2.
func ReadF32(rec arrow.Record, col, i int) float64 {
	a := rec.Column(col).(*array.Float32)
	if a.IsNull(i) {
		return math.NaN()
	}
	return F32(a.Value(i))
}

// ReadF64 returns the float64 in column col, row i of rec, or NaN when null.
func ReadF64(rec arrow.Record, col, i int) float64 {
	a := rec.Column(col).(*array.Float64)
	if a.IsNull(i) {
		return math.NaN()
	}
	return a.Value(i)
}
