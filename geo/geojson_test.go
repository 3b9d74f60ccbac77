package geo

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// geoJSONSnippet has an OSM-style two-way street split in two at a shared node, a one-way street with a speed
// in mph drawn against its direction, a SUMO-style edge (speed in m/s, from/to), a MultiLineString and a point.
const geoJSONSnippet = `{"type":"FeatureCollection","name":"roads","features":[
{"type":"Feature","properties":{"id":"a","name":"Jiefang Rd","highway":"primary","lanes":"3","maxspeed":"60","oneway":"no"},
 "geometry":{"type":"LineString","coordinates":[[120.170,30.250],[120.171,30.250],[120.172,30.2501]]}},
{"type":"Feature","properties":{"id":"b","highway":"primary","lanes":3,"maxspeed":60,"oneway":"no"},
 "geometry":{"type":"LineString","coordinates":[[120.172,30.2501],[120.173,30.250]]}},
{"type":"Feature","id":7,"properties":{"highway":"residential","maxspeed":"20 mph","oneway":"-1"},
 "geometry":{"type":"LineString","coordinates":[[120.172,30.2501],[120.172,30.251]]}},
{"type":"Feature","properties":{"id":"e1","from":"J1","to":"J2","speed":13.89,"type":"highway.secondary"},
 "geometry":{"type":"LineString","coordinates":[[120.180,30.250],[120.181,30.250]]}},
{"type":"Feature","properties":{"id":"m","lanes":"2;1"},
 "geometry":{"type":"MultiLineString","coordinates":[[[120.190,30.25],[120.191,30.25]],[[120.191,30.25],[120.192,30.25]]]}},
{"type":"Feature","properties":{"id":"p"},"geometry":{"type":"Point","coordinates":[120.1,30.2]}}
]}`

func TestLoadGeoJSON(t *testing.T) {
	n, err := LoadGeoJSON(strings.NewReader(geoJSONSnippet))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range n.Links() {
		ids[l.ID] = true
	}
	for _, want := range []string{"a", "a-rev", "b", "b-rev", "7", "e1", "m#0", "m#1"} {
		if !ids[want] {
			t.Errorf("link %q missing (have %v)", want, ids)
		}
	}
	if len(n.Links()) != 8 {
		t.Errorf("links = %d, want 8 (the point is skipped)", len(n.Links()))
	}
	a, _ := n.Link("a")
	b, _ := n.Link("b")
	if a.To != b.From {
		t.Errorf("a ends at %s, b starts at %s: shared endpoint should be one node", a.To, b.From)
	}
	if a.Name != "Jiefang Rd" || a.Lanes != 3 || a.SpeedLimitKmh != 60 || a.Class != ClassPrimary {
		t.Errorf("a = %+v", a)
	}
	r, _ := n.Link("7")
	if r.From == a.To || r.To != a.To { // drawn away from the junction but oneway=-1: it enters the junction
		t.Errorf("7 runs %s -> %s, want into %s", r.From, r.To, a.To)
	}
	if math.Abs(r.SpeedLimitKmh-32.19) > 0.01 || r.Class != ClassResidential {
		t.Errorf("7 speed %.2f class %v, want 32.19 km/h residential", r.SpeedLimitKmh, r.Class)
	}
	e, _ := n.Link("e1")
	if e.From != "J1" || e.To != "J2" || math.Abs(e.SpeedLimitKmh-50.004) > 0.01 || e.Class != ClassSecondary {
		t.Errorf("e1 = %+v", e)
	}
	m0, _ := n.Link("m#0")
	m1, _ := n.Link("m#1")
	if m0.To != m1.From || m0.Lanes != 2 {
		t.Errorf("multilinestring parts = %+v / %+v", m0, m1)
	}
	if j, _ := n.Node(a.To); len(j.In) != 3 || len(j.Out) != 2 {
		t.Errorf("shared node has %d in, %d out, want 3 (a, b-rev, 7) and 2 (a-rev, b)", len(j.In), len(j.Out))
	}
}

