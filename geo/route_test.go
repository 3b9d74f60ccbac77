package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// routeNet: A—B—C along a parallel at 50 km/h, with a detour A—D—C through a point north of B; all two-way.
func routeNet(t *testing.T) *Network {
	t.Helper()
	nodes := []Node{
		{ID: "A", LatLng: LatLng{30, 120.00}}, {ID: "B", LatLng: LatLng{30, 120.01}},
		{ID: "C", LatLng: LatLng{30, 120.02}}, {ID: "D", LatLng: LatLng{30.005, 120.01}},
		{ID: "E", LatLng: LatLng{30.02, 120.03}}, {ID: "F", LatLng: LatLng{30.02, 120.04}},
	}
	var links []Link
	for _, p := range [][2]string{{"A", "B"}, {"B", "C"}, {"A", "D"}, {"D", "C"}} {
		links = append(links, Link{ID: p[0] + p[1], From: p[0], To: p[1], SpeedLimitKmh: 50},
			Link{ID: p[1] + p[0], From: p[1], To: p[0], SpeedLimitKmh: 50})
	}
	links = append(links, Link{ID: "EF", From: "E", To: "F", SpeedLimitKmh: 50}) // unreachable island
	n, err := NewNetwork("test", nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func stepIDs(rt *Route) []string {
	var ids []string
	for _, s := range rt.Steps {
		ids = append(ids, s.Link.ID)
	}
	return ids
}

func TestRouteHandMade(t *testing.T) {
	n := routeNet(t)
	from, to := LatLng{30, 120.002}, LatLng{30, 120.018}
	rt, err := n.Route(from.Lat, from.Lng, to.Lat, to.Lng, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepIDs(rt); !slices.Equal(got, []string{"AB", "BC"}) {
		t.Fatalf("free-flow route = %v, want [AB BC]", got)
	}
	want := DistanceM(from, to)
	if math.Abs(rt.LengthM-want) > 2 {
		t.Errorf("length %.1f m, want %.1f", rt.LengthM, want)
	}
	if math.Abs(rt.TravelS-rt.LengthM/(50/3.6)) > 1e-6 {
		t.Errorf("travel %.3f s, want %.3f", rt.TravelS, rt.LengthM/(50/3.6))
	}
	// B→C jammed: the route turns back (the twin link of the origin's road) and takes the detour, arriving on
	// C→B.
	jam := func(l *Link) float64 {
		if l.ID == "BC" {
			return 3
		}
		return math.NaN()
	}
	rt2, err := n.Route(from.Lat, from.Lng, to.Lat, to.Lng, jam)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepIDs(rt2); !slices.Equal(got, []string{"BA", "AD", "DC", "CB"}) {
		t.Fatalf("jammed route = %v, want [BA AD DC CB]", got)
	}
	var ids []string
	last := 0.0
	for _, rn := range rt2.Nodes(n) {
		ids = append(ids, rn.Node.ID)
		if rn.ArriveS <= last {
			t.Errorf("arrival at %s %.1f s not after %.1f", rn.Node.ID, rn.ArriveS, last)
		}
		last = rn.ArriveS
	}
	if !slices.Equal(ids, []string{"A", "D", "C"}) {
		t.Errorf("nodes passed = %v, want [A D C]", ids)
	}
	d, err := n.Router().Dijkstra(from, to, jam)
	if err != nil || math.Abs(d.TravelS-rt2.TravelS) > 1e-9 {
		t.Errorf("Dijkstra %v %v, A* %.3f", d, err, rt2.TravelS)
	}
	// Geometry and tracking.
	g := rt.Geometry()
	if DistanceM(g[0], rt.Start) > 0.01 || DistanceM(g[len(g)-1], rt.End) > 0.01 {
		t.Errorf("geometry runs %v..%v, want %v..%v", g[0], g[len(g)-1], rt.Start, rt.End)
	}
	along, off := rt.PositionOf(LatLng{30.0001, 120.01})
	if math.Abs(along-DistanceM(from, LatLng{30, 120.01})) > 2 || off > 15 {
		t.Errorf("position of B: %.1f m along, %.1f off", along, off)
	}
	if rt.TimeAt(0) != 0 || math.Abs(rt.TimeAt(rt.LengthM)-rt.TravelS) > 1e-9 || math.Abs(rt.TimeAt(along)-rt.TravelS/2) > 1 {
		t.Errorf("TimeAt: 0→%.2f, half→%.2f, end→%.2f (travel %.2f)", rt.TimeAt(0), rt.TimeAt(along), rt.TimeAt(rt.LengthM), rt.TravelS)
	}
}

func TestRouteSameLinkAndNoRoute(t *testing.T) {
	n := routeNet(t)
	rt, err := n.Route(30, 120.002, 30, 120.008, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepIDs(rt); !slices.Equal(got, []string{"AB"}) || math.Abs(rt.LengthM-DistanceM(LatLng{30, 120.002}, LatLng{30, 120.008})) > 1 {
		t.Errorf("same-link route = %v, %.1f m", got, rt.LengthM)
	}
	_, err = n.Route(30, 120.002, 30.02, 120.035, nil)
	if !errors.Is(err, ErrNoRoute) {
		t.Errorf("route to an island: err = %v, want ErrNoRoute", err)
	}
	_, err = n.Route(30, 120.002, 31, 121, nil)
	if !errors.Is(err, ErrNoRoute) {
		t.Errorf("route to a point far from any road: err = %v, want ErrNoRoute", err)
	}
}

// hashSpeed gives each link a deterministic "live" speed between 5 and 90 km/h (or unknown).
func hashSpeed(seed uint64) SpeedFunc {
	return func(l *Link) float64 {
		h := (uint64(l.idx)+1)*0x9E3779B97F4A7C15 ^ seed
		h ^= h >> 29
		if h%7 == 0 {
			return math.NaN()
		}
		return 5 + float64(h%86)
	}
}

func randomPoint(rng *rand.Rand, b BBox) LatLng {
	return LatLng{b.MinLat + rng.Float64()*(b.MaxLat-b.MinLat), b.MinLng + rng.Float64()*(b.MaxLng-b.MinLng)}
}

func TestRouteAStarMatchesDijkstraWestLake(t *testing.T) {
	n := GenerateWestLake(1)
	r := n.Router()
	rng := rand.New(rand.NewPCG(1, 2))
	var settledA, settledD int
	for i := 0; i < 300; i++ {
		a, b := randomPoint(rng, n.BBox()), randomPoint(rng, n.BBox())
		sp := hashSpeed(uint64(i % 3))
		if i%3 == 0 {
			sp = nil
		}
		ra, errA := r.Route(a, b, sp)
		rd, errD := r.Dijkstra(a, b, sp)
		if (errA == nil) != (errD == nil) {
			t.Fatalf("pair %d: A* err %v, Dijkstra err %v", i, errA, errD)
		}
		if errA != nil {
			continue
		}
		if math.Abs(ra.TravelS-rd.TravelS) > 1e-6*rd.TravelS+1e-9 {
			t.Fatalf("pair %d: A* %.6f s, Dijkstra %.6f s", i, ra.TravelS, rd.TravelS)
		}
		if lb := r.LowerBoundS(a, b); ra.SnapFromM < snapNearM && ra.SnapToM < snapNearM && lb > ra.TravelS+1e-9 {
			t.Fatalf("pair %d: lower bound %.3f s above the route's %.3f s", i, lb, ra.TravelS)
		}
		// The route is connected: each step starts where the previous one ended.
		for k := 1; k < len(ra.Steps); k++ {
			if ra.Steps[k].Link.From != ra.Steps[k-1].Link.To {
				t.Fatalf("pair %d: step %d starts at %s, previous ends at %s", i, k, ra.Steps[k].Link.From, ra.Steps[k-1].Link.To)
			}
		}
		settledA += ra.Settled
		settledD += rd.Settled
	}
	if settledA >= settledD {
		t.Errorf("A* settled %d nodes, Dijkstra %d: the heuristic does not help", settledA, settledD)
	}
	t.Logf("West Lake, 300 queries: A* settled %d nodes, Dijkstra %d", settledA, settledD)
}

func TestPointIndexNearby(t *testing.T) {
	x := NewPointIndex()
	x.Set("far", LatLng{30.05, 120.1})
	x.Set("near", LatLng{30.001, 120.001})
	x.Set("mid", LatLng{30.01, 120.0})
	x.Set("moved", LatLng{31, 121})
	x.Set("moved", LatLng{30.0005, 120.0})
	x.Set("gone", LatLng{30, 120})
	x.Remove("gone")
	var got []string
	x.Nearby(LatLng{30, 120}, func(id string, _ LatLng, _ float64) bool {
		got = append(got, id)
		return len(got) < 3
	})
	if !slices.Equal(got, []string{"moved", "near", "mid"}) || x.Len() != 4 {
		t.Errorf("nearest = %v (len %d), want [moved near mid] (4)", got, x.Len())
	}
}

// TestRouteNanchangQueryTime measures A* and Dijkstra query times on the Nanchang network (2,048 intersections,
// 6,024 links) over random pairs with random live speeds, and checks they agree.
func TestRouteNanchangQueryTime(t *testing.T) {
	n, err := LoadCityBrainFile(dataFile(t, "citybrain/nanchang/roadnet.txt"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := n.Router()
	build := time.Since(start)
	rng := rand.New(rand.NewPCG(3, 4))
	var ta, td []time.Duration
	var sa, sd int
	for i := 0; i < 200; i++ {
		a, b := randomPoint(rng, n.BBox()), randomPoint(rng, n.BBox())
		sp := hashSpeed(uint64(i))
		if i%2 == 0 {
			sp = nil
		}
		t0 := time.Now()
		ra, errA := r.Route(a, b, sp)
		t1 := time.Now()
		rd, errD := r.Dijkstra(a, b, sp)
		t2 := time.Now()
		if (errA == nil) != (errD == nil) {
			t.Fatalf("pair %d: A* err %v, Dijkstra err %v", i, errA, errD)
		}
		if errA != nil {
			continue
		}
		if math.Abs(ra.TravelS-rd.TravelS) > 1e-6*rd.TravelS {
			t.Fatalf("pair %d: A* %.6f s, Dijkstra %.6f s", i, ra.TravelS, rd.TravelS)
		}
		ta, td = append(ta, t1.Sub(t0)), append(td, t2.Sub(t1))
		sa, sd = sa+ra.Settled, sd+rd.Settled
	}
	if len(ta) < 100 {
		t.Fatalf("only %d of 200 random pairs routable", len(ta))
	}
	q := func(d []time.Duration, p float64) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[int(p*float64(len(d)-1))]
	}
	t.Logf("Nanchang: router built in %v; %d routes (half free flow, half random live speeds): A* p50 %v p99 %v, "+
		"%d nodes settled; Dijkstra p50 %v p99 %v, %d settled", build, len(ta), q(ta, 0.5), q(ta, 0.99), sa,
		q(td, 0.5), q(td, 0.99), sd)
	if p50 := q(ta, 0.5); p50 > 50*time.Millisecond {
		t.Errorf("A* median query %v on Nanchang, want under 50 ms", p50)
	}
}

func BenchmarkRouteNanchang(b *testing.B) {
	n, err := LoadCityBrainFile(dataFile(b, "citybrain/nanchang/roadnet.txt"))
	if err != nil {
		b.Fatal(err)
	}
	r := n.Router()
	rng := rand.New(rand.NewPCG(5, 6))
	pairs := make([][2]LatLng, 64)
	for i := range pairs {
		pairs[i] = [2]LatLng{randomPoint(rng, n.BBox()), randomPoint(rng, n.BBox())}
	}
	sp := hashSpeed(7)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pairs[i%len(pairs)]
		r.Route(p[0], p[1], sp)
	}
}

// A closed link (a flooded underpass) is avoided when another way exists.
func TestRouteAvoidsClosedLink(t *testing.T) {
	n := routeNet(t)
	r := n.Router()
	open, err := r.Route(LatLng{30, 120.0001}, LatLng{30, 120.0199}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(stepIDs(open), "BC") {
		t.Fatalf("open route %v should take the straight way through B", stepIDs(open))
	}
	closed := func(l *Link) float64 {
		if l.ID == "BC" {
			return Closed
		}
		return math.NaN()
	}
	rt, err := r.Route(LatLng{30, 120.0001}, LatLng{30, 120.0199}, closed)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(stepIDs(rt), "BC") || !slices.Contains(stepIDs(rt), "DC") {
		t.Fatalf("route with BC closed: %v, want the detour through D", stepIDs(rt))
	}
}

// A moving vehicle is routed from the carriageway it drives on, even when turning back would be faster.
func TestRouteHeading(t *testing.T) {
	n := routeNet(t)
	from, to := LatLng{30, 120.002}, LatLng{30, 120.018}
	jam := func(l *Link) float64 {
		if l.ID == "BC" {
			return 3
		}
		return math.NaN()
	}
	r := n.Router()
	for _, c := range []struct {
		heading float64
		first   string
	}{{90, "AB"}, {80, "AB"}, {270, "BA"}, {math.NaN(), "BA"}} {
		rt, err := r.RouteHeading(from, to, c.heading, jam)
		if err != nil {
			t.Fatal(err)
		}
		if got := stepIDs(rt); got[0] != c.first {
			t.Errorf("heading %v: route %v, want it to start on %s", c.heading, got, c.first)
		}
	}
	// Heading north on an east–west road: no link runs that way, both are kept.
	rt, err := r.RouteHeading(from, to, 0, jam)
	if err != nil || stepIDs(rt)[0] != "BA" {
		t.Errorf("heading across the road: %v %v, want the unconstrained route", rt, err)
	}
}
