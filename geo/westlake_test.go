package geo

import (
	"bytes"
	"testing"
)

func TestGenerateWestLake(t *testing.T) {
	n := GenerateWestLake(42)
	nodes, links := n.Nodes(), n.Links()
	if len(nodes) < 150 || len(nodes) > 300 {
		t.Errorf("intersections = %d, want 150..300", len(nodes))
	}
	sig := 0
	for _, nd := range nodes {
		if nd.Signalised {
			sig++
		}
		if nd.Lat < 30.22 || nd.Lat > 30.30 || nd.Lng < 120.12 || nd.Lng > 120.21 {
			t.Errorf("node %s at %v is outside the West Lake area", nd.ID, nd.LatLng)
		}
	}
	if float64(sig) < 0.6*float64(len(nodes)) {
		t.Errorf("signalised %d of %d, want most", sig, len(nodes))
	}
	// The grid east of the lake spans lat 30.24-30.29, lng 120.15-120.20.
	b := n.BBox()
	if b.MaxLat < 30.285 || b.MaxLng < 120.195 || b.MinLat > 30.235 {
		t.Errorf("bbox %+v does not span the grid", b)
	}
	classes := map[RoadClass]int{}
	for _, l := range links {
		classes[l.Class]++
		want := map[RoadClass][2]float64{ClassPrimary: {3, 60}, ClassSecondary: {2, 50}, ClassTertiary: {1, 40}}[l.Class]
		if float64(l.Lanes) != want[0] || l.SpeedLimitKmh != want[1] {
			t.Fatalf("link %s (%v): %d lanes, %v km/h, want %v", l.ID, l.Class, l.Lanes, l.SpeedLimitKmh, want)
		}
		if l.LengthM < 50 || l.LengthM > 1500 {
			t.Errorf("link %s is %.0f m long", l.ID, l.LengthM)
		}
	}
	if classes[ClassPrimary] == 0 || classes[ClassSecondary] == 0 || classes[ClassTertiary] == 0 {
		t.Errorf("classes = %v, want arterials, collectors and locals", classes)
	}
	// Two-way everywhere and strongly connected: every node reaches every other.
	reach := func(start string, next func(*Node) []string) int {
		seen := map[string]bool{start: true}
		stack := []string{start}
		for len(stack) > 0 {
			nd, _ := n.Node(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			for _, lid := range next(nd) {
				l, _ := n.Link(lid)
				other := l.To
				if other == nd.ID {
					other = l.From
				}
				if !seen[other] {
					seen[other] = true
					stack = append(stack, other)
				}
			}
		}
		return len(seen)
	}
	if got := reach(nodes[0].ID, func(nd *Node) []string { return nd.Out }); got != len(nodes) {
		t.Errorf("forward reach from %s = %d of %d nodes", nodes[0].ID, got, len(nodes))
	}
	if got := reach(nodes[0].ID, func(nd *Node) []string { return nd.In }); got != len(nodes) {
		t.Errorf("backward reach from %s = %d of %d nodes", nodes[0].ID, got, len(nodes))
	}
	// Lake shore road exists and is a closed ring.
	ring := 0
	for _, l := range links {
		if l.Name == "Lakeshore Rd" {
			ring++
		}
	}
	if ring != 2*wlRingNodes {
		t.Errorf("lake shore links = %d, want %d", ring, 2*wlRingNodes)
	}
}

func TestGenerateWestLakeDeterministic(t *testing.T) {
	a := GenerateWestLake(7).GeoJSON(BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}, 18)
	b := GenerateWestLake(7).GeoJSON(BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}, 18)
	c := GenerateWestLake(8).GeoJSON(BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}, 18)
	if !bytes.Equal(a, b) {
		t.Error("same seed gave different networks")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same network")
	}
}
