package detect

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
)

// Model turns a link's features into the probability that it is blocked: a logistic regression over
// standardised features (Weights), or gradient-boosted trees (Trees, whose summed score Platt scaling turns
// into a probability), with the operating point it was calibrated for (Operating).
type Model struct {
	Version  int       `json:"version"`
	Kind     string    `json:"kind"` // "logistic" or "trees"
	Features []string  `json:"features"`
	Mean     []float64 `json:"mean,omitempty"`
	Scale    []float64 `json:"scale,omitempty"`
	Weights  []float64 `json:"weights,omitempty"`
	Bias     float64   `json:"bias"`
	Trees    []Tree    `json:"trees,omitempty"`
	PlattA   float64   `json:"platt_a,omitempty"` // probability = 1 / (1 + exp(-(PlattA·score + PlattB)))
	PlattB   float64   `json:"platt_b,omitempty"`
	Operating
	// Provenance: what it was trained on and how (bench/eval, `citybrain eval train`).
	TrainedOn []string `json:"trained_on,omitempty"`
	Command   string   `json:"command,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

//go:embed model.json
var defaultModel []byte

// DefaultModel is the model shipped with the engine (model.json, trained on the whole corpus).
func DefaultModel() (*Model, error) { return ParseModel(defaultModel) }

// ParseModel reads a model file and checks it against the features this code computes.
func ParseModel(data []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot read the detector model: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Tree is one regression tree: node 0 is the root; a node with Feature < 0 is a leaf.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is a split (x[Feature] <= Threshold goes Left) or a leaf (Feature -1, Value).
type Node struct {
	Feature   int     `json:"f"`
	Threshold float64 `json:"t,omitempty"`
	Left      int     `json:"l,omitempty"`
	Right     int     `json:"r,omitempty"`
	Value     float64 `json:"v,omitempty"`
}

// check tests the model against the features this code computes. A tree model may name fewer: features are
// only ever appended (FeatureNames), so a model trained before the last were added names a prefix of them and
// splits on those alone, and the engine can keep a model that has proven itself on cities it never saw while
// the code learns to compute more (the shipped model, engine/detect/model.json). A regression weighs every
// feature, so it must name them all.
func (m *Model) check() error {
	if len(m.Features) > NumFeatures || (m.Kind != "trees" && len(m.Features) != NumFeatures) || len(m.Features) == 0 {
		return fmt.Errorf("cannot use the detector model: it has %d features, this code computes %d (retrain: %s)", len(m.Features), NumFeatures, retrain)
	}
	for i, n := range m.Features {
		if n != FeatureNames[i] {
			return fmt.Errorf("cannot use the detector model: feature %d is %q, this code computes %q (retrain: %s)", i, n, FeatureNames[i], retrain)
		}
	}
	switch m.Kind {
	case "logistic", "":
		if len(m.Mean) != NumFeatures || len(m.Scale) != NumFeatures || len(m.Weights) != NumFeatures {
			return fmt.Errorf("cannot use the detector model: %d means, %d scales, %d weights for %d features", len(m.Mean), len(m.Scale), len(m.Weights), NumFeatures)
		}
		for i, n := range m.Features {
			if !(m.Scale[i] > 0) || math.IsNaN(m.Mean[i]) || math.IsNaN(m.Weights[i]) {
				return fmt.Errorf("cannot use the detector model: feature %s has scale %g, mean %g, weight %g", n, m.Scale[i], m.Mean[i], m.Weights[i])
			}
		}
	case "trees":
		if len(m.Trees) == 0 || !(m.PlattA > 0) {
			return fmt.Errorf("cannot use the detector model: %d trees, Platt scale %g", len(m.Trees), m.PlattA)
		}
		for ti, tr := range m.Trees {
			for ni, nd := range tr.Nodes {
				if nd.Feature >= len(m.Features) || (nd.Feature >= 0 && (nd.Left <= ni || nd.Right <= ni || nd.Left >= len(tr.Nodes) || nd.Right >= len(tr.Nodes))) {
					return fmt.Errorf("cannot use the detector model: tree %d node %d is malformed", ti, ni)
				}
			}
		}
	default:
		return fmt.Errorf("cannot use the detector model: kind %q (want logistic or trees)", m.Kind)
	}
	if !(m.Threshold > 0 && m.Threshold < 1) || m.Persist < 1 {
		return fmt.Errorf("cannot use the detector model: threshold %g, persist %d", m.Threshold, m.Persist)
	}
	if (m.Threshold2 != 0 || m.Persist2 != 0) && (!(m.Threshold2 > 0 && m.Threshold2 < 1) || m.Persist2 < 1) {
		return fmt.Errorf("cannot use the detector model: second threshold %g, persist %d", m.Threshold2, m.Persist2)
	}
	return nil
}

// Operating is the rule that turns a link's probabilities at successive bucket ends into an alarm: the link is
// alarmed once its probability has stayed at or above Threshold for Persist bucket ends in a row, or, when
// the model has a second point (Persist2 > 0), at or above Threshold2 for Persist2 bucket ends in a row. A
// full closure shows as a sharp, high probability and a partial one (traffic squeezing past) as a sustained,
// moderate one: one point cannot serve both (issue 12, eleventh pass), so the calibration picks a high
// threshold held briefly and a lower one held longer, jointly. A model file with one point reads as before.
// The engine (engine/incident) and the evaluation's proxy fusion (bench/eval) both judge through Step.
type Operating struct {
	Threshold  float64 `json:"threshold"`
	Persist    int     `json:"persist"`
	Threshold2 float64 `json:"threshold2,omitempty"`
	Persist2   int     `json:"persist2,omitempty"`
}

// Run is a link's count of consecutive bucket ends at or above each point's threshold.
type Run struct{ N, N2 int }

// Step advances run by one bucket end at which the link's probability is p (below 0: not judged) and
// reports whether the link is alarmed there, and the threshold of the point that alarms it (the first
// point's when both do).
func (o Operating) Step(run *Run, p float64) (alarm bool, thr float64) {
	run.N = stepRun(run.N, p, o.Threshold)
	if o.Persist2 > 0 {
		run.N2 = stepRun(run.N2, p, o.Threshold2)
	} else {
		run.N2 = 0
	}
	switch {
	case run.N >= o.Persist:
		return true, o.Threshold
	case o.Persist2 > 0 && run.N2 >= o.Persist2:
		return true, o.Threshold2
	}
	return false, o.Threshold
}

const retrain = "bin/citybrain eval --train engine/detect/model.json"

// Score is the model's raw score for x: the log-odds of the regression, or the trees' sum.
func (m *Model) Score(x *[NumFeatures]float64) float64 {
	z := m.Bias
	if m.Kind == "trees" {
		for i := range m.Trees {
			z += m.Trees[i].eval(x)
		}
		return z
	}
	for i := range x {
		z += m.Weights[i] * (x[i] - m.Mean[i]) / m.Scale[i]
	}
	return z
}

// Logit is the model's calibrated log-odds for x.
func (m *Model) Logit(x *[NumFeatures]float64) float64 {
	z := m.Score(x)
	if m.Kind == "trees" {
		z = m.PlattA*z + m.PlattB
	}
	return z
}

func (t *Tree) eval(x *[NumFeatures]float64) float64 {
	i := 0
	for n := 0; n < len(t.Nodes); n++ { // bounded by the tree's size: a malformed tree cannot loop
		nd := &t.Nodes[i]
		if nd.Feature < 0 {
			return nd.Value
		}
		if x[nd.Feature] <= nd.Threshold {
			i = nd.Left
		} else {
			i = nd.Right
		}
	}
	return 0
}

// Prob is the probability that a link with features x is blocked.
func (m *Model) Prob(x *[NumFeatures]float64) float64 { return 1 / (1 + math.Exp(-m.Logit(x))) }

// Gate is the detector's cheap first look: a link where no probe stands, few crawl, its loops read no
// queue, nothing downstream went quiet and it did not empty while a link feeding it stands is not judged
// (the model would say no, and most links at most times are like that). The last: a closure near a link's
// start holds its queue on the links feeding it, and the link itself empties: no probe stands on it at
// all (issue 12, sixth pass: 19 of 44 full closures traced had fewer than half their usual fixes by
// 180 s, 10 of them with a feeder standing longer than the link's stop reference).
func Gate(x *[NumFeatures]float64) bool {
	return x[FStandLog] > 0 || x[FStandShare] > 0 || x[FCrawlShare] >= 0.3 || x[FDownQuiet] > 0 || x[FLoopOcc] >= 0.3 ||
		emptiedBehindQueue(x)
}

// emptiedBehindQueue: the link carries under half its usual fixes while a link feeding it holds a vehicle
// longer than the link's stop reference.
func emptiedBehindQueue(x *[NumFeatures]float64) bool {
	return x[FUpStand] >= 1 && x[FFixRatio] < 0.5
}

// stepRun is a count of consecutive bucket ends at or above thr after one at probability p.
func stepRun(n int, p, thr float64) int {
	if p >= 0 && p >= thr {
		return n + 1
	}
	return 0
}
