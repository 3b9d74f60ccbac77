package signals

import "math"

// LaneState is what a controller knows of one incoming lane of a signal at a decision.
type LaneState struct {
	Queue    float64 // vehicles standing at or near the stop line
	Arrivals float64 // vehicles expected at the stop line within the decision horizon
	SatFlow  float64 // veh/h (0: SatFlowPerLane)
	// Storage is how many vehicles the lane holds at jam spacing (its length / JamSpacingM; 0: unknown).
	Storage float64
	// OutFill is how full (0..1, vehicles over storage) the downstream lanes this lane feeds are, weighted by
	// where its vehicles go; OutQueue is the vehicles standing there, per downstream lane.
	OutFill  float64
	OutQueue float64
	WaitS    float64 // how long the first vehicle has waited (0 when none waits)
	// GapS is how long ago a vehicle last crossed the stop line (or the loop just before it); large when none
	// has. A green whose lanes all show a gap of MaxGapS is not discharging: empty, or blocked downstream.
	GapS float64
	// Gated is the share (0..1) of this lane's pressure the perimeter gate holds back: an entry to an area
	// whose inner links are filling (Control.Gate).
	Gated float64
}

// Control tunes the phase choice.
type Control struct {
	MinGreenS float64 // a main green lasts at least this long
	// MinGreenPerLost scales the minimum green to what ending it costs: at least this many times the
	// program's transitional phases after it (Stage.LostS), so that a signal with long ambers is not changed
	// so often that they eat the cycle (Webster: the lost time per change sets the cycle), but never longer
	// than the program's own green for the stage (a 6 s protected left stays short). 0: MinGreenS alone.
	MinGreenPerLost float64
	MaxGreenS       float64 // ... and at most this long while another phase has demand
	// ArrivalWeight counts a vehicle expected within the horizon as this share of a standing one.
	ArrivalWeight float64
	// A stage takes over from a current one that is still discharging only when its pressure exceeds
	// SwitchRatio × the current one's plus SwitchCost (vehicle-equivalents at saturation flow): a change costs
	// the amber and the start-up loss, so a discharging green is normally served until it gaps out.
	SwitchRatio float64
	SwitchCost  float64
	// SpillFill is the downstream fill from which a lane's pressure is cut (no green into a full link); at
	// 1.0 it counts nothing.
	SpillFill float64
	// MaxWaitS: a lane whose first vehicle has waited this long takes priority (no starvation).
	MaxWaitS float64
	// MaxGapS: a green whose lanes have all gone this long without a vehicle crossing has gapped out.
	MaxGapS float64
	// MinDemand is the least pressure (vehicle-equivalents) a stage needs to be worth a change: an estimate
	// spreads a vehicle over lanes and turns and keeps learned inflow rates, so a stage nobody waits for still
	// shows hundredths of a vehicle; a change for that costs the amber and all-red for nothing.
	MinDemand float64
	// GateFill and GateSpan: perimeter control. When the inner links of the controlled area are fuller than
	// GateFill (vehicles over storage), the entries' pressure is held back in proportion, fully (bar
	// GateMin) at GateFill + GateSpan, so that the area stays below the fill where it stops flowing and the
	// queue waits at its edge. GateFill 0: no gate.
	GateFill, GateSpan, GateMin float64
	// SatMaxPerGreen: while the area is saturated (the gate engaged), a green lasts at most this many times
	// the program's own green for the stage (Stage.GreenS; 0: no such cap). A saturated network's queues
	// reach back into the junctions upstream, and a green extended past the plan's split lengthens every
	// cross street's red until they block them; Bologna's programs are tuned plans.
	SatMaxPerGreen float64
	// Saturated is set per decision by the caller (with Cyclic): the gate is engaged now.
	Saturated bool
	// Cyclic keeps the program's order of main greens: the choice is only to hold the current one or move on
	// to the next main green with demand.
	Cyclic bool
}

// DefaultControl is the tuning measured in docs/signals.md.
func DefaultControl() Control {
	return Control{MinGreenS: 5, MinGreenPerLost: 3, MaxGreenS: 60, ArrivalWeight: 0.5, SwitchRatio: 2, SwitchCost: 2, SpillFill: 0.8, MaxWaitS: 120, MaxGapS: 3, MinDemand: 0.5,
		GateFill: 0.3, GateSpan: 0.3, GateMin: 0.2, SatMaxPerGreen: 1}
}

// Decision is the phase choice at one signal.
type Decision struct {
	Phase     int       // the main green (index into the phases given) to show now
	Hold      bool      // Phase is the current one
	Pressures []float64 // of every main green
	Reason    string    // min_green, demand, max_green, starvation, spillback, idle
}

