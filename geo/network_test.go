package geo

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// crossNetwork is a plus-shaped test network: centre C at (30.25, 120.17) and arms N, E, S, W about 111 m away,
// with two-way links C<->arm. The east arm is a 40 km/h local street without a limit; the others are 60 km/h.
func crossNetwork(t testing.TB) *Network {
	t.Helper()
	c := LatLng{30.25, 120.17}
	d := 0.001
	nodes := []Node{
		{ID: "C", LatLng: c, Signalised: true},
		{ID: "N", LatLng: LatLng{c.Lat + d, c.Lng}},
		{ID: "E", LatLng: LatLng{c.Lat, c.Lng + d}},
		{ID: "S", LatLng: LatLng{c.Lat - d, c.Lng}},
		{ID: "W", LatLng: LatLng{c.Lat, c.Lng - d}},
	}
	var links []Link
	for _, arm := range []string{"N", "E", "S", "W"} {
		kmh, class := 60.0, ClassPrimary
		if arm == "E" {
			kmh, class = 0, ClassTertiary
		}
		links = append(links,
			Link{ID: "C" + arm, From: "C", To: arm, Lanes: 2, SpeedLimitKmh: kmh, Class: class},
			Link{ID: arm + "C", From: arm, To: "C", Lanes: 2, SpeedLimitKmh: kmh, Class: class})
	}
	n, err := NewNetwork("test", nodes, links)
	if err != nil {
		t.Fatalf("cannot build cross network: %v", err)
	}
	return n
}

func TestNewNetworkLookups(t *testing.T) {
	n := crossNetwork(t)
	if got := len(n.Nodes()); got != 5 {
		t.Errorf("nodes = %d, want 5", got)
	}
	if got := len(n.Links()); got != 8 {
		t.Errorf("links = %d, want 8", got)
	}
	l, ok := n.Link("NC")
	if !ok || l.From != "N" || l.To != "C" {
		t.Fatalf("Link(NC) = %+v, %v", l, ok)
	}
	if math.Abs(l.LengthM-111.2) > 0.5 {
		t.Errorf("derived length = %.2f m, want about 111.2", l.LengthM)
	}
	if _, ok := n.Link("nope"); ok {
		t.Error("Link(nope) found a link")
	}
	c, ok := n.Node("C")
	if !ok || len(c.In) != 4 || len(c.Out) != 4 || !c.Signalised {
		t.Fatalf("Node(C) = %+v, %v", c, ok)
	}
	b := n.BBox()
	if math.Abs(b.MinLat-30.249) > 1e-9 || math.Abs(b.MaxLng-120.171) > 1e-9 {
		t.Errorf("bbox = %+v", b)
	}
	if v, ok := n.FreeFlowKmh("CN"); !ok || v != 60 {
		t.Errorf("FreeFlowKmh(CN) = %v, %v, want 60 (the limit)", v, ok)
	}
	if v, ok := n.FreeFlowKmh("CE"); !ok || v != ClassTertiary.DefaultKmh() {
		t.Errorf("FreeFlowKmh(CE) = %v, %v, want the tertiary default %v", v, ok, ClassTertiary.DefaultKmh())
	}
	if _, ok := n.FreeFlowKmh("x"); ok {
		t.Error("FreeFlowKmh(x) is ok")
	}
}

func TestDerivedApproaches(t *testing.T) {
	n := crossNetwork(t)
	c, _ := n.Node("C")
	want := map[string]Side{"NC": SideNorth, "EC": SideEast, "SC": SideSouth, "WC": SideWest}
	if len(c.Approaches) != 4 {
		t.Fatalf("approaches = %+v, want 4", c.Approaches)
	}
	for _, a := range c.Approaches {
		if want[a.LinkID] != a.Side {
			t.Errorf("approach %s side = %v, want %v", a.LinkID, a.Side, want[a.LinkID])
		}
	}
	ns, ew := c.SignalGroups()
	if len(ns) != 2 || len(ew) != 2 {
		t.Errorf("signal groups = %v / %v, want 2 and 2", ns, ew)
	}
}

func TestPointAt(t *testing.T) {
	n := crossNetwork(t)
	l, _ := n.Link("CN")
	p, b := l.PointAt(l.GeomLengthM() / 2)
	if d := DistanceM(p, LatLng{30.2505, 120.17}); d > 0.01 {
		t.Errorf("midpoint is %.3f m off", d)
	}
	if angleDiffDeg(b, 0) > 0.01 {
		t.Errorf("bearing = %v, want 0 (north)", b)
	}
	if p, _ := l.PointAt(-5); p != l.Geometry[0] {
		t.Errorf("PointAt(-5) = %v, want the start", p)
	}
	if p, _ := l.PointAt(1e9); p != l.Geometry[1] {
		t.Errorf("PointAt(1e9) = %v, want the end", p)
	}
}

func TestNewNetworkRejects(t *testing.T) {
	ok := []Node{{ID: "a", LatLng: LatLng{30, 120}}, {ID: "b", LatLng: LatLng{30.001, 120}}}
	tests := []struct {
		name  string
		nodes []Node
		links []Link
		want  string
	}{
		{"no links", ok, nil, "network has no links"},
		{"duplicate node", append(ok, Node{ID: "a"}), []Link{{ID: "l", From: "a", To: "b"}}, `node "a": duplicate id`},
		{"bad node position", []Node{{ID: "a", LatLng: LatLng{91, 0}}}, []Link{{ID: "l"}}, "not a WGS84 position"},
		{"unknown from", ok, []Link{{ID: "l", From: "x", To: "b"}}, `unknown from node "x"`},
		{"unknown to", ok, []Link{{ID: "l", From: "a", To: "y"}}, `unknown to node "y"`},
		{"duplicate link", ok, []Link{{ID: "l", From: "a", To: "b"}, {ID: "l", From: "b", To: "a"}}, `link "l": duplicate id`},
		{"one-point geometry", ok, []Link{{ID: "l", From: "a", To: "b", Geometry: []LatLng{{30, 120}}}}, "need 2"},
		{"NaN length", ok, []Link{{ID: "l", From: "a", To: "b", LengthM: math.NaN()}}, "not a finite non-negative"},
		{"duplicate lane", ok, []Link{{ID: "l", From: "a", To: "b", LaneInfo: []Lane{{ID: "x"}, {ID: "x"}}}}, `lane "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewNetwork("test", tt.nodes, tt.links)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if tt.name == "no links" && !errors.Is(err, ErrEmptyNetwork) {
				t.Errorf("error %v does not wrap ErrEmptyNetwork", err)
			}
		})
	}
}

func TestParseRoadClass(t *testing.T) {
	for in, want := range map[string]RoadClass{"primary": ClassPrimary, "highway.secondary_link": ClassSecondary,
		"Motorway": ClassMotorway, "living_street": ClassResidential, "footway": ClassUnclassified, "": ClassUnclassified} {
		if got := ParseRoadClass(in); got != want {
			t.Errorf("ParseRoadClass(%q) = %v, want %v", in, got, want)
		}
	}
}
