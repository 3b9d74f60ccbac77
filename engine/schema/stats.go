package schema

import (
	"math"
	"time"
)

// Windows are the sliding windows every cell keeps, in event time, ending at the engine's newest event time.
var Windows = [...]time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

// WindowIndex returns the index in Windows of d, or -1.
func WindowIndex(d time.Duration) int {
	for i, w := range Windows {
		if w == d {
			return i
		}
	}
	return -1
}

// WindowStats are additive sums over one window, so coarser cells are exact roll-ups of finer ones.
type WindowStats struct {
	SpeedSum float64 // Σ weight × speed
	SpeedW   float64 // Σ weight (probe 1, transit 0.5, detector = vehicles counted in its interval)
	Samples  uint32  // speed observations
	Events   uint32  // all events
	FlowSum  float64 // Σ detector flow_vph
	FlowN    uint32
	OccSum   float64 // Σ detector occupancy
	Kinds    [NumKinds]uint32
}

// Add adds the sums of o.
func (w *WindowStats) Add(o *WindowStats) {
	w.SpeedSum += o.SpeedSum
	w.SpeedW += o.SpeedW
	w.Samples += o.Samples
	w.Events += o.Events
	w.FlowSum += o.FlowSum
	w.FlowN += o.FlowN
	w.OccSum += o.OccSum
	for i := range w.Kinds {
		w.Kinds[i] += o.Kinds[i]
	}
}

// Speed is the weighted mean speed, and false when the window holds no speed observation.
func (w *WindowStats) Speed() (float64, bool) {
	if w.SpeedW <= 0 {
		return math.NaN(), false
	}
	return w.SpeedSum / w.SpeedW, true
}

// FlowVph is the mean detector flow, NaN without detector readings.
func (w *WindowStats) FlowVph() float64 {
	if w.FlowN == 0 {
		return math.NaN()
	}
	return w.FlowSum / float64(w.FlowN)
}

// Occupancy is the mean detector occupancy, NaN without detector readings.
func (w *WindowStats) Occupancy() float64 {
	if w.FlowN == 0 {
		return math.NaN()
	}
	return w.OccSum / float64(w.FlowN)
}
