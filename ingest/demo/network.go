package demo

import (
	"bufio"
	"container/heap"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"citybrain/geo"
)

// Physical constants of the traffic model.
const (
	jamSpacingM  = 7.5  // metres of lane per stopped vehicle (length plus gap)
	reactionS    = 1.2  // time headway of the car-following rule, seconds
	satFlowLane  = 0.5  // vehicles per second per lane through a stop line (1800 veh/h/lane)
	accelMS2     = 2.0  // maximum acceleration
	brakeMS2     = 3.0  // comfortable deceleration towards a stop line
	cycleS       = 90   // fixed-time signal cycle
	lostS        = 5    // amber plus all-red per phase change
	signalPenalS = 12.0 // routing cost of crossing a signalised node (mean red wait)
)

// link is the simulation state of one directed link of the network.
type link struct {
	g       *geo.Link
	from    int32 // node index
	to      int32
	lengthM float64
	geomK   float64 // geometry length / lengthM, to place positions on the geometry
	lanes   float64
	vfree   float64 // free speed, m/s
	storage int     // vehicles the link holds when jammed
	succ    []int32 // links a vehicle may take at the To node (no U-turn unless it is the only way)
	group   int8    // signal group at the To node: -1 uncontrolled, 0 north-south, 1 east-west
	q       []int32 // vehicles on the link, front (nearest the stop line) first
	credit  float64 // stop-line discharge credit, vehicles
	det     int32   // detector index, -1 none
	cam     int32   // camera at the To node watching this approach, -1 none
	inc     int32   // active incident on the link, -1 none
	cost    float64 // routing cost, seconds
	flow    float64 // vehicles that crossed the stop line, halved every 5 minutes (a recent-flow measure)
}

// node is a network node with its fixed-time plan.
type node struct {
	g       *geo.Node
	signal  bool
	offset  int32 // seconds into the cycle at t = 0
	greenNS int32 // seconds of north-south green; east-west gets the rest of the cycle minus two lost times
	in, out []int32
}

// green reports whether signal group grp of node n shows green at simulated second t.
func (n *node) green(grp int8, t int64) bool {
	if !n.signal || grp < 0 {
		return true
	}
	c := int32((t + int64(n.offset)) % cycleS)
	if grp == 0 {
		return c < n.greenNS
	}
	return c >= n.greenNS+lostS && c < cycleS-lostS
}

// buildGraph turns the network into the simulation's links and nodes and sets up the fixed-time plans.
func (c *City) buildGraph() {
	net := c.net
	gn := net.Nodes()
	gl := net.Links()
	nodeIdx := make(map[string]int32, len(gn))
	c.nodes = make([]node, len(gn))
	for i, n := range gn {
		nodeIdx[n.ID] = int32(i)
		c.nodes[i] = node{g: n, signal: n.Signalised}
	}
	c.linkIdx = make(map[string]int32, len(gl))
	c.links = make([]link, len(gl))
	for i, l := range gl {
		c.linkIdx[l.ID] = int32(i)
		lanes := float64(max(l.Lanes, 1))
		length := l.LengthM
		if !(length > 1) {
			length = math.Max(l.GeomLengthM(), 1)
		}
		vf, _ := net.FreeFlowKmh(l.ID)
		if !(vf > 0) {
			vf = 40
		}
		lk := link{g: l, from: nodeIdx[l.From], to: nodeIdx[l.To], lengthM: length, geomK: l.GeomLengthM() / length,
			lanes: lanes, vfree: vf / 3.6, group: -1, det: -1, cam: -1, inc: -1}
		lk.storage = max(1, int(length*lanes/jamSpacingM))
		lk.cost = length / lk.vfree
		c.links[i] = lk
		c.nodes[lk.from].out = append(c.nodes[lk.from].out, int32(i))
		c.nodes[lk.to].in = append(c.nodes[lk.to].in, int32(i))
	}
	for i := range c.links {
		lk := &c.links[i]
		for _, o := range c.nodes[lk.to].out {
			if c.links[o].to != lk.from {
				lk.succ = append(lk.succ, o)
			}
		}
		if len(lk.succ) == 0 {
			lk.succ = c.nodes[lk.to].out
		}
	}
	for i := range c.nodes {
		nd := &c.nodes[i]
		if !nd.signal {
			continue
		}
		ns, ew := nd.g.SignalGroups()
		if len(ns) == 0 || len(ew) == 0 {
			nd.signal = false // one group only: nothing conflicts
			continue
		}
		lanesNS, lanesEW := 0.0, 0.0
		for _, a := range ns {
			if li, ok := c.linkIdx[a.LinkID]; ok {
				c.links[li].group = 0
				lanesNS = math.Max(lanesNS, c.links[li].lanes)
			}
		}
		for _, a := range ew {
			if li, ok := c.linkIdx[a.LinkID]; ok {
				c.links[li].group = 1
				lanesEW = math.Max(lanesEW, c.links[li].lanes)
			}
		}
		for _, li := range nd.in {
			c.links[li].cost += signalPenalS
		}
		// Green split by the widest approach of each group, within 30..50 s of the 80 s of green.
		g := int32(80 * lanesNS / math.Max(lanesNS+lanesEW, 1))
		nd.greenNS = min(max(g, 30), 50)
		nd.offset = int32(c.rng.IntN(cycleS))
	}
}

