package detect

import (
	"encoding/json"
	"strings"
	"testing"
)

// The operating rule: a high threshold held briefly or a lower one held longer (issue 12, eleventh pass); a
// model file with one point (every file written before) loads and judges as before; half a second point is
// refused.
func TestTheOperatingRuleAlarmsAtEitherPoint(t *testing.T) {
	shipped, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(shipped)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["threshold"] != shipped.Threshold || raw["persist"] != float64(shipped.Persist) || raw["threshold2"] != nil {
		t.Errorf("a one-point model writes threshold %v, persist %v, threshold2 %v", raw["threshold"], raw["persist"], raw["threshold2"])
	}
	two := shipped.Operating
	two.Threshold2, two.Persist2 = 0.4, 4
	m := *shipped
	m.Operating = two
	data, _ = json.Marshal(&m)
	back, err := ParseModel(data)
	if err != nil || back.Operating != two {
		t.Fatalf("a two-point model read back as %+v (%v), want %+v", back.Operating, err, two)
	}
	m.Persist2 = 0
	data, _ = json.Marshal(&m)
	if _, err := ParseModel(data); err == nil || !strings.Contains(err.Error(), "second threshold") {
		t.Errorf("a second threshold without its persistence loaded (%v)", err)
	}

	rule := Operating{Threshold: 0.8, Persist: 2, Threshold2: 0.4, Persist2: 4}
	for _, c := range []struct {
		name  string
		probs []float64
		at    int     // first alarmed bucket end (index), -1 none
		thr   float64 // the alarming point's threshold
	}{
		{"sharp and high", []float64{0.1, 0.9, 0.95, 0.2}, 2, 0.8},
		{"sustained moderate", []float64{0.5, 0.6, 0.5, 0.45, 0.5}, 3, 0.4},
		{"moderate, broken", []float64{0.5, 0.6, 0.3, 0.45, 0.5, 0.6, 0.5}, 6, 0.4},
		{"high then moderate counts for the second", []float64{0.9, 0.5, 0.5, 0.5}, 3, 0.4},
		{"not judged breaks both", []float64{0.9, -1, 0.9, 0.5, 0.5}, -1, 0},
	} {
		var run Run
		at, thr := -1, 0.0
		for i, p := range c.probs {
			if ok, th := rule.Step(&run, p); ok && at < 0 {
				at, thr = i, th
			}
		}
		if at != c.at || thr != c.thr {
			t.Errorf("%s: alarmed at %d (threshold %g), want %d (%g)", c.name, at, thr, c.at, c.thr)
		}
		var one Run
		first := -1
		for i, p := range c.probs {
			if ok, _ := (Operating{Threshold: 0.8, Persist: 2}).Step(&one, p); ok && first < 0 {
				first = i
			}
		}
		if want := map[bool]int{true: c.at, false: -1}[c.thr == 0.8]; first != want {
			t.Errorf("%s, the first point alone: alarmed at %d, want %d", c.name, first, want)
		}
	}
}

// A tree model trained before the last features were appended names a prefix of them and still loads and
// scores as it did (the features it never saw cannot move it); a regression, a model naming features out of
// order, or a tree splitting on a feature its file does not name is refused.
func TestATreeModelOfEarlierFeaturesStillJudges(t *testing.T) {
	n := NumFeatures - 1
	old := Model{Version: 2, Kind: "trees", Features: append([]string(nil), FeatureNames[:n]...), PlattA: 1,
		Operating: Operating{Threshold: 0.7, Persist: 2},
		Trees:     []Tree{{Nodes: []Node{{Feature: 0, Threshold: 1, Left: 1, Right: 2}, {Feature: -1, Value: -2}, {Feature: -1, Value: 2}}}}}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseModel(data)
	if err != nil {
		t.Fatalf("a tree model of the first %d of %d features is refused: %v", n, NumFeatures, err)
	}
	var x [NumFeatures]float64
	x[0] = 2
	p := m.Prob(&x)
	x[NumFeatures-1] = 1e6 // a feature the model never saw
	if q := m.Prob(&x); q != p || p < 0.8 {
		t.Errorf("probability %g, with the unseen feature changed %g: want equal and above 0.8", p, q)
	}
	refused := func(what string, m Model, want string) {
		t.Helper()
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseModel(data); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want refused (%q)", what, err, want)
		}
	}
	bad := old
	bad.Trees = []Tree{{Nodes: []Node{{Feature: n, Threshold: 1, Left: 1, Right: 2}, {Feature: -1}, {Feature: -1}}}}
	refused("a tree splitting on a feature its file does not name", bad, "malformed")
	swapped := old
	swapped.Features = append([]string(nil), FeatureNames[:n]...)
	swapped.Features[0], swapped.Features[1] = swapped.Features[1], swapped.Features[0]
	refused("features out of order", swapped, "feature 0")
	lr := Model{Version: 2, Kind: "logistic", Features: append([]string(nil), FeatureNames[:n]...),
		Mean: make([]float64, n), Scale: make([]float64, n), Weights: make([]float64, n), Operating: Operating{Threshold: 0.7, Persist: 2}}
	refused("a regression naming fewer features than the code computes", lr, "features")
}