// geoJSONSignals is a street along lat 30.25 (two-way, split at every node) with junctions J (4 arms), K, L,
// M (3 arms each) and N (J's south arm end, 3 arms), a split S of the street (2 neighbours) and signal points as
// exports write them: flat highway=traffic_signals on J and on K's west stop line 15 m before K, osmtogeojson's
// nested tags 8 m north of L, Geofabrik's fclass on N; and points that must mark nothing: a signal 4 m from S
// (a split, the nearest junctions 190 m away), a signal 40 m east of M, a bus stop and a signalised pedestrian
// crossing exactly on M. At lat 30.25, 0.0001 deg is 11.1 m north or 9.6 m east.
const geoJSONSignals = `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"id":"w0-j","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.168,30.25],[120.170,30.25]]}},
{"type":"Feature","properties":{"id":"j-k","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.170,30.25],[120.172,30.25]]}},
{"type":"Feature","properties":{"id":"k-s","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.172,30.25],[120.174,30.25]]}},
{"type":"Feature","properties":{"id":"s-l","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.174,30.25],[120.176,30.25]]}},
{"type":"Feature","properties":{"id":"l-m","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.176,30.25],[120.178,30.25]]}},
{"type":"Feature","properties":{"id":"m-e0","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.178,30.25],[120.180,30.25]]}},
{"type":"Feature","properties":{"id":"j-north","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.170,30.25],[120.170,30.252]]}},
{"type":"Feature","properties":{"id":"j-n","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.170,30.25],[120.170,30.248]]}},
{"type":"Feature","properties":{"id":"n-west"},"geometry":{"type":"LineString","coordinates":[[120.170,30.248],[120.169,30.248]]}},
{"type":"Feature","properties":{"id":"n-east"},"geometry":{"type":"LineString","coordinates":[[120.171,30.248],[120.170,30.248]]}},
{"type":"Feature","properties":{"id":"k-north","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.172,30.25],[120.172,30.252]]}},
{"type":"Feature","properties":{"type":"way","id":1001,"tags":{"highway":"residential","oneway":"no"}},"geometry":{"type":"LineString","coordinates":[[120.176,30.25],[120.176,30.252]]}},
{"type":"Feature","properties":{"id":"m-south","oneway":"no"},"geometry":{"type":"LineString","coordinates":[[120.178,30.25],[120.178,30.248]]}},
{"type":"Feature","id":"node/1","properties":{"@id":"node/1","highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120.170,30.25]}},
{"type":"Feature","properties":{"osm_id":"2","highway":"traffic_signals","traffic_signals:direction":"forward"},"geometry":{"type":"Point","coordinates":[120.171844,30.25]}},
{"type":"Feature","id":"node/3","properties":{"type":"node","id":3,"tags":{"highway":"traffic_signals"},"relations":[],"meta":{}},"geometry":{"type":"Point","coordinates":[120.176,30.25007]}},
{"type":"Feature","properties":{"osm_id":"4","code":5201,"fclass":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120.170,30.248]}},
{"type":"Feature","properties":{"highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120.174,30.25004]}},
{"type":"Feature","properties":{"highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120.178416,30.25]}},
{"type":"Feature","properties":{"highway":"bus_stop"},"geometry":{"type":"Point","coordinates":[120.178,30.25]}},
{"type":"Feature","properties":{"highway":"crossing","crossing":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120.178,30.25]}}
]}`

func TestLoadGeoJSONSignals(t *testing.T) {
	n, err := LoadGeoJSON(strings.NewReader(geoJSONSignals))
	if err != nil {
		t.Fatal(err)
	}
	at := func(lng, lat float64) *Node {
		for _, nd := range n.Nodes() {
			if math.Abs(nd.Lat-lat) < 1e-7 && math.Abs(nd.Lng-lng) < 1e-7 {
				return nd
			}
		}
		t.Fatalf("no node at %v,%v", lng, lat)
		return nil
	}
	want := map[string]*Node{"J": at(120.170, 30.25), "K": at(120.172, 30.25), "L": at(120.176, 30.25), "N": at(120.170, 30.248)}
	for name, nd := range want {
		if !nd.Signalised {
			t.Errorf("junction %s (%s) is not signalised", name, nd.ID)
		}
	}
	var got []string
	for _, nd := range n.Nodes() {
		if nd.Signalised {
			got = append(got, nd.ID)
		}
	}
	if len(got) != len(want) {
		t.Errorf("signalised nodes %v, want only J, K, L, N (not the split S, not M)", got)
	}
	// The nested tags of the way reach the link too.
	if l, ok := n.Link("1001"); !ok || l.Class != ClassResidential {
		t.Errorf("nested-tags way: %+v, %v; want link 1001, residential", l, ok)
	}
	if len(n.Links()) != 24 {
		t.Errorf("links = %d, want 24 (points are not roads)", len(n.Links()))
	}
}

