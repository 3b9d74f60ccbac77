package geo

import (
	"math"
	"sync"

	"github.com/uber/h3-go/v4"
)

// CellCache assigns points to H3 cells of one resolution faster than a call into the H3 library each time.
// It divides the globe into small lat/lng squares (about a sixteenth of the cell edge) and remembers, for each
// square met, the cell that contains all of it: a square whose four corners lie in the same cell lies wholly
// inside it, because cells are convex (their edges are great-circle arcs, straight lines in H3's gnomonic
// face projection, and a square a few tens of metres wide bends from a straight line by micrometres). Points
// in squares that straddle a cell edge are assigned by the library as before, so every answer equals
// CellOf's. Safe for concurrent use; memory is bounded (each of 64 shards forgets everything when full).
type CellCache struct {
	res    int
	step   float64 // square size in degrees
	shards [64]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[uint64]uint64 // square key → cell, or straddle
	_  [40]byte          // keep shards on separate cache lines
}

const (
	straddle      = ^uint64(0)
	cacheShardCap = 16384
)

// NewCellCache returns a cache for resolution res.
func NewCellCache(res int) *CellCache {
	edge := h3.HexagonEdgeLengthAvgM(res)
	c := &CellCache{res: res, step: edge / 16 / 111_320}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]uint64)
	}
	return c
}

// Cell returns the cell of (lat, lng), exactly as CellOf(lat, lng, res) would.
func (c *CellCache) Cell(lat, lng float64) (uint64, error) {
	if !(lat >= -89 && lat <= 89 && lng >= -179.9 && lng <= 179.9) {
		return CellOf(lat, lng, c.res) // near the poles and the antimeridian squares degenerate: no caching
	}
	qa, qo := math.Floor(lat/c.step), math.Floor(lng/c.step)
	key := uint64(int64(qa))<<32 | uint64(uint32(int32(qo)))
	sh := &c.shards[(key*0x9E3779B97F4A7C15)>>58]
	sh.mu.Lock()
	cell, ok := sh.m[key]
	sh.mu.Unlock()
	if ok {
		if cell != straddle {
			return cell, nil
		}
		return CellOf(lat, lng, c.res)
	}
	// A new square: its corners decide.
	lat0, lng0 := qa*c.step, qo*c.step
	first := uint64(h3.LatLngToCell(h3.LatLng{Lat: lat0, Lng: lng0}, c.res))
	cell = first
	for _, d := range [3][2]float64{{c.step, 0}, {0, c.step}, {c.step, c.step}} {
		if uint64(h3.LatLngToCell(h3.LatLng{Lat: lat0 + d[0], Lng: lng0 + d[1]}, c.res)) != first {
			cell = straddle
			break
		}
	}
	sh.mu.Lock()
	if len(sh.m) >= cacheShardCap {
		clear(sh.m)
	}
	sh.m[key] = cell
	sh.mu.Unlock()
	if cell != straddle {
		return cell, nil
	}
	return CellOf(lat, lng, c.res)
}
