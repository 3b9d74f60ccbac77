package api

import (
	"math"
	"sort"
	"sync/atomic"

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
		v := h.rollupOf(kids, sub.Res)
		if sub.BBox.Contains(v.Lat, v.Lng) && hasData(v, sub.Window) {
			views = append(views, v)
		}
	}
	return views, gone
}

// deltaIndex spreads one delta's cells over lat/lng tiles, so that each subscription visits only the tiles
// its viewport overlaps, and holds what subscriptions have in common: at every rolled-up resolution in use,
// the delta's parent cells rolled up once; and each cell's JSON, encoded on first use (a cell in 13
// viewports is encoded once, not 13 times). Built under smu for reading; read by the encoders in parallel.
type deltaIndex struct {
	tiles map[int]map[[2]int32][]ixCell // by resolution: the base's changed and removed cells, coarser ones' parents
	json  []atomic.Pointer[[]byte]      // cell id × window × geometry: the cell's JSON once encoded
}

// ixCell is a cell of the delta at one resolution: its view after the delta (nil: gone) and the position a
// viewport tests (the view's, else the cell's centre).
type ixCell struct {
	cell     uint64
	v        *engine.CellView
	lat, lng float64
	id       int32 // index of its encodings in deltaIndex.json
}

const jsonVariants = 2 * len(engine.Windows)

// cellJSON returns e's cell object for window w (appendCell's bytes), encoding it on first use.
func (ix *deltaIndex) cellJSON(e *ixCell, w int, geometry bool) []byte {
	k := int(e.id)*jsonVariants + 2*w
	if geometry {
		k++
	}
	if b := ix.json[k].Load(); b != nil {
		return *b
	}
	var scratch [512]byte
	enc := appendCell(scratch[:0], e.v, w, geometry)
	b := append(make([]byte, 0, len(enc)), enc...)
	ix.json[k].Store(&b) // two encoders may both encode it: equal bytes
	return b
}

const tileDeg = 0.02

func tileOf(lat, lng float64) [2]int32 {
	return [2]int32{int32(math.Floor(lat / tileDeg)), int32(math.Floor(lng / tileDeg))}
}

// newDeltaIndex indexes a delta's cells after it was applied, at the base resolution and at every coarser
// one in resolutions (smu held for reading).
func (h *Hub) newDeltaIndex(changed, removed []uint64, resolutions []int) *deltaIndex {
	ix := &deltaIndex{tiles: map[int]map[[2]int32][]ixCell{}}
	n := int32(0)
	add := func(res int, e ixCell) {
		if e.v != nil {
			e.lat, e.lng = e.v.Lat, e.v.Lng
		} else {
			e.lat, e.lng = geo.Center(e.cell)
		}
		e.id = n
		n++
		m := ix.tiles[res]
		if m == nil {
			m = map[[2]int32][]ixCell{}
			ix.tiles[res] = m
		}
		k := tileOf(e.lat, e.lng)
		m[k] = append(m[k], e)
	}
	for _, list := range [][]uint64{changed, removed} {
		for _, c := range list {
			add(h.baseRes, ixCell{cell: c, v: h.state[c]})
		}
	}
	for _, res := range resolutions {
		kidsOf := h.parents[res]
		if res >= h.baseRes || kidsOf == nil || ix.tiles[res] != nil {
			continue
		}
		ix.tiles[res] = map[[2]int32][]ixCell{}
		seen := map[uint64]bool{}
		for _, list := range [][]uint64{changed, removed} {
			for _, c := range list {
				p := geo.ParentFast(c, res)
				if seen[p] {
					continue
				}
				seen[p] = true
				e := ixCell{cell: p}
				if kids := kidsOf[p]; len(kids) > 0 {
					e.v = h.rollupOf(kids, res)
				}
				add(res, e)
			}
		}
	}
	ix.json = make([]atomic.Pointer[[]byte], int(n)*jsonVariants)
	return ix
}

// rollupOf rolls the views of a parent's base cells up (in cell order: the same state gives the same bytes;
// smu held for reading).
func (h *Hub) rollupOf(kids map[uint64]struct{}, res int) *engine.CellView {
	base := make([]*engine.CellView, 0, len(kids))
	for c := range kids {
		base = append(base, h.state[c])
	}
	sort.Slice(base, func(i, j int) bool { return base[i].Cell < base[j].Cell })
	return engine.Rollup(base, res)[0]
}

// deltaViews returns what of the delta sub's viewport shows: the JSON of each cell to send and the cells
// gone from it (viewsFor over the delta's cells, encoded).
func (ix *deltaIndex) deltaViews(sub *subscription) (cells [][]byte, gone []uint64) {
	m := ix.tiles[sub.Res]
	bb := sub.BBox
	visit := func(es []ixCell) {
		for i := range es {
			e := &es[i]
			if !bb.Contains(e.lat, e.lng) {
				continue
			}
			if e.v == nil {
				gone = append(gone, e.cell)
			} else if hasData(e.v, sub.Window) {
				cells = append(cells, ix.cellJSON(e, sub.Window, sub.Geometry))
			}
		}
	}
	lo, hi := tileOf(bb.MinLat, bb.MinLng), tileOf(bb.MaxLat, bb.MaxLng)
	if n := (int64(hi[0]) - int64(lo[0]) + 1) * (int64(hi[1]) - int64(lo[1]) + 1); n > int64(len(m)) {
		for k, es := range m {
			if k[0] >= lo[0] && k[0] <= hi[0] && k[1] >= lo[1] && k[1] <= hi[1] {
				visit(es)
			}
		}
		return cells, gone
	}
	for a := lo[0]; a <= hi[0]; a++ {
		for b := lo[1]; b <= hi[1]; b++ {
			if es := m[[2]int32{a, b}]; len(es) > 0 {
				visit(es)
			}
		}
	}
	return cells, gone
}
