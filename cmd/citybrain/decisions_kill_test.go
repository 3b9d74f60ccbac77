package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillNineKeepsDecisions: a commander dispatches a unit and a police officer accepts a signal plan;
// the process is killed with SIGKILL right after the two answers. After a restart on the same --data both
// decisions are there, with their audit: they were in the log before they were answered.
func TestKillNineKeepsDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	dir := t.TempDir()
	bin := citybrainBinary(t)
	auth := filepath.Join(dir, "auth.json")
	os.WriteFile(auth, []byte(`{"tokens":[{"name":"cam","role":"feed","token":"f"},{"name":"kim","role":"commander","token":"c"},
		{"name":"lee","role":"police","token":"p"}]}`), 0o600)
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	var logs bytes.Buffer
	startProc := func() *exec.Cmd {
		// The demo city gives the road network (West Lake) and live traffic; the test adds its own
		// incident and unit.
		cmd := exec.Command(bin, "run", "--http", addr, "--data", data, "--nats-listen", "", "--auth", auth, "--tick", "100ms")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	call := func(method, path, token, body string) (int, []byte) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" && method == "POST" && path == "/api/v1/events" {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
		c := http.Client{Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if ok() {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: not within 60 s; log:\n%s", what, logs.String())
	}
	cmd := startProc()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor("server up", func() bool { c, _ := call("GET", "/healthz", "c", ""); return c == 200 })

	// A signalised intersection of the network and, near it, a crash on camera with a call, and an
	// ambulance two intersections away.
	var nodes []struct {
		ID         string  `json:"id"`
		Lat        float64 `json:"lat"`
		Lng        float64 `json:"lng"`
		Signalised bool    `json:"signalised"`
	}
	_, b := call("GET", "/api/v1/intersections", "c", "")
	json.Unmarshal(b, &nodes)
	var sig, far int = -1, -1
	for i, n := range nodes {
		if n.Signalised && sig < 0 {
			sig = i
		}
	}
	if sig < 0 {
		t.Fatalf("no signalised intersection in %d", len(nodes))
	}
	for i, n := range nodes {
		if d := (n.Lat-nodes[sig].Lat)*(n.Lat-nodes[sig].Lat) + (n.Lng-nodes[sig].Lng)*(n.Lng-nodes[sig].Lng); i != sig && d > 1e-5 && d < 1e-4 {
			far = i
			break
		}
	}
	if far < 0 {
		t.Fatal("no intersection 300-1000 m from the signalised one")
	}
	now := time.Now().UnixMilli()
	events := fmt.Sprintf(`{"kind":"video","ts":%d,"id":"kill-cam","lat":%g,"lng":%g,"type":"crash","confidence":0.9}
{"kind":"report","ts":%d,"id":"kill-call","lat":%g,"lng":%g,"type":"crash","severity":3}
{"kind":"unit","ts":%d,"id":"kill-amb","lat":%g,"lng":%g,"unit_type":"ambulance","status":"available"}`,
		now, nodes[sig].Lat, nodes[sig].Lng, now+1000, nodes[sig].Lat, nodes[sig].Lng, now, nodes[far].Lat, nodes[far].Lng)
	if c, b := call("POST", "/api/v1/events", "f", events); c != 200 {
		t.Fatalf("events: %d %s", c, b)
	}
	var incident string
	waitFor("the incident", func() bool {
		var list []struct {
			ID  string  `json:"id"`
			Lat float64 `json:"lat"`
		}
		_, b := call("GET", "/api/v1/incidents", "c", "")
		json.Unmarshal(b, &list)
		for _, in := range list {
			if in.Lat > nodes[sig].Lat-0.001 && in.Lat < nodes[sig].Lat+0.001 {
				incident = in.ID
				return true
			}
		}
		return false
	})
	var dispatchID, planID string
	waitFor("the dispatch", func() bool {
		c, b := call("POST", "/api/v1/dispatch", "c", fmt.Sprintf(`{"incident_id":%q,"unit_id":"kill-amb"}`, incident))
		var d struct {
			ID string `json:"id"`
		}
		json.Unmarshal(b, &d)
		dispatchID = d.ID
		return c == 201
	})
	c, b := call("POST", "/api/v1/intersections/"+nodes[sig].ID+"/plan", "p", `{"decision":"accept","method":"webster","note":"peak"}`)
	if c != 201 {
		t.Fatalf("plan decision: %d %s", c, b)
	}
	var pd struct {
		ID string `json:"id"`
	}
	json.Unmarshal(b, &pd)
	planID = pd.ID
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	cmd = startProc()
	waitFor("caught up after the kill", func() bool {
		c, b := call("GET", "/api/v1/status", "c", "")
		return c == 200 && bytes.Contains(b, []byte(`"caught_up":true`))
	})
	_, b = call("GET", "/api/v1/dispatches?status=all", "c", "")
	if !bytes.Contains(b, []byte(dispatchID)) || !bytes.Contains(b, []byte(`"unit_id":"kill-amb"`)) {
		t.Errorf("dispatch %s lost in the kill: %s", dispatchID, b)
	}
	_, b = call("GET", "/api/v1/intersections/"+nodes[sig].ID+"/plans", "c", "")
	if !bytes.Contains(b, []byte(planID)) {
		t.Errorf("plan decision %s lost in the kill: %s", planID, b)
	}
	_, b = call("GET", "/api/v1/dispatch/audit", "c", "")
	if !bytes.Contains(b, []byte(`"action":"dispatch"`)) || !bytes.Contains(b, []byte(`"action":"plan_accept"`)) || !bytes.Contains(b, []byte(`"by":"kim"`)) || !bytes.Contains(b, []byte(`"by":"lee"`)) {
		t.Errorf("audit after the kill: %s", b)
	}
	_, b = call("GET", "/api/v1/units", "c", "")
	if !bytes.Contains(b, []byte(dispatchID)) {
		t.Errorf("the ambulance is not held by its dispatch after the kill: %s", b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
