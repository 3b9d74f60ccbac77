package geo

import (
	"fmt"
	"math"
	"math/rand"
)

// West Lake generator geometry: an ellipse for the lake shore road and a grid east and north-east of it.
const (
	wlLakeLat, wlLakeLng = 30.2450, 120.1445 // lake centre
	wlLakeRLat           = 0.0185            // ring radius, degrees of latitude (about 2.05 km)
	wlLakeRLng           = 0.0200            // ring radius, degrees of longitude (about 1.9 km)
	wlRingNodes          = 28
	wlMinLat, wlMaxLat   = 30.2400, 30.2900
	wlGridMinLng         = 120.1500
	wlGridMaxLng         = 120.2000
	wlRowStep            = 0.0035 // about 390 m
	wlColStep            = 0.0040 // about 385 m
	wlJitterM            = 25
	wlDropShare          = 0.08 // share of minor grid blocks removed (missing streets)
)

var (
	wlRowNames = []string{"Nanshan Rd", "Jiefang Rd", "Pinghai Rd", "Qingchun Rd", "Fengqi Rd", "Tiyuchang Rd",
		"Huancheng N Rd", "Wensan Rd", "Xixi Rd", "Moganshan Rd", "Gongchen Rd", "Desheng Rd", "Shixiang Rd",
		"Huzhou St", "Daguan Rd"}
	wlColNames = []string{"Hubin Rd", "Yan'an Rd", "Zhonghe Rd", "Jianguo Rd", "Qiutao Rd", "Xintang Rd",
		"Jiangjin Rd", "Shangtang Rd", "Zhongshan Rd", "Huansha Rd", "Qingtai St", "Dongxin Rd", "Genshan Rd"}
)

// wlZh are the Chinese names of the demo city's roads (the map labels them in the UI language).
var wlZh = map[string]string{
	"Nanshan Rd": "南山路", "Jiefang Rd": "解放路", "Pinghai Rd": "平海路", "Qingchun Rd": "庆春路", "Fengqi Rd": "凤起路",
	"Tiyuchang Rd": "体育场路", "Huancheng N Rd": "环城北路", "Wensan Rd": "文三路", "Xixi Rd": "西溪路",
	"Moganshan Rd": "莫干山路", "Gongchen Rd": "拱宸路", "Desheng Rd": "德胜路", "Shixiang Rd": "石祥路", "Huzhou St": "湖州街",
	"Daguan Rd": "大关路", "Hubin Rd": "湖滨路", "Yan'an Rd": "延安路", "Zhonghe Rd": "中河路", "Jianguo Rd": "建国路",
	"Qiutao Rd": "秋涛路", "Xintang Rd": "新塘路", "Jiangjin Rd": "江锦路", "Shangtang Rd": "上塘路", "Zhongshan Rd": "中山路",
	"Huansha Rd": "浣纱路", "Qingtai St": "清泰街", "Dongxin Rd": "东新路", "Genshan Rd": "艮山路",
	"Lakeshore Rd": "环湖路", "Lakeside connector": "湖滨连接路",
}

// WestLakeOutline returns the demo city's lake shore (inside the lake shore road of GenerateWestLake(seed)),
// a closed ring, for the base map.
func WestLakeOutline(seed int64) []LatLng {
	const n = 96
	ring := make([]LatLng, 0, n+1)
	for k := 0; k <= n; k++ {
		a := 2 * math.Pi * float64(k%n) / n
		r := 0.93 * (1 + 0.04*math.Sin(3*a+float64(seed%7)))
		ring = append(ring, LatLng{Lat: wlLakeLat + r*wlLakeRLat*math.Cos(a), Lng: wlLakeLng + r*wlLakeRLng*math.Sin(a)})
	}
	return ring
}

type wlEdge struct {
	a, b  int
	class RoadClass
	name  string
	via   []LatLng // intermediate points from a to b
}

// wlClass gives a grid line's class from its index: every third line an arterial, then collectors and locals.
func wlClass(i int) RoadClass {
	switch i % 3 {
	case 0:
		return ClassPrimary
	case 1:
		return ClassSecondary
	default:
		return ClassTertiary
	}
}

// wlLanes and wlKmh give lanes per direction and the speed limit by class.
func wlLanes(c RoadClass) int {
	switch c {
	case ClassPrimary:
		return 3
	case ClassSecondary:
		return 2
	default:
		return 1
	}
}

