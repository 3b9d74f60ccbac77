package eval

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// TestScoreRule checks the match rule on hand-made truths and detections.
func TestScoreRule(t *testing.T) {
	truths := []Truth{
		{ID: "a", Class: "full_closure", Lat: 44.5, Lng: 11.34, Start: t0, End: t0.Add(10 * time.Minute)},
		{ID: "b", Class: "partial_closure", Lat: 44.49, Lng: 11.33, Start: t0.Add(20 * time.Minute), End: t0.Add(30 * time.Minute)},
		{ID: "late", Class: "partial_closure", Lat: 44.48, Lng: 11.32, Start: t0.Add(58 * time.Minute), End: t0.Add(70 * time.Minute)},
	}
	dets := []Detection{
		{ID: "dup", Lat: 44.5, Lng: 11.341, DetectedAt: t0.Add(3 * time.Minute)},                   // a, later: duplicate
		{ID: "hit", Lat: 44.5018, Lng: 11.34, DetectedAt: t0.Add(90 * time.Second)},                // a, ~200 m, 90 s
		{ID: "early", Lat: 44.49, Lng: 11.33, DetectedAt: t0.Add(18*time.Minute + 50*time.Second)}, // b, 70 s before its start: too early
		{ID: "far", Lat: 44.4955, Lng: 11.33, DetectedAt: t0.Add(21 * time.Minute)},                // ~610 m from b
		{ID: "after", Lat: 44.49, Lng: 11.33, DetectedAt: t0.Add(34 * time.Minute)},                // b, end + 4 min: in
		{ID: "gas", Lat: 44.0, Lng: 11.0, DetectedAt: t0.Add(5 * time.Minute), Kinds: []string{"sensor"}},
		{ID: "ghost", Lat: 44.0, Lng: 11.0, DetectedAt: t0.Add(5 * time.Minute), Kinds: []string{"probe"}},
		{ID: "lateonly", Lat: 44.48, Lng: 11.32, DetectedAt: t0.Add(59 * time.Minute)},
	}
	res, out, m := score(truths, dets, t0.Add(60*time.Minute), 1)
	verdict := map[string]string{}
	for _, d := range out {
		verdict[d.ID] = d.Verdict
	}
	want := map[string]string{"hit": "true_positive", "dup": "duplicate", "early": "false_alarm", "far": "false_alarm",
		"after": "true_positive", "gas": "out_of_scope", "ghost": "false_alarm", "lateonly": "unscored"}
	for id, v := range want {
		if verdict[id] != v {
			t.Errorf("detection %s: verdict %q, want %q", id, verdict[id], v)
		}
	}
	if m.Truths != 2 || m.Detected != 2 || m.FalseAlarms != 3 || m.Duplicates != 1 || m.OutOfScope != 1 {
		t.Errorf("metrics %+v: want 2 truths, 2 detected, 3 false alarms, 1 duplicate, 1 out of scope", m)
	}
	if res[0].TTDS == nil || *res[0].TTDS != 90 || *res[0].LocErrM < 190 || *res[0].LocErrM > 210 {
		t.Errorf("truth a: ttd %v s, location error %v m; want 90 s, ~200 m", res[0].TTDS, res[0].LocErrM)
	}
	if *res[1].TTDS != 840 || m.WorstTTDS != 840 || m.MeanTTDS != 465 || m.Within180 != 1 {
		t.Errorf("truth b ttd %v, worst %v, mean %v, within 180 s %d; want 840, 840, 465, 1", *res[1].TTDS, m.WorstTTDS, m.MeanTTDS, m.Within180)
	}
	if res[2].Scored {
		t.Errorf("truth starting 2 min before the end of the data is scored")
	}
}

