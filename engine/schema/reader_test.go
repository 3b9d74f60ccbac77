package schema

import (
	"math"
	"math/rand"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

// EventReader.Read gives what ReadEvent gives, into a fresh Event or into one holding another row (whose
// equal strings it keeps): every kind, nulls and values, strings equal or not to the previous row's.
func TestEventReaderAgreesWithReadEvent(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewSource(3))
	strs := []string{"", "a", "cam-1", "bus-company", "水位"}
	str := func() string { return strs[rng.Intn(len(strs))] }
	num := func() float64 {
		if rng.Intn(3) == 0 {
			return math.NaN()
		}
		return float64(float32(rng.Float64() * 100))
	}
	bb := NewBatchBuilder(mem)
	for i := 0; i < 500; i++ {
		e := NewEvent(Kind(1 + rng.Intn(int(NumKinds)-1)))
		e.TS, e.ID, e.Lat, e.Lng = int64(1000+i), str()+"x", 30+rng.Float64(), 120+rng.Float64()
		e.Source, e.Lane, e.Route, e.Mode, e.Type, e.Text = str(), str(), str(), str(), str(), str()
		e.UnitType, e.Status, e.Unit = str(), str(), str()
		e.SpeedKmh, e.HeadingDeg, e.FlowVph, e.Occupancy, e.IntervalS = num(), num(), num(), num(), num()
		e.DelayS, e.Load, e.Confidence, e.Count, e.QueueM = num(), num(), num(), num(), num()
		e.Value, e.Threshold, e.Severity = num(), num(), int8(rng.Intn(6))
		bb.Append(&e, 7)
	}
	rec := bb.NewRecord()
	bb.Release()
	defer rec.Release()
	rd := NewEventReader(rec)
	var into Event
	for i := 0; i < int(rec.NumRows()); i++ {
		var want, fresh Event
		ReadEvent(rec, i, &want)
		rd.Read(i, &fresh)
		rd.Read(i, &into) // into holds row i-1
		for _, got := range []Event{fresh, into} {
			if !reflect.DeepEqual(fmtNaN(got), fmtNaN(want)) {
				t.Fatalf("row %d: Read %+v, ReadEvent %+v", i, got, want)
			}
		}
	}
}

// fmtNaN replaces NaNs (absent numbers), which DeepEqual never finds equal, by a marker.
func fmtNaN(e Event) Event {
	v := reflect.ValueOf(&e).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Float64 && math.IsNaN(f.Float()) {
			f.SetFloat(-1e300)
		}
	}
	return e
}
