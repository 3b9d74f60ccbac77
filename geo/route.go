package geo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// SpeedFunc gives the current speed of a link in km/h. A value that is not a positive finite number means
// "unknown": the router then uses the link's free-flow speed (FreeFlowKmh); Closed means the link is closed
// (a flooded underpass): routes avoid it wherever another way exists.
type SpeedFunc func(l *Link) float64

// Closed is what a SpeedFunc returns for a closed link.
var Closed = math.Inf(-1)

// closedKmh is the speed a closed link is costed at: a 100 m closed link costs about two hours, more than any
// detour in a city, while a unit that stands on one can still be routed off it.
const closedKmh = 0.05

// ErrNoRoute is returned when the destination cannot be reached from the origin over directed links.
var ErrNoRoute = errors.New("no route")

// Routing constants.
const (
	minRouteKmh  = 3    // live speeds are floored here: a standstill link is slow, not a wall
	overLimit    = 1.25 // live speeds are capped at this multiple of the network's fastest free-flow speed
	snapNearM    = 250  // first snapping radius around an origin or destination
	snapFarM     = 3000 // second, wider snapping radius
	twinSlackM   = 5    // candidates this close to the nearest link are kept too (both directions of a road)
	maxSnapLinks = 4
)

// Index returns the link's position in Network.Links().
func (l *Link) Index() int { return int(l.idx) }

// Router finds fastest routes over a network's directed links by A* with landmark (ALT) lower bounds (Goldberg
// & Harrelson 2005), Dijkstra on request. It is built once per
// network (Network.Router caches it) and is safe for concurrent use: each query takes its own scratch space from
// a pool.
type Router struct {
	n      *Network
	off    []int32 // CSR: outgoing links of node i are out[off[i]:off[i+1]]
	out    []int32
	vmax   float64 // m/s: the highest speed a link can be given
	hscale float64 // ≤ 1: the smallest declared-length / straight-line ratio of any link (keeps bounds valid)
	lm     landmarks
	pool   sync.Pool
}

var routers sync.Map // *Network → *Router

// Router returns the network's router, building it on first use.
func (n *Network) Router() *Router {
	if r, ok := routers.Load(n); ok {
		return r.(*Router)
	}
	r, _ := routers.LoadOrStore(n, newRouter(n))
	return r.(*Router)
}

// Route is Router().Route: the fastest route between two points under speed (nil: free flow).
func (n *Network) Route(fromLat, fromLng, toLat, toLng float64, speed SpeedFunc) (*Route, error) {
	return n.Router().Route(LatLng{fromLat, fromLng}, LatLng{toLat, toLng}, speed)
}

func newRouter(n *Network) *Router {
	r := &Router{n: n, off: make([]int32, len(n.nodes)+1), hscale: 1}
	vmax := 0.0
	for i, nd := range n.nodes {
		r.off[i+1] = r.off[i] + int32(len(nd.out))
		r.out = append(r.out, nd.out...)
	}
	for _, l := range n.links {
		vmax = math.Max(vmax, freeFlow(l))
		if d := DistanceM(n.nodes[l.from].LatLng, n.nodes[l.to].LatLng); d > 1 {
			r.hscale = math.Min(r.hscale, l.LengthM/d)
		}
	}
	r.vmax = vmax * overLimit / 3.6
	r.lm = buildLandmarks(n, r.off, r.out, numLandmarks)
	r.pool.New = func() any {
		return &scratch{dist: make([]float64, len(n.nodes)), prev: make([]int32, len(n.nodes)),
			seen: make([]uint32, len(n.nodes))}
	}
	return r
}

// MaxSpeedKmh is the highest speed the router gives any link (the fastest free-flow speed × 1.25; each link is
// capped at its own free-flow speed × 1.25).
func (r *Router) MaxSpeedKmh() float64 { return r.vmax * 3.6 }

// LowerBoundS is a lower bound on the travel time between two points (straight line at the highest speed,
// less the widest snap of both ends), for pruning many-to-one searches.
func (r *Router) LowerBoundS(a, b LatLng) float64 {
	return math.Max(0, DistanceM(a, b)*r.hscale-2*snapNearM) / r.vmax
}

// RouteStep is one link (or part of one) on a route.
type RouteStep struct {
	Link       *Link
	FromM, ToM float64 // the part of the link's geometry used (offsets from its start)
	LengthM    float64 // declared length of that part
	SpeedKmh   float64 // speed used
	EnterS     float64 // travel time from the origin to the start of the part
	ExitS      float64 // ... to its end
}

