package geo

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/uber/h3-go/v4"
)

// CellCache assigns points to H3 cells of one resolution faster than a call into the H3 library each time.
// It divides the globe into small lat/lng squares (about a sixteenth of the cell edge) and remembers, for each
// square met, the cell that contains all of it: a square whose four corners lie in the same cell lies wholly
// inside it, because cells are convex (their edges are great-circle arcs, straight lines in H3's gnomonic
// face projection, and a square a few tens of metres wide bends from a straight line by micrometres). Points
// in squares that straddle a cell edge are looked up the same way in squares a quarter as wide (subSquares), so
// only the points of small squares across an edge go to the library, and every answer equals CellOf's. Safe
// for concurrent use; memory is bounded (each of 64 shards forgets everything when full).
type CellCache struct {
	res    int
	step   float64 // square size in degrees
	shards [64]cacheShard
	calls  atomic.Uint64 // calls into the H3 library
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[uint64]uint64 // square key → cell, or straddle
	sub   map[uint64]uint64 // small square key → cell, or straddle (within straddling squares)
	discs map[uint64]disc   // cell → its inner disc (Holds)
	_     [24]byte          // keep shards on separate cache lines
}

// subSquares is how many small squares a straddling square's side is cut into: a point near a cell edge goes
// to the library only when its small square straddles the edge too, 1/subSquares of the time.
const subSquares = 4

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
		c.shards[i].sub = make(map[uint64]uint64)
		c.shards[i].discs = make(map[uint64]disc)
	}
	return c
}

// LibraryCalls is how many times the cache called the H3 library (each call ~1 µs).
func (c *CellCache) LibraryCalls() uint64 { return c.calls.Load() }

// libCell is h3.LatLngToCell, counted.
func (c *CellCache) libCell(lat, lng float64) uint64 {
	c.calls.Add(1)
	return uint64(h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, c.res))
}

// square returns the cell that holds the whole square of side step whose corner is (qa, qo)·step, or
// straddle when its corners lie in different cells.
func (c *CellCache) square(qa, qo, step float64) uint64 {
	lat0, lng0 := qa*step, qo*step
	first := c.libCell(lat0, lng0)
	for _, d := range [3][2]float64{{step, 0}, {0, step}, {step, step}} {
		if c.libCell(lat0+d[0], lng0+d[1]) != first {
			return straddle
		}
	}
	return first
}

// lookup returns the cell of the square (qa, qo) of side step from m (under sh's lock), deciding and
// remembering it when new.
func (c *CellCache) lookup(sh *cacheShard, m map[uint64]uint64, qa, qo, step float64) uint64 {
	key := uint64(int64(qa))<<32 | uint64(uint32(int32(qo)))
	sh.mu.Lock()
	cell, ok := m[key]
	sh.mu.Unlock()
	if ok {
		return cell
	}
	cell = c.square(qa, qo, step)
	sh.mu.Lock()
	if len(m) >= cacheShardCap {
		clear(m)
	}
	m[key] = cell
	sh.mu.Unlock()
	return cell
}

// Cell returns the cell of (lat, lng), exactly as CellOf(lat, lng, res) would.
func (c *CellCache) Cell(lat, lng float64) (uint64, error) {
	if !(lat >= -89 && lat <= 89 && lng >= -179.9 && lng <= 179.9) {
		return CellOf(lat, lng, c.res) // near the poles and the antimeridian squares degenerate: no caching
	}
	qa, qo := math.Floor(lat/c.step), math.Floor(lng/c.step)
	key := uint64(int64(qa))<<32 | uint64(uint32(int32(qo)))
	sh := &c.shards[(key*0x9E3779B97F4A7C15)>>58]
	if cell := c.lookup(sh, sh.m, qa, qo, c.step); cell != straddle {
		return cell, nil
	}
	// A square across a cell edge: its small squares decide, each on its own corners (when their keys fit
	// in 32 bits a coordinate, up to resolution 14).
	if step := c.step / subSquares; 180/step < math.MaxInt32 {
		if cell := c.lookup(sh, sh.sub, math.Floor(lat/step), math.Floor(lng/step), step); cell != straddle {
			return cell, nil
		}
	}
	c.calls.Add(1)
	return CellOf(lat, lng, c.res)
}

// disc is the circle around a cell's centre that the cell holds, in a plane tangent at the centre (metres
// east and north): every point in it is in the cell. A few thousand cells cover a city, so their discs stay
// in the processor's caches, where the squares of a city (hundreds of thousands) do not.
type disc struct {
	lat, lng float64 // centre
	kx, ky   float64 // metres per degree of longitude and of latitude at the centre
	r2       float64 // radius², m²; 0: no disc (not a hexagon of the cache's resolution, or near the antimeridian)
}

// discMargin shrinks a disc below the distance to the nearest edge: the plane bends a cell's edges (arcs of
// great circles, straight in H3's gnomonic face projection) by under a millimetre for cells of resolution 6 and
// finer (edges of a few kilometres and less), against a margin of 2 % of the radius (over 1.5 m at resolution 9).
const discMargin = 0.98

// discOf returns cell's disc, 0 radius when it has none.
func (c *CellCache) discOf(cell uint64) disc {
	h := h3.Cell(cell)
	if c.res < 6 || !h.IsValid() || h.Resolution() != c.res || h.IsPentagon() {
		return disc{}
	}
	c.calls.Add(2)
	ctr := h.LatLng()
	b := h.Boundary()
	if len(b) != 6 || math.Abs(ctr.Lat) > 85 {
		return disc{} // a cell across an icosahedron face's edge has more vertices
	}
	d := disc{lat: ctr.Lat, lng: ctr.Lng, kx: 111_320 * math.Cos(ctr.Lat*math.Pi/180), ky: 110_574}
	r := math.Inf(1)
	for i := range b {
		v, w := b[i], b[(i+1)%len(b)]
		if math.Abs(v.Lng-ctr.Lng) > 1 || math.Abs(w.Lng-ctr.Lng) > 1 {
			return disc{} // across the antimeridian
		}
		x1, y1 := (v.Lng-ctr.Lng)*d.kx, (v.Lat-ctr.Lat)*d.ky
		x2, y2 := (w.Lng-ctr.Lng)*d.kx, (w.Lat-ctr.Lat)*d.ky
		ex, ey := x2-x1, y2-y1
		l := math.Hypot(ex, ey)
		if l == 0 {
			return disc{}
		}
		r = min(r, math.Abs(x1*ey-y1*ex)/l) // the centre's distance to the edge's line
	}
	r *= discMargin
	d.r2 = r * r
	return d
}

// Holds reports whether (lat, lng) is in cell, exactly as CellOf(lat, lng, res) == cell would: a point within
// the cell's inner disc is, without a square's lookup; any other goes through Cell.
func (c *CellCache) Holds(cell uint64, lat, lng float64) bool {
	if lat >= -85 && lat <= 85 && lng >= -179.9 && lng <= 179.9 {
		sh := &c.shards[(cell*0x9E3779B97F4A7C15)>>58]
		sh.mu.Lock()
		d, ok := sh.discs[cell]
		sh.mu.Unlock()
		if !ok {
			d = c.discOf(cell)
			sh.mu.Lock()
			if len(sh.discs) >= cacheShardCap {
				clear(sh.discs)
			}
			sh.discs[cell] = d
			sh.mu.Unlock()
		}
		if d.r2 > 0 {
			dx, dy := (lng-d.lng)*d.kx, (lat-d.lat)*d.ky
			if dx*dx+dy*dy < d.r2 {
				return true
			}
		}
	}
	got, err := c.Cell(lat, lng)
	return err == nil && got == cell
}
