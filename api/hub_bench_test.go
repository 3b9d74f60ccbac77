package api

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
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
				n = len(h.encodeDeltaIx(sub, h.newDeltaIndex(changed, nil, []int{res}), nil, nil, 1))
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
		c := &client{h: h, out: newOutbox(4), done: make(chan struct{})}
		h.clients[c] = struct{}{}
		h.join(c, sub)
		all = append(all, c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		d := &engine.Delta{Changed: views[(i*200)%2000 : (i*200)%2000+200]}
		h.fanOut(d)
		for _, c := range all {
			c.out.drain()
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

// BenchmarkFanOutCity is the hub's work for one tick of the bench's freshness section: a city of 3,000
// base cells (the Nanchang road network's extent) that all change every tick, 1,000 clients on 1,000
// map-sized viewports (0.004–0.044° wide, one in ten rolled up to res 7 or 8, as bench.viewports draws
// them). It reports the hub's wall time and CPU time per delta (from the delta to every frame queued).
func BenchmarkFanOutCity(b *testing.B) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{QueueLen: 4}, e)
	defer h.Close()
	city := geo.BBox{MinLng: 115.750, MinLat: 28.595, MaxLng: 115.988, MaxLat: 28.741}
	rng := rand.New(rand.NewPCG(3, 5))
	seen := map[uint64]bool{}
	var cells []uint64
	for len(cells) < 3000 {
		lat := city.MinLat + rng.Float64()*(city.MaxLat-city.MinLat)
		lng := city.MinLng + rng.Float64()*(city.MaxLng-city.MinLng)
		c, _ := geo.CellOf(lat, lng, 9)
		if !seen[c] {
			seen[c] = true
			cells = append(cells, c)
		}
	}
	tick := func(i int) []*engine.CellView {
		views := make([]*engine.CellView, len(cells))
		for k, c := range cells {
			lat, lng := geo.Center(c)
			v := &engine.CellView{Cell: c, Res: 9, Lat: lat, Lng: lng, FreeFlowKmh: 50, UpdatedAt: 1795737600000 + int64(i)*500}
			v.W[0].Events, v.W[0].SpeedSum, v.W[0].SpeedW, v.W[0].Samples = 12, 12*float64(20+(k+i)%40), 12, 12
			views[k] = v
		}
		return views
	}
	h.fanOut(&engine.Delta{Changed: tick(0)})
	var all []*client
	for i := 0; i < 1000; i++ {
		w := 0.004 + rng.Float64()*0.04
		ht := w * 0.6
		lng := city.MinLng + rng.Float64()*(city.MaxLng-city.MinLng-w)
		lat := city.MinLat + rng.Float64()*(city.MaxLat-city.MinLat-ht)
		res := 9
		if r := rng.IntN(10); r == 0 {
			res = 7
		} else if r == 1 {
			res = 8
		}
		sub := &subscription{CellQuery: CellQuery{BBox: geo.BBox{MinLng: lng, MinLat: lat, MaxLng: lng + w, MaxLat: lat + ht}, Res: res},
			Layers: map[string]bool{"cells": true}}
		sub.key()
		h.mu.Lock()
		h.smu.Lock()
		h.ensureIndex(res)
		h.smu.Unlock()
		h.mu.Unlock()
		c := &client{h: h, out: newOutbox(4), done: make(chan struct{})}
		h.clients[c] = struct{}{}
		h.join(c, sub)
		all = append(all, c)
	}
	deltas := make([][]*engine.CellView, 4)
	for i := range deltas {
		deltas[i] = tick(i + 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		h.fanOut(&engine.Delta{Changed: deltas[i%len(deltas)]})
		for _, c := range all {
			c.out.drain()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/delta")
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/delta")
}
