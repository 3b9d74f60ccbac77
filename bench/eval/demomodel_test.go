package eval

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/engine/detect"
)

// `eval --no-sumo --model FILE` judges the demo city by FILE (session 16: the demo always ran the binary's own
// model, so a candidate model was never tried there). The file here is the shipped model with its operating
// point at 0.01 (almost every judged link an alarm at its first bucket end): the demo city must see more incidents
// under it than under the shipped model, and the report must name the file.
func TestTheDemoCityIsJudgedByTheModelFileGiven(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo city twice: not with -short")
	}
	m, err := detect.DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	m.Operating = detect.Operating{Threshold: 0.01, Persist: 1}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "zero.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	incidents := func(model string) (int, *Report) {
		cfg := Config{Short: true, NoSUMO: true, Seeds: []int64{1}, DemoMinutes: 20, Model: model, TempDir: t.TempDir(), Cache: t.TempDir()}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("eval --model %s: %v", model, err)
		}
		n := 0
		for _, sc := range rep.Scenarios {
			if sc.Source == "demo" {
				n += len(sc.Detections)
			}
		}
		return n, rep
	}
	shipped, _ := incidents("shipped")
	zero, rep := incidents(path)
	if zero <= shipped {
		t.Errorf("the demo city reported %d incidents judged by a model that alarms on every judged link, %d by the shipped model: the model file was not used", zero, shipped)
	}
	if rep.ModelNote == "" || !strings.Contains(rep.ModelNote, path) {
		t.Errorf("the report's model note %q does not name the model file %s", rep.ModelNote, path)
	}
	t.Logf("incidents in 20 demo minutes: shipped model %d, operating point 0.01 %d", shipped, zero)
}
