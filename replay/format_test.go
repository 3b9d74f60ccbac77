package replay

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/geo"
)

// testEvents returns n events of every kind around Hangzhou from t0, one every 100 ms, with optional fields
// present and absent.
func testEvents(n int, t0 int64) []engine.Event {
	out := make([]engine.Event, 0, n)
	for i := 0; i < n; i++ {
		k := engine.Kinds[i%len(engine.Kinds)]
		e := engine.NewEvent(k)
		e.TS = t0 + int64(i)*100
		e.ID = "dev-" + string(rune('a'+i%26))
		e.Lat, e.Lng = 30.2+float64(i%37)*0.003, 120.1+float64(i%41)*0.003
		switch k {
		case engine.KindProbe:
			e.SpeedKmh = float64(i%90) + 0.5
			if i%3 == 0 {
				e.HeadingDeg = 90
			}
		case engine.KindDetector:
			e.FlowVph, e.Occupancy, e.SpeedKmh, e.IntervalS, e.Lane = 1320, 0.31, 18.2, 30, "2"
		case engine.KindTransit:
			e.Route, e.SpeedKmh, e.DelayS, e.Mode = "B1", 21.5, 40, "bus"
		case engine.KindVideo:
			e.Type, e.Confidence = "stalled_vehicle", 0.83
		case engine.KindReport:
			e.Type, e.Severity, e.Source, e.Text = "crash", 3, "hotline-122", "two cars, \"blocked\" lane"
		case engine.KindUnit:
			e.UnitType, e.Status = "ambulance", "available"
		case engine.KindSensor:
			e.Type, e.Value, e.Unit, e.Threshold = "water_level", 0.42, "m", 0.3
		}
		out = append(out, e)
	}
	return out
}

// buildBatches splits events into batches of the given sizes.
func buildBatches(t *testing.T, mem memory.Allocator, events []engine.Event, sizes []int) []arrow.Record {
	t.Helper()
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	var out []arrow.Record
	i := 0
	for _, n := range sizes {
		for j := 0; j < n; j++ {
			e := events[i]
			cell, err := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
			if err != nil {
				t.Fatal(err)
			}
			bb.Append(&e, cell)
			i++
		}
		out = append(out, bb.NewRecord())
	}
	return out
}

func readAll(t *testing.T, r BatchReader) (events []engine.Event, cells []uint64, sizes []int) {
	t.Helper()
	for {
		rec, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		sizes = append(sizes, int(rec.NumRows()))
		for i := 0; i < int(rec.NumRows()); i++ {
			var e engine.Event
			engine.ReadEvent(rec, i, &e)
			events = append(events, e)
			cells = append(cells, rec.Column(engine.ColCell).(interface{ Value(int) uint64 }).Value(i))
		}
		rec.Release()
	}
}

// sameEvent compares events field by field, NaN equal to NaN.
func sameEvent(a, b engine.Event) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		x, y := va.Field(i), vb.Field(i)
		if x.Kind() == reflect.Float64 {
			if !(x.Float() == y.Float() || math.IsNaN(x.Float()) && math.IsNaN(y.Float())) {
				return false
			}
			continue
		}
		if x.Interface() != y.Interface() {
			return false
		}
	}
	return true
}

func TestExportFormatsRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatArrow, FormatParquet, FormatNDJSON} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			events := testEvents(700, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
			sizes := []int{1, 5, 300, 2, 392}
			recs := buildBatches(t, mem, events, sizes)
			path := filepath.Join(t.TempDir(), "out"+f.Ext())
			fh, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(fh, f, mem)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			r, err := OpenFile(path, geo.DefaultRes, mem)
			if err != nil {
				t.Fatal(err)
			}
			got, cells, gotSizes := readAll(t, r)
			r.Close()
			r.Close() // twice is safe
			if !reflect.DeepEqual(gotSizes, sizes) {
				t.Errorf("batch sizes %v, want %v (the log's batch boundaries)", gotSizes, sizes)
			}
			if len(got) != len(events) {
				t.Fatalf("%d events back, want %d", len(got), len(events))
			}
			for i := range events {
				if !sameEvent(got[i], events[i]) {
					t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], events[i])
				}
				want, _ := geo.CellOf(events[i].Lat, events[i].Lng, geo.DefaultRes)
				if cells[i] != want {
					t.Fatalf("event %d: cell %x, want %x", i, cells[i], want)
				}
			}
		})
	}
}

func TestReadFileRecomputesCellsAtAnotherRes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	events := testEvents(50, 1795737600000)
	recs := buildBatches(t, mem, events, []int{50})
	path := filepath.Join(t.TempDir(), "x.arrow")
	fh, _ := os.Create(path)
	w, _ := NewWriter(fh, FormatArrow, mem)
	w.Write(recs[0])
	recs[0].Release()
	w.Close()
	fh.Close()
	r, err := OpenFile(path, 8, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, cells, _ := readAll(t, r)
	for i, c := range cells {
		want, _ := geo.CellOf(events[i].Lat, events[i].Lng, 8)
		if c != want {
			t.Fatalf("row %d: cell %x, want the res-8 cell %x", i, c, want)
		}
	}
}

func TestFilterTime(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	t0 := int64(1795737600000)
	recs := buildBatches(t, mem, testEvents(100, t0), []int{100})
	defer recs[0].Release()
	from, to := time.UnixMilli(t0+1000), time.UnixMilli(t0+2000)
	out := FilterTime(recs[0], from, to, mem)
	if out == nil || out.NumRows() != 10 {
		t.Fatalf("filter [1s, 2s) of 100 events 100 ms apart: %v rows, want 10", out)
	}
	out.Release()
	if out := FilterTime(recs[0], time.UnixMilli(t0+1e6), time.Time{}, mem); out != nil {
		t.Errorf("nothing in range gave %d rows", out.NumRows())
	}
	all := FilterTime(recs[0], time.Time{}, time.Time{}, mem)
	if all != recs[0] {
		t.Errorf("an unbounded filter copied the record")
	}
	all.Release()
}
