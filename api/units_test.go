package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/engine/dispatch"
	"citybrain/geo"
)

type emSource struct {
	units []engine.Unit
	incs  []engine.Incident
}

func (f *emSource) Units() []engine.Unit              { return f.units }
func (f *emSource) Links(geo.BBox) []engine.LinkStats { return nil }
func (f *emSource) Incidents() []engine.Incident      { return f.incs }

func emergencyServer(t *testing.T) (*httptest.Server, *geo.Network) {
	t.Helper()
	dir := t.TempDir()
	cfg := `{"tokens":[{"name":"anna","role":"commander","token":"tc"},{"name":"li","role":"police","token":"tp"},{"name":"v","role":"viewer","token":"tv"}]}`
	path := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := LoadAuth(path)
	if err != nil {
		t.Fatal(err)
	}
	net := geo.GenerateWestLake(1)
	nd := net.Nodes()
	src := &emSource{incs: []engine.Incident{{ID: "i1", Lat: nd[100].Lat, Lng: nd[100].Lng, Status: engine.StatusConfirmed}}}
	for i, n := range []int{20, 110, 180, 60} {
		src.units = append(src.units, engine.Unit{ID: "u" + string(rune('1'+i)), Type: "ambulance", Status: "available", Lat: nd[n].Lat, Lng: nd[n].Lng, TS: 1})
	}
	m, err := dispatch.New(src, dispatch.Config{Network: net})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Network: net})
	t.Cleanup(eng.Stop)
	s := &Server{Auth: auth, Dispatch: m, Network: net, Engine: eng}
	mux := http.NewServeMux()
	s.routesEmergency(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, net
}

func do(t *testing.T, ts *httptest.Server, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf strings.Builder
	b := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(buf.String())
}