func wlKmh(c RoadClass) float64 {
	switch c {
	case ClassPrimary:
		return 60
	case ClassSecondary:
		return 50
	default:
		return 40
	}
}

// lakeRadius returns how far p lies from the lake centre in units of the ring ellipse (1 = on the ring).
func lakeRadius(p LatLng) float64 {
	return math.Hypot((p.Lat-wlLakeLat)/wlLakeRLat, (p.Lng-wlLakeLng)/wlLakeRLng)
}

// GenerateWestLake builds a synthetic but plausible arterial network of Hangzhou east of West Lake: a jittered
// grid of arterials (3 lanes, 60 km/h), collectors (2 lanes, 50 km/h) and local streets (1 lane, 40 km/h)
// between lat 30.24-30.29 and lng 120.15-120.20, minus the lake and a few missing blocks, plus the lake shore
// ring road (2 lanes, 50 km/h) joined to the grid. Every road is two-way (two links "wl-<from>-<to>"). Arterial
// crossings and most other junctions of three or more roads are signalised. The same seed gives the same network.
func GenerateWestLake(seed int64) *Network {
	rng := rand.New(rand.NewSource(seed))
	var nodes []Node
	var edges []wlEdge
	jitter := func(p LatLng, m float64) LatLng {
		return LatLng{Lat: p.Lat + metresToDegLat(rng.NormFloat64()*m), Lng: p.Lng + metresToDegLng(rng.NormFloat64()*m, p.Lat)}
	}
	// The lake shore ring.
	for k := 0; k < wlRingNodes; k++ {
		a := 2 * math.Pi * float64(k) / wlRingNodes
		r := 1 + 0.04*math.Sin(3*a+float64(seed%7)) // a less perfect ellipse
		p := LatLng{Lat: wlLakeLat + r*wlLakeRLat*math.Cos(a), Lng: wlLakeLng + r*wlLakeRLng*math.Sin(a)}
		nodes = append(nodes, Node{ID: fmt.Sprintf("ring%02d", k), LatLng: jitter(p, 10)})
	}
	for k := 0; k < wlRingNodes; k++ {
		a, b := nodes[k].LatLng, nodes[(k+1)%wlRingNodes].LatLng
		// bow the segment outwards so the ring reads as a curve
		mid := interpolate(a, b, 0.5)
		out := LatLng{Lat: mid.Lat + (mid.Lat-wlLakeLat)*0.012, Lng: mid.Lng + (mid.Lng-wlLakeLng)*0.012}
		edges = append(edges, wlEdge{a: k, b: (k + 1) % wlRingNodes, class: ClassSecondary, name: "Lakeshore Rd",
			via: []LatLng{interpolate(a, out, 0.5), out, interpolate(out, b, 0.5)}})
	}
	// The grid.
	rows := int(math.Round((wlMaxLat-wlMinLat)/wlRowStep)) + 1
	cols := int(math.Round((wlGridMaxLng-wlGridMinLng)/wlColStep)) + 1
	grid := make([][]int, rows)
	for i := range grid {
		grid[i] = make([]int, cols)
		for j := range grid[i] {
			p := LatLng{Lat: wlMinLat + float64(i)*wlRowStep, Lng: wlGridMinLng + float64(j)*wlColStep}
			if lakeRadius(p) < 1.12 {
				grid[i][j] = -1
				continue
			}
			grid[i][j] = len(nodes)
			nodes = append(nodes, Node{ID: fmt.Sprintf("g%02d_%02d", i, j), LatLng: jitter(p, wlJitterM)})
		}
	}
	for i := range grid {
		for j := range grid[i] {
			if grid[i][j] < 0 {
				continue
			}
			if j+1 < cols && grid[i][j+1] >= 0 {
				edges = append(edges, wlEdge{a: grid[i][j], b: grid[i][j+1], class: wlClass(i), name: wlRowNames[i%len(wlRowNames)]})
			}
			if i+1 < rows && grid[i+1][j] >= 0 {
				edges = append(edges, wlEdge{a: grid[i][j], b: grid[i+1][j], class: wlClass(j), name: wlColNames[j%len(wlColNames)]})
			}
			// a grid node whose west or south neighbour is lake joins the shore road at the nearest ring node
			lakeW := j > 0 && grid[i][j-1] < 0
			lakeS := i > 0 && grid[i-1][j] < 0
			if lakeW || lakeS {
				best, bestD := -1, math.Inf(1)
				for k := 0; k < wlRingNodes; k++ {
					if d := DistanceM(nodes[k].LatLng, nodes[grid[i][j]].LatLng); d < bestD {
						best, bestD = k, d
					}
				}
				if bestD < 700 {
					c := wlClass(i)
					if lakeS && !lakeW {
						c = wlClass(j)
					}
					edges = append(edges, wlEdge{a: grid[i][j], b: best, class: c, name: "Lakeside connector"})
				}
			}
		}
	}
	edges = wlDropBlocks(rng, len(nodes), edges)

	degree := make([]int, len(nodes))
	arterial := make([]bool, len(nodes))
	for _, e := range edges {
		degree[e.a]++
		degree[e.b]++
		if e.class == ClassPrimary {
			arterial[e.a], arterial[e.b] = true, true
		}
	}
	for i := range nodes {
		nodes[i].Signalised = degree[i] >= 3 && (arterial[i] || rng.Float64() < 0.75)
	}
	ids := make([]string, len(nodes))
	lls := make([]LatLng, len(nodes))
	for i := range nodes {
		ids[i], lls[i] = nodes[i].ID, nodes[i].LatLng
	}
	// Nodes that ended up with no roads (cut off by the lake) are dropped.
	keep := make([]Node, 0, len(nodes))
	for i := range nodes {
		if degree[i] > 0 {
			keep = append(keep, nodes[i])
		}
	}
	links := make([]Link, 0, 2*len(edges))
	for _, e := range edges {
		for d := 0; d < 2; d++ {
			from, to, via := e.a, e.b, e.via
			if d == 1 {
				from, to, via = e.b, e.a, reversed(e.via)
			}
			geom := make([]LatLng, 0, len(via)+2)
			geom = append(geom, lls[from])
			geom = append(geom, via...)
			geom = append(geom, lls[to])
			links = append(links, Link{ID: "wl-" + ids[from] + "-" + ids[to], From: ids[from], To: ids[to],
				Name: e.name, AltNames: map[string]string{"zh": wlZh[e.name]}, Lanes: wlLanes(e.class), SpeedLimitKmh: wlKmh(e.class),
				Class: e.class, Geometry: geom})
		}
	}
	n, err := NewNetwork("generated", keep, links)
	if err != nil {
		panic("BUG: generated West Lake network is invalid: " + err.Error())
	}
	return n
}

