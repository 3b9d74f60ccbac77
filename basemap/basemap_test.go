package basemap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/geo"
)

var world = geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}

func TestLoadOSM(t *testing.T) {
	s, err := LoadOSMFile("testdata/lake.osm")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Counts()
	if c[KindWater] != 1 || c[KindPark] != 1 || c[KindWaterway] != 1 || c[KindRoad] != 1 {
		t.Fatalf("counts %v: want 1 water, 1 park, 1 waterway, 1 road (the footway skipped)", c)
	}
	var park, road *Feature
	labels := map[string]Feature{}
	for i := range s.Features {
		f := &s.Features[i]
		switch f.Kind {
		case KindPark:
			park = f
		case KindRoad:
			road = f
		case KindLabel:
			labels[f.Name] = *f
		}
	}
	if len(park.Rings) != 2 || len(park.Rings[0]) != 5 {
		t.Errorf("park: %d rings (outer %d points), want the outer ring joined from two ways and one hole", len(park.Rings), len(park.Rings[0]))
	}
	if road.Name != "庆春路" || road.Names["en"] != "Qingchun Road" || road.Class != "primary" {
		t.Errorf("road %q %v %q", road.Name, road.Names, road.Class)
	}
	lake, ok := labels["西湖"]
	if !ok || lake.Of != KindWater || lake.Names["en"] != "West Lake" {
		t.Fatalf("lake label %+v", lake)
	}
	if lake.Point.Lat < 30.24 || lake.Point.Lat > 30.25 || lake.Point.Lng < 120.14 || lake.Point.Lng > 120.15 {
		t.Errorf("lake label at %v, not inside the lake", lake.Point)
	}
	if p, ok := labels["湖滨"]; !ok || p.Of != "place" || p.Class != "suburb" || p.Names["en"] != "Hubin" {
		t.Errorf("place label %+v", p)
	}
	var fc struct {
		Features []struct {
			Geometry   struct{ Type string }
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(s.GeoJSON(world), &fc); err != nil {
		t.Fatalf("GeoJSON: %v", err)
	}
	if len(fc.Features) != len(s.Features) {
		t.Fatalf("GeoJSON has %d features, want %d", len(fc.Features), len(s.Features))
	}
	for _, f := range fc.Features {
		if f.Properties["name"] == "庆春路" && (f.Properties["name_en"] != "Qingchun Road" || f.Geometry.Type != "LineString") {
			t.Errorf("road in GeoJSON: %v %s", f.Properties, f.Geometry.Type)
		}
	}
	if n := len(s.GeoJSON(geo.BBox{MinLng: 0, MinLat: 0, MaxLng: 1, MaxLat: 1})); n > 60 {
		t.Errorf("a bbox elsewhere still has features (%d bytes)", n)
	}
}

func TestLoadOSMRefusesBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"not xml":     "hello",
		"bad node":    `<osm><node id="1" lat="x" lon="1"/></osm>`,
		"no id":       `<osm><way><nd ref="1"/></way></osm>`,
		"lat outside": `<osm><node id="1" lat="95" lon="1"/></osm>`,
	} {
		if _, err := LoadOSM(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMonacoExtract reads the shared data's Monaco extract (the test case of issue 18): it carries roads and
// classes but, as filtered for SUMO, no water, parks or names.
func TestMonacoExtract(t *testing.T) {
	dir := os.Getenv("CITYBRAIN_DATA")
	if dir == "" {
		dir = "../../shared/data"
	}
	p := filepath.Join(dir, "sumo/monaco/network.osm")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s missing: set CITYBRAIN_DATA", p)
	}
	s, err := LoadOSMFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Counts()
	if c[KindRoad] < 900 {
		t.Errorf("Monaco roads: %d, want the extract's ~960 highway ways", c[KindRoad])
	}
	for _, f := range s.Features {
		if f.Kind == KindRoad && (f.Line[0].Lat < 43.7 || f.Line[0].Lat > 43.8) {
			t.Fatalf("a road outside Monaco: %v", f.Line[0])
		}
	}
}

func TestWestLake(t *testing.T) {
	s := WestLake(1)
	c := s.Counts()
	if c[KindWater] != 1 || c[KindPark] < 3 || c[KindLabel] < 8 {
		t.Fatalf("counts %v", c)
	}
	net := geo.GenerateWestLake(1)
	// The lake lies inside the shore road: no road node inside it.
	var lake []geo.LatLng
	for _, f := range s.Features {
		if f.Kind == KindWater {
			lake = f.Rings[0]
		}
	}
	for _, n := range net.Nodes() {
		if inRing(lake, n.LatLng) {
			t.Errorf("node %s at %v lies in the lake", n.ID, n.LatLng)
		}
	}
	for _, l := range net.Links() {
		if l.AltNames["zh"] == "" {
			t.Fatalf("link %s (%s) has no Chinese name", l.ID, l.Name)
		}
	}
}

// pmtiles builds a PMTiles v3 archive with one tile and the given metadata.
func pmtiles(t *testing.T, tileType byte, meta string) []byte {
	t.Helper()
	tile := []byte("tile-bytes")
	dir := []byte{1, 0, 1, byte(len(tile)), 1}
	h := make([]byte, 127)
	copy(h, "PMTiles")
	h[7] = 3
	le := binary.LittleEndian
	root, metaOff := uint64(127), uint64(127+len(dir))
	le.PutUint64(h[8:], root)
	le.PutUint64(h[16:], uint64(len(dir)))
	le.PutUint64(h[24:], metaOff)
	le.PutUint64(h[32:], uint64(len(meta)))
	le.PutUint64(h[56:], metaOff+uint64(len(meta)))
	le.PutUint64(h[64:], uint64(len(tile)))
	h[97], h[98], h[99], h[100], h[101] = 1, 1, tileType, 0, 14
	le.PutUint32(h[102:], uint32(int32(120_100_000_0)))
	le.PutUint32(h[106:], uint32(int32(30_200_000_0)))
	le.PutUint32(h[110:], uint32(int32(120_200_000_0)))
	le.PutUint32(h[114:], uint32(int32(30_300_000_0)))
	var b bytes.Buffer
	b.Write(h)
	b.Write(dir)
	b.WriteString(meta)
	b.Write(tile)
	return b.Bytes()
}

func TestPMTilesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "city.pmtiles")
	os.WriteFile(p, pmtiles(t, 1, `{"name":"city","attribution":"© OSM","vector_layers":[{"id":"water"},{"id":"roads"}]}`), 0o644)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	in := a.Info()
	if in.Kind != "pmtiles" || in.Type != "vector" || in.MaxZoom != 14 || len(in.VectorLayers) != 2 || in.VectorLayers[0].ID != "water" || in.Attribution != "© OSM" {
		t.Fatalf("info %+v", in)
	}
	if in.Bounds[0] != 120.1 || in.Bounds[3] != 30.3 {
		t.Errorf("bounds %v", in.Bounds)
	}
	req := httptest.NewRequest("GET", PMTilesPath, nil)
	req.Header.Set("Range", "bytes=0-6")
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	if w.Code != http.StatusPartialContent || w.Body.String() != "PMTiles" {
		t.Fatalf("range request: %d %q", w.Code, w.Body.String())
	}
	st, _ := os.Stat(p)
	if cr := w.Header().Get("Content-Range"); cr != fmt.Sprintf("bytes 0-6/%d", st.Size()) {
		t.Errorf("Content-Range %q, want the file's size %d", cr, st.Size())
	}
	w = httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", "/basemap/other", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("other path: %d", w.Code)
	}
}

