package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/system"
)

// TestSimFeedsARunningServer runs `citybrain sim` against a real server over HTTP and over NATS.
func TestSimFeedsARunningServer(t *testing.T) {
	ecfg := engine.DefaultConfig()
	ecfg.Tick = 50 * time.Millisecond
	s, err := system.Start(context.Background(), system.Config{HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		NATSListen: "127.0.0.1:0", Engine: ecfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	for _, to := range []string{"http://" + s.Addr(), s.NATSURL()} {
		if err := simMain([]string{"--to", to, "--speed", "0", "--duration", "2m", "--start", "2026-11-27T08:00:00+08:00"}); err != nil {
			t.Fatalf("sim to %s: %v", to, err)
		}
	}
	var st struct {
		Accepted uint64 `json:"events_accepted"`
		Rejected uint64 `json:"events_rejected"`
		Cells    int    `json:"cells"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.Addr() + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Cells > 50 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Accepted < 10_000 || st.Rejected != 0 || st.Cells < 50 {
		t.Errorf("after two simulated minutes sent twice: %+v", st)
	}
}
