package geo

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Candidate is a link near a query point.
type Candidate struct {
	Link       *Link
	DistanceM  float64 // from the query point to the closest point of the link
	OffsetM    float64 // of that closest point along the link's geometry, from its start
	BearingDeg float64 // of the link segment holding that point
	Point      LatLng  // the closest point
}

// Nearest returns up to k links within radiusM metres of (lat, lng), nearest first (ties by link id). Each link
// appears once, at its closest segment.
func (n *Network) Nearest(lat, lng, radiusM float64, k int) []Candidate {
	if k <= 0 || !(radiusM > 0) || !(LatLng{lat, lng}).valid() {
		return nil
	}
	return newNearSearch(n).run(nil, LatLng{lat, lng}, radiusM, k)
}

// nearSearch is reusable scratch for nearest-link queries: its iterator is bound once, so a query through a
// kept nearSearch does not allocate. It belongs to one goroutine.
type nearSearch struct {
	n      *Network
	pl     plane
	radius float64
	dst    []Candidate
	iter   func(min, max [2]float64, r segRef) bool
}

func newNearSearch(n *Network) *nearSearch {
	s := &nearSearch{n: n}
	s.iter = s.visit
	return s
}

// run appends the candidates to dst[:0] (reusing its capacity) and returns it.
func (s *nearSearch) run(dst []Candidate, q LatLng, radiusM float64, k int) []Candidate {
	s.dst, s.pl, s.radius = dst[:0], newPlane(q), radiusM
	dLat, dLng := metresToDegLat(radiusM), metresToDegLng(radiusM, q.Lat)
	s.n.segs.Search([2]float64{q.Lng - dLng, q.Lat - dLat}, [2]float64{q.Lng + dLng, q.Lat + dLat}, s.iter)
	dst = s.dst
	s.dst = nil
	slices.SortFunc(dst, func(a, b Candidate) int {
		if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
			return c
		}
		return strings.Compare(a.Link.ID, b.Link.ID)
	})
	if len(dst) > k {
		dst = dst[:k]
	}
	return dst
}

func (s *nearSearch) visit(_, _ [2]float64, r segRef) bool {
	l := s.n.links[r.link]
	ax, ay := s.pl.xy(l.Geometry[r.seg])
	bx, by := s.pl.xy(l.Geometry[r.seg+1])
	t, d := projectOnSegment(0, 0, ax, ay, bx, by)
	if d > s.radius {
		return true
	}
	for i := range s.dst {
		if s.dst[i].Link == l {
			if d < s.dst[i].DistanceM {
				s.dst[i] = makeCandidate(l, int(r.seg), t, d)
			}
			return true
		}
	}
	s.dst = append(s.dst, makeCandidate(l, int(r.seg), t, d))
	return true
}

func makeCandidate(l *Link, seg int, t, d float64) Candidate {
	a, b := l.Geometry[seg], l.Geometry[seg+1]
	return Candidate{
		Link:       l,
		DistanceM:  d,
		OffsetM:    l.cum[seg] + t*(l.cum[seg+1]-l.cum[seg]),
		BearingDeg: BearingDeg(a, b),
		Point:      interpolate(a, b, t),
	}
}

// avgEdgeM is the mean H3 hexagon edge length at each resolution, in metres (H3 documentation table).
var avgEdgeM = [16]float64{1281256, 483057, 182513, 68979, 26072, 9854, 3725, 1406, 531.4, 200.8, 75.86,
	28.66, 10.83, 4.09, 1.55, 0.58}

// CellShare is the length of a link inside one H3 cell.
type CellShare struct {
	Cell    uint64
	LinkID  string
	LengthM float64
}

// Cover maps links to the H3 cells they cross and back, at one resolution.
type Cover struct {
	Res    int
	byLink map[string][]CellShare
	byCell map[uint64][]CellShare
}

// Cover computes which cells of resolution res each link crosses, with the length inside each. Geometry is
// sampled every fifth of a cell edge, so a link that only clips a cell's corner by less than that may be missed:
// the length it would carry there is negligible. It returns nil for a resolution outside 0..15.
func (n *Network) Cover(res int) *Cover {
	if res < 0 || res > 15 {
		return nil
	}
	c := &Cover{Res: res, byLink: make(map[string][]CellShare, len(n.links)), byCell: make(map[uint64][]CellShare)}
	step := math.Max(avgEdgeM[res]/5, 0.5)
	acc := map[uint64]float64{}
	var order []uint64
	for _, l := range n.links {
		clear(acc)
		order = order[:0]
		add := func(p LatLng, m float64) {
			cell, err := CellOf(p.Lat, p.Lng, res)
			if err != nil {
				return
			}
			if _, ok := acc[cell]; !ok {
				order = append(order, cell)
			}
			acc[cell] += m
		}
		for s := 1; s < len(l.Geometry); s++ {
			a, b := l.Geometry[s-1], l.Geometry[s]
			segLen := l.cum[s] - l.cum[s-1]
			parts := max(1, int(math.Ceil(segLen/step)))
			for i := 0; i < parts; i++ {
				add(interpolate(a, b, (float64(i)+0.5)/float64(parts)), segLen/float64(parts))
			}
		}
		if len(order) == 0 { // zero-length link: it still sits in the cell of its start
			add(l.Geometry[0], 0)
		}
		shares := make([]CellShare, 0, len(order))
		for _, cell := range order {
			sh := CellShare{Cell: cell, LinkID: l.ID, LengthM: acc[cell]}
			shares = append(shares, sh)
			c.byCell[cell] = append(c.byCell[cell], sh)
		}
		c.byLink[l.ID] = shares
	}
	return c
}

// CellsOf returns the cells a link crosses, in order along the link, with the length inside each.
func (c *Cover) CellsOf(linkID string) []CellShare { return c.byLink[linkID] }

// LinksIn returns the links crossing a cell, in network order, with the length of each inside it.
func (c *Cover) LinksIn(cell uint64) []CellShare { return c.byCell[cell] }

// Cells returns the number of cells the network covers.
func (c *Cover) Cells() int { return len(c.byCell) }

// CellFreeFlowKmh returns, for each cell of resolution res that a link crosses, the free-flow speed of the
// links inside it, weighted by their length in the cell. The weighting is harmonic (total length over total
// free-flow travel time), the space-mean speed a vehicle crossing the cell sees, so a short fast link does not
// hide a long slow one. It returns nil for a resolution outside 0..15.
func (n *Network) CellFreeFlowKmh(res int) map[uint64]float64 {
	c := n.Cover(res)
	if c == nil {
		return nil
	}
	out := make(map[uint64]float64, len(c.byCell))
	for cell, shares := range c.byCell {
		var length, hours float64
		for _, s := range shares {
			l := n.links[n.linkByID[s.LinkID]]
			length += s.LengthM
			hours += s.LengthM / freeFlow(l)
		}
		if hours > 0 {
			out[cell] = length / hours
		} else { // only zero-length links: use their plain mean
			var sum float64
			for _, s := range shares {
				sum += freeFlow(n.links[n.linkByID[s.LinkID]])
			}
			out[cell] = sum / float64(len(shares))
		}
	}
	return out
}
