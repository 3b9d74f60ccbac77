package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKillNineKeepsZonesAndAlerts draws a zone, raises alerts in it (a crash and a water level over its
// threshold), kills the server with SIGKILL — once right after the alerts, once after a snapshot and more
// alerts — and checks after each restart that the zone and every alert, with the same ids, are back.
func TestKillNineKeepsZonesAndAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	dir := t.TempDir()
	bin := citybrainBinary(t)
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--http", addr, "--data", data, "--demo=false", "--nats-listen", "", "--tick", "100ms", "--snapshot-every", "300ms")
		w := &lockedWriter{mu: &logMu, w: &logs}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := getStatus(addr); err == nil && st.CaughtUp {
				return cmd
			}
			time.Sleep(10 * time.Millisecond)
		}
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("server never caught up; log:\n%s", logs.String())
		return nil
	}
	kill := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	req := func(method, path, body string) (int, []byte) {
		tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
		r, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		r.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	type alert struct {
		ID, Rule, Subject, FiredAt, Status string
	}
	alerts := func() map[string]alert {
		_, b := req("GET", "/api/v1/alerts", "")
		var l []struct {
			ID      string `json:"id"`
			Rule    string `json:"rule"`
			Subject string `json:"subject"`
			FiredAt string `json:"fired_at"`
			Status  string `json:"status"`
		}
		json.Unmarshal(b, &l)
		m := map[string]alert{}
		for _, a := range l {
			m[a.ID] = alert{a.ID, a.Rule, a.Subject, a.FiredAt, a.Status}
		}
		return m
	}
	waitAlerts := func(n int) map[string]alert {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if m := alerts(); len(m) >= n {
				return m
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("fewer than %d alerts: %v", n, alerts())
		return nil
	}

	cmd := start()
	zone := `{"id":"underpass-1","name":"Underpass","kind":"underpass","polygon":[[120.168,30.249],[120.172,30.249],[120.172,30.252],[120.168,30.252]],"rules":[{"type":"incident"}]}`
	if code, b := req("POST", "/api/v1/zones", zone); code != 201 {
		t.Fatalf("zone: %d %s", code, b)
	}
	events := `{"kind":"report","ts":"2026-11-27T08:00:41+08:00","id":"call-1","lat":30.2506,"lng":120.1702,"type":"crash","severity":3}
{"kind":"video","ts":"2026-11-27T08:00:42+08:00","id":"cam-1","lat":30.2504,"lng":120.1699,"type":"crash","confidence":0.9}
{"kind":"sensor","ts":"2026-11-27T08:00:43+08:00","id":"wl-1","lat":30.2503,"lng":120.1705,"type":"water_level","value":0.42,"unit":"m","threshold":0.25}`
	if code, b := req("POST", "/api/v1/events", events); code != 200 {
		t.Fatalf("events: %d %s", code, b)
	}
	before := waitAlerts(2)
	kill(cmd) // maybe before any snapshot: the log alone rebuilds them
	cmd = start()
	if after := waitAlerts(len(before)); !sameAlerts(before, after) {
		t.Fatalf("after SIGKILL 1:\nbefore %v\nafter  %v", before, after)
	}
	// A second sensor fires; a snapshot is written; kill again.
	more := `{"kind":"sensor","ts":"2026-11-27T08:01:10+08:00","id":"wl-2","lat":30.2510,"lng":120.1690,"type":"water_level","value":0.5,"unit":"m","threshold":0.25}`
	req("POST", "/api/v1/events", more)
	before = waitAlerts(len(before) + 1)
	snaps := filepath.Join(data, "snapshots")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(snaps, "snap-*", "zones.json")); len(m) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	kill(cmd)
	cmd = start()
	if after := waitAlerts(len(before)); !sameAlerts(before, after) {
		t.Fatalf("after SIGKILL 2:\nbefore %v\nafter  %v", before, after)
	}
	if code, b := req("GET", "/api/v1/zones/underpass-1", ""); code != 200 {
		t.Fatalf("zone after kills: %d %s", code, b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("clean stop after SIGTERM: %v", err)
	}
}

func sameAlerts[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
