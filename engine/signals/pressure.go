package signals

import "math"

// Movement is one movement (incoming lane group to outgoing road) a phase serves, with the vehicles queued
// upstream and downstream and the movement's saturation flow (veh/h; 0 weighs the movement 1).
type Movement struct {
	In, Out float64
	SatFlow float64
}

// Pressure is the max-pressure weight of a phase (Varaiya 2013): Σ over its movements of (queue upstream −
// queue downstream) × saturation flow (veh/s).
func Pressure(moves []Movement) float64 {
	p := 0.0
	for _, m := range moves {
		w := 1.0
		if m.SatFlow > 0 {
			w = m.SatFlow / 3600
		}
		p += (m.In - m.Out) * w
	}
	return p
}

// MaxPressure returns the phase with the highest pressure (the first on ties) and every phase's pressure.
func MaxPressure(phases [][]Movement) (best int, pressures []float64) {
	pressures = make([]float64, len(phases))
	bp := math.Inf(-1)
	for i, ms := range phases {
		pressures[i] = Pressure(ms)
		if pressures[i] > bp {
			best, bp = i, pressures[i]
		}
	}
	return best, pressures
}

// PressureSplit turns pressures into a green split for a cycle: phases share green in proportion to their
// positive pressure (evenly when none is positive), with a floor of minGreen.
func PressureSplit(pressures []float64, green, minGreen float64) []float64 {
	w := make([]float64, len(pressures))
	for i, p := range pressures {
		w[i] = math.Max(0, p)
	}
	return SplitWeights(w, green, minGreen)
}

// GreenWaveOffsets returns the offset of each intersection of a corridor for a progression in the direction of
// travel: the start of its green follows the first intersection's by the travel time to it, modulo the common
// cycle. arriveS are the cumulative travel times from the first intersection (arriveS[0] is normally 0).
func GreenWaveOffsets(arriveS []float64, cycleS float64) []float64 {
	out := make([]float64, len(arriveS))
	if cycleS <= 0 {
		return out
	}
	for i, t := range arriveS {
		out[i] = math.Mod(math.Mod(t-arriveS[0], cycleS)+cycleS, cycleS)
	}
	return out
}

// Preemption is when one signal on an emergency route should show green to the responding vehicle.
type Preemption struct {
	ArriveS    float64 // the vehicle's expected arrival at the stop line, from now
	GreenAtS   float64 // turn green this long from now (0 = at once)
	HoldUntilS float64 // keep green until then
}

// PreemptAt times green for a vehicle expected at a stop line in arriveS seconds behind queueVeh queued
// vehicles per lane: green starts early enough to discharge the queue (DischargeHeadwayS each) plus leadS,
// and holds for holdS after the expected arrival to absorb ETA error.
func PreemptAt(arriveS, queueVeh, leadS, holdS float64) Preemption {
	g := arriveS - leadS - math.Max(0, queueVeh)*DischargeHeadwayS
	return Preemption{ArriveS: arriveS, GreenAtS: math.Max(0, g), HoldUntilS: arriveS + holdS}
}

// QueueFromOccupancy estimates the vehicles queued on a link from detector occupancy (0..1): the occupied
// share of the link's lane length at jam spacing. A loop sees only its own spot, so this is the standard
// rough estimate that holds when the queue reaches the loop.
func QueueFromOccupancy(occupancy, lengthM float64, lanes int) float64 {
	return math.Max(0, math.Min(1, occupancy)) * lengthM * float64(max(1, lanes)) / JamSpacingM
}

// QueueAtRedEnd is the queue (vehicles) that builds at a stop line during a red of redS seconds at flowVph.
func QueueAtRedEnd(flowVph, redS float64) float64 {
	return math.Max(0, flowVph) * math.Max(0, redS) / 3600
}

// QueueFromSpeed estimates the vehicles on a link from a space-mean speed and a flow by the fundamental
// relation density = flow / speed (veh/km), capped at jam density.
func QueueFromSpeed(flowVph, speedKmh, lengthM float64, lanes int) float64 {
	jam := lengthM * float64(max(1, lanes)) / JamSpacingM
	if speedKmh <= 0 {
		return jam
	}
	return math.Min(jam, flowVph/speedKmh*lengthM/1000)
}
