package engine

import (
	"fmt"
	"slices"
	"testing"

	"citybrain/geo"
)

// siblingCells returns the centres of two cells of the same parent (one resolution up) near the rig's
// test position.
func siblingCells(t *testing.T, res int) (a, b geo.LatLng) {
	t.Helper()
	c, err := geo.CellOf(lat, lng, res)
	if err != nil {
		t.Fatal(err)
	}
	var found []geo.LatLng
	for _, k := range geo.ChildrenFast(geo.ParentFast(c, res-1), res, nil) {
		if geo.Res(k) != res || geo.Parent(k, res-1) != geo.ParentFast(c, res-1) {
			continue
		}
		la, ln := geo.Center(k)
		found = append(found, geo.LatLng{Lat: la, Lng: ln})
	}
	if len(found) < 2 {
		t.Fatalf("cell %x: fewer than two children of its parent", c)
	}
	return found[0], found[1]
}

func TestACellLeansOnItsSiblings(t *testing.T) {
	r := newRig(t, func(cfg *Config) { cfg.DefaultFreeFlowKmh = 50 })
	a, b := siblingCells(t, r.e.Config().Res)
	// Cell a: one fast car's fix. Its sibling b: a queue, five vehicle-minutes of probes at 8 km/h.
	evs := []Event{probeOf("fast", t0+60_000)}
	evs[0].Lat, evs[0].Lng, evs[0].SpeedKmh = a.Lat, a.Lng, 60
	for k := int64(0); k < 60; k++ {
		e := probe(t0+k*1000, b.Lat, b.Lng, 8)
		e.ID = fmt.Sprintf("q%d", k%5)
		evs = append(evs, e)
	}
	r.apply(evs...)
	va := r.view(a.Lat, a.Lng)
	if va == nil {
		t.Fatal("no view of cell a")
	}
	if s, _ := va.W[1].Speed(); s != 60 {
		t.Fatalf("cell a's sample %g, want 60", s)
	}
	est := va.Derive(1)
	if !(est.SpeedKmh < 50 && est.SpeedKmh > 8) {
		t.Errorf("cell a reads %g km/h: want its one fix at 60 pulled toward its sibling's queue at 8", est.SpeedKmh)
	}
	// Only the sibling changes (the queue clears, at 48 km/h): cell a's view is republished with it.
	var clear []Event
	for k := int64(0); k < 600; k++ {
		e := probe(t0+70_000+k*100, b.Lat, b.Lng, 48)
		e.ID = fmt.Sprintf("f%d", k%5)
		clear = append(clear, e)
	}
	r.apply(clear...)
	after := r.view(a.Lat, a.Lng).Derive(1)
	if !(after.SpeedKmh > est.SpeedKmh+5) {
		t.Errorf("after its sibling's queue cleared, cell a reads %g km/h (before %g): its view was not republished", after.SpeedKmh, est.SpeedKmh)
	}
}

// TestSiblingPoolsDoNotDependOnTicks: the cells' published estimates, which lean on their siblings, are the
// same whether the engine ticks after every batch, every fifth one or once at the end.
func TestSiblingPoolsDoNotDependOnTicks(t *testing.T) {
	var batches [][]Event
	res := DefaultConfig().Res
	a, b := siblingCells(t, res)
	for i := int64(0); i < 60; i++ {
		var evs []Event
		for k := int64(0); k < 3; k++ {
			ms := i*2000 + k*600 // several batches per bucket: ticks inside a bucket visit changed cells only
			p, s := a, 30.0+float64(i%7)
			if (i+k)%3 == 0 || i >= 40 { // the last 40 s: only b changes
				p, s = b, 5+float64(i%11)
			}
			e := probe(t0+ms, p.Lat, p.Lng, s)
			e.ID = fmt.Sprintf("v%d", (i+k)%4)
			evs = append(evs, e)
		}
		batches = append(batches, evs)
	}
	run := func(every int) (out []string, pooled bool) {
		r := newRig(t, nil)
		for i, evs := range batches {
			r.applyOnly(evs...)
			if every > 0 && i%every == every-1 {
				r.e.Flush()
			}
		}
		r.e.Flush()
		for _, v := range r.e.All() {
			for w := range v.W {
				pooled = pooled || v.Siblings[w].Probes > 0
				d := v.Derive(w)
				out = append(out, fmt.Sprintf("%x w%d %v %v %.9g %.9g", v.Cell, w, v.W[w], v.Siblings[w], d.SpeedKmh, d.Confidence))
			}
		}
		slices.Sort(out)
		return out, pooled
	}
	want, pooled := run(1)
	if !pooled {
		t.Fatal("no view holds a sibling pool: the scenario does not exercise them")
	}
	for _, every := range []int{5, 0} {
		if got, _ := run(every); !slices.Equal(got, want) {
			t.Errorf("ticks every %d batches (0: once): views\n%q\nwant (a tick after every batch)\n%q", every, got, want)
		}
	}
}

// TestASiblingsEventInTheOpenBucketRepublishesNothing: a sibling's pool leaves out the open bucket, so an
// event that lands in it does not republish the other cells of the parent (a websocket delta would carry
// them all); the next bucket brings it into their pools.
func TestASiblingsEventInTheOpenBucketRepublishesNothing(t *testing.T) {
	r := newRig(t, nil)
	a, b := siblingCells(t, r.e.Config().Res)
	start := t0 - t0%10_000 // a bucket's start
	pa, pb := probe(start+1000, a.Lat, a.Lng, 30), probe(start+1000, b.Lat, b.Lng, 10)
	pa.ID, pb.ID = "a", "b"
	r.apply(pa, pb)
	before := r.view(a.Lat, a.Lng)
	pb.TS = start + 2000
	r.apply(pb)
	if got := r.view(a.Lat, a.Lng); got != before {
		t.Errorf("a sibling's event in the open bucket republished cell a (pool %v, was %v)", got.Siblings[1], before.Siblings[1])
	}
	pb.TS = start + 12_000 // the next bucket: the first two fixes of b are closed
	r.apply(pb)
	if got := r.view(a.Lat, a.Lng); got.Siblings[1].Probes != 2 {
		t.Errorf("in the next bucket cell a's pool holds %g probe fixes of its sibling, want 2", got.Siblings[1].Probes)
	}
}
