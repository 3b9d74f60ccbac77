package geo

import (
	"errors"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sumoSnippet is a two-junction net in the Bologna file's projection, with one internal edge to skip.
const sumoSnippet = `<?xml version="1.0" encoding="UTF-8"?>
<net version="1.20">
    <location netOffset="-683542.41,-4928877.56" convBoundary="0.00,0.00,1817.58,1350.19" origBoundary="-346.830000,0.000000,1817.580000,2148.550000" projParameter="+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"/>
    <edge id=":1_0" function="internal">
        <lane id=":1_0_0" index="0" speed="13.89" length="13.15" shape="1503.80,840.88 1501.02,853.66"/>
    </edge>
    <edge id="103" from="19" to="12" priority="-1" name="Via Andrea Costa" type="highway.secondary">
        <lane id="103_0" index="0" speed="13.89" length="137.89" shape="377.09,365.16 323.00,238.33"/>
        <lane id="103_1" index="1" speed="13.89" length="137.89" shape="380.03,363.91 325.94,237.07"/>
    </edge>
    <junction id="12" type="traffic_light" x="323.63" y="227.57" incLanes="103_0 103_1" intLanes="" shape="321.00,220.00"/>
    <junction id="19" type="priority" x="379.00" y="370.00" incLanes="" intLanes="" shape="379.00,370.00"/>
    <junction id=":1_0_0" type="internal" x="1.00" y="2.00" incLanes="" intLanes=""/>
    <connection from="103" to="104" fromLane="0" toLane="0" dir="r" state="o"/>
    <connection from="103" to="105" fromLane="1" toLane="0" dir="s" state="o"/>
    <connection from="103" to="106" fromLane="1" toLane="0" dir="l" state="o"/>
</net>
`

func TestLoadSUMONetSnippet(t *testing.T) {
	n, err := LoadSUMONet(strings.NewReader(sumoSnippet))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Links()) != 1 || len(n.Nodes()) != 2 {
		t.Fatalf("got %d links, %d nodes, want 1 and 2 (internal edge and junction skipped)", len(n.Links()), len(n.Nodes()))
	}
	l, _ := n.Link("103")
	if l.Name != "Via Andrea Costa" || l.Class != ClassSecondary || l.Lanes != 2 || l.LengthM != 137.89 ||
		math.Abs(l.SpeedLimitKmh-50.004) > 0.01 {
		t.Errorf("link = %+v", l)
	}
	if l.LaneInfo[0].Turns != TurnRight || l.LaneInfo[1].Turns != TurnStraight|TurnLeft {
		t.Errorf("lane turns = %v, %v, want right and straight+left", l.LaneInfo[0].Turns, l.LaneInfo[1].Turns)
	}
	if j, _ := n.Node("12"); !j.Signalised {
		t.Error("traffic_light junction 12 is not signalised")
	}
	if j, _ := n.Node("19"); j.Signalised {
		t.Error("priority junction 19 is signalised")
	}
	// No edge shape: the link runs junction to junction.
	j19, _ := n.Node("19")
	if l.Geometry[0] != j19.LatLng {
		t.Errorf("geometry starts at %v, want junction 19 at %v", l.Geometry[0], j19.LatLng)
	}
	// Position 0 is the lane shape's first point; the declared length maps onto the shape's end.
	lat, lng, ok := n.LanePosition("103_0", 0)
	if !ok || DistanceM(LatLng{lat, lng}, l.LaneInfo[0].Shape[0]) > 1e-6 {
		t.Errorf("LanePosition(103_0, 0) = %v, %v, %v", lat, lng, ok)
	}
	lat, lng, _ = n.LanePosition("103_0", 137.89)
	if d := DistanceM(LatLng{lat, lng}, l.LaneInfo[0].Shape[1]); d > 0.01 {
		t.Errorf("LanePosition at the declared length is %.3f m from the lane end", d)
	}
	latN, lngN, _ := n.LanePosition("103_0", -37.89) // negative: from the end
	latP, lngP, _ := n.LanePosition("103_0", 100)
	if DistanceM(LatLng{latN, lngN}, LatLng{latP, lngP}) > 0.01 {
		t.Error("negative position does not count from the lane end")
	}
	if _, _, ok := n.LanePosition("nope_0", 1); ok {
		t.Error("unknown lane is ok")
	}
	// The shape was written in metres: the projected lane is as long as SUMO says (within UTM scale, 0.1%).
	if got := DistanceM(l.LaneInfo[0].Shape[0], l.LaneInfo[0].Shape[1]); math.Abs(got-137.89) > 0.2 {
		t.Errorf("projected lane length = %.2f m, want about 137.89", got)
	}
}