// wlDropBlocks removes a share of minor (non-arterial, non-ring) grid edges at random, keeping every node that
// had a road reachable from every other.
func wlDropBlocks(rng *rand.Rand, nNodes int, edges []wlEdge) []wlEdge {
	removed := make([]bool, len(edges))
	want := int(wlDropShare * float64(len(edges)))
	for tries := 0; want > 0 && tries < 20*len(edges); tries++ {
		i := rng.Intn(len(edges))
		if removed[i] || edges[i].class == ClassPrimary || edges[i].name == "Lakeshore Rd" {
			continue
		}
		removed[i] = true
		if !wlConnected(nNodes, edges, removed) {
			removed[i] = false
			continue
		}
		want--
	}
	out := edges[:0]
	for i, e := range edges {
		if !removed[i] {
			out = append(out, e)
		}
	}
	return out
}

// wlConnected reports whether all nodes touched by a kept edge form one connected component.
func wlConnected(nNodes int, edges []wlEdge, removed []bool) bool {
	adj := make([][]int, nNodes)
	start := -1
	for i, e := range edges {
		if removed[i] {
			continue
		}
		adj[e.a] = append(adj[e.a], e.b)
		adj[e.b] = append(adj[e.b], e.a)
		start = e.a
	}
	if start < 0 {
		return false
	}
	seen := make([]bool, nNodes)
	stack := []int{start}
	seen[start] = true
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range adj[v] {
			if !seen[w] {
				seen[w] = true
				stack = append(stack, w)
			}
		}
	}
	for v := range adj {
		if len(adj[v]) > 0 && !seen[v] {
			return false
		}
	}
	return true
}
