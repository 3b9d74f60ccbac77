package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/engine/dispatch"
	"citybrain/engine/queues"
	"citybrain/geo"
)

// signalServer serves the Bologna net with its programs, an estimator and the signal controller.
func signalServer(t *testing.T) (*httptest.Server, *geo.Network) {
	t.Helper()
	data := os.Getenv("CITYBRAIN_DATA")
	if data == "" {
		data = filepath.Join("..", "..", "shared", "data")
	}
	dir := filepath.Join(data, "sumo", "bologna-acosta")
	net, err := geo.LoadSUMONetFile(filepath.Join(dir, "acosta_buslanes.net.xml"))
	if err != nil {
		t.Skipf("skipping: Bologna net missing (%v); set CITYBRAIN_DATA", err)
	}
	f, err := os.Open(filepath.Join(dir, "acosta_tls.add.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := net.ApplySUMOPrograms(f); err != nil {
		t.Fatal(err)
	}
	auth, err := LoadAuth(writeAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dispatch.New(&emSource{}, dispatch.Config{Network: net, Queues: queues.New(net, queues.DefaultConfig())})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Auth: auth, Dispatch: m, Network: net}
	mux := http.NewServeMux()
	s.routesEmergency(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, net
}

func writeAuth(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "auth.json")
	cfg := `{"tokens":[{"name":"li","role":"police","token":"tp"},{"name":"v","role":"viewer","token":"tv"}]}`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A street controller reports its signals' states and is told what to show; the plan API then says the same.
func TestSignalsDecide(t *testing.T) {
	ts, net := signalServer(t)
	s219, _ := net.Signal("219")
	body := `{"at":"2026-11-27T08:00:02+08:00","wait_ms":0,"signals":[{"id":"219","phase":0,"elapsed_s":30,"state":"` +
		s219.Phases[0].State + `"},{"id":"nope","phase":0,"elapsed_s":1}]}`
	for _, tc := range []struct {
		token, body string
		want        int
	}{
		{"", body, 401}, {"tv", body, 403},
		{"tp", `{"signals":[]}`, 400},
		{"tp", `{"at":1,"signals":[]}`, 400},
		{"tp", `{"at":"yesterday","signals":[{"id":"219","phase":0}]}`, 400},
		{"tp", `{"at":1,"signals":[{"id":"219","phase":0,"elapsed_s":-1}]}`, 400},
		{"tp", `{"at":1,"method":"magic","signals":[{"id":"219","phase":0}]}`, 422},
		{"tp", `[1,2`, 400},
	} {
		if code, b := do(t, ts, "POST", "/api/v1/signals/decide", tc.token, tc.body); code != tc.want {
			t.Errorf("token %q body %.60s: %d %s, want %d", tc.token, tc.body, code, b, tc.want)
		}
	}
	code, b := do(t, ts, "POST", "/api/v1/signals/decide", "tp", body)
	var ans struct {
		Decisions []dispatch.SignalDecision `json:"decisions"`
	}
	if code != 200 || json.Unmarshal(b, &ans) != nil || len(ans.Decisions) != 2 {
		t.Fatalf("decide: %d %s", code, b)
	}
	d := ans.Decisions[0]
	if d.ID != "219" || d.Err != "" || !d.Cyclic || len(d.Pressures) == 0 || d.Reason == "" {
		t.Errorf("219: %+v (a program with clearance greens runs cyclically)", d)
	}
	if ans.Decisions[1].Err == "" || !ans.Decisions[1].Hold {
		t.Errorf("unknown signal: %+v", ans.Decisions[1])
	}
	code, b = do(t, ts, "GET", "/api/v1/intersections/"+s219.Nodes[0]+"/plan", "tv", "")
	var plan struct {
		Signal *dispatch.SignalPlan `json:"signal"`
		CycleS float64              `json:"cycle_s"`
	}
	if code != 200 || json.Unmarshal(b, &plan) != nil || plan.Signal == nil {
		t.Fatalf("plan: %d %.300s", code, b)
	}
	p := plan.Signal
	if p.Signal != "219" || p.LastDecision == nil || p.LastDecision.Phase != d.Phase || p.LastDecision.Hold != d.Hold ||
		p.Current == nil || p.Current.State != s219.Phases[0].State || len(p.Stages) < 2 || len(p.Lanes) == 0 || plan.CycleS <= 0 {
		t.Errorf("plan of 219: %+v", p)
	}
	if !strings.Contains(string(b), `"gap_s":-1`) {
		t.Errorf("a loop that never counted should show gap_s -1: %.300s", b)
	}
	// The corridor through 219 (71 → 67, a left turn at its junction) shows the same decision.
	code, b = do(t, ts, "GET", "/api/v1/corridors/plan?links=71,67", "tv", "")
	var cor dispatch.Corridor
	if code != 200 || json.Unmarshal(b, &cor) != nil || len(cor.Nodes) != 1 {
		t.Fatalf("corridor: %d %.300s", code, b)
	}
	if sg := cor.Nodes[0].Signal; sg == nil || sg.ID != "219" || sg.LastDecision == nil || sg.LastDecision.Phase != d.Phase {
		t.Errorf("corridor node %+v", cor.Nodes[0])
	}
	// A signal id that is not an intersection's answers with the signal plan alone.
	if code, b := do(t, ts, "GET", "/api/v1/intersections/219/plan?method=citybrain_cyclic", "tv", ""); code != 200 || !strings.Contains(string(b), `"cyclic":true`) {
		t.Errorf("plan by signal id: %d %.200s", code, b)
	}
}
