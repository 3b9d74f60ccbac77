package signals

import (
	"reflect"
	"testing"
)

func phases(durState ...any) []ProgramPhase {
	var out []ProgramPhase
	for i := 0; i+1 < len(durState); i += 2 {
		out = append(out, ProgramPhase{DurS: float64(durState[i].(int)), State: durState[i+1].(string)})
	}
	return out
}

// netconvert's default program (Hangzhou): greens and ambers only, the 6 s protected left a main green.
func TestProgramDefault(t *testing.T) {
	p := &Program{Phases: phases(38, "GgrrGG", 3, "ygrryy", 6, "GGrrrr", 3, "yyrrrr", 37, "GrGGGr", 3, "yryyyr"),
		Lanes: []string{"n_0", "n_1", "e_0", "e_1", "s_0", "s_1"}}
	if m := p.Mains(); !reflect.DeepEqual(m, []int{0, 2, 4}) {
		t.Errorf("mains %v", m)
	}
	if p.FixedSequence() || p.Adjustable() {
		t.Error("a default program is neither a fixed sequence nor adjustable")
	}
	lanes, st, mains := p.Stages()
	if !reflect.DeepEqual(lanes, []string{"n_0", "n_1", "s_0", "s_1", "e_0", "e_1"}) || len(st) != 3 || !reflect.DeepEqual(mains, []int{0, 2, 4}) {
		t.Fatalf("stages: lanes %v, %d stages", lanes, len(st))
	}
	// Stage 0 serves n_0, n_1 (g), s_0, s_1; its amber keeps n_1's yielding green ("ygrryy"): a transition lane.
	if !reflect.DeepEqual(st[0].Lanes, []int{0, 1, 2, 3}) || !reflect.DeepEqual(st[0].Between, []int{1}) {
		t.Errorf("stage 0 %+v", st[0])
	}
}

// A program cut into short pieces (Bologna's 219): a repeated state is one main green, a 3 s green
// between main greens is a clearance green, so the order is fixed.
func TestProgramPieces(t *testing.T) {
	p := &Program{Phases: phases(24, "Grr", 6, "Grr", 3, "yrr", 3, "rGr", 6, "rGG", 6, "rGG", 3, "ryy", 3, "rrr"),
		Lanes: []string{"a", "b", "c"}}
	if m := p.Mains(); !reflect.DeepEqual(m, []int{0, 4}) {
		t.Errorf("mains %v", m)
	}
	if !p.FixedSequence() {
		t.Error("clearance greens and all-red: a fixed sequence")
	}
	_, st, _ := p.Stages()
	// Stage 0 (Grr) is followed by yrr (a), rGr (b) before rGG: both transition lanes.
	if !reflect.DeepEqual(st[0].Between, []int{0, 1}) {
		t.Errorf("stage 0 between %v", st[0].Between)
	}
	// An adjustable program's main greens are its adjustable phases, with their bounds.
	q := &Program{Phases: []ProgramPhase{{State: "Gr", DurS: 30, MinS: 10, MaxS: 60}, {State: "yr", DurS: 3, MinS: 3, MaxS: 3}, {State: "rG", DurS: 20, MinS: 20, MaxS: 20}, {State: "ry", DurS: 3, MinS: 3, MaxS: 3}},
		Lanes: []string{"a", "b"}}
	_, st, mains := q.Stages()
	if !q.Adjustable() || !q.FixedSequence() || !reflect.DeepEqual(mains, []int{0}) || st[0].MinS != 10 || st[0].MaxS != 60 {
		t.Errorf("adjustable: mains %v, stage %+v", mains, st)
	}
}

// A shared lane green in both stages for one movement only (Monaco's 15335: lane a turns right in both
// stages and goes straight only in the first): the second stage serves a in part, by its green movements.
func TestProgramSharedLane(t *testing.T) {
	p := &Program{Phases: phases(39, "GGrr", 6, "yyrr", 39, "GrGg", 6, "yryy"),
		Lanes: []string{"a", "a", "b", "b"}, To: []string{"right", "straight", "x", "y"}}
	lanes, st, _ := p.Stages()
	if !reflect.DeepEqual(lanes, []string{"a", "b"}) || len(st) != 2 {
		t.Fatalf("lanes %v, stages %+v", lanes, st)
	}
	if !reflect.DeepEqual(st[0].Share, []float64{1}) || !reflect.DeepEqual(st[1].Share, []float64{0.5, 1}) {
		t.Errorf("shares %v, %v", st[0].Share, st[1].Share)
	}
	if !reflect.DeepEqual(st[1].GreenTo, [][]string{{"right"}, {"x", "y"}}) {
		t.Errorf("green movements %v", st[1].GreenTo)
	}
	// With the whole of a in both stages, the second stage's pressure was a's plus b's: it beat the first
	// whatever a's queue. Weighted, a queue of 10 on a (2 of them turning right) against 1 on b favours the first.
	ls := []LaneState{{Queue: 10, GapS: 1}, {Queue: 1, GapS: 1}}
	st[1].Share[0] = 0.2
	c := DefaultControl()
	d := Decide(st, ls, -1, 0, c)
	if d.Phase != 0 || d.Pressures[0] <= d.Pressures[1] {
		t.Errorf("shared lane: chose %d, pressures %v", d.Phase, d.Pressures)
	}
	// Ending a stage costs its 6 s amber: the minimum green is 3 × 6 s, within the program's 39 s green.
	if st[0].LostS != 6 || st[0].GreenS != 39 {
		t.Errorf("stage 0 lost %v s, green %v s", st[0].LostS, st[0].GreenS)
	}
	ls[1].Queue = 30
	if d := Decide(st, ls, 0, 10, c); !d.Hold || d.Reason != "min_green" {
		t.Errorf("10 s into a green whose amber is 6 s: %+v", d)
	}
	if d := Decide(st, ls, 0, 18, c); d.Hold {
		t.Errorf("18 s into it, with 30 waiting on b: %+v", d)
	}
	st[0].GreenS = 8 // never longer than the program's own green
	if d := Decide(st, ls, 0, 8, c); d.Hold {
		t.Errorf("the program's 8 s green: %+v", d)
	}
	ls[1].Queue = 1
	// The straight vehicles on a waiting while the second stage runs still count for starvation.
	ls[0].WaitS = 130
	if d := Decide(st, ls, 1, 30, c); d.Phase != 0 || d.Reason != "starvation" {
		t.Errorf("partly served lane starving: %+v", d)
	}
}
