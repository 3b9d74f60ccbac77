package api

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// A delta encoded for a subscription from the delta's shared index (cells found through its tiles, each
// cell's JSON encoded once for every subscription) says what the direct path says: the viewport's views
// of the delta's cells, encoded one by one. Random cities, deltas (new, changed, emptied, removed cells) and
// viewports at every resolution, window and with or without geometry.
func TestSharedDeltaEncodingAgrees(t *testing.T) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{}, e)
	defer h.Close()
	rng := rand.New(rand.NewPCG(11, 13))
	city := geo.BBox{MinLng: 115.75, MinLat: 28.595, MaxLng: 115.85, MaxLat: 28.66}
	var cells []uint64
	seen := map[uint64]bool{}
	for len(cells) < 600 {
		c, _ := geo.CellOf(city.MinLat+rng.Float64()*(city.MaxLat-city.MinLat), city.MinLng+rng.Float64()*(city.MaxLng-city.MinLng), 9)
		if !seen[c] {
			seen[c] = true
			cells = append(cells, c)
		}
	}
	view := func(c uint64, i int) *engine.CellView {
		lat, lng := geo.Center(c)
		v := &engine.CellView{Cell: c, Res: 9, Lat: lat, Lng: lng, FreeFlowKmh: 40 + float64(i%20), UpdatedAt: 1795737600000 + int64(i)}
		for w := range v.W {
			if rng.IntN(4) > 0 { // some windows empty: not shown unless scored
				n := uint32(1 + rng.IntN(30))
				v.W[w].Events, v.W[w].Samples, v.W[w].SpeedW, v.W[w].SpeedSum = n, n, float64(n), float64(n)*rng.Float64()*70
			}
		}
		if rng.IntN(10) == 0 {
			v.IncidentScore = rng.Float64()
		}
		return v
	}
	var first []*engine.CellView
	for i, c := range cells {
		first = append(first, view(c, i))
	}
	h.mu.Lock()
	for _, res := range []int{7, 8} {
		h.smu.Lock()
		h.ensureIndex(res)
		h.smu.Unlock()
	}
	h.mu.Unlock()
	h.smu.Lock()
	h.apply(&engine.Delta{Changed: first})
	h.smu.Unlock()

	for round := 0; round < 20; round++ {
		d := &engine.Delta{Now: 1795737600000 + int64(round)*500, Incidents: []engine.Incident{{ID: "i1", Lat: 28.62, Lng: 115.8, Score: 0.7}}}
		for i, c := range cells {
			switch r := rng.IntN(10); {
			case r < 4:
				d.Changed = append(d.Changed, view(c, i+round))
			case r == 4:
				d.Removed = append(d.Removed, c)
			}
		}
		h.smu.Lock()
		ent := h.apply(d)
		h.smu.Unlock()
		h.smu.RLock()
		ix := h.newDeltaIndex(ent.changed, ent.removed, []int{7, 8})
		for k := 0; k < 60; k++ {
			w := 0.004 + rng.Float64()*0.05
			lng, lat := city.MinLng-0.01+rng.Float64()*0.1, city.MinLat-0.01+rng.Float64()*0.06
			sub := &subscription{CellQuery: CellQuery{BBox: geo.BBox{MinLng: lng, MinLat: lat, MaxLng: lng + w, MaxLat: lat + w*0.6},
				Res: 7 + rng.IntN(3), Window: rng.IntN(len(engine.Windows)), Geometry: rng.IntN(3) == 0},
				Layers: map[string]bool{"cells": true, "incidents": rng.IntN(2) == 0}}
			got := h.encodeDeltaIx(sub, ix, d.Incidents, nil, ent.seq)[frameReserve:]
			views, gone := h.viewsFor(sub, append(append([]uint64(nil), ent.changed...), ent.removed...), false)
			want := h.encode("delta", sub, views, gone, d.Incidents, ent.seq)[frameReserve:]
			if a, b := normalized(t, got), normalized(t, want); !reflect.DeepEqual(a, b) {
				t.Fatalf("round %d, viewport %+v: shared encoding\n%s\nwant\n%s", round, sub.CellQuery, got, want)
			}
		}
		h.smu.RUnlock()
	}
}

// normalized decodes a hub message with its cells and removed cells in a fixed order (encodings list them
// in the order they found them).
func normalized(t *testing.T, msg []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("cannot decode %s: %v", msg, err)
	}
	if cs, ok := m["cells"].([]any); ok {
		sort.Slice(cs, func(i, j int) bool {
			return cs[i].(map[string]any)["cell"].(string) < cs[j].(map[string]any)["cell"].(string)
		})
	}
	if rs, ok := m["removed"].([]any); ok {
		sort.Slice(rs, func(i, j int) bool { return rs[i].(string) < rs[j].(string) })
	}
	return m
}
