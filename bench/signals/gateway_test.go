package signals

import (
	"math"
	"reflect"
	"testing"

	"citybrain/geo"
)

func tl(phases ...Phase) *TL {
	return &TL{ID: "t", Phases: phases, In: map[int]string{0: "a", 1: "b", 2: "c", 3: "d"}}
}

// run advances a gateway second by second and records the states it shows.
func shown(g *gateway, from, to float64) []string {
	var out []string
	for now := from; now <= to; now++ {
		if s, ok := g.advance(now); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestGatewayTransitions(t *testing.T) {
	// netconvert-like: G, y, G(left), y, G, y.
	x := tl(Phase{Dur: 30, State: "GGrr"}, Phase{Dur: 3, State: "yyrr"}, Phase{Dur: 6, State: "GrGr"}, Phase{Dur: 3, State: "yryr"},
		Phase{Dur: 30, State: "rrGG"}, Phase{Dur: 3, State: "rryy"})
	g := newGateway(x)
	if !reflect.DeepEqual(g.mains, []int{0, 2, 4}) {
		t.Fatalf("mains %v", g.mains)
	}
	g.start(0, 0)
	if got := shown(g, 0, 10); !reflect.DeepEqual(got, []string{"GGrr"}) || g.elapsed(10) != 10 {
		t.Errorf("start: %v, elapsed %v", got, g.elapsed(10))
	}
	// To the next main green: the program's own amber.
	g.request(1, 10)
	if got := shown(g, 10, 20); !reflect.DeepEqual(got, []string{"yyrr", "GrGr"}) || g.elapsed(20) != 7 {
		t.Errorf("to the successor: %v, elapsed %v", got, g.elapsed(20))
	}
	// From the left (GrGr) back to the first (GGrr), not its successor: amber only on the link losing green
	// (c), for the program's amber time; a keeps its green.
	g.request(0, 20)
	if got := shown(g, 20, 30); !reflect.DeepEqual(got, []string{"Gryr", "GGrr"}) {
		t.Errorf("computed amber: %v", got)
	}
	if g.switches != 2 {
		t.Errorf("%d switches", g.switches)
	}
	// A request during a transition is ignored.
	g.request(2, 30)
	g.request(1, 31)
	if got := shown(g, 30, 40); !reflect.DeepEqual(got, []string{"yyrr", "rrGG"}) {
		t.Errorf("transition then ignored request: %v", got)
	}
	// Cyclic single main green with an all-red: the whole cycle, back to it.
	y := tl(Phase{Dur: 30, State: "GGrr", MinDur: 10, MaxDur: 60}, Phase{Dur: 3, State: "yyrr"}, Phase{Dur: 2, State: "rrrr"},
		Phase{Dur: 20, State: "rrGG"}, Phase{Dur: 3, State: "rryy"})
	g = newGateway(y)
	g.cyclic = true
	g.start(0, 0)
	shown(g, 0, 5)
	g.request(0, 5)
	if got := shown(g, 5, 40); !reflect.DeepEqual(got, []string{"yyrr", "rrrr", "rrGG", "rryy", "GGrr"}) || g.elapsed(40) != 7 {
		t.Errorf("cyclic single main: %v, elapsed %v", got, g.elapsed(40))
	}
}

// The green wave serves a movement over all its lanes: the main green giving most of them priority.
func TestServingMovement(t *testing.T) {
	// Lane 0 turns left (green with priority only in the protected left phase), lanes 0–1 go straight.
	x := tl(Phase{Dur: 30, State: "gGrr"}, Phase{Dur: 3, State: "yyrr"}, Phase{Dur: 10, State: "Grrr"}, Phase{Dur: 3, State: "yrrr"},
		Phase{Dur: 30, State: "rrGG"}, Phase{Dur: 3, State: "rryy"})
	g := newGateway(x)
	for _, c := range []struct {
		lis  []int
		want int
	}{{[]int{0, 1}, 0}, {[]int{0}, 1}, {[]int{2, 3}, 2}, {[]int{7}, -1}, {nil, -1}} {
		if got := servingMovement(g, c.lis); got != c.want {
			t.Errorf("links %v: main %d, want %d", c.lis, got, c.want)
		}
	}
}

// A signal already green for the unit stays on its main green when another serves the movement as well.
func TestServingMovementKeepsCurrent(t *testing.T) {
	x := tl(Phase{Dur: 24, State: "GrGG"}, Phase{Dur: 3, State: "yrGy"}, Phase{Dur: 9, State: "rGGr"}, Phase{Dur: 3, State: "ryyr"},
		Phase{Dur: 6, State: "GGrr"}, Phase{Dur: 3, State: "yyrr"})
	g := newGateway(x)
	if got := servingMovement(g, []int{2}); got != 0 {
		t.Fatalf("not started: main %d, want 0 (the first serving lane 2)", got)
	}
	g.start(2, 0)
	if got := servingMovement(g, []int{2}); got != 1 {
		t.Errorf("showing main 1, which serves lane 2: main %d, want 1", got)
	}
	if got := servingMovement(g, []int{2, 3}); got != 0 {
		t.Errorf("showing main 1, lanes 2-3 (main 0 serves both): main %d, want 0", got)
	}
}

func TestValidPos(t *testing.T) {
	for _, c := range []struct {
		x, y float64
		ok   bool
	}{{12.5, 300, true}, {-1073741824, -1073741824, false}, {10, -1073741824, false}, {math.NaN(), 0, false}} {
		if validPos(c.x, c.y) != c.ok {
			t.Errorf("validPos(%v, %v) = %v", c.x, c.y, !c.ok)
		}
	}
}

// The emergency vehicle stops where the dispatch's route ends (route_end_m on its last link), not at the end of
// that link: a route ending just past a junction would otherwise send it hundreds of metres beyond the scene.
func TestAmbulanceStopsAtTheRouteEnd(t *testing.T) {
	net := geo.GenerateWestLake(1)
	var link *geo.Link
	for _, l := range net.Links() {
		if l.GeomLengthM() > 200 {
			link = l
			break
		}
	}
	if link == nil {
		t.Fatal("West Lake has no link over 200 m")
	}
	// SUMO's lane is a little shorter than the network's geometry: positions compare as shares of the link.
	laneLen := 0.97 * link.GeomLengthM()
	sc := &Scenario{Lanes: map[string]LaneInfo{link.ID + "_0": {LengthM: laneLen, Edge: link.ID}, "other_0": {LengthM: 500, Edge: "other"}}}
	a := &ambulance{l: &loopCtl{sc: sc, net: net}}
	if a.reached(link.ID+"_0", laneLen) {
		t.Fatal("reached with no route given")
	}
	endM := 0.4 * link.GeomLengthM()
	a.routeEnds([]string{"other", link.ID}, endM)
	for _, c := range []struct {
		lane string
		pos  float64
		want bool
	}{
		{link.ID + "_0", 0.3 * laneLen, false},
		{link.ID + "_0", 0.41 * laneLen, true},
		{"other_0", 450, false}, // another link, however far along
		{"unknown_0", 1e9, false},
	} {
		if got := a.reached(c.lane, c.pos); got != c.want {
			t.Errorf("on %s at %.0f m (route ends %.0f m into %s): reached %t, want %t", c.lane, c.pos, endM, link.ID, got, c.want)
		}
	}
}
