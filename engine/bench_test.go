package engine

import (
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/geo"
)

// benchBatch is n probes spread over ~2,000 cells of a city.
func benchBatch(b *testing.B, mem memory.Allocator, n int, from int64) *BatchBuilder {
	b.Helper()
	bb := NewBatchBuilder(mem)
	for i := 0; i < n; i++ {
		e := probe(from+int64(i%1000)*10, 30.20+float64(i%47)*0.0021, 120.10+float64(i%43)*0.0023, float64(5+i%60))
		c, _ := geo.CellOf(e.Lat, e.Lng, 9)
		bb.Append(&e, c)
	}
	return bb
}

func BenchmarkCellAssignment(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		geo.CellOf(30.2+float64(i%1000)*1e-4, 120.1+float64(i%997)*1e-4, 9)
	}
}

func BenchmarkBatchBuild(b *testing.B) {
	b.ReportAllocs()
	e := probe(t0, lat, lng, 30)
	bb := NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i := 0; i < b.N; i++ {
		bb.Append(&e, 1)
		if bb.Len() == 4096 {
			bb.NewRecord().Release()
		}
	}
}

// BenchmarkWindowAppend is the engine's ingest path: dispatch a 4,096-event batch to the shards and apply it
// to the cells' buckets (one tick per 25 batches, as at 100k events/s with 1 s ticks).
func BenchmarkWindowAppend(b *testing.B) {
	b.Run("aggregates-only", func(b *testing.B) { benchAppend(b, -1) })
	b.Run("with-raw-retention", func(b *testing.B) { benchAppend(b, 15*time.Minute) })
}

func benchAppend(b *testing.B, retention time.Duration) {
	e := New(Config{Tick: time.Hour, Retention: retention})
	defer e.Stop()
	const n = 4096
	bb := benchBatch(b, memory.DefaultAllocator, n, t0)
	rec := bb.NewRecord()
	bb.Release()
	defer rec.Release()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Apply(uint64(i+1), rec)
		if i%25 == 0 {
			e.Flush()
		}
	}
	e.Flush()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAggregation is a query of every cell of the city, rolled up to resolution 7.
func BenchmarkAggregation(b *testing.B) {
	e := New(Config{Tick: time.Hour})
	defer e.Stop()
	for i := 0; i < 20; i++ {
		bb := benchBatch(b, memory.DefaultAllocator, 4096, t0+int64(i)*10_000)
		rec := bb.NewRecord()
		bb.Release()
		e.Apply(uint64(i+1), rec)
		rec.Release()
	}
	e.Flush()
	all := geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		views, _ := e.Cells(7, all)
		if len(views) == 0 {
			b.Fatal("no cells")
		}
	}
}
