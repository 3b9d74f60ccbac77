// Package geo holds H3 helpers, the road network model and its loaders, spatial indexes, map matching and
// routing. It must not import engine or api.
package geo

import (
	"fmt"

	"github.com/uber/h3-go/v4"
)

// DefaultRes is the engine's default base H3 resolution (edge about 174 m: a block of an urban arterial).
const DefaultRes = 9

// CellOf returns the H3 cell at resolution res that contains (lat, lng).
func CellOf(lat, lng float64, res int) (uint64, error) {
	if res < 0 || res > 15 {
		return 0, fmt.Errorf("cannot index point (%g, %g): resolution %d is outside 0..15", lat, lng, res)
	}
	if !(lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180) {
		return 0, fmt.Errorf("cannot index point (%g, %g): not a WGS84 position", lat, lng)
	}
	return uint64(h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)), nil
}

// Parent returns the ancestor of cell at resolution res (res not finer than the cell's).
func Parent(cell uint64, res int) uint64 {
	if res < 0 || res > Res(cell) {
		return 0
	}
	return uint64(h3.Cell(cell).Parent(res))
}

// Res returns the resolution of cell.
func Res(cell uint64) int { return h3.Cell(cell).Resolution() }

// CellString is the lower-case hex form H3 libraries print.
func CellString(cell uint64) string { return h3.Cell(cell).String() }

// ParseCell parses the hex form of a cell.
func ParseCell(s string) (uint64, error) {
	c := h3.Cell(h3.IndexFromString(s))
	if !c.IsValid() {
		return 0, fmt.Errorf("cannot parse H3 cell %q", s)
	}
	return uint64(c), nil
}

// Center returns the centre of cell.
func Center(cell uint64) (lat, lng float64) {
	ll := h3.Cell(cell).LatLng()
	return ll.Lat, ll.Lng
}

// Boundary returns the cell's boundary as [lng, lat] pairs (GeoJSON order), not closed.
func Boundary(cell uint64) [][2]float64 {
	b := h3.Cell(cell).Boundary()
	out := make([][2]float64, len(b))
	for i, v := range b {
		out[i] = [2]float64{v.Lng, v.Lat}
	}
	return out
}

// BBox is a lng/lat rectangle.
type BBox struct{ MinLng, MinLat, MaxLng, MaxLat float64 }

// Contains reports whether (lat, lng) is inside b (edges included).
func (b BBox) Contains(lat, lng float64) bool {
	return lat >= b.MinLat && lat <= b.MaxLat && lng >= b.MinLng && lng <= b.MaxLng
}

// Valid reports whether b is a well-formed rectangle on the globe.
func (b BBox) Valid() bool {
	return b.MinLng <= b.MaxLng && b.MinLat <= b.MaxLat && b.MinLat >= -90 && b.MaxLat <= 90 &&
		b.MinLng >= -180 && b.MaxLng <= 180
}

// ParentFast is Parent by bit arithmetic on the H3 index layout (no cgo call): the resolution field (bits
// 52..55) is set to res and the digits below it to 7. cell must be a valid cell of resolution >= res.
func ParentFast(cell uint64, res int) uint64 {
	const resShift, resMask = 52, uint64(0xF) << 52
	h := cell&^resMask | uint64(res)<<resShift
	for d := res + 1; d <= 15; d++ {
		h |= 7 << uint((15-d)*3)
	}
	return h
}

// ChildrenFast appends to out the children at res of cell (a cell of resolution res-1) by bit arithmetic on
// the H3 index layout (no cgo call): its seven digit values at res, in increasing index order. A pentagon's
// deleted child (digit 1) is among them: callers look children up, they do not enumerate the grid.
func ChildrenFast(cell uint64, res int, out []uint64) []uint64 {
	const resShift, resMask = 52, uint64(0xF) << 52
	shift := uint((15 - res) * 3)
	h := cell&^resMask | uint64(res)<<resShift
	h &^= 7 << shift
	for d := uint64(0); d < 7; d++ {
		out = append(out, h|d<<shift)
	}
	return out
}