func TestLoadGeoJSONSignalLimit(t *testing.T) {
	defer func(v int) { maxGeoJSONSignals = v }(maxGeoJSONSignals)
	maxGeoJSONSignals = 4
	_, err := LoadGeoJSON(strings.NewReader(geoJSONSignals))
	if err == nil || !strings.Contains(err.Error(), "more than 4 traffic signal points") {
		t.Fatalf("error = %v, want the signal limit", err)
	}
	maxGeoJSONSignals = 6
	if _, err := LoadGeoJSON(strings.NewReader(geoJSONSignals)); err != nil {
		t.Fatalf("6 signals under a limit of 6: %v", err)
	}
}

func TestLoadGeoJSONMalformed(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", "x", "(top level)"},
		{"not a collection", `{"type":"Feature"}`, "want FeatureCollection"},
		{"no features", `{"type":"FeatureCollection"}`, `no "features" array`},
		{"bad feature", `{"features":[{"type":"Feature"},{"geometry":5}]}`, "(feature 1)"},
		{"short line", `{"features":[{"properties":{"id":"x"},"geometry":{"type":"LineString","coordinates":[[120,30]]}}]}`, `(feature 0, id "x"): part 0 has 1 position(s)`},
		{"bad position", `{"features":[{"geometry":{"type":"LineString","coordinates":[[120,30],[500,30]]}}]}`, `(feature 0, id "f0"): position 1 of part 0`},
		{"bad coordinates", `{"features":[{"geometry":{"type":"LineString","coordinates":"x"}}]}`, "bad LineString coordinates"},
		{"duplicate id", `{"features":[{"properties":{"id":"x"},"geometry":{"type":"LineString","coordinates":[[120,30],[120,31]]}},{"properties":{"id":"x"},"geometry":{"type":"LineString","coordinates":[[120,30],[120,31]]}}]}`, `(feature 1, id "x"): duplicate link id`},
		{"truncated", geoJSONSnippet[:200], "cannot parse GeoJSON roads (feature 0)"},
		{"empty", `{"type":"FeatureCollection","features":[]}`, "network has no links"},
		{"bad signal", `{"features":[{"properties":{"highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[120]}}]}`, `(feature 0, id "f0"): traffic signal point is not a [lng, lat] pair`},
		{"signal coordinates", `{"features":[{"properties":{"tags":{"highway":"traffic_signals"}},"geometry":{"type":"Point","coordinates":{}}}]}`, "bad Point coordinates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadGeoJSON(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestGeoJSONWriterRoundTrip(t *testing.T) {
	n := GenerateWestLake(1)
	out := n.GeoJSON(n.BBox(), 18)
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		t.Fatalf("writer output is not JSON: %v", err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != len(n.Links()) {
		t.Fatalf("type %q with %d features, want %d links", fc.Type, len(fc.Features), len(n.Links()))
	}
	for _, k := range []string{"id", "name", "lanes", "speed_limit_kmh", "class"} {
		if _, ok := fc.Features[0].Properties[k]; !ok {
			t.Errorf("property %q missing: %v", k, fc.Features[0].Properties)
		}
	}
	back, err := LoadGeoJSON(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("cannot read the writer's output back: %v", err)
	}
	if len(back.Links()) != len(n.Links()) {
		t.Fatalf("round trip: %d links, want %d", len(back.Links()), len(n.Links()))
	}
	var lenA, lenB float64
	for _, l := range n.Links() {
		lenA += l.GeomLengthM()
		b, ok := back.Link(l.ID)
		if !ok || b.Lanes != l.Lanes || b.Class != l.Class || b.SpeedLimitKmh != l.SpeedLimitKmh {
			t.Fatalf("round trip of %s: %+v", l.ID, b)
		}
		lenB += b.GeomLengthM()
	}
	if math.Abs(lenA-lenB) > 1e-3*lenA {
		t.Errorf("total length %.1f m became %.1f m", lenA, lenB)
	}
	// Nodes are rebuilt from shared endpoints: as many as the generator made.
	if len(back.Nodes()) != len(n.Nodes()) {
		t.Errorf("round trip: %d nodes, want %d", len(back.Nodes()), len(n.Nodes()))
	}
}

func TestGeoJSONWriterZoomAndBBox(t *testing.T) {
	n := GenerateWestLake(1)
	count := func(b []byte) (features, points int) {
		var fc struct {
			Features []struct {
				Geometry struct {
					Coordinates [][]float64 `json:"coordinates"`
				} `json:"geometry"`
				Properties struct {
					Class string `json:"class"`
				} `json:"properties"`
			} `json:"features"`
		}
		if err := json.Unmarshal(b, &fc); err != nil {
			t.Fatal(err)
		}
		for _, f := range fc.Features {
			points += len(f.Geometry.Coordinates)
			if f.Properties.Class == "" {
				t.Fatal("feature without class")
			}
		}
		return len(fc.Features), points
	}
	// West Lake has primary (from zoom 0), secondary (11) and tertiary (12) roads.
	f10, _ := count(n.GeoJSON(n.BBox(), 10))
	f11, _ := count(n.GeoJSON(n.BBox(), 11))
	f12, p12 := count(n.GeoJSON(n.BBox(), 12))
	f16, p16 := count(n.GeoJSON(n.BBox(), 16))
	if !(f10 > 0 && f10 < f11 && f11 < f12 && f16 == len(n.Links())) {
		t.Errorf("features by zoom 10/11/12/16 = %d/%d/%d/%d, want strictly more up to all %d links at 16",
			f10, f11, f12, f16, len(n.Links()))
	}
	if float64(p12)/float64(f12) >= float64(p16)/float64(f16) {
		t.Errorf("points per feature at zoom 12 (%d/%d) not below zoom 16 (%d/%d): no simplification", p12, f12, p16, f16)
	}
	small := BBox{MinLng: 120.18, MinLat: 30.27, MaxLng: 120.185, MaxLat: 30.275}
	fs, _ := count(n.GeoJSON(small, 16))
	if fs == 0 || fs >= f16/4 {
		t.Errorf("small bbox gave %d features of %d", fs, f16)
	}
	if fe, _ := count(n.GeoJSON(BBox{MinLng: 0, MinLat: 0, MaxLng: 1, MaxLat: 1}, 16)); fe != 0 {
		t.Errorf("bbox far away gave %d features", fe)
	}
}

func TestSimplifyDP(t *testing.T) {
	// A zig-zag of 101 points with 3 m amplitude along a 1 km line.
	var pts []LatLng
	for i := 0; i <= 100; i++ {
		off := 3.0
		if i%2 == 0 {
			off = -3
		}
		pts = append(pts, LatLng{30.25 + metresToDegLat(off), 120.17 + metresToDegLng(float64(i)*10, 30.25)})
	}
	if got := simplifyDP(pts, 10); len(got) != 2 {
		t.Errorf("tolerance 10 m kept %d points, want 2", len(got))
	}
	if got := simplifyDP(pts, 1); len(got) != len(pts) {
		t.Errorf("tolerance 1 m kept %d points, want all %d", len(got), len(pts))
	}
	// Every dropped point lies within the tolerance of the simplified line.
	got := simplifyDP(pts, 5)
	pl := newPlane(pts[0])
	for _, p := range pts {
		px, py := pl.xy(p)
		best := math.Inf(1)
		for i := 1; i < len(got); i++ {
			ax, ay := pl.xy(got[i-1])
			bx, by := pl.xy(got[i])
			_, d := projectOnSegment(px, py, ax, ay, bx, by)
			best = math.Min(best, d)
		}
		if best > 5+1e-9 {
			t.Fatalf("point %v is %.2f m from the simplified line", p, best)
		}
	}
}

func FuzzLoadGeoJSON(f *testing.F) {
	f.Add([]byte(geoJSONSnippet))
	f.Add([]byte(geoJSONSignals))
	f.Add(GenerateWestLake(1).GeoJSON(BBox{MinLng: 120.18, MinLat: 30.27, MaxLng: 120.185, MaxLat: 30.275}, 16))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := LoadGeoJSON(strings.NewReader(string(in)))
		if err == nil && len(n.Links()) == 0 {
			t.Fatal("no error and no links")
		}
	})
}