// pqItem and linkHeap implement Dijkstra's priority queue over links.
type pqItem struct {
	link int32
	cost float64
}

type linkHeap []pqItem

func (h linkHeap) Len() int { return len(h) }
func (h linkHeap) Less(i, j int) bool {
	return h[i].cost < h[j].cost || h[i].cost == h[j].cost && h[i].link < h[j].link
}
func (h linkHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *linkHeap) Push(x any)   { *h = append(*h, x.(pqItem)) }
func (h *linkHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// tree is a shortest-path tree over links from one origin node: the cost to the end of each link and its
// predecessor (-1 at the origin's out links, -2 unreached).
type tree struct {
	cost []float64
	pred []int32
}

// shortestFrom runs Dijkstra from origin node o, starting on its out links (or, with from >= 0, from the end of
// link from, whose successors are the first links).
func (c *City) shortestFrom(o int32, from int32) tree {
	t := tree{cost: make([]float64, len(c.links)), pred: make([]int32, len(c.links))}
	for i := range t.cost {
		t.cost[i] = math.Inf(1)
		t.pred[i] = -2
	}
	var h linkHeap
	var starts []int32
	if from >= 0 {
		starts = c.links[from].succ
	} else {
		starts = c.nodes[o].out
	}
	for _, l := range starts {
		t.cost[l] = c.links[l].cost
		t.pred[l] = -1
		heap.Push(&h, pqItem{l, t.cost[l]})
	}
	for h.Len() > 0 {
		it := heap.Pop(&h).(pqItem)
		if it.cost > t.cost[it.link] {
			continue
		}
		for _, s := range c.links[it.link].succ {
			nc := it.cost + c.links[s].cost
			if nc < t.cost[s] {
				t.cost[s] = nc
				t.pred[s] = it.link
				heap.Push(&h, pqItem{s, nc})
			}
		}
	}
	return t
}

// pathTo returns the links from the tree's origin to link dst (inclusive), or nil when dst is unreachable.
func (t *tree) pathTo(dst int32) []int32 {
	if dst < 0 || t.pred[dst] == -2 {
		return nil
	}
	n := 0
	for l := dst; l >= 0; l = t.pred[l] {
		n++
	}
	p := make([]int32, n)
	for l := dst; l >= 0; l = t.pred[l] {
		n--
		p[n] = l
	}
	return p
}

// pathToNode returns the links from the tree's origin to node d, ending on its cheapest reached in link.
func (c *City) pathToNode(t *tree, d int32) []int32 {
	best, bc := int32(-1), math.Inf(1)
	for _, l := range c.nodes[d].in {
		if t.cost[l] < bc {
			best, bc = l, t.cost[l]
		}
	}
	return t.pathTo(best)
}

// routeCost is the free-flow routing cost of a path, seconds.
func (c *City) routeCost(p []int32) float64 {
	s := 0.0
	for _, l := range p {
		s += c.links[l].cost
	}
	return s
}

// odRoute returns a shortest path between zones zo and zd (cached), or nil when there is none.
func (c *City) odRoute(zo, zd int) []int32 {
	k := zo*len(c.zones) + zd
	if r, ok := c.odCache[k]; ok {
		return r
	}
	if c.trees[zo].pred == nil {
		c.trees[zo] = c.shortestFrom(c.zones[zo], -1)
	}
	r := c.pathToNode(&c.trees[zo], c.zones[zd])
	c.odCache[k] = r
	return r
}

// pickZones chooses the origin and destination nodes of random trips: nodes with links in and out.
func (c *City) pickZones(n int) {
	var cand []int32
	for i := range c.nodes {
		if len(c.nodes[i].in) > 0 && len(c.nodes[i].out) > 0 {
			cand = append(cand, int32(i))
		}
	}
	c.rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	if len(cand) > n {
		cand = cand[:n]
	}
	c.zones = cand
	c.trees = make([]tree, len(cand))
	c.odCache = make(map[int][]int32)
}

// flowRoute is a route of the City Brain flow file with its weight (vehicles per pass of the file).
type flowRoute struct {
	links  []int32
	weight float64
}

// loadFlows reads a City Brain (CBEngine) flow file: a count, then per flow a line `start end interval`, a line
// with the number of roads and a line with the road ids. Routes whose roads are unknown or do not connect are
// skipped and counted.
func (c *City) loadFlows(path string) (routes []flowRoute, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open City Brain flow file (%s): %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	line := 0
	next := func() ([]string, error) {
		for sc.Scan() {
			line++
			if fs := strings.Fields(sc.Text()); len(fs) > 0 {
				return fs, nil
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("unexpected end of file")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cannot parse City Brain flow file (%s, line %d): %s", path, line, fmt.Sprintf(format, args...))
	}
	fs, err := next()
	if err != nil {
		return nil, 0, bad("%v", err)
	}
	n, err := strconv.Atoi(fs[0])
	if err != nil || n < 0 {
		return nil, 0, bad("want a flow count, got %q", fs[0])
	}
	for i := 0; i < n; i++ {
		hdr, err := next()
		if err != nil {
			return nil, 0, bad("flow %d: %v", i, err)
		}
		if len(hdr) != 3 {
			return nil, 0, bad("flow %d: want `start end interval`, got %q", i, strings.Join(hdr, " "))
		}
		var v [3]float64
		for j := range v {
			if v[j], err = strconv.ParseFloat(hdr[j], 64); err != nil {
				return nil, 0, bad("flow %d: %q is not a number", i, hdr[j])
			}
		}
		cnt, err := next()
		if err != nil {
			return nil, 0, bad("flow %d: %v", i, err)
		}
		k, err := strconv.Atoi(cnt[0])
		if err != nil || k <= 0 || len(cnt) != 1 {
			return nil, 0, bad("flow %d: want a road count, got %q", i, strings.Join(cnt, " "))
		}
		ids, err := next()
		if err != nil {
			return nil, 0, bad("flow %d: %v", i, err)
		}
		if len(ids) != k {
			return nil, 0, bad("flow %d: %d roads announced, %d given", i, k, len(ids))
		}
		r := make([]int32, 0, k)
		ok := v[2] > 0 && v[1] >= v[0]
		for _, id := range ids {
			li, found := c.linkIdx[id]
			if !found || len(r) > 0 && c.links[r[len(r)-1]].to != c.links[li].from {
				ok = false
				break
			}
			r = append(r, li)
		}
		if !ok {
			skipped++
			continue
		}
		routes = append(routes, flowRoute{links: r, weight: math.Floor((v[1]-v[0])/v[2]) + 1})
	}
	return routes, skipped, nil
}
