package geo

import (
	"math/rand"
	"testing"

	"github.com/uber/h3-go/v4"
)

func TestCellCacheAgreesWithH3(t *testing.T) {
	for _, res := range []int{7, 9, 11} {
		c := NewCellCache(res)
		rng := rand.New(rand.NewSource(int64(res)))
		// Points clustered on a few "roads" (so squares repeat) and scattered ones, in Hangzhou, Bologna
		// and near the equator and the antimeridian.
		centres := [][2]float64{{30.25, 120.16}, {44.49, 11.34}, {0.001, -0.001}, {-33.9, 151.2}, {64.1, -21.9}, {10, 179.95}}
		hits := 0
		for i := 0; i < 60000; i++ {
			ctr := centres[i%len(centres)]
			lat := ctr[0] + rng.NormFloat64()*0.01
			lng := ctr[1] + rng.NormFloat64()*0.01
			if i%3 == 0 {
				lat = ctr[0] + float64(rng.Intn(200))*0.0001 // a grid of repeated positions
				lng = ctr[1] + float64(rng.Intn(200))*0.0001
			}
			got, err := c.Cell(lat, lng)
			want, err2 := CellOf(lat, lng, res)
			if err != nil || err2 != nil || got != want {
				t.Fatalf("res %d (%v, %v): cache %x (%v), h3 %x (%v)", res, lat, lng, got, err, want, err2)
			}
			hits++
		}
		if hits == 0 {
			t.Fatal("no points checked")
		}
	}
	if _, err := NewCellCache(9).Cell(95, 10); err == nil {
		t.Error("latitude 95 accepted")
	}
}

// roadPoints are positions along 40 straight roads across a 5 km city, as probes report them.
func roadPoints() [][2]float64 {
	rng := rand.New(rand.NewSource(1))
	var pts [][2]float64
	for r := 0; r < 40; r++ {
		lat0, lng0 := 30.23+rng.Float64()*0.05, 120.13+rng.Float64()*0.05
		dlat, dlng := (rng.Float64()-0.5)*1e-4, (rng.Float64()-0.5)*1e-4
		for k := 0; k < 500; k++ {
			pts = append(pts, [2]float64{lat0 + dlat*float64(k) + rng.NormFloat64()*3e-5, lng0 + dlng*float64(k) + rng.NormFloat64()*3e-5})
		}
	}
	return pts
}

func BenchmarkCellCache(b *testing.B) {
	pts := roadPoints()
	c := NewCellCache(9)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pts[i%len(pts)]
		c.Cell(p[0], p[1])
	}
}

func BenchmarkCellOf(b *testing.B) {
	pts := roadPoints()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pts[i%len(pts)]
		CellOf(p[0], p[1], 9)
	}
}

func TestChildrenFastAgreesWithH3(t *testing.T) {
	for i, p := range roadPoints() {
		if i%20 != 0 {
			continue
		}
		for res := 1; res <= 15; res++ {
			c, err := CellOf(p[0], p[1], res)
			if err != nil {
				t.Fatal(err)
			}
			parent := ParentFast(c, res-1)
			want := map[uint64]bool{}
			for _, k := range h3.Cell(parent).Children(res) {
				want[uint64(k)] = true
			}
			got := ChildrenFast(parent, res, nil)
			n := 0
			for _, k := range got {
				if want[k] {
					n++
				}
			}
			if n != len(want) || !want[c] {
				t.Fatalf("res %d: ChildrenFast(%x) = %x holds %d of h3's %d children (cell %x among them: %v)", res, parent, got, n, len(want), c, want[c])
			}
		}
	}
}

// A point near a cell edge goes to the library only when the small square around it straddles the edge too:
// positions along roads, asked again (as the same fleet's next fixes), need the library for few of them.
func TestCellCacheAsksTheLibraryRarelyNearEdges(t *testing.T) {
	pts := roadPoints()
	c := NewCellCache(9)
	for _, p := range pts {
		c.Cell(p[0], p[1])
	}
	before := c.LibraryCalls()
	for _, p := range pts {
		got, _ := c.Cell(p[0], p[1])
		if want, _ := CellOf(p[0], p[1], 9); got != want {
			t.Fatalf("(%v, %v): cache %x, h3 %x", p[0], p[1], got, want)
		}
	}
	again := c.LibraryCalls() - before
	t.Logf("%d points asked again: %d library calls", len(pts), again)
	if again*20 > uint64(len(pts)) {
		t.Errorf("%d library calls for %d points asked again, want under 5 %%", again, len(pts))
	}
}

