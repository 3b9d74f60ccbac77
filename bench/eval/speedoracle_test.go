package eval

import (
	"context"
	"math"
	"testing"
)

// speedsOnly is a target that only answers speeds.
type speedsOnly struct {
	target
	links map[string]linkReading
}

func (t speedsOnly) speeds(context.Context) (map[string]linkReading, map[uint64]reading, error) {
	return t.links, map[uint64]reading{}, nil
}

func TestTheOraclePriorBlendsTheTruePreviousWindow(t *testing.T) {
	// Window 1 of link A: the truth is 20 km/h, the engine reads 40 with evidence 1 (confidence 0.5); the
	// truth of window 0 was 10 km/h. The oracle blends 40 (weight 1) and 10 (weight oraclePriorVehMin) in
	// logarithms. Link B has no window before: the oracle is its reading. Link C has no reading: uncovered.
	s := &speedScore{truth: map[obsKey]SpeedObs{}, start: 0, pairs: map[string][]speedPair{}}
	add := func(w int32, unit string, kmh, vehS float64) {
		s.truth[obsKey{w, unit}] = SpeedObs{Window: w, Unit: unit, SumKmh: kmh * vehS, VehS: vehS}
	}
	add(0, "L:A", 10, 200)
	add(1, "L:A", 20, 300)
	add(1, "L:B", 30, 300)
	add(1, "L:C", 30, 300)
	tg := speedsOnly{links: map[string]linkReading{"A": {reading: reading{Kmh: 40, Conf: 0.5}}, "B": {reading: reading{Kmh: 33, Conf: 0.8}}}}
	if err := s.at(context.Background(), tg, 2*SpeedWindowS*1000); err != nil {
		t.Fatal(err)
	}
	got := map[float64]float64{} // truth → oracle estimate (the truths differ but B's and C's)
	ps := s.pairs["link-prior-oracle"]
	if len(ps) != 3 {
		t.Fatalf("%d oracle pairs, want one per scored link window (3): %+v", len(ps), ps)
	}
	nan := 0
	for _, p := range ps {
		if math.IsNaN(p.Est) {
			nan++
			continue
		}
		got[p.Truth] = p.Est
	}
	wantA := math.Exp((math.Log(40) + oraclePriorVehMin*math.Log(10)) / (1 + oraclePriorVehMin))
	if math.Abs(got[20]-wantA) > 1e-9 {
		t.Errorf("link A: oracle %g, want %g (its reading blended with the true speed of the window before)", got[20], wantA)
	}
	if got[30] != 33 {
		t.Errorf("link B: oracle %g, want its reading 33 (no window before)", got[30])
	}
	if nan != 1 {
		t.Errorf("%d uncovered oracle pairs, want 1 (link C has no reading)", nan)
	}
	// A standing queue: the plain mean where the logarithms' floor would read it.
	if g := priorOracle(0.5, 0.5, 0.5); math.Abs(g-0.5) > 1e-9 {
		t.Errorf("standing queue: %g, want 0.5", g)
	}
}
