package signals

import (
	"math"
	"reflect"
	"testing"
)

// Two stages over four lanes: stage 0 serves lanes 0 and 1, stage 1 lanes 2 and 3.
var twoStages = []Stage{{Lanes: []int{0, 1}}, {Lanes: []int{2, 3}}}

func lanes(q ...float64) []LaneState {
	out := make([]LaneState, len(q))
	for i, x := range q {
		out[i] = LaneState{Queue: x, Storage: 40, GapS: 1}
	}
	return out
}

func TestLanePressure(t *testing.T) {
	c := DefaultControl()
	for _, tt := range []struct {
		name string
		l    LaneState
		want float64
	}{
		{"standing and arriving", LaneState{Queue: 6, Arrivals: 4}, 8},
		{"downstream queue scaled to this lane's storage", LaneState{Queue: 10, Storage: 20, OutFill: 0.25}, 5},
		{"a downstream link as full as needed cancels it", LaneState{Queue: 4, Storage: 20, OutFill: 0.5}, 0},
		{"spill-back guard: 90% full cuts half (guard from 80%)", LaneState{Queue: 10, OutFill: 0.9}, 5},
		{"full downstream counts nothing", LaneState{Queue: 10, OutFill: 1}, 0},
		{"a double saturation flow counts double", LaneState{Queue: 3, SatFlow: 3600}, 6},
	} {
		if got := c.LanePressure(tt.l); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: %.3f, want %.3f", tt.name, got, tt.want)
		}
	}
}

func TestDecideAcyclic(t *testing.T) {
	c := DefaultControl()
	// Before the minimum green nothing moves, however strong the other side.
	if d := Decide(twoStages, lanes(0, 0, 9, 9), 0, 3, c); !d.Hold || d.Reason != "min_green" {
		t.Errorf("min green: %+v", d)
	}
	// The current green is empty (nothing standing, nothing arriving): the other side takes over.
	if d := Decide(twoStages, lanes(0, 0, 1, 0), 0, 6, c); d.Hold || d.Phase != 1 {
		t.Errorf("empty green: %+v", d)
	}
	// ... but not for less than MinDemand: an estimate's hundredths of a vehicle are not worth an amber.
	if d := Decide(twoStages, lanes(0, 0, 0.2, 0.1), 0, 6, c); !d.Hold || d.Reason != "idle" {
		t.Errorf("empty green, a trace of demand elsewhere: %+v", d)
	}
	// Still discharging, the other side not SwitchRatio stronger: hold.
	if d := Decide(twoStages, lanes(3, 2, 6, 2), 0, 12, c); !d.Hold || !reflect.DeepEqual(d.Pressures, []float64{5, 8}) {
		t.Errorf("discharging: %+v", d)
	}
	// ... unless it is: 2 × 5 + 2 < 13.
	if d := Decide(twoStages, lanes(3, 2, 9, 4), 0, 12, c); d.Hold || d.Phase != 1 {
		t.Errorf("much stronger: %+v", d)
	}
	// Vehicles standing but none crossing for MaxGapS (blocked downstream): gap out.
	ls := lanes(3, 2, 1, 0)
	ls[0].GapS, ls[1].GapS = 5, 5
	if d := Decide(twoStages, ls, 0, 12, c); d.Hold || d.Reason != "gap_out" {
		t.Errorf("gapped out: %+v", d)
	}
	// At the maximum green the other side goes, if it has demand.
	if d := Decide(twoStages, lanes(9, 9, 1, 0), 0, 61, c); d.Hold || d.Reason != "max_green" {
		t.Errorf("max green: %+v", d)
	}
	if d := Decide(twoStages, lanes(9, 9, 0, 0), 0, 61, c); !d.Hold {
		t.Errorf("max green without other demand: %+v", d)
	}
	// A lane waiting past MaxWaitS is served first.
	ls = lanes(9, 9, 1, 0)
	ls[2].WaitS = 130
	if d := Decide(twoStages, ls, 0, 20, c); d.Hold || d.Reason != "starvation" {
		t.Errorf("starvation: %+v", d)
	}
	// No current stage: the strongest.
	if d := Decide(twoStages, lanes(1, 0, 2, 2), -1, 0, c); d.Hold || d.Phase != 1 {
		t.Errorf("start: %+v", d)
	}
}