// Route is a fastest route: the steps from the point on the road nearest the origin to the one nearest the
// destination.
type Route struct {
	Steps          []RouteStep
	LengthM        float64
	TravelS        float64
	Start, End     LatLng  // the origin and destination snapped to the road
	SnapFromM      float64 // distance from the origin to Start
	SnapToM        float64 // ... from the destination to End
	Settled        int     // nodes settled by the search (its effort)
	FromDirections int     // how many directed links the origin was snapped to
}

// RouteNode is an intersection passed on a route.
type RouteNode struct {
	Node     *Node
	ArriveS  float64 // travel time from the origin
	DistM    float64 // route distance from the origin
	InLink   *Link   // the link arriving
	OutLink  *Link   // the link leaving
	Approach int     // index into Node.Approaches of InLink, -1 if none
}

// Nodes lists the intersections the route passes through, in order (the end nodes of all but the last step).
func (rt *Route) Nodes(n *Network) []RouteNode {
	var out []RouteNode
	dist := 0.0
	for i := 0; i+1 < len(rt.Steps); i++ {
		s := &rt.Steps[i]
		dist += s.LengthM
		nd := n.nodes[s.Link.to]
		ap := -1
		for j, a := range nd.Approaches {
			if a.LinkID == s.Link.ID {
				ap = j
			}
		}
		out = append(out, RouteNode{Node: nd, ArriveS: s.ExitS, DistM: dist, InLink: s.Link, OutLink: rt.Steps[i+1].Link, Approach: ap})
	}
	return out
}

// Geometry returns the route's polyline from Start to End.
func (rt *Route) Geometry() []LatLng {
	var pts []LatLng
	for _, s := range rt.Steps {
		part := s.Link.slice(s.FromM, s.ToM)
		if len(pts) > 0 && len(part) > 0 && pts[len(pts)-1] == part[0] {
			part = part[1:]
		}
		pts = append(pts, part...)
	}
	return pts
}

// slice returns the link geometry between two offsets.
func (l *Link) slice(from, to float64) []LatLng {
	a, _ := l.PointAt(from)
	pts := []LatLng{a}
	for i := 1; i < len(l.Geometry)-1; i++ {
		if l.cum[i] > from && l.cum[i] < to {
			pts = append(pts, l.Geometry[i])
		}
	}
	b, _ := l.PointAt(to)
	return append(pts, b)
}

// PositionOf locates a point on the route: the distance along it of the closest point and how far the point is
// from the route. Used to track a vehicle's progress.
func (rt *Route) PositionOf(p LatLng) (alongM, offM float64) {
	pl := newPlane(p)
	best, done := math.Inf(1), 0.0
	for _, s := range rt.Steps {
		pts := s.Link.slice(s.FromM, s.ToM)
		geomLen := math.Max(s.ToM-s.FromM, 1e-9)
		acc := 0.0
		for i := 1; i < len(pts); i++ {
			ax, ay := pl.xy(pts[i-1])
			bx, by := pl.xy(pts[i])
			seg := math.Hypot(bx-ax, by-ay)
			t, d := projectOnSegment(0, 0, ax, ay, bx, by)
			if d < best {
				best, alongM = d, done+(acc+t*seg)/geomLen*s.LengthM
			}
			acc += seg
		}
		done += s.LengthM
	}
	return alongM, best
}

// TimeAt returns the travel time from the origin to the point alongM metres along the route.
func (rt *Route) TimeAt(alongM float64) float64 {
	done := 0.0
	for _, s := range rt.Steps {
		if alongM <= done+s.LengthM {
			f := 0.0
			if s.LengthM > 0 {
				f = (alongM - done) / s.LengthM
			}
			return s.EnterS + math.Max(0, f)*(s.ExitS-s.EnterS)
		}
		done += s.LengthM
	}
	return rt.TravelS
}

// snap is one end of a query placed on a directed link.
type snap struct {
	link   int32
	offM   float64 // geometric offset along the link
	distM  float64
	point  LatLng
	frac   float64 // fraction of the link's geometry before the point
	costTo float64 // origin: seconds to the link's end node; destination: seconds from its start node
}