// Holds answers as CellOf(lat, lng) == cell: points near centres, near edges and vertices and anywhere,
// asked of their own cell, of a neighbour and of cells of other resolutions or none, at resolutions 6 to 12,
// in Hangzhou, Bologna, near the equator, far south and north, and near the antimeridian.
func TestHoldsAgreesWithH3(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	centres := [][2]float64{{30.25, 120.16}, {44.49, 11.34}, {0.001, -0.001}, {-33.9, 151.2}, {64.1, -21.9}, {10, 179.85}}
	for _, res := range []int{6, 9, 12} {
		c := NewCellCache(res)
		edge := h3.HexagonEdgeLengthAvgM(res) / 111_320
		for i := 0; i < 30000; i++ {
			ctr := centres[i%len(centres)]
			lat := ctr[0] + rng.NormFloat64()*edge*8
			lng := ctr[1] + rng.NormFloat64()*edge*8
			own, err := CellOf(lat, lng, res)
			if err != nil {
				continue // past the antimeridian
			}
			if i%3 == 0 { // near a vertex of its cell
				b := h3.Cell(own).Boundary()
				v := b[rng.Intn(len(b))]
				lat, lng = v.Lat+rng.NormFloat64()*edge*0.02, v.Lng+rng.NormFloat64()*edge*0.02
				if own, err = CellOf(lat, lng, res); err != nil {
					continue
				}
			}
			claims := []uint64{own, uint64(h3.Cell(own).Parent(res - 1)), 0, 12345}
			if ring := h3.Cell(own).GridDisk(1); len(ring) > 0 {
				claims = append(claims, uint64(ring[rng.Intn(len(ring))]))
			}
			for _, cell := range claims {
				want := own == cell
				if got := c.Holds(cell, lat, lng); got != want {
					t.Fatalf("res %d (%v, %v) in %x: Holds(%x) = %v", res, lat, lng, own, cell, got)
				}
			}
		}
	}
}

// Points near their cells' centres are judged on the cells' discs: a cold cache asks the library about
// their cells only, not about the squares around each point (four corners each).
func TestHoldsJudgesInnerPointsOnDiscs(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	c := NewCellCache(9)
	var cells []uint64
	for i := 0; i < 20; i++ {
		cell, _ := CellOf(30.25+float64(i)*0.01, 120.16, 9)
		cells = append(cells, cell)
	}
	for i := 0; i < 4000; i++ {
		cell := cells[i%len(cells)]
		lat, lng := Center(cell)
		lat += rng.NormFloat64() * 10 / 111_320 // within ~30 m of the centre
		lng += rng.NormFloat64() * 10 / 111_320
		if !c.Holds(cell, lat, lng) {
			t.Fatalf("(%v, %v) is not in %x", lat, lng, cell)
		}
	}
	if n := c.LibraryCalls(); n > uint64(2*len(cells)) {
		t.Errorf("%d library calls for 4,000 points in %d cells, want at most 2 a cell", n, len(cells))
	}
}

// BenchmarkCellCheck: is a point in the cell it claims? 200,000 points at random over a 10 km city (the
// bench's load: random points of a city's links), each asked many times, through Cell (the squares) and
// through Holds (the cells' discs first).
func BenchmarkCellCheck(b *testing.B) {
	rng := rand.New(rand.NewSource(4))
	type pt struct {
		lat, lng float64
		cell     uint64
	}
	pts := make([]pt, 200_000)
	for i := range pts {
		lat, lng := 28.60+rng.Float64()*0.09, 115.80+rng.Float64()*0.10
		cell, _ := CellOf(lat, lng, 9)
		pts[i] = pt{lat, lng, cell}
	}
	for _, how := range []string{"cell", "holds"} {
		b.Run(how, func(b *testing.B) {
			c := NewCellCache(9)
			for _, p := range pts { // warm: every square and disc met once
				c.Cell(p.lat, p.lng)
				c.Holds(p.cell, p.lat, p.lng)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pts[(i*7919)%len(pts)]
				if how == "cell" {
					if got, _ := c.Cell(p.lat, p.lng); got != p.cell {
						b.Fatal("wrong cell")
					}
				} else if !c.Holds(p.cell, p.lat, p.lng) {
					b.Fatal("wrong cell")
				}
			}
		})
	}
}
