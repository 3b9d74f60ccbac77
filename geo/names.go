package geo

import (
	"sync"

	"github.com/uber/h3-go/v4"
)

// Children returns the descendants of cell at resolution res (res not coarser than the cell's).
func Children(cell uint64, res int) []uint64 {
	cs := h3.Cell(cell).Children(res)
	out := make([]uint64, len(cs))
	for i, c := range cs {
		out[i] = uint64(c)
	}
	return out
}

// mainRoads caches, per resolution, the most important named link whose midpoint lies in each cell.
type mainRoads struct {
	mu    sync.Mutex
	byRes map[int]map[uint64]*Link
}

var roadNames sync.Map // *Network → *mainRoads

// MainRoadIn returns the most important named road crossing cell (by class, then its length in the cell), or nil:
// areas are named after it ("around Yan'an Rd").
func (n *Network) MainRoadIn(cell uint64) *Link {
	v, _ := roadNames.LoadOrStore(n, &mainRoads{byRes: map[int]map[uint64]*Link{}})
	m := v.(*mainRoads)
	res := Res(cell)
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.byRes[res]
	if idx == nil {
		idx = map[uint64]*Link{}
		// Per cell, the named road with the most length (by class first) whose link midpoints lie in it.
		type key struct {
			cell uint64
			name string
		}
		length := map[key]float64{}
		for _, l := range n.links {
			if l.Name == "" {
				continue
			}
			p, _ := l.PointAt(l.GeomLengthM() / 2)
			c, err := CellOf(p.Lat, p.Lng, res)
			if err != nil {
				continue
			}
			k := key{c, l.Name}
			length[k] += l.GeomLengthM()
			b := idx[c]
			if b == nil || l.Class < b.Class || (l.Class == b.Class && length[k] > length[key{c, b.Name}]) {
				idx[c] = l
			}
		}
		m.byRes[res] = idx
	}
	return idx[cell]
}
