package geo

import (
	"math"
	"testing"
)

func TestNearest(t *testing.T) {
	n := crossNetwork(t)
	// 20 m east of the north arm, 50 m north of the centre.
	q := LatLng{30.25 + metresToDegLat(50), 120.17 + metresToDegLng(20, 30.25)}
	got := n.Nearest(q.Lat, q.Lng, 30, 10)
	if len(got) != 2 {
		t.Fatalf("Nearest = %d candidates, want the 2 links of the north arm: %+v", len(got), got)
	}
	for _, c := range got {
		if c.Link.ID != "CN" && c.Link.ID != "NC" {
			t.Errorf("unexpected candidate %s", c.Link.ID)
		}
		if math.Abs(c.DistanceM-20) > 0.1 {
			t.Errorf("%s distance = %.2f, want 20", c.Link.ID, c.DistanceM)
		}
	}
	if got[0].Link.ID != "CN" { // ties break by id
		t.Errorf("first = %s, want CN", got[0].Link.ID)
	}
	if math.Abs(got[0].OffsetM-50) > 0.2 || angleDiffDeg(got[0].BearingDeg, 0) > 0.1 {
		t.Errorf("CN offset %.2f bearing %.2f, want 50 m and 0°", got[0].OffsetM, got[0].BearingDeg)
	}
	if math.Abs(got[1].OffsetM-(got[1].Link.GeomLengthM()-50)) > 0.2 || angleDiffDeg(got[1].BearingDeg, 180) > 0.1 {
		t.Errorf("NC offset %.2f bearing %.2f, want length-50 m and 180°", got[1].OffsetM, got[1].BearingDeg)
	}
	if got := n.Nearest(q.Lat, q.Lng, 200, 3); len(got) != 3 || got[2].DistanceM < got[1].DistanceM {
		t.Errorf("k=3 within 200 m: %+v", got)
	}
	if got := n.Nearest(q.Lat, q.Lng, 10, 5); len(got) != 0 {
		t.Errorf("within 10 m: %d candidates, want none", len(got))
	}
	if got := n.Nearest(math.NaN(), 0, 10, 5); got != nil {
		t.Errorf("NaN query gave %v", got)
	}
}

func TestCover(t *testing.T) {
	n := GenerateWestLake(1)
	c := n.Cover(9)
	if c == nil || c.Res != 9 {
		t.Fatalf("Cover(9) = %v", c)
	}
	for _, l := range n.Links() {
		var sum float64
		for _, s := range c.CellsOf(l.ID) {
			sum += s.LengthM
			found := false
			for _, back := range c.LinksIn(s.Cell) {
				found = found || back.LinkID == l.ID
			}
			if !found {
				t.Fatalf("cell %s of link %s does not list the link", CellString(s.Cell), l.ID)
			}
			if Res(s.Cell) != 9 {
				t.Fatalf("cell %s has resolution %d", CellString(s.Cell), Res(s.Cell))
			}
		}
		if math.Abs(sum-l.GeomLengthM()) > 1e-6*l.GeomLengthM()+1e-6 {
			t.Fatalf("link %s: cell lengths sum to %.3f, geometry is %.3f", l.ID, sum, l.GeomLengthM())
		}
		// Each link's end points must be in cells of its cover.
		for _, p := range []LatLng{l.Geometry[0], l.Geometry[len(l.Geometry)-1]} {
			cell, _ := CellOf(p.Lat, p.Lng, 9)
			if len(c.LinksIn(cell)) == 0 {
				t.Fatalf("link %s end %v: its cell %s is not covered", l.ID, p, CellString(cell))
			}
		}
	}
	// A ~400 m block at res 9 (edge ~200 m) crosses a handful of cells.
	if c.Cells() < len(n.Links())/2 {
		t.Errorf("only %d cells for %d links", c.Cells(), len(n.Links()))
	}
	if n.Cover(16) != nil || n.CellFreeFlowKmh(-1) != nil {
		t.Error("invalid resolutions should give nil")
	}
}

func TestCellFreeFlowKmh(t *testing.T) {
	// Two parallel links 3 m apart inside one res-7 cell: 100 m at 60 km/h and 100 m at 20 km/h.
	// Harmonic (space-mean) speed = 200 / (100/60 + 100/20) = 30 km/h.
	a, b := LatLng{30.25, 120.17}, LatLng{30.25 + metresToDegLat(100), 120.17}
	off := metresToDegLng(3, 30.25)
	nodes := []Node{{ID: "a", LatLng: a}, {ID: "b", LatLng: b},
		{ID: "c", LatLng: LatLng{a.Lat, a.Lng + off}}, {ID: "d", LatLng: LatLng{b.Lat, b.Lng + off}}}
	n, err := NewNetwork("test", nodes, []Link{
		{ID: "fast", From: "a", To: "b", SpeedLimitKmh: 60},
		{ID: "slow", From: "c", To: "d", SpeedLimitKmh: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	cells := n.CellFreeFlowKmh(7)
	if len(cells) != 1 {
		t.Fatalf("cells = %v, want one", cells)
	}
	for _, v := range cells {
		if math.Abs(v-30) > 0.01 {
			t.Errorf("free flow = %.3f, want 30", v)
		}
	}
	// West Lake: every cell's value lies within the range of the limits (40..60).
	for cell, v := range GenerateWestLake(3).CellFreeFlowKmh(DefaultRes) {
		if v < 40-1e-9 || v > 60+1e-9 {
			t.Errorf("cell %s free flow %.2f outside 40..60", CellString(cell), v)
		}
	}
}

func BenchmarkNearest(b *testing.B) {
	n := GenerateWestLake(1)
	bb := n.BBox()
	pts := make([]LatLng, 1024)
	for i := range pts {
		pts[i] = LatLng{bb.MinLat + (bb.MaxLat-bb.MinLat)*float64(i%32)/32, bb.MinLng + (bb.MaxLng-bb.MinLng)*float64(i/32)/32}
	}
	buf := make([]Candidate, 0, 16)
	s := newNearSearch(n)
	b.Run("Nearest", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := pts[i%len(pts)]
			n.Nearest(p.Lat, p.Lng, 50, 8)
		}
	})
	b.Run("reuse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			buf = s.run(buf, pts[i%len(pts)], 50, 8)
		}
	})
}
