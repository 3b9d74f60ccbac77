package dispatch

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

type fakeSource struct {
	mu    sync.Mutex
	units []engine.Unit
	links []engine.LinkStats
	incs  []engine.Incident
}

func (f *fakeSource) Units() []engine.Unit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Unit(nil), f.units...)
}
func (f *fakeSource) Links(geo.BBox) []engine.LinkStats { return f.links }
func (f *fakeSource) Incidents() []engine.Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Incident(nil), f.incs...)
}

func (f *fakeSource) move(id string, p geo.LatLng, ts int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.units {
		if f.units[i].ID == id {
			f.units[i].Lat, f.units[i].Lng, f.units[i].TS = p.Lat, p.Lng, ts
		}
	}
}

// setup: West Lake, an incident at one node, four units at others (one offline).
func setup(t *testing.T) (*Manager, *fakeSource, *geo.Network) {
	t.Helper()
	net := geo.GenerateWestLake(1)
	nodes := net.Nodes()
	at := func(i int) (float64, float64) { return nodes[i].Lat, nodes[i].Lng }
	src := &fakeSource{}
	lat, lng := at(100)
	src.incs = []engine.Incident{{ID: "inc1", Type: "crash", Lat: lat, Lng: lng, Status: engine.StatusConfirmed}}
	for i, n := range []int{20, 110, 180, 104} {
		la, ln := at(n)
		st := "available"
		if i == 3 {
			st = "offline"
		}
		src.units = append(src.units, engine.Unit{ID: []string{"amb-1", "amb-2", "pol-1", "pol-2"}[i], Type: "ambulance",
			Status: st, Lat: la, Lng: ln, TS: 1})
	}
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	m, err := New(src, Config{Network: net, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	return m, src, net
}

func TestDispatchFlow(t *testing.T) {
	m, src, _ := setup(t)
	opts, err := m.Nearest("inc1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 3 {
		t.Fatalf("got %d options, want 3 (the offline unit is excluded)", len(opts))
	}
	for i, o := range opts {
		if o.Unit.ID == "pol-2" {
			t.Errorf("offline unit offered")
		}
		if i > 0 && o.ETAS < opts[i-1].ETAS {
			t.Errorf("options not by ETA: %v after %v", o.ETAS, opts[i-1].ETAS)
		}
		if o.Route == nil || o.ETAS <= 0 {
			t.Errorf("option %s without route/ETA", o.Unit.ID)
		}
	}
	best := opts[0].Unit.ID
	if _, err := m.Assign("nope", best, "cmd", "commander"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}
	d, err := m.Assign("inc1", best, "cmd-anna", "commander")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusEnRoute || math.Abs(d.ETAS-opts[0].ETAS) > 1e-6 || len(d.Geometry) < 2 {
		t.Fatalf("dispatch %+v", d)
	}
	if id, busy := m.Busy(best); !busy || id != d.ID {
		t.Errorf("unit not busy after dispatch")
	}
	if _, err := m.Assign("inc1", best, "cmd", "commander"); !errors.Is(err, ErrConflict) {
		t.Errorf("second dispatch of a busy unit: %v", err)
	}
	again, _ := m.Nearest("inc1", 3)
	for _, o := range again {
		if o.Unit.ID == best {
			t.Errorf("busy unit offered again")
		}
	}
	if len(d.GreenWave) == 0 {
		t.Errorf("no green wave on a route through West Lake's signals")
	}
	for i, p := range d.GreenWave {
		if p.GreenAt.After(p.ArriveAt) || !p.HoldUntil.After(p.ArriveAt) || (i > 0 && p.ArriveS < d.GreenWave[i-1].ArriveS) {
			t.Errorf("preemption %d out of order: %+v", i, p)
		}
	}
	// Drive the unit along its route: the ETA shrinks, then it arrives.
	g := d.Geometry
	last := d.ETAS
	for k, f := range []float64{0.3, 0.6, 0.9} {
		p := g[int(f*float64(len(g)-1))]
		src.move(best, p, int64(10+k))
		m.Tick()
		cur, _ := m.Get(d.ID)
		if !(cur.ETAS < last) || cur.Status != StatusEnRoute {
			t.Fatalf("at %.0f%% of the route: ETA %.1f s (was %.1f), status %s", 100*f, cur.ETAS, last, cur.Status)
		}
		passed := 0
		for _, p := range cur.GreenWave {
			if p.Passed {
				passed++
			}
		}
		if f >= 0.6 && passed == 0 && len(cur.GreenWave) > 1 {
			t.Errorf("at %.0f%% no intersection is marked passed", 100*f)
		}
		last = cur.ETAS
	}
	src.move(best, g[len(g)-1], 20)
	m.Tick()
	cur, _ := m.Get(d.ID)
	if cur.Status != StatusArrived || cur.ArrivedAt == nil || cur.ETAS != 0 {
		t.Fatalf("at the incident: status %s arrived %v eta %.1f", cur.Status, cur.ArrivedAt, cur.ETAS)
	}
	// The incident clears: the dispatch closes and the unit is free.
	src.mu.Lock()
	src.incs[0].Status = engine.StatusCleared
	src.mu.Unlock()
	m.Tick()
	cur, _ = m.Get(d.ID)
	if cur.Status != StatusCleared || cur.ClosedAt == nil {
		t.Errorf("after clearing: %s", cur.Status)
	}
	if _, busy := m.Busy(best); busy {
		t.Error("unit still busy after the incident cleared")
	}
	if a := m.AuditLog(); len(a) != 1 || a[0].By != "cmd-anna" || a[0].Action != "dispatch" {
		t.Errorf("audit %+v", a)
	}
}

func TestCloseAndReroute(t *testing.T) {
	m, src, net := setup(t)
	d, err := m.Assign("inc1", "amb-1", "c", "commander")
	if err != nil {
		t.Fatal(err)
	}
	// A position far off the route triggers a new route from there.
	n := net.Nodes()[150]
	src.move("amb-1", n.LatLng, 50)
	m.Tick()
	cur, _ := m.Get(d.ID)
	if cur.Reroutes != 1 && cur.OffRouteM < 150 {
		t.Errorf("off-route position: reroutes %d, off %.0f m", cur.Reroutes, cur.OffRouteM)
	}
	if _, err := m.Close(d.ID, "bogus", "c", "commander", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad status: %v", err)
	}
	if _, err := m.Close(d.ID, StatusCancelled, "c", "commander", "wrong unit"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Close(d.ID, StatusCancelled, "c", "commander", ""); !errors.Is(err, ErrConflict) {
		t.Errorf("double close: %v", err)
	}
	if _, busy := m.Busy("amb-1"); busy {
		t.Error("unit busy after cancel")
	}
	if len(m.List(false)) != 0 || len(m.List(true)) != 1 {
		t.Errorf("list open %d all %d", len(m.List(false)), len(m.List(true)))
	}
}

func TestRecommendAndDecide(t *testing.T) {
	m, src, net := setup(t)
	var nd *geo.Node
	for _, n := range net.Nodes() {
		if n.Signalised && len(n.Approaches) == 4 {
			nd = n
			break
		}
	}
	// Detector flows: N/S approaches 600 veh/h per link, E/W 200.
	total := 0.0
	for _, a := range nd.Approaches {
		l, _ := net.Link(a.LinkID)
		q := 200.0
		if a.Side == geo.SideNorth || a.Side == geo.SideSouth {
			q = 600
		}
		total += q
		var ls engine.LinkStats
		ls.Link = l
		ls.W[1] = engine.WindowStats{FlowSum: q, FlowN: 1, OccSum: 0.1, SpeedSum: 30, SpeedW: 1, Samples: 1}
		src.links = append(src.links, ls)
	}
	rec, err := m.Recommend(nd.ID, MethodWebster)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Phases[0].GreenS <= rec.Phases[1].GreenS {
		t.Errorf("busier N/S phase gets %.1f s, E/W %.1f", rec.Phases[0].GreenS, rec.Phases[1].GreenS)
	}
	if rec.CurrentSource != "assumed" || !(rec.DelayPlanS < rec.DelayNowS) || rec.DelayChangePct >= 0 {
		t.Errorf("expected delay change: now %.1f plan %.1f (%.1f%%), source %s", rec.DelayNowS, rec.DelayPlanS, rec.DelayChangePct, rec.CurrentSource)
	}
	mp, err := m.Recommend(nd.ID, MethodMaxPressure)
	if err != nil || len(mp.Phases) != 2 {
		t.Fatalf("max pressure: %v", err)
	}
	if _, err := m.Recommend(nd.ID, "magic"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown method: %v", err)
	}
	dec, err := m.Decide(nd.ID, MethodWebster, true, "officer-li", "police", "peak")
	if err != nil || !dec.Accepted || dec.Before.FlowVph != total {
		t.Fatalf("decision %+v err %v", dec, err)
	}
	ds := m.Decisions(nd.ID)
	if len(ds) != 1 || ds[0].After == nil {
		t.Fatalf("decisions %+v", ds)
	}
	rec2, _ := m.Recommend(nd.ID, MethodWebster)
	if rec2.CurrentSource != "accepted" || math.Abs(rec2.DelayChangePct) > 1e-9 {
		t.Errorf("after accepting: source %s change %.2f%%", rec2.CurrentSource, rec2.DelayChangePct)
	}
	a := m.AuditLog()
	if len(a) != 1 || a[0].Action != "plan_accept" || a[0].By != "officer-li" {
		t.Errorf("audit %+v", a)
	}
}

func TestCorridorPlan(t *testing.T) {
	m, _, net := setup(t)
	// Follow links straight on from a signalised node's outgoing link for a few hops.
	var ids []string
	var l *geo.Link
	for _, cand := range net.Links() {
		if nd, _ := net.Node(cand.To); nd.Signalised {
			l = cand
			break
		}
	}
	ids = append(ids, l.ID)
	for len(ids) < 5 {
		nd, _ := net.Node(l.To)
		var next *geo.Link
		for _, o := range nd.Out {
			c, _ := net.Link(o)
			if c.To != l.From {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		ids, l = append(ids, next.ID), next
	}
	c, err := m.CorridorPlan(ids)
	if err != nil {
		t.Fatal(err)
	}
	if c.CycleS < 40 || len(c.Nodes) == 0 || c.Nodes[0].OffsetS != 0 {
		t.Fatalf("corridor %+v", c)
	}
	for i, n := range c.Nodes {
		if n.OffsetS < 0 || n.OffsetS >= c.CycleS || (i > 0 && n.ArriveS <= c.Nodes[i-1].ArriveS) {
			t.Errorf("node %d: %+v", i, n)
		}
	}
	if _, err := m.CorridorPlan([]string{ids[0], ids[0]}); !errors.Is(err, ErrInvalid) {
		t.Errorf("disconnected corridor: %v", err)
	}
}

// A unit seen moving along a road is routed on from its own carriageway, whichever way the incident lies: the
// route starts on the link it drives, not on the twin link back (a moving vehicle cannot turn on the spot).
func TestDispatchRoutesAMovingUnitItsWay(t *testing.T) {
	for _, way := range []int{0, 1} {
		m, src, net := setup(t)
		var l, twin *geo.Link
		for _, a := range net.Links() {
			for _, b := range net.Links() {
				if a.From == b.To && a.To == b.From && a.GeomLengthM() > 200 {
					l, twin = a, b
					break
				}
			}
			if l != nil {
				break
			}
		}
		if l == nil {
			t.Fatal("West Lake has no two-way road over 200 m")
		}
		if way == 1 {
			l, twin = twin, l
		}
		p1, _ := l.PointAt(0.3 * l.GeomLengthM())
		p2, _ := l.PointAt(0.6 * l.GeomLengthM())
		src.move("amb-1", p1, 10)
		m.Tick()
		src.move("amb-1", p2, 20)
		m.Tick()
		d, err := m.Assign("inc1", "amb-1", "c", "commander")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.RouteLinks) == 0 || d.RouteLinks[0] != l.ID {
			t.Errorf("unit moving along %s: route %v, want it to start there (not on %s)", l.ID, d.RouteLinks, twin.ID)
		}
	}
}

// A unit at a signal's stop line has not passed it (GPS puts it a few metres either side): the green wave
// keeps holding that signal until the unit is PassedM beyond it.
func TestSignalHeldUntilPassed(t *testing.T) {
	m, src, net := setup(t)
	opts, err := m.Nearest("inc1", 1)
	if err != nil || len(opts) == 0 {
		t.Fatalf("nearest: %v %v", opts, err)
	}
	unit := opts[0].Unit.ID
	d, err := m.Assign("inc1", unit, "cmd", "commander")
	if err != nil {
		t.Fatal(err)
	}
	var sig *geo.RouteNode
	nodes := d.Route.Nodes(net)
	for i := range nodes {
		if rn := &nodes[i]; rn.Node.Signalised && rn.OutLink.LengthM > 2*PassedM && rn.InLink.LengthM > 10 &&
			rn.DistM+2*PassedM < d.LengthM-m.cfg.ArriveM {
			sig = rn
			break
		}
	}
	if sig == nil {
		t.Skip("the route crosses no signal with links long enough to test")
	}
	passed := func() bool {
		cur, _ := m.Get(d.ID)
		for _, p := range cur.GreenWave {
			if p.NodeID == sig.Node.ID && p.Approach == sig.InLink.ID {
				return p.Passed
			}
		}
		t.Fatalf("signal %s not in the green wave", sig.Node.ID)
		return false
	}
	ts := int64(10)
	move := func(p geo.LatLng) {
		ts++
		src.move(unit, p, ts)
		m.Tick()
	}
	before, _ := sig.InLink.PointAt(sig.InLink.LengthM - 5)
	move(before)
	if passed() {
		t.Fatal("5 m before the stop line: passed")
	}
	just, _ := sig.OutLink.PointAt(3)
	move(just)
	if passed() {
		t.Error("3 m past the stop line (GPS noise): passed, want held")
	}
	beyond, _ := sig.OutLink.PointAt(2 * PassedM)
	move(beyond)
	if !passed() {
		t.Errorf("%.0f m past the stop line: not passed", 2*PassedM)
	}
}

func TestPassedSignal(t *testing.T) {
	for _, c := range []struct {
		dist, progress, length float64
		want                   bool
	}{
		{100, 95, 500, false},           // before the stop line
		{100, 103, 500, false},          // at it, GPS a few metres past
		{100, 100 + PassedM, 500, true}, // into the junction
		{100, 104, 105, false},          // the incident 5 m past the signal: not yet at it
		{100, 105, 105, true},           // at the route's end
		{100, 100 + PassedM, 108, true}, // beyond
		{100, 99, 100 + PassedM, false}, // before the line, route ending PassedM past it
	} {
		if got := passedSignal(c.dist, c.progress, c.length); got != c.want {
			t.Errorf("signal at %.0f m, unit at %.0f of %.0f m: passed %v, want %v", c.dist, c.progress, c.length, got, c.want)
		}
	}
}

// A dispatch's route ends where the incident is on its last link (route_end_m), so a crew or a simulated vehicle
// stops at the scene instead of driving that link to its end.
func TestRouteEndsAtTheIncident(t *testing.T) {
	m, src, net := setup(t)
	var link *geo.Link
	for _, l := range net.Links() {
		if l.GeomLengthM() > 200 {
			link = l
			break
		}
	}
	if link == nil {
		t.Fatal("West Lake has no link over 200 m")
	}
	at, _ := link.PointAt(0.4 * link.GeomLengthM())
	src.mu.Lock()
	src.incs[0].Lat, src.incs[0].Lng = at.Lat, at.Lng
	src.mu.Unlock()
	d, err := m.Assign("inc1", "amb-1", "c", "commander")
	if err != nil {
		t.Fatal(err)
	}
	last, ok := net.Link(d.RouteLinks[len(d.RouteLinks)-1])
	if !ok {
		t.Fatalf("route ends on unknown link %v", d.RouteLinks)
	}
	if !(d.RouteEndM > 0 && d.RouteEndM < last.GeomLengthM()) {
		t.Fatalf("route ends %.1f m into %s (%.0f m long), want inside it (the incident is mid-link)", d.RouteEndM, last.ID, last.GeomLengthM())
	}
	if end, _ := last.PointAt(d.RouteEndM); geo.DistanceM(end, at) > 5 {
		t.Errorf("route ends %.1f m from the incident", geo.DistanceM(end, at))
	}
}

// Routes and queues read a link's published estimate, as the map does, not its raw sample: one car's fix at
// 60 km/h after eight minutes of a queue at 4 km/h is the queue.
func TestRoutingReadsTheEstimate(t *testing.T) {
	m, src, net := setup(t)
	l := net.Links()[0]
	ls := engine.LinkStats{Link: l}
	fixes := func(st *engine.WindowStats, kmh float64, n uint32) {
		st.SpeedSum += kmh * float64(n)
		st.SpeedW += float64(n)
		st.Samples += n
		st.Events += n
		st.Kinds[engine.KindProbe] += n
	}
	w := m.cfg.Window
	for i := w; i < len(ls.W); i++ {
		fixes(&ls.W[i], 60, 1)
		if i > w {
			fixes(&ls.W[i], 4, 96)
		}
	}
	src.links = []engine.LinkStats{ls}
	est := ls.Estimate(w)
	if sample, _ := ls.W[w].Speed(); sample != 60 || !(est.Kmh < 20) {
		t.Fatalf("sample %g, estimate %g: the scenario needs a fast sample and a slow estimate", sample, est.Kmh)
	}
	m.mu.Lock()
	got := m.speedLocked()(l)
	m.mu.Unlock()
	if got != est.Kmh {
		t.Errorf("routing reads %g km/h on the link, want the published estimate %g (sample 60)", got, est.Kmh)
	}
	if q := queueAt(&ls, w); q <= 0 {
		t.Errorf("queue %g vehicles per lane on a link whose estimate is %g km/h, want a queue", q, est.Kmh)
	}
}
