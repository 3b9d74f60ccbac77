package dispatch

import (
	"math"
	"testing"

	"citybrain/engine/queues"
	"citybrain/engine/signals"
)

// A stage that lets only one movement of a shared lane go counts that lane by the movement's learned turning
// ratio; without learned ratios it keeps the program's share; a lane served in full stays at 1.
func TestServedShares(t *testing.T) {
	p := &signals.Program{Phases: []signals.ProgramPhase{{State: "GGrr", DurS: 39}, {State: "yyrr", DurS: 6}, {State: "GrGg", DurS: 39}, {State: "yryy", DurS: 6}},
		Lanes: []string{"a_0", "a_0", "b_0", "b_0"}, To: []string{"right", "straight", "x", "y"}}
	_, st, _ := p.Stages()
	views := []queues.LaneView{{Lane: "a_0", TurnShares: map[string]float64{"right": 0.2, "straight": 0.8}}, {Lane: "b_0"}}
	got := servedShares(st, views)
	if got[1].Share[0] != 0.2 || got[1].Share[1] != 1 || got[0].Share[0] != 1 {
		t.Errorf("shares %v %v", got[0].Share, got[1].Share)
	}
	if st[1].Share[0] != 0.5 {
		t.Errorf("the compiled program's shares changed: %v", st[1].Share)
	}
	views[0].TurnShares = nil
	if got := servedShares(st, views); math.Abs(got[1].Share[0]-0.5) > 1e-9 {
		t.Errorf("no ratios learned: share %v, want the program's 0.5", got[1].Share[0])
	}
}