func TestLoadSUMONetBologna(t *testing.T) {
	path := dataFile(t, "sumo/bologna-acosta/acosta_buslanes.net.xml")
	n, err := LoadSUMONetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sig := 0
	for _, nd := range n.Nodes() {
		if nd.Signalised {
			sig++
		}
		if strings.HasPrefix(nd.ID, ":") {
			t.Errorf("internal junction %s loaded", nd.ID)
		}
	}
	for _, l := range n.Links() {
		if strings.HasPrefix(l.ID, ":") {
			t.Errorf("internal edge %s loaded", l.ID)
		}
	}
	// 472 edges - 294 internal = 178; 145 junctions - 33 internal = 112, 16 of them traffic lights.
	if len(n.Links()) != 178 || len(n.Nodes()) != 112 || sig != 16 {
		t.Errorf("got %d links, %d nodes (%d signalised), want 178, 112 (16)", len(n.Links()), len(n.Nodes()), sig)
	}
	b := n.BBox()
	if b.MinLat < 44.47 || b.MaxLat > 44.52 || b.MinLng < 11.28 || b.MaxLng > 11.36 {
		t.Errorf("Bologna bbox %+v is not around 44.49 N, 11.32 E", b)
	}
	// Every induction loop of the scenario lies on its lane, which is part of a loaded link.
	add, err := os.ReadFile(dataFile(t, "sumo/bologna-acosta/acosta_detectors.add.xml"))
	if err != nil {
		t.Fatal(err)
	}
	add = regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAll(add, nil) // some loops are commented out
	re := regexp.MustCompile(`<e1Detector id="([^"]+)" lane="([^"]+)" pos="([^"]+)"`)
	found := 0
	for _, m := range re.FindAllStringSubmatch(string(add), -1) {
		pos, _ := strconv.ParseFloat(m[3], 64)
		lat, lng, ok := n.LanePosition(m[2], pos)
		if !ok {
			t.Errorf("detector %s: lane %s not found", m[1], m[2])
			continue
		}
		edge := m[2][:strings.LastIndexByte(m[2], '_')]
		near := n.Nearest(lat, lng, 15, 10)
		hit := false
		for _, c := range near {
			hit = hit || c.Link.ID == edge
		}
		if !hit {
			t.Errorf("detector %s at %.6f,%.6f is not within 15 m of edge %s", m[1], lat, lng, edge)
		}
		found++
	}
	if found < 20 {
		t.Errorf("placed %d detectors, want the scenario's (at least 20)", found)
	}
}

func TestLoadSUMONetMalformed(t *testing.T) {
	rep := func(old, new string) string { return strings.Replace(sumoSnippet, old, new, 1) }
	tests := []struct {
		name, in, want string
	}{
		{"no projection", rep(`projParameter="+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"`, `projParameter="!"`), "no geo projection"},
		{"no location", rep(`<location`, `<elsewhere`), "no geo projection"},
		{"other projection", rep(`+proj=utm +zone=32`, `+proj=merc`), "only UTM is supported"},
		{"bad offset", rep(`netOffset="-683542.41,-4928877.56"`, `netOffset="x"`), `<location id=""> at line 3): bad netOffset`},
		{"bad boundary", rep(`convBoundary="0.00,0.00,1817.58,1350.19"`, `convBoundary="1,2,3"`), "bad convBoundary"},
		{"outside boundary", rep(`x="323.63"`, `x="9323.63"`), `junction "12" at 9323.63,227.57): outside convBoundary`},
		{"bad shape", rep(`shape="377.09,365.16 323.00,238.33"`, `shape="377.09;365.16"`), `<lane id="103_0"> at line 8): lane of edge "103"`},
		{"bad speed", rep(`speed="13.89" length="137.89" shape="377.09`, `speed="fast" length="137.89" shape="377.09`), `<lane id="103_0">`},
		{"edge without from", rep(`from="19" to="12"`, `to="12"`), `<edge id="103"> at line 7): edge needs id, from and to`},
		{"bad junction", rep(`x="323.63"`, `x="NaN"`), `<junction id="12"> at line 11): junction needs an id and numeric x, y`},
		{"unknown junction", rep(`from="19"`, `from="99"`), `unknown from node "99"`},
		{"bad connection", rep(`fromLane="0"`, `fromLane="a"`), `<connection id=""> at line 14): connection from "103": bad fromLane`},
		{"truncated", sumoSnippet[:len(sumoSnippet)/2], "cannot parse SUMO net (XML at line"},
		{"not xml", "{}", "no geo projection"},
		{"no edges", sumoSnippet[:strings.Index(sumoSnippet, "<edge")] + "</net>", "network has no links"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSUMONet(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(tt.name, "projection") && tt.name != "other projection" && !errors.Is(err, ErrNoProjection) {
				t.Errorf("error %v does not wrap ErrNoProjection", err)
			}
		})
	}
}

func FuzzLoadSUMONet(f *testing.F) {
	f.Add([]byte(sumoSnippet))
	if b := readDataFile(f, "sumo/bologna-acosta/acosta_buslanes.net.xml"); b != nil {
		f.Add(b[:8192])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := LoadSUMONet(strings.NewReader(string(in)))
		if err == nil {
			for _, l := range n.Links() {
				if len(l.Geometry) < 2 {
					t.Fatalf("link %s has %d points", l.ID, len(l.Geometry))
				}
			}
		}
	})
}
