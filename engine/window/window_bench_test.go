package window

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/incident"
	"citybrain/engine/schema"
	"citybrain/geo"
)

const t0 = int64(1795737600000)

// cpuTime is the process's user and system CPU time so far (ns): steadier than wall time on a shared machine.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// probeBatch is n probes of 500 vehicles driving the links of net (or spread over a city without one), at
// event times from..from+n ms.
func probeBatch(b *testing.B, net *geo.Network, n int, from int64) arrow.Record {
	b.Helper()
	bb := schema.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i := 0; i < n; i++ {
		e := schema.NewEvent(schema.KindProbe)
		e.TS, e.ID, e.SpeedKmh = from+int64(i), fmt.Sprintf("veh-%03d", i%500), float64(5+i%60)
		if net != nil {
			l := net.Links()[(i%500)*7%len(net.Links())]
			p, bearing := l.PointAt(l.GeomLengthM() * float64(i/500%10) / 10)
			e.Lat, e.Lng, e.HeadingDeg = p.Lat, p.Lng, bearing
		} else {
			e.Lat, e.Lng = 30.20+float64(i%47)*0.0021, 120.10+float64(i%43)*0.0023
		}
		c, _ := geo.CellOf(e.Lat, e.Lng, 9)
		bb.Append(&e, c)
	}
	return bb.NewRecord()
}

// BenchmarkDispatch is the window room's apply: a 4,096-event batch split by shard (and map-matched on a road
// network) and applied to the cells' buckets and raw retention, one tick per 25 batches.
func BenchmarkDispatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		net  *geo.Network
	}{{"cells", nil}, {"westlake-matched", geo.GenerateWestLake(1)}} {
		b.Run(tc.name, func(b *testing.B) {
			stop := make(chan struct{})
			var topo *incident.Topology
			if tc.net != nil {
				topo = incident.NewTopology(tc.net, 9)
			}
			s := New(Config{Res: 9, ShardRes: 5, Shards: 4, Bucket: 10 * time.Second, Retention: 15 * time.Minute,
				QueueLen: 64, DefaultFreeFlowKmh: 50, MinFreeFlowKmh: 20, MinFreeFlowSamples: 50,
				Mem: memory.DefaultAllocator, Network: tc.net, MatchWorkers: runtime.GOMAXPROCS(0)}, topo, stop)
			defer func() { close(stop); s.Close() }()
			const n = 4096
			recs := make([]arrow.Record, 8)
			for i := range recs {
				recs[i] = probeBatch(b, tc.net, n, t0+int64(i)*n)
				defer recs[i].Release()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			var now int64
			for i := 0; i < b.N; i++ {
				// The batches are reused with event times moving on (a fresh ts column), so buckets fill, seal
				// and are released as in a live run (4,096 events a second of event time).
				from := t0 + int64(i)*1000
				rec := restamp(recs[i%len(recs)], from)
				now = from + 999
				s.Dispatch(rec, uint64(i+1), now-16*time.Minute.Milliseconds(), now, now-30_000, now-30_000)
				rec.Release()
				if i%25 == 24 { // a tick per 100,000 events, as at 200,000 events/s with 500-ms ticks
					s.Tick(now, now-30_000, nil)
				}
			}
			s.Tick(now, now, nil)
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n), "cpu-ns/event")
		})
	}
}

// BenchmarkTick is one tick of the shards over a city of ~2,000 cells with 15 minutes of buckets: seal and
// release raw buckets, drop old aggregates, recompute and publish the changed views, measure the traffic rule.
func BenchmarkTick(b *testing.B) {
	stop := make(chan struct{})
	s := New(Config{Res: 9, ShardRes: 5, Shards: 4, Bucket: 10 * time.Second, Retention: 15 * time.Minute,
		QueueLen: 64, DefaultFreeFlowKmh: 50, MinFreeFlowKmh: 20, MinFreeFlowSamples: 50, Mem: memory.DefaultAllocator}, nil, stop)
	defer func() { close(stop); s.Close() }()
	const n = 4096
	var now int64
	for i := 0; i < 90; i++ { // 15 minutes of 10-s buckets
		rec := probeBatch(b, nil, n, t0+int64(i)*10_000)
		now = t0 + int64(i)*10_000 + n
		s.Dispatch(rec, uint64(i+1), t0-time.Hour.Milliseconds(), now, now-30_000, now-30_000)
		rec.Release()
	}
	s.Tick(now, now-30_000, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 500 // a new bucket every 20 ticks: every cell is visited then
		s.Tick(now, now-30_000, nil)
	}
}

// restamp returns rec with event times from, from+1000/n, ... (the other columns shared).
func restamp(rec arrow.Record, from int64) arrow.Record {
	n := int(rec.NumRows())
	tb := array.NewTimestampBuilder(memory.DefaultAllocator, rec.Schema().Field(schema.ColTS).Type.(*arrow.TimestampType))
	defer tb.Release()
	tb.Reserve(n)
	for i := 0; i < n; i++ {
		tb.UnsafeAppend(arrow.Timestamp(from + int64(i)*1000/int64(n)))
	}
	ts := tb.NewArray()
	defer ts.Release()
	cols := append([]arrow.Array(nil), rec.Columns()...)
	cols[schema.ColTS] = ts
	return array.NewRecord(rec.Schema(), cols, int64(n))
}
