package engine

import (
	"math"
	"testing"

	"citybrain/geo"
)

func TestProbesAggregatePerMatchedLink(t *testing.T) {
	net := geo.GenerateWestLake(1)
	// The longest link, driven end to end by three vehicles at 30 km/h with their heading.
	var link *geo.Link
	for _, l := range net.Links() {
		if link == nil || l.GeomLengthM() > link.GeomLengthM() {
			link = l
		}
	}
	r := newRig(t, func(c *Config) { c.Network = net })
	var evs []Event
	for v := 0; v < 3; v++ {
		for k := 0; k < 10; k++ {
			off := link.GeomLengthM() * (0.05 + 0.09*float64(k))
			p, bearing := link.PointAt(off)
			e := probe(t0+int64(k)*3000, p.Lat, p.Lng, 30)
			e.ID = string(rune('a' + v))
			e.HeadingDeg = bearing
			evs = append(evs, e)
		}
	}
	r.apply(evs...)
	stats := r.e.Links(net.BBox())
	var got *LinkStats
	for i := range stats {
		if stats[i].Link.ID == link.ID {
			got = &stats[i]
		}
	}
	if got == nil {
		t.Fatalf("link %s has no stats; %d links do", link.ID, len(stats))
	}
	sp, ok := got.W[0].Speed()
	if !ok || math.Abs(sp-30) > 1e-6 || got.W[0].Samples < 27 {
		t.Errorf("link speed %g from %d samples, want 30 from ~30", sp, got.W[0].Samples)
	}
	// The link carries the windows of the cell its estimate leans on: the cell of its midpoint.
	cell := LinkCell(link, r.e.Config().Res)
	var view *CellView
	for _, v := range r.e.All() {
		if v.Cell == cell {
			view = v
		}
	}
	if view == nil {
		t.Fatalf("no view of the link's midpoint cell %x", cell)
	}
	if got.Cell != view.W {
		t.Errorf("link's cell windows %+v, want its midpoint cell's %+v", got.Cell[1], view.W[1])
	}
	if est := got.Estimate(1); math.Abs(est.Kmh-30) > 1e-6 || est.Confidence() <= 0 {
		t.Errorf("link estimate %g km/h at confidence %g, want 30 (every fix in the cell is at 30)", est.Kmh, est.Confidence())
	}
	// Only a few fixes may land on other links (the ends of the link touch intersections).
	other := uint32(0)
	for _, s := range stats {
		if s.Link.ID != link.ID {
			other += s.W[0].Samples
		}
	}
	if other > 3 {
		t.Errorf("%d of 30 fixes matched to other links", other)
	}
}
