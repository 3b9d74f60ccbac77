// Package signals holds signal-timing arithmetic as pure functions: Webster's cycle and green splits from
// measured flows, the HCM control-delay estimate, degree of saturation and queue estimates, the max-pressure
// phase choice, corridor green-wave offsets and emergency-preemption timing. It keeps no state and imports
// nothing of the project: the engine, the dispatch package and the SUMO experiment all call it.
package signals

import (
	"errors"
	"fmt"
	"math"
)

// Traffic-engineering constants.
const (
	// SatFlowPerLane is the saturation flow used when none is measured, veh/h per lane (HCM base 1,900 less the
	// usual urban adjustments).
	SatFlowPerLane = 1800.0
	// JamSpacingM is the road length one queued vehicle takes (car plus gap).
	JamSpacingM = 7.5
	// DischargeHeadwayS is the time between queued vehicles crossing the stop line once green starts.
	DischargeHeadwayS = 2.0
)

// Options bound a Webster plan.
type Options struct {
	LostPerPhaseS float64 // start-up loss plus clearance per phase (amber + all-red not used)
	MinCycleS     float64
	MaxCycleS     float64
	MinGreenS     float64 // effective green no phase gets less of
}

// DefaultOptions: 4 s lost per phase, cycles of 40–150 s, at least 7 s of green.
func DefaultOptions() Options {
	return Options{LostPerPhaseS: 4, MinCycleS: 40, MaxCycleS: 150, MinGreenS: 7}
}

// Phase is one signal phase's critical lane group: its flow and saturation flow (veh/h).
type Phase struct {
	Name    string
	Flow    float64
	SatFlow float64
}

// Ratio is the phase's flow ratio y = q/s (0 when it has no saturation flow).
func (p Phase) Ratio() float64 {
	if p.SatFlow <= 0 || p.Flow <= 0 {
		return 0
	}
	return p.Flow / p.SatFlow
}

// Plan is a fixed-time plan: cycle length, lost time and the effective green of each phase.
type Plan struct {
	CycleS        float64
	LostS         float64
	Y             float64   // sum of the phases' flow ratios
	GreenS        []float64 // effective green per phase, summing to CycleS − LostS
	Oversaturated bool      // Y ≥ 0.9: no cycle serves the demand; the plan uses the longest cycle
}

// ErrNoPhases is returned for a plan request without phases.
var ErrNoPhases = errors.New("no phases")

// Webster returns Webster's (1958) delay-minimising plan: optimum cycle C₀ = (1.5 L + 5) / (1 − Y), clamped
// to the options' range, and effective greens in proportion to the flow ratios, gᵢ = (C − L) yᵢ / Y. With no
// flow at all the green is split evenly at the shortest cycle.
func Webster(phases []Phase, o Options) (Plan, error) {
	if len(phases) == 0 {
		return Plan{}, fmt.Errorf("cannot plan signal (Webster): %w", ErrNoPhases)
	}
	for _, p := range phases {
		if p.Flow < 0 || p.SatFlow < 0 || math.IsNaN(p.Flow) || math.IsNaN(p.SatFlow) {
			return Plan{}, fmt.Errorf("cannot plan signal (phase %q: flow %g, saturation flow %g): flows must be non-negative", p.Name, p.Flow, p.SatFlow)
		}
	}
	L := o.LostPerPhaseS * float64(len(phases))
	Y := 0.0
	for _, p := range phases {
		Y += p.Ratio()
	}
	pl := Plan{LostS: L, Y: Y}
	switch {
	case Y >= 0.9:
		pl.CycleS, pl.Oversaturated = o.MaxCycleS, true
	default:
		pl.CycleS = math.Min(o.MaxCycleS, math.Max(o.MinCycleS, (1.5*L+5)/(1-Y)))
	}
	pl.CycleS = math.Max(pl.CycleS, L+o.MinGreenS*float64(len(phases)))
	pl.GreenS = Split(phases, pl.CycleS-L, o.MinGreenS)
	return pl, nil
}

