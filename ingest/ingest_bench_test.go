package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/demo"
)

// nullSink stores nothing: it isolates decode, validation, cell assignment and batch building.
type nullSink struct{}

func (nullSink) Append(context.Context, arrow.Record, BatchID) (uint64, error) { return 1, nil }
func (nullSink) AppendDead(context.Context, []DeadLetter, BatchID) error       { return nil }

func BenchmarkIngestNDJSON(b *testing.B) {
	var sb strings.Builder
	const n = 5000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%.5f,"lng":%.5f,"speed_kmh":%d,"heading_deg":%d}`+"\n",
			1795737600000+int64(i)*10, i%3000, 30.2+float64(i%97)*0.001, 120.1+float64(i%89)*0.001, i%70, i%360)
	}
	body := []byte(sb.String())
	in := New(Config{}, nullSink{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		res, err := in.Ingest(context.Background(), body, "bench", 0, "")
		if err != nil || res.Accepted != n {
			b.Fatal(err, res.Accepted)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestArrow: a clean 5,000-row Arrow IPC batch of the mixed kinds, through the columnar check
// (columns.go) to the sink as it came; "rowpath" forces the row path (one invalid row at the end).
func BenchmarkIngestArrow(b *testing.B) {
	for _, name := range []string{"columnar", "rowpath"} {
		b.Run(name, func(b *testing.B) {
			const n = 5000
			in := New(Config{}, nullSink{})
			body := arrowBody(b, n, name == "rowpath")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := in.IngestArrow(context.Background(), body, "bench", "")
				if err != nil || res.Accepted < n-1 {
					b.Fatal(err, res.Accepted)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkIngestMixedJSON: a 2,000-event NDJSON batch of the demo city's mix (probes, videos, detectors,
// transit, units, ...) moved to random points at full float precision, as the bench harness sends it over
// NATS JSON, through decode, validation, cells and batch building (null sink).
func BenchmarkIngestMixedJSON(b *testing.B) {
	city, err := demo.New(demo.Config{Seed: 7, Speedup: 0, Duration: time.Hour, IncidentEvery: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	var pool []engine.Event
	errFull := errors.New("full")
	city.Run(context.Background(), func(evs []engine.Event) error {
		pool = append(pool, evs...)
		if len(pool) >= 20000 {
			return errFull
		}
		return nil
	})
	rng := rand.New(rand.NewPCG(3, 5))
	const n = 2000
	var body []byte
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		ev := pool[rng.IntN(len(pool))]
		ev.Lat, ev.Lng, ev.TS = 28.6+rng.Float64()*0.1, 115.8+rng.Float64()*0.1, now-int64(rng.IntN(2000))
		body = append(AppendJSON(body, &ev), '\n')
	}
	in := New(Config{}, nullSink{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := in.Ingest(context.Background(), body, "bench", 0, fmt.Sprint(i))
		if err != nil || res.Accepted != n {
			b.Fatal(err, res.Accepted, res.Rejected)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	// CPU time per event (garbage collection included): steadier than the wall clock on a shared machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*n), "cpu-ns/event")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestReaderArrow: an Arrow body read from a stream (as an HTTP body) and ingested (null sink), its
// length known up front ("sized", an HTTP Content-Length) or not ("unsized", a gzip body): the sized read fills
// one buffer instead of copying and clearing it at each doubling.
func BenchmarkIngestReaderArrow(b *testing.B) {
	body := arrowBody(b, 5000, false)
	for _, c := range []struct {
		name string
		size int64
	}{{"sized", int64(len(body))}, {"unsized", -1}} {
		b.Run(c.name, func(b *testing.B) {
			in := New(Config{}, nullSink{})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				res, err := in.IngestReader(context.Background(), bytes.NewReader(body), c.size, true, "bench", engine.KindUnknown, "")
				if err != nil || res.Accepted != 5000 {
					b.Fatal(err, res.Accepted)
				}
			}
		})
	}
}

// arrowBody is an Arrow IPC stream of one n-row batch of the mixed kinds, correctly celled; with badLast its
// last row has an invalid latitude (the row path).
func arrowBody(tb testing.TB, n int, badLast bool) []byte {
	bases := columnBases()
	bb := engine.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i := 0; i < n; i++ {
		ev := bases[i%len(bases)]
		ev.TS += int64(i) * 10
		ev.ID = fmt.Sprintf("veh-%d", i%3000)
		ev.Lat, ev.Lng = 30.2+float64(i%97)*0.001, 120.1+float64(i%89)*0.001
		if badLast && i == n-1 {
			ev.Lat = 91
		}
		cell, _ := geo.CellOf(ev.Lat, ev.Lng, geo.DefaultRes)
		bb.Append(&ev, cell)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