func TestEmergencyAPI(t *testing.T) {
	ts, net := emergencyServer(t)
	code, body := do(t, ts, "GET", "/api/v1/incidents/i1/units?k=3", "tv", "")
	var opts []struct {
		UnitID string  `json:"unit_id"`
		ETAS   float64 `json:"eta_s"`
		Route  struct {
			Type        string       `json:"type"`
			Coordinates [][2]float64 `json:"coordinates"`
		} `json:"route"`
	}
	if code != 200 || json.Unmarshal(body, &opts) != nil || len(opts) != 3 {
		t.Fatalf("units for incident: %d %s", code, body)
	}
	if opts[0].ETAS <= 0 || opts[0].ETAS > opts[2].ETAS || opts[0].Route.Type != "LineString" || len(opts[0].Route.Coordinates) < 2 {
		t.Errorf("options %+v", opts)
	}
	req := `{"incident_id":"i1","unit_id":"` + opts[0].UnitID + `"}`
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"tv", 403}, {"tp", 403}, {"tc", 201}, {"tc", 409}} {
		if code, body := do(t, ts, "POST", "/api/v1/dispatch", tc.token, req); code != tc.want {
			t.Errorf("dispatch with token %q: %d %s, want %d", tc.token, code, body, tc.want)
		}
	}
	code, body = do(t, ts, "GET", "/api/v1/dispatches", "tv", "")
	var ds []map[string]any
	if code != 200 || json.Unmarshal(body, &ds) != nil || len(ds) != 1 || ds[0]["by"] != "anna" {
		t.Fatalf("dispatches: %d %s", code, body)
	}
	id := ds[0]["id"].(string)
	code, body = do(t, ts, "GET", "/api/v1/dispatches/"+id, "tv", "")
	var d struct {
		Route struct {
			Geometry struct {
				Type        string
				Coordinates [][2]float64
			} `json:"geometry"`
		} `json:"route"`
		GreenWave  []map[string]any `json:"green_wave"`
		ETAS       float64          `json:"eta_s"`
		RouteLinks []string         `json:"route_links"`
		RouteEndM  *float64         `json:"route_end_m"`
	}
	if code != 200 || json.Unmarshal(body, &d) != nil || d.Route.Geometry.Type != "LineString" || len(d.GreenWave) == 0 || d.ETAS <= 0 ||
		len(d.RouteLinks) == 0 || d.RouteEndM == nil {
		t.Fatalf("dispatch: %d %s", code, body)
	}
	// route_end_m places the route's end on its last link: a crew (or a simulated vehicle) stops there.
	last, ok := net.Link(d.RouteLinks[len(d.RouteLinks)-1])
	cs := d.Route.Geometry.Coordinates
	if !ok || len(cs) == 0 {
		t.Fatalf("dispatch: last link %v known %t, route geometry %d points", d.RouteLinks, ok, len(cs))
	}
	if at, _ := last.PointAt(*d.RouteEndM); geo.DistanceM(at, geo.LatLng{Lat: cs[len(cs)-1][1], Lng: cs[len(cs)-1][0]}) > 1 {
		t.Errorf("route_end_m %.1f on %s is %.1f m from the route's end", *d.RouteEndM, last.ID,
			geo.DistanceM(at, geo.LatLng{Lat: cs[len(cs)-1][1], Lng: cs[len(cs)-1][0]}))
	}
	if code, _ := do(t, ts, "GET", "/api/v1/dispatches/nope", "tv", ""); code != 404 {
		t.Errorf("unknown dispatch: %d", code)
	}
	if code, _ := do(t, ts, "POST", "/api/v1/dispatches/"+id, "tp", `{"status":"cleared"}`); code != 403 {
		t.Errorf("police closing a dispatch: %d", code)
	}
	if code, _ := do(t, ts, "POST", "/api/v1/dispatches/"+id, "tc", `{"status":"cleared"}`); code != 200 {
		t.Errorf("commander closing a dispatch: %d", code)
	}
	// Signal plans.
	var sig string
	for _, n := range net.Nodes() {
		if n.Signalised {
			sig = n.ID
			break
		}
	}
	code, body = do(t, ts, "GET", "/api/v1/intersections/"+sig+"/plan?method=max_pressure", "tv", "")
	if code != 200 || !strings.Contains(string(body), `"cycle_s"`) {
		t.Fatalf("plan: %d %s", code, body)
	}
	if code, _ := do(t, ts, "GET", "/api/v1/intersections/"+sig+"/plan?method=magic", "tv", ""); code != 422 {
		t.Errorf("unknown method: %d", code)
	}
	accept := `{"decision":"accept","method":"webster","note":"am peak"}`
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"tc", 403}, {"tp", 201}} {
		if code, body := do(t, ts, "POST", "/api/v1/intersections/"+sig+"/plan", tc.token, accept); code != tc.want {
			t.Errorf("accept with token %q: %d %s, want %d", tc.token, code, body, tc.want)
		}
	}
	if code, _ := do(t, ts, "POST", "/api/v1/intersections/"+sig+"/plan", "tp", `{"decision":"maybe"}`); code != 400 {
		t.Errorf("bad decision: %d", code)
	}
	code, body = do(t, ts, "GET", "/api/v1/intersections/"+sig+"/plans", "tv", "")
	if code != 200 || !strings.Contains(string(body), `"by":"li"`) || !strings.Contains(string(body), `"after"`) {
		t.Errorf("decisions: %d %s", code, body)
	}
	code, body = do(t, ts, "GET", "/api/v1/dispatch/audit", "tp", "")
	if code != 200 || !strings.Contains(string(body), `"plan_accept"`) || !strings.Contains(string(body), `"dispatch"`) {
		t.Errorf("audit: %d %s", code, body)
	}
	if code, _ := do(t, ts, "GET", "/api/v1/dispatch/audit", "tv", ""); code != 403 {
		t.Errorf("viewer reading the audit: %d", code)
	}
	if code, _ := do(t, ts, "GET", "/api/v1/units", "tv", ""); code != 200 {
		t.Errorf("units: %d", code)
	}
}