// Split divides effective green time among phases in proportion to weights (their flow ratios), giving each at
// least minGreen (evenly when no phase has a weight).
func Split(phases []Phase, green, minGreen float64) []float64 {
	w := make([]float64, len(phases))
	for i, p := range phases {
		w[i] = p.Ratio()
	}
	return SplitWeights(w, green, minGreen)
}

// SplitWeights divides green in proportion to w with a floor of minGreen per phase.
func SplitWeights(w []float64, green, minGreen float64) []float64 {
	out := make([]float64, len(w))
	fixed := make([]bool, len(w))
	for range w { // each round fixes at least one phase at the floor, or finishes
		sum, free := 0.0, green
		for i := range w {
			if fixed[i] {
				free -= minGreen
			} else {
				sum += w[i]
			}
		}
		changed := false
		for i := range w {
			if fixed[i] {
				out[i] = minGreen
				continue
			}
			if sum > 0 {
				out[i] = free * w[i] / sum
			} else {
				n := 0
				for j := range fixed {
					if !fixed[j] {
						n++
					}
				}
				out[i] = free / float64(n)
			}
			if out[i] < minGreen {
				fixed[i], changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	return out
}

// DegreeOfSaturation is X = q / c with capacity c = s g / C.
func DegreeOfSaturation(flow, satFlow, greenS, cycleS float64) float64 {
	c := Capacity(satFlow, greenS, cycleS)
	if c <= 0 {
		if flow > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return flow / c
}

// Capacity is s g / C, veh/h.
func Capacity(satFlow, greenS, cycleS float64) float64 {
	if cycleS <= 0 {
		return 0
	}
	return satFlow * greenS / cycleS
}

// HCMDelay is the HCM 2000 control delay of a lane group (s/veh) without initial queue: uniform delay
// d₁ = 0.5 C (1 − g/C)² / (1 − min(1, X) g/C) plus incremental delay
// d₂ = 900 T [(X − 1) + √((X − 1)² + 8 k I X / (c T))] over an analysis period of T = 0.25 h, with k = 0.5
// (pretimed) and I = 1 (isolated).
func HCMDelay(flow, satFlow, greenS, cycleS float64) float64 {
	const T, k, I = 0.25, 0.5, 1.0
	c := Capacity(satFlow, greenS, cycleS)
	if c <= 0 || cycleS <= 0 {
		return math.Inf(1)
	}
	X := flow / c
	gc := greenS / cycleS
	d1 := 0.5 * cycleS * (1 - gc) * (1 - gc) / (1 - math.Min(1, X)*gc)
	d2 := 900 * T * ((X - 1) + math.Sqrt((X-1)*(X-1)+8*k*I*X/(c*T)))
	return d1 + d2
}

// WebsterDelay is Webster's (1958) average delay per vehicle of an approach (s):
// d = C(1−λ)²/(2(1−λx)) + x²/(2q(1−x)) − 0.65 (C/q²)^(1/3) x^(2+5λ), with λ = g/C, q in veh/s and x = q/(λ s).
// It is infinite at or past saturation.
func WebsterDelay(flow, satFlow, greenS, cycleS float64) float64 {
	if flow <= 0 {
		return 0.5 * cycleS * (1 - greenS/cycleS) * (1 - greenS/cycleS)
	}
	lam := greenS / cycleS
	q := flow / 3600
	x := flow / (lam * satFlow)
	if x >= 1 {
		return math.Inf(1)
	}
	return cycleS*(1-lam)*(1-lam)/(2*(1-lam*x)) + x*x/(2*q*(1-x)) - 0.65*math.Cbrt(cycleS/(q*q))*math.Pow(x, 2+5*lam)
}

// PlanDelay is the flow-weighted mean HCM delay (s/veh) of phases under a plan (greens by phase index).
func PlanDelay(phases []Phase, cycleS float64, greenS []float64) float64 {
	sum, q := 0.0, 0.0
	for i, p := range phases {
		if p.Flow <= 0 || i >= len(greenS) {
			continue
		}
		sum += p.Flow * HCMDelay(p.Flow, p.SatFlow, greenS[i], cycleS)
		q += p.Flow
	}
	if q == 0 {
		return 0
	}
	return sum / q
}