// LanePressure is one lane's weight in max-pressure: its vehicles (standing, plus expected arrivals at
// ArrivalWeight) less the downstream queue scaled to this lane's storage (capacity-aware: a downstream link
// as full as this one cancels it), times its saturation flow relative to a standard lane, and cut linearly
// to zero as the downstream fill goes from SpillFill to 1 (the spill-back guard).
func (c Control) LanePressure(l LaneState) float64 {
	up := l.Queue + c.ArrivalWeight*l.Arrivals
	down := l.OutQueue
	if l.Storage > 0 {
		down = l.OutFill * l.Storage
	}
	p := up - math.Min(down, up)
	s := l.SatFlow
	if s <= 0 {
		s = SatFlowPerLane
	}
	p *= s / SatFlowPerLane
	if l.Gated > 0 {
		p *= 1 - math.Min(1, l.Gated)
	}
	if c.SpillFill < 1 && l.OutFill > c.SpillFill {
		p *= math.Max(0, (1-l.OutFill)/(1-c.SpillFill))
	}
	return p
}

// Gate is the share of an entry lane's pressure held back when the area's inner links are areaFill full.
func (c Control) Gate(areaFill float64) float64 {
	if c.GateFill <= 0 || areaFill <= c.GateFill {
		return 0
	}
	span := math.Max(c.GateSpan, 1e-3)
	return math.Min(1-c.GateMin, (areaFill-c.GateFill)/span)
}

// Stage is one main green of a signal: the lanes (indices into the lanes of a decision) it serves, the lanes
// the program's transitional phases after it serve before the next main green (Between), and its own minimum
// and maximum (0: the Control's).
//
// Share (parallel to Lanes; nil: all 1) is the part of each lane's vehicles the stage lets go: on a shared
// lane whose left turn is red in this stage, only those going straight or right. A lane's pressure counts in
// a stage in that share, so a stage that serves one movement of a lane is not credited with the whole lane
// (which would make it beat every stage that serves the lane fully by the other lanes it serves). GreenTo
// (parallel to Lanes) names the links the stage's green movements of each lane lead to, for a caller that
// knows the lane's turning ratios to set Share from them.
//
// LostS is how long the program's transitional phases after the stage last (ambers, all-reds, clearance
// greens): what ending it costs; GreenS is the program's own green for it (0 unknown).
type Stage struct {
	LostS      float64
	GreenS     float64
	Lanes      []int
	Share      []float64
	GreenTo    [][]string
	Between    []int
	MinS, MaxS float64
}

// share is the part of lane k (of st.Lanes) the stage serves.
func (st Stage) share(k int) float64 {
	if k < len(st.Share) {
		return st.Share[k]
	}
	return 1
}

// full reports whether the stage serves all of lane k's movements.
func (st Stage) full(k int) bool { return st.share(k) >= 0.999 }

