package detect

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
)

// Model is a logistic regression over standardised features, with the operating point it was calibrated
// for: a link is judged blocked once its probability has stayed at or above Threshold for Persist bucket
// ends in a row.
type Model struct {
	Version   int       `json:"version"`
	Features  []string  `json:"features"`
	Mean      []float64 `json:"mean"`
	Scale     []float64 `json:"scale"`
	Weights   []float64 `json:"weights"`
	Bias      float64   `json:"bias"`
	Threshold float64   `json:"threshold"`
	Persist   int       `json:"persist"`
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

func (m *Model) check() error {
	if len(m.Features) != NumFeatures || len(m.Mean) != NumFeatures || len(m.Scale) != NumFeatures || len(m.Weights) != NumFeatures {
		return fmt.Errorf("cannot use the detector model: it has %d features, this code computes %d (retrain: citybrain eval train)", len(m.Features), NumFeatures)
	}
	for i, n := range m.Features {
		if n != FeatureNames[i] {
			return fmt.Errorf("cannot use the detector model: feature %d is %q, this code computes %q (retrain: citybrain eval train)", i, n, FeatureNames[i])
		}
		if !(m.Scale[i] > 0) || math.IsNaN(m.Mean[i]) || math.IsNaN(m.Weights[i]) {
			return fmt.Errorf("cannot use the detector model: feature %s has scale %g, mean %g, weight %g", n, m.Scale[i], m.Mean[i], m.Weights[i])
		}
	}
	if !(m.Threshold > 0 && m.Threshold < 1) || m.Persist < 1 {
		return fmt.Errorf("cannot use the detector model: threshold %g, persist %d", m.Threshold, m.Persist)
	}
	return nil
}

// Logit is the model's log-odds for x.
func (m *Model) Logit(x *[NumFeatures]float64) float64 {
	z := m.Bias
	for i := range x {
		z += m.Weights[i] * (x[i] - m.Mean[i]) / m.Scale[i]
	}
	return z
}

// Prob is the probability that a link with features x is blocked.
func (m *Model) Prob(x *[NumFeatures]float64) float64 { return 1 / (1 + math.Exp(-m.Logit(x))) }

// Gate is the detector's cheap first look: a link where no probe stands, few crawl, its loops read no
// queue and nothing downstream went quiet is not judged (the model would say no, and most links at most
// times are like that).
func Gate(x *[NumFeatures]float64) bool {
	return x[FStandLog] > 0 || x[FStandShare] > 0 || x[FCrawlShare] >= 0.3 || x[FDownQuiet] > 0 || x[FLoopOcc] >= 0.3
}
