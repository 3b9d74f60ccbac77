package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type killStatus struct {
	EventsAccepted  uint64 `json:"events_accepted"`
	EventsReflected uint64 `json:"events_reflected"`
	LogSeq          uint64 `json:"log_seq"`
	CaughtUp        bool   `json:"caught_up"`
}

func getStatus(addr string) (killStatus, error) {
	var st killStatus
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestKillNineLosesNothing posts numbered batches with Idempotency-Key headers and retries while the server
// is killed with SIGKILL three times and restarted on the same --data; afterwards every acknowledged event is
// reflected exactly once, and each restart's time to a caught-up /api/v1/status is reported.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	dir := t.TempDir()
	bin := citybrainBinary(t)
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	startProc := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--http", addr, "--data", data, "--demo=false", "--nats-listen", "", "--tick", "100ms")
		w := &lockedWriter{mu: &logMu, w: &logs}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	waitCaughtUp := func(started time.Time) (killStatus, time.Duration) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := getStatus(addr); err == nil && st.CaughtUp {
				return st, time.Since(started)
			}
			time.Sleep(10 * time.Millisecond)
		}
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("server never caught up; log:\n%s", logs.String())
		return killStatus{}, 0
	}

	cmd := startProc()
	waitCaughtUp(time.Now())
	const perBatch = 20
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli() // events 1 ms apart: all of a run stay in the 15-minute window
	var acked atomic.Int64
	var retries atomic.Int64
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	client := http.Client{Timeout: 3 * time.Second}
	go func() {
		defer close(loadDone)
		for n := 0; ; n++ {
			var sb strings.Builder
			for j := 0; j < perBatch; j++ {
				i := n*perBatch + j
				fmt.Fprintf(&sb, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%g,"lng":%g,"speed_kmh":%d}`+"\n",
					t0+int64(i), i, 30.22+float64(i%13)*0.005, 120.12+float64(i%17)*0.005, 10+i%60)
			}
			body := sb.String()
			for attempt := 0; ; attempt++ {
				select {
				case <-stopLoad:
					if attempt == 0 {
						return
					}
				default:
				}
				req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/events", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("kill-test-%d", n))
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						acked.Add(1)
						break
					}
				}
				retries.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var restarts []time.Duration
	for k := 0; k < 3; k++ {
		time.Sleep(time.Duration(700+rng.Intn(1300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		started := time.Now()
		cmd = startProc()
		st, took := waitCaughtUp(started)
		restarts = append(restarts, took)
		t.Logf("kill %d: restart to caught_up in %v (log_seq %d, %d events reflected)", k+1, took.Round(time.Millisecond), st.LogSeq, st.EventsReflected)
	}
	time.Sleep(500 * time.Millisecond)
	close(stopLoad)
	<-loadDone
	want := uint64(acked.Load()) * perBatch
	var st killStatus
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if st, err = getStatus(addr); err == nil && st.CaughtUp && st.EventsReflected >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ = getStatus(addr)
	if acked.Load() < 10 {
		t.Fatalf("only %d batches acknowledged", acked.Load())
	}
	if st.EventsReflected != want || st.EventsAccepted != want {
		t.Errorf("after 3 kills: events_reflected %d, events_accepted %d, want %d (%d batches acknowledged, %d retries)",
			st.EventsReflected, st.EventsAccepted, want, acked.Load(), retries.Load())
	}
	if st.LogSeq != uint64(acked.Load()) {
		t.Errorf("log holds %d messages for %d acknowledged batches", st.LogSeq, acked.Load())
	}
	// Count by cells too: every event is in the 15-minute window of its cell, once. The cells are published
	// at the tick after the events were applied: wait for them (a deadline, not a sleep).
	cellEvents := func() uint64 {
		resp, err := http.Get("http://" + addr + "/api/v1/cells?window=900s")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cells []struct {
			Events uint64 `json:"events"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&cells); err != nil {
			t.Fatalf("GET /api/v1/cells: %v", err)
		}
		var sum uint64
		for _, c := range cells {
			sum += c.Events
		}
		return sum
	}
	sum := cellEvents()
	for deadline := time.Now().Add(10 * time.Second); sum != want && time.Now().Before(deadline); sum = cellEvents() {
		time.Sleep(100 * time.Millisecond)
	}
	if sum != want {
		t.Errorf("cells count %d events, want %d", sum, want)
	}
	t.Logf("%d batches (%d events) acknowledged, %d retries; restart times %v", acked.Load(), want, retries.Load(), restarts)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("clean stop after SIGTERM: %v", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