// TestShortEvaluation runs `citybrain eval --short` in this process: the demo city and, when SUMO and the shared
// data are present, one small city of the corpus for 20 minutes, with traffic only and with all evidence.
func TestShortEvaluation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system and SUMO: not with -short")
	}
	cfg := Config{Short: true, TempDir: t.TempDir(), Cache: t.TempDir(), DataRoot: os.Getenv("CITYBRAIN_DATA")}
	if cfg.DataRoot == "" {
		cfg.DataRoot, _ = filepath.Abs(filepath.Join("..", "..", "..", "shared", "data"))
	}
	_, sumoErr := exec.LookPath("sumo")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	for _, s := range rep.Skipped {
		t.Logf("%s", s)
	}
	wantSUMO := sumoErr == nil && sumoMissing(&Config{DataRoot: cfg.DataRoot}) == ""
	if sumoErr != nil && len(rep.Skipped) == 0 {
		t.Errorf("sumo is missing but the report does not say the SUMO part was skipped")
	}
	sources := map[string]bool{}
	detected, truths := 0, 0
	for _, sc := range rep.Scenarios {
		sources[sc.Source] = true
		if sc.Feed.Accepted == 0 || sc.Feed.Rejected != 0 || sc.Feed.Accepted != sc.Feed.Events {
			t.Errorf("%s: fed %+v: want every event accepted", sc.Name, sc.Feed)
		}
		if sc.SimulatedS <= 0 || sc.Metrics.Hours <= 0 || !sc.End.After(sc.Start) {
			t.Errorf("%s: span %v..%v (%v s, %v h)", sc.Name, sc.Start, sc.End, sc.SimulatedS, sc.Metrics.Hours)
		}
		if sc.Metrics.Detected > sc.Metrics.Truths || sc.Metrics.DetectionRate < 0 || sc.Metrics.DetectionRate > 1 {
			t.Errorf("%s: metrics %+v out of range", sc.Name, sc.Metrics)
		}
		for _, tr := range sc.Truths {
			if tr.Detected && (tr.TTDS == nil || tr.LocErrM == nil || *tr.LocErrM > MatchRadiusM || *tr.TTDS < -MatchBefore.Seconds()) {
				t.Errorf("%s: truth %s detected with ttd %v, location error %v", sc.Name, tr.ID, tr.TTDS, tr.LocErrM)
			}
		}
		for _, d := range sc.Detections {
			if d.Verdict == "" || d.DetectedAt.IsZero() {
				t.Errorf("%s: detection %s has no verdict or no detected_at", sc.Name, d.ID)
			}
		}
		detected += sc.Metrics.Detected
		truths += sc.Metrics.Truths
	}
	if !sources["demo"] || sources["nanchang"] != wantSUMO {
		t.Errorf("sources run: %v; want demo, and nanchang = %v", sources, wantSUMO)
	}
	if wantSUMO {
		// The corpus run measured speeds against the vehicle-seconds truth, and every scored truth is a
		// closure SUMO really made.
		for _, sc := range rep.Scenarios {
			if sc.Source != "nanchang" {
				continue
			}
			if sc.Variant == VarTraffic && (sc.Speed["link"].Units == 0 || sc.Speed["cell"].Covered < 0.5) {
				t.Errorf("%s: speed scored on %+v", sc.Name, sc.Speed)
			}
			for _, tr := range sc.Truths {
				if tr.Class != ClassFull && tr.Class != ClassPartial || tr.Position == "" || !tr.End.After(tr.Start) {
					t.Errorf("%s: truth %+v", sc.Name, tr.Truth)
				}
			}
		}
	}
	if truths == 0 || detected == 0 {
		t.Fatalf("%d of %d true incidents detected: want some of some", detected, truths)
	}
	// The report is well-formed JSON with the same numbers, and the table lists every scenario.
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	if len(back.Scenarios) != len(rep.Scenarios) || back.Scenarios[0].Metrics != rep.Scenarios[0].Metrics || (wantSUMO && len(back.Targets) == 0) {
		t.Errorf("report round trip: %d scenarios, %d targets", len(back.Scenarios), len(back.Targets))
	}
	table := rep.Table()
	for _, sc := range rep.Scenarios {
		if !strings.Contains(table, "| "+sc.Source+"/"+sc.Variant+" |") {
			t.Errorf("table misses %s:\n%s", sc.Name, table)
		}
	}
	t.Logf("\n%s", table)
}
