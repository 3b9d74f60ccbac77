package geo

import (
	"math"
	"slices"
)

// numLandmarks is how many landmarks the router keeps for its A* lower bounds.
const numLandmarks = 8

// landmarks hold, for a few nodes L spread over the network, the lower-bound travel time from every node to L
// and from L to every node, where a link's lower bound is its length at its highest allowed speed (free flow ×
// overLimit). By the triangle inequality d(v,t) ≥ d(L,t) − d(L,v) and d(v,t) ≥ d(v,L) − d(t,L) for any speeds
// the router accepts, so the largest of these over L is an admissible, consistent A* heuristic (ALT).
type landmarks struct {
	k    int
	from []float64 // [node*k + i]: from landmark i to node
	to   []float64 // [node*k + i]: from node to landmark i
}

func buildLandmarks(n *Network, off, out []int32, k int) landmarks {
	nn := len(n.nodes)
	k = min(k, nn)
	lb := func(l *Link) float64 { return l.LengthM / (freeFlow(l) * overLimit / 3.6) }
	// Reverse adjacency.
	roff := make([]int32, nn+1)
	var rin []int32
	for i, nd := range n.nodes {
		roff[i+1] = roff[i] + int32(len(nd.in))
		rin = append(rin, nd.in...)
	}
	lm := landmarks{k: k, from: make([]float64, nn*k), to: make([]float64, nn*k)}
	// Farthest-point selection on forward bounds: start from the node farthest from node 0, then repeatedly
	// take the node whose smallest distance to the chosen landmarks is largest (reachable nodes only).
	minD := make([]float64, nn)
	for i := range minD {
		minD[i] = math.Inf(1)
	}
	d := make([]float64, nn)
	sssp(n, off, out, 0, false, lb, d)
	cur := argmaxFinite(d, nil)
	var chosen []int32
	for i := 0; i < k; i++ {
		chosen = append(chosen, cur)
		sssp(n, off, out, cur, false, lb, d)
		for v := range d {
			lm.from[v*k+i] = d[v]
			if d[v] < minD[v] {
				minD[v] = d[v]
			}
		}
		sssp(n, roff, rin, cur, true, lb, d)
		for v := range d {
			lm.to[v*k+i] = d[v]
		}
		cur = argmaxFinite(minD, chosen)
	}
	return lm
}

func argmaxFinite(d []float64, skip []int32) int32 {
	best, bi := -1.0, int32(0)
	for v, x := range d {
		if !math.IsInf(x, 0) && x > best && !slices.Contains(skip, int32(v)) {
			best, bi = x, int32(v)
		}
	}
	return bi
}

// sssp fills d with shortest lower-bound times from src (to src when reverse) by Dijkstra.
func sssp(n *Network, off, adj []int32, src int32, reverse bool, w func(*Link) float64, d []float64) {
	for i := range d {
		d[i] = math.Inf(1)
	}
	s := &scratch{}
	d[src] = 0
	s.push(hitem{node: src})
	for len(s.heap) > 0 {
		it := s.pop()
		if it.d > d[it.node] {
			continue
		}
		for _, li := range adj[off[it.node]:off[it.node+1]] {
			l := n.links[li]
			v := l.to
			if reverse {
				v = l.from
			}
			if nd := it.d + w(l); nd < d[v] {
				d[v] = nd
				s.push(hitem{f: nd, d: nd, node: v})
			}
		}
	}
}

// bound is a lower bound on the travel time from node v to node t.
func (lm *landmarks) bound(v, t int32) float64 {
	h := 0.0
	fv, ft := lm.from[int(v)*lm.k:][:lm.k], lm.from[int(t)*lm.k:][:lm.k]
	tv, tt := lm.to[int(v)*lm.k:][:lm.k], lm.to[int(t)*lm.k:][:lm.k]
	for i := 0; i < lm.k; i++ {
		if x := ft[i] - fv[i]; x > h && !math.IsInf(ft[i], 0) {
			h = x
		}
		if x := tv[i] - tt[i]; x > h && !math.IsInf(tv[i], 0) {
			h = x
		}
	}
	return h
}
