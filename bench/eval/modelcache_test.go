package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"citybrain/engine/detect"
)

// cacheCorpus is two runs on a straight road of six 300 m links, a link blocked for ten minutes in each:
// rows every 10 s on every link, the blocked link's standing and not discharging, the others noisy.
func cacheCorpus(t *testing.T) []*corpusRun {
	t.Helper()
	net, pt := lineRoad(t, "cache-test")
	var runs []*corpusRun
	for seed := int64(1); seed <= 2; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		blocked := int32(1 + seed)
		p := pt(300*float64(blocked) + 150)
		tr := Truth{ID: "blk", Class: ClassFull, Link: fmt.Sprint("L", blocked), Lat: p.Lat, Lng: p.Lng,
			Start: simStart.Add(10 * time.Minute), End: simStart.Add(20 * time.Minute)}
		r := &corpusRun{city: "line", seed: seed, truths: []Truth{tr}, net: net, endS: 1800}
		for ts := int64(10_000); ts <= 1800_000; ts += 10_000 {
			at := simStart.UnixMilli() + ts
			for li := int32(0); li < 6; li++ {
				row := Row{City: "line", Seed: seed, Link: li, T: at, HeadM: 150}
				for j := range row.X {
					row.X[j] = rng.Float64()
				}
				row.X[detect.FStandLog] = 0.1 + rng.Float64()
				if li == blocked && at >= tr.Start.UnixMilli()+30_000 && at <= tr.End.UnixMilli() {
					row.Label, row.Class, row.Truth = 1, ClassFull, tr.ID
					row.X[detect.FStandLog] += 2
					row.X[detect.FExitDeficit] += 3
				}
				r.rows = append(r.rows, row)
			}
		}
		runs = append(runs, r)
	}
	return runs
}

// A second fit on the same rows with the same options reads the model back from the cache; a changed row, a
// changed label or other options fit again.
func TestLocoModelsAreCachedByTheirRows(t *testing.T) {
	dir := t.TempDir()
	runs := cacheCorpus(t)
	files := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	m1, reused, err := fitCached(context.Background(), dir, runs, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reused || len(files()) != 1 {
		t.Fatalf("first fit: reused %v, cache holds %v; want fitted and one model written", reused, files())
	}
	want := map[string]bool{}
	for _, r := range runs {
		want[r.city] = true
	}
	if len(m1.TrainedOn) != len(want) || !slices.IsSorted(m1.TrainedOn) {
		t.Fatalf("first fit: trained on %v, want each of the runs' cities %v once, sorted", m1.TrainedOn, want)
	}
	for _, c := range m1.TrainedOn {
		if !want[c] {
			t.Fatalf("first fit: trained on %v names %s, not a city of its runs (%v)", m1.TrainedOn, c, want)
		}
	}
	// Mark the cached model, so a reuse is told from a refit that happens to give the same model.
	path := filepath.Join(dir, files()[0])
	marked := *m1
	marked.Notes = []string{"read from the cache"}
	data, err := json.Marshal(&marked)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, reused, err := fitCached(context.Background(), dir, runs, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reused || !slices.Equal(m2.Notes, marked.Notes) || m2.Threshold != m1.Threshold || m2.Persist != m1.Persist || len(m2.Trees) != len(m1.Trees) {
		t.Fatalf("second fit on the same rows: reused %v, notes %v; want the cached model", reused, m2.Notes)
	}

	runs[1].rows[100].X[detect.FExitDeficit] += 0.5
	if _, reused, err = fitCached(context.Background(), dir, runs, TrainOptions{}); err != nil || reused {
		t.Fatalf("a changed feature: reused %v (err %v), want a refit", reused, err)
	}
	runs[0].rows[7].Label = -1
	if _, reused, err = fitCached(context.Background(), dir, runs, TrainOptions{}); err != nil || reused {
		t.Fatalf("a changed label: reused %v (err %v), want a refit", reused, err)
	}
	if _, reused, err = fitCached(context.Background(), dir, runs, TrainOptions{MaxFalsePerH: 1}); err != nil || reused {
		t.Fatalf("other options: reused %v (err %v), want a refit", reused, err)
	}
	// The same rows through another gate (one that shuts a row the detector's lets through) fit again.
	shut := &runs[1].rows[3].X
	if !detect.Gate(shut) {
		t.Fatal("the corpus's row 3 does not pass the gate: no row to shut it for")
	}
	gate = func(x *[detect.NumFeatures]float64) bool { return x != shut && detect.Gate(x) }
	_, reused, err = fitCached(context.Background(), dir, runs, TrainOptions{MaxFalsePerH: 1})
	gate = detect.Gate
	if err != nil || reused {
		t.Fatalf("another gate: reused %v (err %v), want a refit", reused, err)
	}
	if n := len(files()); n != 5 {
		t.Errorf("the cache holds %d models (%v), want 5: one per distinct training set, gate and options", n, files())
	}
	// A damaged cached model is fitted again, not an error.
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs[1].rows[100].X[detect.FExitDeficit] -= 0.5
	runs[0].rows[7].Label = 0
	m3, reused, err := fitCached(context.Background(), dir, runs, TrainOptions{})
	if err != nil || reused || m3.Threshold != m1.Threshold || len(m3.Trees) != len(m1.Trees) {
		t.Fatalf("over a damaged cache file: reused %v (err %v), threshold %v; want a refit equal to the first", reused, err, m3.Threshold)
	}
}

// A fit stops when its context ends (eval's SIGTERM): fitCached returns the context's error and caches no
// model, and the trees stop between rounds rather than finishing the fit in progress.
func TestAFitStopsWhenItsContextEnds(t *testing.T) {
	dir := t.TempDir()
	runs := cacheCorpus(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, _, err := fitCached(ctx, dir, runs, TrainOptions{}); !errors.Is(err, context.Canceled) || m != nil {
		t.Fatalf("fitCached with an ended context: model %v, error %v; want none and context.Canceled", m != nil, err)
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 0 {
		t.Fatalf("fitCached with an ended context left %d files in the model cache (%v)", len(es), err)
	}
	if m, err := fitTrees(ctx, runs, nil, 0, nil); !errors.Is(err, context.Canceled) || m != nil {
		t.Fatalf("fitTrees with an ended context: model %v, error %v; want none and context.Canceled", m != nil, err)
	}
	if _, _, err := fitCached(context.Background(), dir, runs, TrainOptions{}); err != nil {
		t.Fatalf("the same fit with a live context: %v", err)
	}
}
