package geo

import (
	"math"

	"github.com/tidwall/rtree"
)

// PointIndex is an rtree of named points (emergency units, cameras): set, move, remove and nearest-first
// search. It is not safe for concurrent use; its owner guards it.
type PointIndex struct {
	tr  rtree.RTreeG[string]
	pos map[string]LatLng
}

// NewPointIndex returns an empty index.
func NewPointIndex() *PointIndex { return &PointIndex{pos: map[string]LatLng{}} }

// Len returns the number of points.
func (x *PointIndex) Len() int { return len(x.pos) }

// Set places (or moves) the point id.
func (x *PointIndex) Set(id string, p LatLng) {
	if old, ok := x.pos[id]; ok {
		if old == p {
			return
		}
		x.tr.Delete([2]float64{old.Lng, old.Lat}, [2]float64{old.Lng, old.Lat}, id)
	}
	x.pos[id] = p
	x.tr.Insert([2]float64{p.Lng, p.Lat}, [2]float64{p.Lng, p.Lat}, id)
}

// Remove deletes the point id if present.
func (x *PointIndex) Remove(id string) {
	if old, ok := x.pos[id]; ok {
		x.tr.Delete([2]float64{old.Lng, old.Lat}, [2]float64{old.Lng, old.Lat}, id)
		delete(x.pos, id)
	}
}

// Nearby calls visit with points nearest first (by great-circle distance, in metres) until it returns false.
func (x *PointIndex) Nearby(q LatLng, visit func(id string, p LatLng, distM float64) bool) {
	kx := math.Cos(q.Lat*deg) * earthRadiusM * deg // metres per degree of longitude here
	ky := earthRadiusM * deg
	x.tr.Nearby(func(min, max [2]float64, _ string, _ bool) float64 {
		dx := math.Max(0, math.Max(min[0]-q.Lng, q.Lng-max[0])) * kx
		dy := math.Max(0, math.Max(min[1]-q.Lat, q.Lat-max[1])) * ky
		return dx*dx + dy*dy
	}, func(_, _ [2]float64, id string, _ float64) bool {
		p := x.pos[id]
		return visit(id, p, DistanceM(q, p))
	})
}