// Decide chooses the main green to show at a signal; cur is the stage shown now (-1: none yet) and elapsed how
// long it has been shown.
//
// Max-pressure (Varaiya 2013) with capacity-aware lane weights (LanePressure): hold the current green for its
// minimum; then move to the stage of highest pressure when it beats the current one by SwitchCost, or at once
// when the current one has no demand left; at the maximum green, move to the best other stage with demand. A
// lane waiting past MaxWaitS is served first. With Cyclic (programs whose order is fixed), the only move is
// to the next stage in program order, made when the current stage has nothing left to discharge (its standing
// vehicles and expected arrivals) or the spill-back guard cuts it, and some lane served until the next stage
// (transitional phases included) has demand; a single-stage program then decides when to run its cycle.
func Decide(stages []Stage, lanes []LaneState, cur int, elapsed float64, c Control) Decision {
	d := Decision{Phase: cur, Hold: true, Pressures: make([]float64, len(stages))}
	pressure := func(sets ...[]int) float64 {
		seen := map[int]bool{}
		p := 0.0
		for _, ls := range sets {
			for _, l := range ls {
				if l >= 0 && l < len(lanes) && !seen[l] {
					seen[l] = true
					p += c.LanePressure(lanes[l])
				}
			}
		}
		return p
	}
	for i, st := range stages {
		seen := map[int]bool{}
		for k, l := range st.Lanes {
			if l >= 0 && l < len(lanes) && !seen[l] {
				seen[l] = true
				d.Pressures[i] += st.share(k) * c.LanePressure(lanes[l])
			}
		}
	}
	if len(stages) == 0 {
		d.Reason = "idle"
		return d
	}
	if cur < 0 || cur >= len(stages) {
		best, _ := argmaxF(d.Pressures, -1)
		d.Phase, d.Hold, d.Reason = best, false, "demand"
		return d
	}
	st := stages[cur]
	scaled := c.MinGreenPerLost * st.LostS
	if st.GreenS > 0 {
		scaled = math.Min(scaled, st.GreenS)
	}
	minS, maxS := math.Max(c.MinGreenS, scaled), c.MaxGreenS
	if st.MinS > 0 {
		minS = st.MinS
	}
	if st.MaxS > 0 {
		maxS = st.MaxS
	}
	if c.Saturated && c.SatMaxPerGreen > 0 && st.GreenS > 0 {
		maxS = math.Min(maxS, math.Max(minS, c.SatMaxPerGreen*st.GreenS))
	}
	// The perimeter gate shortens a green in the share its pressure comes from held-back entries.
	{
		raw, held := 0.0, 0.0
		for _, l := range st.Lanes {
			if l >= 0 && l < len(lanes) && lanes[l].Gated > 0 {
				ung := lanes[l]
				ung.Gated = 0
				p := c.LanePressure(ung)
				raw += p
				held += p * math.Min(1, lanes[l].Gated)
			} else if l >= 0 && l < len(lanes) {
				raw += c.LanePressure(lanes[l])
			}
		}
		if raw > 0 && held > 0 {
			maxS = math.Max(minS, maxS*(1-held/raw))
		}
	}
	if elapsed < minS {
		d.Reason = "min_green"
		return d
	}
	// Lanes the current stage serves in full; one served only in part (its left turn waiting) still counts
	// for the stages that serve the rest of it.
	inCur := map[int]bool{}
	for k, l := range st.Lanes {
		if st.full(k) {
			inCur[l] = true
		}
	}
	without := func(ls []int) []int {
		var out []int
		for _, l := range ls {
			if !inCur[l] {
				out = append(out, l)
			}
		}
		return out
	}
	pc := d.Pressures[cur]
	if c.Cyclic {
		// Exhaustive service in program order: moving on commits to the rest of the cycle, so the current
		// stage runs until its lanes have nothing left to discharge (or the guard cuts them all), as a gap-out
		// does in actuated control.
		next := (cur + 1) % len(stages)
		pn := pressure(without(st.Between), without(stages[next].Lanes))
		if next == cur {
			pn = pressure(without(st.Between))
		}
		switch {
		case elapsed >= maxS:
			d.Phase, d.Hold, d.Reason = next, false, "max_green"
		case pn <= 0 || pn < c.MinDemand:
			d.Reason = "idle"
		case gappedOut(lanes, st, c):
			d.Phase, d.Hold, d.Reason = next, false, "gap_out"
		case pc <= 0:
			d.Phase, d.Hold, d.Reason = next, false, "spillback"
		case c.MaxWaitS > 0 && waits(lanes, without(stages[next].Lanes)) > c.MaxWaitS:
			d.Phase, d.Hold, d.Reason = next, false, "starvation"
		default:
			d.Reason = "demand"
		}
		return d
	}
	// Starvation: the longest-waiting lane past MaxWaitS not served now.
	if c.MaxWaitS > 0 {
		worst, wi := 0.0, -1
		for i, s := range stages {
			if i == cur {
				continue
			}
			if w := waits(lanes, without(s.Lanes)); w > c.MaxWaitS && w > worst {
				worst, wi = w, i
			}
		}
		if wi >= 0 {
			d.Phase, d.Hold, d.Reason = wi, false, "starvation"
			return d
		}
	}
	best, bp := argmaxF(d.Pressures, cur)
	switch {
	case best < 0 || bp <= 0 || bp < c.MinDemand:
		d.Reason = "idle"
	case elapsed >= maxS:
		d.Phase, d.Hold, d.Reason = best, false, "max_green"
	case pc <= 0:
		d.Phase, d.Hold, d.Reason = best, false, "demand"
	case gappedOut(lanes, st, c):
		d.Phase, d.Hold, d.Reason = best, false, "gap_out"
	case bp > c.SwitchRatio*pc+c.SwitchCost:
		d.Phase, d.Hold, d.Reason = best, false, "demand"
	default:
		d.Reason = "demand"
	}
	return d
}

// gappedOut reports whether a green's lanes have nothing left to discharge: no vehicle standing or expected
// on any of them (in the share of each lane the stage serves), or none crossing for MaxGapS on all of them
// (empty, or blocked downstream).
func gappedOut(lanes []LaneState, st Stage, c Control) bool {
	left, flowing := 0.0, false
	for k, l := range st.Lanes {
		if l < 0 || l >= len(lanes) {
			continue
		}
		left += st.share(k) * (lanes[l].Queue + lanes[l].Arrivals)
		if c.MaxGapS <= 0 || lanes[l].GapS < c.MaxGapS {
			flowing = true
		}
	}
	return left < 0.5 || !flowing
}

// waits is the longest wait among lanes ls that have vehicles waiting.
func waits(lanes []LaneState, ls []int) float64 {
	w := 0.0
	for _, l := range ls {
		if l >= 0 && l < len(lanes) && lanes[l].Queue > 0 {
			w = math.Max(w, lanes[l].WaitS)
		}
	}
	return w
}

// argmaxF returns the index of the largest value except skip (-1 when none is finite) and the value.
func argmaxF(x []float64, skip int) (int, float64) {
	b, bv := -1, math.Inf(-1)
	for i, v := range x {
		if i != skip && v > bv {
			b, bv = i, v
		}
	}
	return b, bv
}
