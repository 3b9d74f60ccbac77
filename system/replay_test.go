package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/replay"
)

func adminToken(t *testing.T, s *System) string {
	t.Helper()
	tok, err := os.ReadFile(s.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(tok))
}

// call does an HTTP request with the admin token (tok "" for none) and returns the status and body.
func call(t *testing.T, method, url, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// recordedBatches is a recorded event sequence: 25 minutes of probes and detectors over a grid of cells,
// one batch per 10 s of event time, with some events late within the allowed lateness.
func recordedBatches() []string {
	t0 := time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC).UnixMilli()
	var out []string
	for b := 0; b < 150; b++ {
		var sb strings.Builder
		for j := 0; j < 40; j++ {
			ts := t0 + int64(b)*10000 + int64(j)*250
			if j%7 == 0 {
				ts -= 20000 // late, within the 30 s lateness
			}
			lat, lng := 30.24+float64(j%8)*0.004, 120.14+float64((j+b)%9)*0.004
			if j%5 == 0 {
				fmt.Fprintf(&sb, `{"kind":"detector","ts":%d,"id":"det-%d","lat":%g,"lng":%g,"flow_vph":%d,"occupancy":0.%d,"speed_kmh":%d,"interval_s":30}`+"\n",
					ts, j, lat, lng, 600+b*3, 10+j%80, 15+(b+j)%50)
			} else {
				fmt.Fprintf(&sb, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%g,"lng":%g,"speed_kmh":%g}`+"\n",
					ts, j, lat, lng, 5+float64((b*7+j*3)%70)+0.5)
			}
		}
		out = append(out, sb.String())
	}
	return out
}

func cellsJSON(t *testing.T, url string) []map[string]any {
	t.Helper()
	code, body := call(t, "GET", url, "", nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func waitReplay(t *testing.T, base, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var in map[string]any
		if code := getJSON(t, base+"/api/v1/replays/"+id, &in); code != 200 {
			t.Fatalf("replay %s: status %d", id, code)
		}
		if in["state"] == "finished" {
			return in
		}
		if in["state"] == "failed" {
			t.Fatalf("replay failed: %v", in)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replay %s never finished", id)
	return nil
}

// TestReplayEqualsLive feeds a recorded sequence through the live system, then replays its log and its
// exported Parquet file through replay sessions, and compares cells exactly (spec/api.md "feeding recorded
// events faster than real time must give the same cells and incidents"). It also checks that a retried
// batch (same Idempotency-Key) is counted once.
func TestReplayEqualsLive(t *testing.T) {
	dir := t.TempDir()
	s := start(t, testConfig(t, dir))
	base := "http://" + s.Addr()
	tok := adminToken(t, s)
	batches := recordedBatches()
	total := 0
	for i, b := range batches {
		hdr := map[string]string{"Idempotency-Key": fmt.Sprintf("batch-%d", i)}
		code, ans := post(t, s, "application/x-ndjson", []byte(b), hdr)
		if code != 200 {
			t.Fatalf("batch %d: %d %v", i, code, ans)
		}
		total += int(ans["accepted"].(float64))
		if i%50 == 7 { // a client that retries after a timeout
			if code, _ := post(t, s, "application/x-ndjson", []byte(b), hdr); code != 200 {
				t.Fatalf("retry of batch %d: %d", i, code)
			}
		}
	}
	var newest time.Time = time.Date(2026, 11, 27, 13, 24, 59, 0, time.UTC)
	waitWatermark(t, s, newest)
	s.Engine.Flush()
	var st map[string]any
	getJSON(t, base+"/api/v1/status", &st)
	if int(st["events_reflected"].(float64)) != total {
		t.Errorf("events_reflected %v after retried batches, want %d (each once)", st["events_reflected"], total)
	}
	liveStatus, _ := s.Log.State(t.Context())
	if liveStatus.Msgs != uint64(len(batches)) {
		t.Errorf("the log holds %d messages for %d batches (some retried): dedupe failed", liveStatus.Msgs, len(batches))
	}
	var live [3][]map[string]any
	for i, w := range []string{"60s", "300s", "900s"} {
		live[i] = cellsJSON(t, base+"/api/v1/cells?window="+w)
	}
	if len(live[2]) < 50 {
		t.Fatalf("live run has %d cells", len(live[2]))
	}

	// Creating a replay needs a planner token.
	if code, _ := call(t, "POST", base+"/api/v1/replays", "", map[string]any{"speed": 0}); code != 401 {
		t.Errorf("create replay without a token: %d, want 401", code)
	}
	if code, _ := call(t, "GET", base+"/api/v1/export?from=2026-11-27&to=2026-11-28", "", nil); code != 401 {
		t.Errorf("export without a token: %d, want 401", code)
	}

	// Export the afternoon as Parquet over HTTP into the import directory.
	code, pq := call(t, "GET", base+"/api/v1/export?from=2026-11-27T12:00:00Z&to=2026-11-27T14:00:00Z&format=parquet", tok, nil)
	if code != 200 || len(pq) < 100 || string(pq[:4]) != "PAR1" {
		t.Fatalf("export: %d, %d bytes", code, len(pq))
	}
	os.MkdirAll(filepath.Join(dir, "imports"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "imports", "afternoon.parquet"), pq, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, req := range []map[string]any{{"speed": 0}, {"speed": 0, "file": "afternoon.parquet"}} {
		code, body := call(t, "POST", base+"/api/v1/replays", tok, req)
		if code != 201 {
			t.Fatalf("create replay %v: %d %s", req, code, body)
		}
		var info map[string]any
		json.Unmarshal(body, &info)
		id, _ := info["id"].(string)
		if id == "" {
			t.Fatalf("create replay answer without id: %s", body)
		}
		// Watch it over its websocket.
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/api/v1/replays/"+id+"/ws", nil)
		if err != nil {
			t.Fatalf("replay ws: %v", err)
		}
		ws.WriteJSON(map[string]any{"op": "subscribe", "window": "900s"})
		fin := waitReplay(t, base, id)
		if int(fin["events"].(float64)) != total {
			t.Errorf("replay %v applied %v events, want %d", req, fin["events"], total)
		}
		for i, w := range []string{"60s", "300s", "900s"} {
			got := cellsJSON(t, base+"/api/v1/replays/"+id+"/cells?window="+w)
			if !reflect.DeepEqual(got, live[i]) {
				t.Errorf("replay %v window %s: %d cells differ from the live run's %d", req, w, len(got), len(live[i]))
				for k := range min(len(got), len(live[i])) {
					if !reflect.DeepEqual(got[k], live[i][k]) {
						t.Logf("first difference:\n replay %v\n live   %v", got[k], live[i][k])
						break
					}
				}
			}
		}
		seen := map[string]bool{}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(seen) < len(live[2]) {
			var m wsMsg
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("replay ws read after %d cells: %v", len(seen), err)
			}
			for _, c := range m.Cells {
				seen[c.Cell] = true
			}
		}
		ws.Close()
		if code, _ := call(t, "DELETE", base+"/api/v1/replays/"+id, tok, nil); code != 204 {
			t.Errorf("close replay: %d", code)
		}
		if code, _ := call(t, "GET", base+"/api/v1/replays/"+id, tok, nil); code != 404 {
			t.Errorf("closed replay still served: %d", code)
		}
	}
	// The live system kept its own state.
	if got := cellsJSON(t, base+"/api/v1/cells?window=900s"); !reflect.DeepEqual(got, live[2]) {
		t.Error("the live cells changed while replays ran")
	}

	// Offline, as `citybrain replay --data DIR` does: the log's message blocks are read directly (not through
	// the server), and the replay gives the same cells.
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	r, err := StartReplay(t.Context(), ReplayConfig{DataDir: dir, Spec: replay.Spec{Speed: 0, Warmup: -1}, Engine: cfg.Engine,
		HTTPAddr: "127.0.0.1:0", Version: "test", Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	fin, err := r.Session.WaitFinished(ctx)
	if err != nil || int(fin.Events) != total {
		t.Fatalf("offline replay: %d events (%v), want %d", fin.Events, err, total)
	}
	for i, w := range []string{"60s", "300s", "900s"} {
		code, body := call(t, "GET", "http://"+r.Addr()+"/api/v1/replays/"+r.Session.ID()+"/cells?window="+w, tok, nil)
		var got []map[string]any
		if err := json.Unmarshal(body, &got); code != 200 || err != nil {
			t.Fatalf("offline replay cells: %d %s", code, body)
		}
		if !reflect.DeepEqual(got, live[i]) {
			t.Errorf("offline replay window %s: %d cells differ from the live run's %d", w, len(got), len(live[i]))
		}
	}
}
