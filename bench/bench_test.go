package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShortHarness builds bin/citybrain, runs the short harness against it (what CI runs to catch crashes)
// and checks that the report is well-formed and every figure is nonzero. It judges no speed.
func TestShortHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it for about a minute")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "citybrain")
	build := exec.Command("go", "build", "-o", bin, "citybrain/cmd/citybrain")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build citybrain: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := Run(ctx, Config{Bin: bin, Short: true, DataRoot: os.Getenv("CITYBRAIN_DATA"), TempDir: dir, Log: &log, ReplayRuns: 2})
	if err != nil {
		t.Fatalf("harness failed: %v\n%s", err, log.String())
	}
	table := rep.Table()
	t.Log("\n" + table)
	if len(rep.Errors) > 0 {
		t.Fatalf("harness reported errors: %v\n%s", rep.Errors, log.String())
	}
	path := filepath.Join(dir, "report.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report is not valid JSON: %v", err)
	}
	f := back.Floors
	for name, v := range map[string]float64{"nats json": f.NATSPubSubJSON, "nats arrow": f.NATSPubSubArrow, "json decode": f.JSONDecode,
		"h3": f.H3Cell, "arrow decode": f.ArrowDecode} {
		if v <= 0 {
			t.Errorf("floor %s = %v, want > 0", name, v)
		}
	}
	if len(back.Ingest) != 4 {
		t.Fatalf("ingest paths = %d, want 4", len(back.Ingest))
	}
	for _, p := range back.Ingest {
		if p.SustainedPerSec <= 0 || len(p.Steps) == 0 || p.Steps[0].Accepted == 0 {
			t.Errorf("ingest %s: sustained %v, steps %+v", p.Path, p.SustainedPerSec, p.Steps)
		}
		if len(p.RatioToFloor) == 0 {
			t.Errorf("ingest %s: no ratios to floors", p.Path)
		}
	}
	if fr := back.Freshness; fr == nil || len(fr.Levels) != 3 {
		t.Errorf("freshness: %+v, want 3 levels", fr)
	} else {
		for _, l := range fr.Levels {
			if l.Seen == 0 || l.P99Ms <= 0 || l.AcceptedPerSec <= 0 {
				t.Errorf("freshness %d%%: %+v", l.Percent, l)
			}
		}
	}
	if fo := back.Fanout; fo == nil || len(fo.Steps) == 0 || fo.Steps[0].Delivered == 0 {
		t.Errorf("fan-out: %+v", fo)
	}
	if m := back.Memory; m == nil || m.BytesPerRawEvent <= 0 || m.RawRetained <= 0 {
		t.Errorf("memory: %+v", m)
	}
	if rp := back.Replay; rp == nil || rp.EventsPerSec <= 0 || rp.Events == 0 {
		t.Errorf("restart catch-up: %+v", rp)
	}
	if rp := back.ReplaySession; rp == nil || rp.EventsPerSec <= 0 || rp.Events == 0 {
		t.Errorf("replay session: %+v", rp)
	}
	for _, rp := range []*Replay{back.Replay, back.ReplaySession, back.ReplayServer} {
		if rp != nil && len(rp.Runs) != 2 {
			t.Errorf("%s: runs %v, want the two asked for", rp.Kind, rp.Runs)
		}
	}
	// Under a memory budget, flat out: whatever was acknowledged is reflected (RSS against the budget is a
	// figure of the report, not judged here on a shared machine).
	if ov := back.Overload; ov == nil || ov.Accepted == 0 || ov.Lost > 0 || ov.RSSMax == 0 {
		t.Errorf("overload: %+v", ov)
	}
	if !strings.Contains(table, "INGEST") || !strings.Contains(table, "TARGETS") {
		t.Errorf("table lacks sections:\n%s", table)
	}
}

// One replay run can be three times another on a shared machine: the report keeps the median run whole
// (its startup and play times with its rate) and every run's rate in the order they ran.
func TestMedianRunKeepsTheMiddleRunAndEveryRate(t *testing.T) {
	if medianRun(nil) != nil {
		t.Fatal("no run gave a median")
	}
	runs := []*Replay{
		{Kind: "k", EventsPerSec: 7e6, CatchUpSeconds: 0.43},
		{Kind: "k", EventsPerSec: 2.5e6, CatchUpSeconds: 1.2},
		{Kind: "k", EventsPerSec: 8e6, CatchUpSeconds: 0.38},
	}
	m := medianRun(runs)
	if m.EventsPerSec != 7e6 || m.CatchUpSeconds != 0.43 {
		t.Errorf("median run %+v, want the 7 M/s run", m)
	}
	if !slices.Equal(m.Runs, []float64{7e6, 2.5e6, 8e6}) {
		t.Errorf("runs %v, want every rate in run order", m.Runs)
	}
	if runs[0].Runs != nil {
		t.Error("the median changed the run it was taken from")
	}
	if even := medianRun(runs[:2]); even.EventsPerSec != 2.5e6 {
		t.Errorf("of two runs the median is %v, want the lower", even.EventsPerSec)
	}
}