func (r *Router) snaps(p LatLng, what string) ([]snap, error) {
	c := r.n.Nearest(p.Lat, p.Lng, snapNearM, maxSnapLinks)
	if len(c) == 0 {
		c = r.n.Nearest(p.Lat, p.Lng, snapFarM, maxSnapLinks)
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("cannot route (%s %.6f, %.6f): no road within %d m: %w", what, p.Lat, p.Lng, snapFarM, ErrNoRoute)
	}
	var out []snap
	for _, x := range c {
		if x.DistanceM > c[0].DistanceM+twinSlackM {
			break
		}
		g := x.Link.GeomLengthM()
		f := 0.0
		if g > 0 {
			f = x.OffsetM / g
		}
		out = append(out, snap{link: x.Link.idx, offM: x.OffsetM, distM: x.DistanceM, point: x.Point, frac: f})
	}
	return out, nil
}

// alongHeading keeps the snaps whose link runs within 90° of headingDeg at the snapped point (all of them when
// none does).
func (r *Router) alongHeading(src []snap, headingDeg float64) []snap {
	var out []snap
	for _, s := range src {
		_, b := r.n.links[s.link].PointAt(s.offM)
		if d := math.Abs(normDeg(b-headingDeg+180) - 180); d < 90 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return src
	}
	return out
}

// speedOf is a link's speed in m/s under sp, floored and capped.
func (r *Router) speedOf(l *Link, sp SpeedFunc) float64 {
	v := math.NaN()
	if sp != nil {
		v = sp(l)
	}
	if math.IsInf(v, -1) {
		return closedKmh / 3.6
	}
	if !(v > 0) || math.IsInf(v, 0) {
		v = freeFlow(l)
	}
	return math.Min(math.Max(v, minRouteKmh), freeFlow(l)*overLimit) / 3.6
}

type scratch struct {
	dist  []float64
	prev  []int32 // link entering the node on the best path; -2-k for the k-th origin snap
	seen  []uint32
	epoch uint32
	heap  []hitem
}

type hitem struct {
	f    float64
	d    float64
	node int32
}

// Route returns the fastest route from one point to another by A*, with link travel times LengthM / speed.
// Both points are snapped to the nearest link (both directions of a two-way road are tried).
func (r *Router) Route(from, to LatLng, speed SpeedFunc) (*Route, error) {
	return r.search(from, to, speed, true, math.NaN())
}

// RouteHeading is Route for a vehicle moving on bearing headingDeg (clockwise from north): it starts on a link
// running within 90° of its heading, so a moving vehicle is not sent back the way it came on the other
// carriageway (links of either direction are kept when none runs its way; NaN: Route).
func (r *Router) RouteHeading(from, to LatLng, headingDeg float64, speed SpeedFunc) (*Route, error) {
	return r.search(from, to, speed, true, headingDeg)
}

// Dijkstra is Route without the A* heuristic (for checking and comparison).
func (r *Router) Dijkstra(from, to LatLng, speed SpeedFunc) (*Route, error) {
	return r.search(from, to, speed, false, math.NaN())
}

