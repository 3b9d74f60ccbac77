package api

import (
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/engine/queue"
	"citybrain/geo"
)

// BenchmarkDeltaEncode encodes a tick's delta of 2,000 changed cells for one viewport (what the hub does
// once per distinct subscription per tick).
func BenchmarkDeltaEncode(b *testing.B) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	bb := engine.NewBatchBuilder(memory.DefaultAllocator)
	for i := 0; i < 2000; i++ {
		ev := engine.NewEvent(engine.KindProbe)
		ev.TS, ev.ID, ev.SpeedKmh = 1795737600000, "v", float64(i%60)
		ev.Lat, ev.Lng = 30.20+float64(i%50)*0.002, 120.10+float64(i/50)*0.002
		c, _ := geo.CellOf(ev.Lat, ev.Lng, 9)
		bb.Append(&ev, c)
	}
	rec := bb.NewRecord()
	bb.Release()
	e.Apply(1, rec)
	rec.Release()
	e.Flush()
	h := NewHub(HubConfig{}, e)
	defer h.Close()
	var changed []uint64
	for _, v := range e.All() {
		changed = append(changed, v.Cell)
	}
	for _, res := range []int{9, 7} {
		sub := &subscription{CellQuery: CellQuery{BBox: geo.BBox{MinLng: 120, MinLat: 30, MaxLng: 121, MaxLat: 31}, Res: res}, Layers: map[string]bool{"cells": true}}
		h.ensureIndex(res)
		b.Run(map[int]string{9: "res9", 7: "res7-rollup"}[res], func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for i := 0; i < b.N; i++ {
				n = len(h.encodeDeltaIx(sub, h.newDeltaIndex(changed, nil), nil, nil, 1))
			}
			b.SetBytes(int64(n))
		})
	}
}

// BenchmarkFanOut is the hub's work for one delta: 200 changed cells, 10,000 clients over 1,000 distinct
// viewports; each viewport's frame is encoded and prepared once, then queued to its clients (the sockets are
// not part of it: see the bench harness' fan-out section for the whole path).
func BenchmarkFanOut(b *testing.B) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{QueueLen: 4}, e)
	defer h.Close()
	var views []*engine.CellView
	for i := 0; i < 2000; i++ {
		lat, lng := 30.20+float64(i%50)*0.002, 120.10+float64(i/50)*0.002
		c, _ := geo.CellOf(lat, lng, 9)
		v := &engine.CellView{Cell: c, Res: 9, Lat: lat, Lng: lng, FreeFlowKmh: 50}
		v.W[0].Events, v.W[0].SpeedSum, v.W[0].SpeedW, v.W[0].Samples = 3, 90, 3, 3
		views = append(views, v)
	}
	h.fanOut(&engine.Delta{Changed: views})
	const clients, viewports = 10_000, 1_000
	var all []*client
	for i := 0; i < clients; i++ {
		k := i % viewports
		lng, lat := 120.10+float64(k%40)*0.002, 30.20+float64(k/40)*0.002
		sub := &subscription{CellQuery: CellQuery{BBox: geo.BBox{MinLng: lng, MinLat: lat, MaxLng: lng + 0.02, MaxLat: lat + 0.015}, Res: 9},
			Layers: map[string]bool{"cells": true}}
		c := &client{h: h, sub: sub, send: queue.New[*frame]("ws-client", 4, queue.Reject), done: make(chan struct{})}
		h.clients[c] = struct{}{}
		all = append(all, c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		d := &engine.Delta{Changed: views[(i*200)%2000 : (i*200)%2000+200]}
		h.fanOut(d)
		for _, c := range all {
			c.send.Drain()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*clients), "ns/message")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*clients), "cpu-ns/message")
}

// cpuTime is the process's user and system CPU time so far (ns): on a shared machine, CPU per unit of work
// is steadier than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