func TestOpenRefusesBadArchives(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	good := pmtiles(t, 2, `{}`)
	v2 := append([]byte(nil), good...)
	v2[7] = 2
	badType := pmtiles(t, 9, `{}`)
	badMeta := pmtiles(t, 1, `{not json`)
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge[32:], 1<<40)
	for name, p := range map[string]string{
		"not pmtiles":   write("a.pmtiles", []byte("hello, this is not an archive at all, long enough for a header.................................................................")),
		"short":         write("b.pmtiles", []byte("PMTiles")),
		"version 2":     write("c.pmtiles", v2),
		"tile type":     write("d.pmtiles", badType),
		"metadata":      write("e.pmtiles", badMeta),
		"metadata size": write("f.pmtiles", huge),
		"extension":     write("g.tiles", good),
		"missing":       filepath.Join(dir, "none.pmtiles"),
	} {
		if a, err := Open(p); err == nil {
			a.Close()
			t.Errorf("%s: opened", name)
		}
	}
	if a, err := Open(write("ok.pmtiles", good)); err != nil {
		t.Errorf("a good raster archive: %v", err)
	} else {
		a.Close()
	}
}

func TestRemoteTemplate(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("tile " + r.URL.Path))
	}))
	defer up.Close()
	a, err := Open(up.URL + "/{z}/{x}/{y}.png")
	if err != nil {
		t.Fatal(err)
	}
	if in := a.Info(); in.Kind != "tiles" || in.Type != "raster" {
		t.Fatalf("info %+v", in)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", TilesPath+"3/2/1", nil))
	if w.Body.String() != "tile /3/2/1.png" {
		t.Errorf("proxied %q", w.Body.String())
	}
	w = httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", TilesPath+"3/9/1", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("x outside zoom 3: %d", w.Code)
	}
}

func FuzzLoadOSM(f *testing.F) {
	b, _ := os.ReadFile("testdata/lake.osm")
	f.Add(b)
	f.Add([]byte(`<osm><node id="1" lat="1" lon="1"><tag k="place" v="city"/><tag k="name" v="x"/></node></osm>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := LoadOSM(bytes.NewReader(in))
		if err == nil {
			s.GeoJSON(world)
		}
	})
}

func FuzzPMTilesHeader(f *testing.F) {
	f.Add(make([]byte, 127))
	f.Fuzz(func(t *testing.T, in []byte) {
		if h, err := parsePMHeader(in); err == nil {
			infoFrom(h, nil, "fuzz")
		}
	})
}
