package api

import (
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