func (r *Router) search(from, to LatLng, speed SpeedFunc, astar bool, headingDeg float64) (*Route, error) {
	src, err := r.snaps(from, "origin")
	if err != nil {
		return nil, err
	}
	if !math.IsNaN(headingDeg) {
		src = r.alongHeading(src, headingDeg)
	}
	dst, err := r.snaps(to, "destination")
	if err != nil {
		return nil, err
	}
	links := r.n.links
	s := r.pool.Get().(*scratch)
	defer r.pool.Put(s)
	s.epoch++
	if s.epoch == 0 {
		clear(s.seen)
		s.epoch = 1
	}
	s.heap = s.heap[:0]
	goals := make([]int32, 0, len(dst))
	for i := range dst {
		if g := links[dst[i].link].from; !slices.Contains(goals, g) {
			goals = append(goals, g)
		}
	}
	h := func(u int32) float64 {
		if !astar {
			return 0
		}
		m := math.Inf(1)
		for _, g := range goals {
			m = math.Min(m, r.lm.bound(u, g))
		}
		return m
	}
	best, bestDst, bestSrc := math.Inf(1), -1, -1
	for i := range src {
		l := links[src[i].link]
		src[i].costTo = l.LengthM * (1 - src[i].frac) / r.speedOf(l, speed)
	}
	for j := range dst {
		l := links[dst[j].link]
		dst[j].costTo = l.LengthM * dst[j].frac / r.speedOf(l, speed)
		for i := range src {
			if src[i].link == dst[j].link && dst[j].offM >= src[i].offM {
				if c := l.LengthM * (dst[j].frac - src[i].frac) / r.speedOf(l, speed); c < best {
					best, bestDst, bestSrc = c, j, i
				}
			}
		}
	}
	relax := func(u int32, d float64, prev int32) {
		if s.seen[u] == s.epoch && s.dist[u] <= d {
			return
		}
		s.seen[u], s.dist[u], s.prev[u] = s.epoch, d, prev
		s.push(hitem{f: d + h(u), d: d, node: u})
	}
	for i := range src {
		relax(links[src[i].link].to, src[i].costTo, int32(-2-i))
	}
	settled := 0
	for len(s.heap) > 0 {
		it := s.pop()
		if it.f >= best {
			break
		}
		u := it.node
		if it.d > s.dist[u] {
			continue
		}
		settled++
		for j := range dst {
			if links[dst[j].link].from == u {
				if c := it.d + dst[j].costTo; c < best {
					best, bestDst, bestSrc = c, j, -1
				}
			}
		}
		for _, li := range r.out[r.off[u]:r.off[u+1]] {
			l := links[li]
			relax(l.to, it.d+l.LengthM/r.speedOf(l, speed), li)
		}
	}
	if bestDst < 0 {
		return nil, fmt.Errorf("cannot route (%.6f, %.6f → %.6f, %.6f): %w", from.Lat, from.Lng, to.Lat, to.Lng, ErrNoRoute)
	}
	// Rebuild the steps backwards.
	d := dst[bestDst]
	var rev []RouteStep
	if bestSrc >= 0 { // origin and destination on the same link
		l := links[d.link]
		o := src[bestSrc]
		rev = append(rev, RouteStep{Link: l, FromM: o.offM, ToM: d.offM, LengthM: l.LengthM * (d.frac - o.frac)})
	} else {
		l := links[d.link]
		rev = append(rev, RouteStep{Link: l, FromM: 0, ToM: d.offM, LengthM: l.LengthM * d.frac})
		for u := l.from; ; {
			p := s.prev[u]
			if p <= -2 {
				o := src[-2-p]
				ol := links[o.link]
				rev = append(rev, RouteStep{Link: ol, FromM: o.offM, ToM: ol.GeomLengthM(), LengthM: ol.LengthM * (1 - o.frac)})
				bestSrc = int(-2 - p)
				break
			}
			pl := links[p]
			rev = append(rev, RouteStep{Link: pl, FromM: 0, ToM: pl.GeomLengthM(), LengthM: pl.LengthM})
			u = pl.from
		}
	}
	rt := &Route{Steps: make([]RouteStep, 0, len(rev)), Start: src[bestSrc].point, End: d.point,
		SnapFromM: src[bestSrc].distM, SnapToM: d.distM, Settled: settled, FromDirections: len(src)}
	t := 0.0
	for i := len(rev) - 1; i >= 0; i-- {
		st := rev[i]
		v := r.speedOf(st.Link, speed)
		st.SpeedKmh = v * 3.6
		st.EnterS, st.ExitS = t, t+st.LengthM/v
		t = st.ExitS
		rt.LengthM += st.LengthM
		rt.Steps = append(rt.Steps, st)
	}
	rt.TravelS = t
	return rt, nil
}

func (s *scratch) push(it hitem) {
	s.heap = append(s.heap, it)
	i := len(s.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].f <= s.heap[i].f {
			break
		}
		s.heap[p], s.heap[i] = s.heap[i], s.heap[p]
		i = p
	}
}

func (s *scratch) pop() hitem {
	top := s.heap[0]
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap = s.heap[:last]
	i := 0
	for {
		l, m := 2*i+1, i
		if l < last && s.heap[l].f < s.heap[m].f {
			m = l
		}
		if l+1 < last && s.heap[l+1].f < s.heap[m].f {
			m = l + 1
		}
		if m == i {
			return top
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
}

// SpeedKmh is the speed the router uses for a link under sp (floored at 3 km/h, capped at 1.25 × free flow,
// free flow when sp does not know the link).
func (r *Router) SpeedKmh(l *Link, sp SpeedFunc) float64 { return r.speedOf(l, sp) * 3.6 }
