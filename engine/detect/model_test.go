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
