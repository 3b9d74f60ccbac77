package eval

import (
	"context"
	"strings"
	"testing"

	"citybrain/engine/detect"
)

// usesFeature reports whether any split of m's trees reads feature f.
func usesFeature(m *detect.Model, f int) bool {
	for _, tr := range m.Trees {
		for _, n := range tr.Nodes {
			if n.Feature == f {
				return true
			}
		}
	}
	return false
}

// A model fitted with a feature ignored never splits on it, even where that feature alone tells the blocked
// rows from the others (as `signal` told the corpus's cities apart until c5: docs/incidents.md, "features
// whose 'nothing learned' reading is a tell"), and it is cached under another key than the plain fit.
func TestAFeatureIgnoredInTrainingIsNeverSplitOn(t *testing.T) {
	runs := cacheCorpus(t)
	// signal is the tell: 1 on every blocked row, 0 on almost every other.
	for _, r := range runs {
		for i := range r.rows {
			x := &r.rows[i].X
			x[detect.FSignal] = 0
			if r.rows[i].Label == 1 || i%50 == 0 {
				x[detect.FSignal] = 1
			}
		}
	}
	dir := t.TempDir()
	plain, _, err := fitCached(context.Background(), dir, runs, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !usesFeature(plain, detect.FSignal) {
		t.Fatal("the plain fit never splits on signal: the corpus of this test does not make it a tell")
	}
	m, reused, err := fitCached(context.Background(), dir, runs, TrainOptions{Ignore: []string{"signal"}})
	if err != nil {
		t.Fatal(err)
	}
	if reused {
		t.Fatal("the fit ignoring signal was read from the plain fit's cache entry: the options are not in the key")
	}
	if usesFeature(m, detect.FSignal) {
		t.Fatal("a model fitted with signal ignored splits on signal")
	}
	if !usesFeature(m, detect.FStandLog) {
		t.Fatal("the model fitted with signal ignored does not split on the standing feature that also tells the blocked rows")
	}
	// Its probability does not move with signal.
	x := runs[0].rows[0].X
	x[detect.FSignal] = 0
	p0 := m.Prob(&x)
	x[detect.FSignal] = 1
	if p1 := m.Prob(&x); p1 != p0 {
		t.Fatalf("the model ignoring signal reads %.4f with signal 1 and %.4f with 0", p1, p0)
	}
	if _, err := fitModel(runs, TrainOptions{Ignore: []string{"no_such_feature"}}); err == nil || !strings.Contains(err.Error(), "no_such_feature") {
		t.Fatalf("ignoring a feature the detector does not have: err %v; want it named", err)
	}
	if _, err := fitModel(runs, TrainOptions{Kind: "logistic", Ignore: []string{"signal"}}); err == nil {
		t.Fatal("a logistic fit ignoring a feature: no error; want a refusal (trees only)")
	}
}
