package api

import (
	"math"
	"sync"

	"citybrain/engine"
	"citybrain/geo"
)

// The hub's cell state and tiling: the latest view of every cell (from deltas), a per-resolution parent index
// for roll-ups, and a per-delta index of changed cells by lat/lng tile so each subscription visits only the
// tiles its viewport overlaps.

func (h *Hub) indexAdd(cell uint64) {
	for res, m := range h.parents {
		p := geo.ParentFast(cell, res)
		if m[p] == nil {
			m[p] = map[uint64]struct{}{}
		}
		m[p][cell] = struct{}{}
	}
}

func (h *Hub) indexRemove(cell uint64) {
	for res, m := range h.parents {
		p := geo.ParentFast(cell, res)
		delete(m[p], cell)
		if len(m[p]) == 0 {
			delete(m, p)
		}
	}
}

// ensureIndex builds the parent index of res (smu held for writing).
func (h *Hub) ensureIndex(res int) {
	if res >= h.baseRes || h.parents[res] != nil {
		return
	}
	m := map[uint64]map[uint64]struct{}{}
	for c := range h.state {
		p := geo.ParentFast(c, res)
		if m[p] == nil {
			m[p] = map[uint64]struct{}{}
		}
		m[p][c] = struct{}{}
	}
	h.parents[res] = m
}

// viewsFor returns the current views of sub's viewport for the given base cells (nil: every cell), and the
// cells of the viewport that no longer exist (smu held for reading).
func (h *Hub) viewsFor(sub *subscription, cells []uint64, all bool) (views []*engine.CellView, gone []uint64) {
	return h.viewsForIx(sub, cells, all, nil)
}

// viewsForIx is viewsFor with the rollups of one delta shared between subscriptions (ix may be nil).
func (h *Hub) viewsForIx(sub *subscription, cells []uint64, all bool, ix *deltaIndex) (views []*engine.CellView, gone []uint64) {
	if sub.Res >= h.baseRes {
		add := func(c uint64) {
			v := h.state[c]
			if v == nil {
				if lat, lng := geo.Center(c); sub.BBox.Contains(lat, lng) {
					gone = append(gone, c)
				}
				return
			}
			if sub.BBox.Contains(v.Lat, v.Lng) && hasData(v, sub.Window) {
				views = append(views, v)
			}
		}
		if all {
			for c := range h.state {
				add(c)
			}
		} else {
			for _, c := range cells {
				add(c)
			}
		}
		return views, gone
	}
	idx := h.parents[sub.Res]
	parents := map[uint64]struct{}{}
	if all {
		for p := range idx {
			parents[p] = struct{}{}
		}
	} else {
		for _, c := range cells {
			parents[geo.ParentFast(c, sub.Res)] = struct{}{}
		}
	}
	for p := range parents {
		kids := idx[p]
		if len(kids) == 0 {
			if lat, lng := geo.Center(p); sub.BBox.Contains(lat, lng) {
				gone = append(gone, p)
			}
			continue
		}
		var v *engine.CellView
		if ix != nil {
			v = ix.rollup(sub.Res, p)
		}
		if v == nil {
			var base []*engine.CellView
			for c := range kids {
				base = append(base, h.state[c])
			}
			v = engine.Rollup(base, sub.Res)[0]
			if ix != nil {
				ix.setRollup(sub.Res, p, v)
			}
		}
		if sub.BBox.Contains(v.Lat, v.Lng) && hasData(v, sub.Window) {
			views = append(views, v)
		}
	}
	return views, gone
}

// deltaIndex spreads one delta's changed and removed cells over lat/lng tiles, so that each subscription
// visits only the tiles its viewport overlaps, and shares rollups between subscriptions.
type deltaIndex struct {
	tiles   map[[2]int32][]uint64
	mu      sync.Mutex // rollups: subscriptions are encoded in parallel
	rollups map[int]map[uint64]*engine.CellView
}

func (ix *deltaIndex) rollup(res int, p uint64) *engine.CellView {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.rollups[res][p]
}

func (ix *deltaIndex) setRollup(res int, p uint64, v *engine.CellView) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.rollups[res] == nil {
		ix.rollups[res] = map[uint64]*engine.CellView{}
	}
	ix.rollups[res][p] = v
}

const tileDeg = 0.02

func tileOf(lat, lng float64) [2]int32 {
	return [2]int32{int32(math.Floor(lat / tileDeg)), int32(math.Floor(lng / tileDeg))}
}

// edgeKm is the mean H3 edge length by resolution.
var edgeKm = [16]float64{1281.256, 483.057, 182.513, 68.979, 26.072, 9.854, 3.725, 1.406, 0.531, 0.201, 0.076, 0.029, 0.011, 0.004, 0.002, 0.001}

func (h *Hub) newDeltaIndex(changed, removed []uint64) *deltaIndex {
	ix := &deltaIndex{tiles: map[[2]int32][]uint64{}, rollups: map[int]map[uint64]*engine.CellView{}}
	add := func(c uint64) {
		var lat, lng float64
		if v := h.state[c]; v != nil {
			lat, lng = v.Lat, v.Lng
		} else {
			lat, lng = geo.Center(c)
		}
		k := tileOf(lat, lng)
		ix.tiles[k] = append(ix.tiles[k], c)
	}
	for _, c := range changed {
		add(c)
	}
	for _, c := range removed {
		add(c)
	}
	return ix
}

// cellsFor returns the delta's cells whose tiles overlap sub's viewport, grown at coarse resolutions by two
// parent edges (a child can lie that far from its parent's centre).
func (ix *deltaIndex) cellsFor(sub *subscription, baseRes int) []uint64 {
	bb := sub.BBox
	var mLat, mLng float64
	if sub.Res < baseRes && sub.Res >= 0 && sub.Res < 16 {
		mLat = 2 * edgeKm[sub.Res] / 111
		mLng = mLat / math.Max(math.Cos((bb.MinLat+bb.MaxLat)/2*math.Pi/180), 0.1)
	}
	lo, hi := tileOf(bb.MinLat-mLat, bb.MinLng-mLng), tileOf(bb.MaxLat+mLat, bb.MaxLng+mLng)
	var out []uint64
	if n := (int64(hi[0]) - int64(lo[0]) + 1) * (int64(hi[1]) - int64(lo[1]) + 1); n > int64(len(ix.tiles)) {
		for k, cs := range ix.tiles {
			if k[0] >= lo[0] && k[0] <= hi[0] && k[1] >= lo[1] && k[1] <= hi[1] {
				out = append(out, cs...)
			}
		}
		return out
	}
	for a := lo[0]; a <= hi[0]; a++ {
		for b := lo[1]; b <= hi[1]; b++ {
			out = append(out, ix.tiles[[2]int32{a, b}]...)
		}
	}
	return out
}