func TestDecideCyclic(t *testing.T) {
	c := DefaultControl()
	c.Cyclic = true
	three := []Stage{{Lanes: []int{0}}, {Lanes: []int{1}, Between: []int{3}}, {Lanes: []int{2}, MinS: 8, MaxS: 20}}
	// Discharging: hold even when a later stage is much stronger (moving on commits to the cycle).
	if d := Decide(three, lanes(2, 1, 30, 0), 0, 10, c); !d.Hold || d.Reason != "demand" {
		t.Errorf("exhaustive: %+v", d)
	}
	// Empty: move to the next stage in order, not the strongest.
	if d := Decide(three, lanes(0, 1, 30, 0), 0, 10, c); d.Hold || d.Phase != 1 {
		t.Errorf("next in order: %+v", d)
	}
	// Nothing on the way to the next stage (its lanes and the transition's): stay.
	if d := Decide(three, lanes(0, 0, 0, 0), 0, 10, c); !d.Hold || d.Reason != "idle" {
		t.Errorf("idle: %+v", d)
	}
	// From stage 1, the lanes of the transition after it (lane 3) and of stage 2 count for moving on.
	if d := Decide(three, lanes(0, 0, 0, 4), 1, 10, c); d.Hold || d.Phase != 2 {
		t.Errorf("transition demand: %+v", d)
	}
	// A stage's own minimum and maximum.
	if d := Decide(three, lanes(5, 0, 0, 0), 2, 6, c); !d.Hold || d.Reason != "min_green" {
		t.Errorf("own minimum: %+v", d)
	}
	if d := Decide(three, lanes(5, 0, 9, 0), 2, 21, c); d.Hold || d.Reason != "max_green" || d.Phase != 0 {
		t.Errorf("own maximum: %+v", d)
	}
	// A single-stage program runs its cycle when the transition's lanes have demand and the stage gapped out.
	one := []Stage{{Lanes: []int{0}, Between: []int{1}}}
	if d := Decide(one, lanes(0, 3), 0, 10, c); d.Hold || d.Phase != 0 {
		t.Errorf("single stage: %+v", d)
	}
}

// The perimeter gate: nothing below GateFill; above it the share of the entries' pressure held back grows to
// 1 - GateMin at GateFill + GateSpan, and a green serving them is shortened in that share.
func TestGate(t *testing.T) {
	c := DefaultControl()
	c.GateFill, c.GateSpan, c.GateMin = 0.3, 0.3, 0.2
	for _, tt := range []struct{ fill, want float64 }{{0.2, 0}, {0.3, 0}, {0.45, 0.5}, {0.6, 0.8}, {0.9, 0.8}} {
		if got := c.Gate(tt.fill); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("gate at fill %.2f: %.3f, want %.3f", tt.fill, got, tt.want)
		}
	}
	if p := c.LanePressure(LaneState{Queue: 10, Gated: 0.5}); math.Abs(p-5) > 1e-9 {
		t.Errorf("an entry held back by half: pressure %.2f, want 5", p)
	}
	// A stage of entries only, held back by half: its 60-s maximum becomes 30 s.
	ls := lanes(8, 8, 2, 0)
	ls[0].Gated, ls[1].Gated = 0.5, 0.5
	if d := Decide(twoStages, ls, 0, 29, c); !d.Hold {
		t.Errorf("gated green at 29 s: %+v, want held", d)
	}
	if d := Decide(twoStages, ls, 0, 31, c); d.Hold || d.Reason != "max_green" {
		t.Errorf("gated green at 31 s: %+v, want ended at its gated maximum", d)
	}
	ls[0].Gated, ls[1].Gated = 0, 0
	if d := Decide(twoStages, ls, 0, 31, c); !d.Hold {
		t.Errorf("ungated green at 31 s: %+v, want held", d)
	}
}

// Under saturation a green runs at most SatMaxPerGreen × the program's own green; otherwise to MaxGreenS.
func TestSatMaxPerGreen(t *testing.T) {
	c := DefaultControl()
	c.SatMaxPerGreen = 1
	st := []Stage{{Lanes: []int{0, 1}, GreenS: 24}, {Lanes: []int{2, 3}, GreenS: 30}}
	ls := lanes(8, 8, 2, 0)
	if d := Decide(st, ls, 0, 25, c); !d.Hold {
		t.Errorf("not saturated, 25 s of a 24-s green: %+v, want held", d)
	}
	c.Saturated = true
	if d := Decide(st, ls, 0, 23, c); !d.Hold {
		t.Errorf("saturated, 23 s of a 24-s green: %+v, want held", d)
	}
	if d := Decide(st, ls, 0, 25, c); d.Hold || d.Reason != "max_green" {
		t.Errorf("saturated, 25 s of a 24-s green: %+v, want ended at the plan's green", d)
	}
	c.SatMaxPerGreen = 0
	if d := Decide(st, ls, 0, 25, c); !d.Hold {
		t.Errorf("saturated without the cap: %+v, want held", d)
	}
}
