package signals

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// A two-phase junction worked by hand from the textbook formulas (Webster 1958, as in Road Note 39 and Garber
// & Hoel ch. 8): critical flows 630 and 450 veh/h at 1,800 veh/h, 5 s lost per phase. Y = 0.35 + 0.25 = 0.6,
// L = 10 s, C₀ = (1.5·10 + 5)/(1 − 0.6) = 50 s, effective green 40 s split 23.33 / 16.67 s.
func TestWebsterTextbook(t *testing.T) {
	ph := []Phase{{Name: "NS", Flow: 630, SatFlow: 1800}, {Name: "EW", Flow: 450, SatFlow: 1800}}
	o := Options{LostPerPhaseS: 5, MinCycleS: 30, MaxCycleS: 150, MinGreenS: 5}
	p, err := Webster(ph, o)
	if err != nil {
		t.Fatal(err)
	}
	if !near(p.Y, 0.6, 1e-12) || !near(p.LostS, 10, 0) || !near(p.CycleS, 50, 1e-9) {
		t.Fatalf("Y %.3f L %.1f C %.3f, want 0.6, 10, 50", p.Y, p.LostS, p.CycleS)
	}
	if !near(p.GreenS[0], 70.0/3, 1e-9) || !near(p.GreenS[1], 50.0/3, 1e-9) {
		t.Errorf("greens %v, want [23.333 16.667]", p.GreenS)
	}
	// Degree of saturation of the NS phase: c = 1800·23.33/50 = 840 veh/h, X = 630/840 = 0.75.
	if x := DegreeOfSaturation(630, 1800, p.GreenS[0], p.CycleS); !near(x, 0.75, 1e-9) {
		t.Errorf("X = %.4f, want 0.75", x)
	}
	// HCM 2000 delay for it: d1 = 0.5·50·(1−0.4667)²/(1−0.75·0.4667) = 10.940 s,
	// d2 = 225·[(−0.25) + √(0.0625 + 3/210)] = 6.098 s.
	if d := HCMDelay(630, 1800, p.GreenS[0], p.CycleS); !near(d, 17.038, 0.001) {
		t.Errorf("HCM delay %.3f s, want 17.038", d)
	}
	// Webster's own delay formula for the same approach: 15.168 s.
	if d := WebsterDelay(630, 1800, p.GreenS[0], p.CycleS); !near(d, 15.168, 0.001) {
		t.Errorf("Webster delay %.3f s, want 15.168", d)
	}
	// Webster's plan beats an even split of a 90 s cycle on delay.
	even := []float64{(90 - 10) / 2.0, (90 - 10) / 2.0}
	if dw, de := PlanDelay(ph, p.CycleS, p.GreenS), PlanDelay(ph, 90, even); !(dw < de) {
		t.Errorf("Webster plan delay %.2f s not below the even 90 s plan's %.2f", dw, de)
	}
}

func TestWebsterEdges(t *testing.T) {
	o := DefaultOptions()
	if _, err := Webster(nil, o); !errors.Is(err, ErrNoPhases) {
		t.Errorf("no phases: err %v", err)
	}
	if _, err := Webster([]Phase{{Flow: -1, SatFlow: 1800}}, o); err == nil {
		t.Error("negative flow accepted")
	}
	p, _ := Webster([]Phase{{Flow: 900, SatFlow: 1800}, {Flow: 800, SatFlow: 1800}}, o)
	if !p.Oversaturated || p.CycleS != o.MaxCycleS {
		t.Errorf("Y = %.2f: oversaturated %v cycle %.0f, want true %v", p.Y, p.Oversaturated, p.CycleS, o.MaxCycleS)
	}
	p, _ = Webster([]Phase{{SatFlow: 1800}, {SatFlow: 1800}, {SatFlow: 1800}}, o)
	if p.CycleS != o.MinCycleS || !near(p.GreenS[0], p.GreenS[2], 1e-9) || !near(p.GreenS[0]+p.GreenS[1]+p.GreenS[2], p.CycleS-p.LostS, 1e-9) {
		t.Errorf("no flow: cycle %.1f greens %v", p.CycleS, p.GreenS)
	}
	// A minor phase is lifted to the minimum green and the rest shared in proportion.
	g := SplitWeights([]float64{0.5, 0.01, 0.25}, 60, 7)
	if !near(g[1], 7, 1e-9) || !near(g[0], 53*2.0/3, 1e-9) || !near(g[2], 53.0/3, 1e-9) {
		t.Errorf("split %v, want [35.33 7 17.67]", g)
	}
}

func TestMaxPressure(t *testing.T) {
	phases := [][]Movement{
		{{In: 10, Out: 2, SatFlow: 1800}, {In: 4, Out: 0, SatFlow: 1800}}, // (8+4)·0.5 = 6
		{{In: 20, Out: 15, SatFlow: 3600}},                                // 5·1 = 5
		{{In: 3, Out: 9}},                                                 // −6
	}
	best, p := MaxPressure(phases)
	if best != 0 || !near(p[0], 6, 1e-12) || !near(p[1], 5, 1e-12) || !near(p[2], -6, 1e-12) {
		t.Errorf("best %d pressures %v, want 0 [6 5 -6]", best, p)
	}
	g := PressureSplit(p, 50, 5)
	if !near(g[2], 5, 1e-9) || !near(g[0], 45*6/11.0, 1e-9) {
		t.Errorf("pressure split %v", g)
	}
}

// Intersections 0, 400 and 900 m along a corridor at 50 km/h with a 60 s cycle: arrivals 0, 28.8, 64.8 s give
// offsets 0, 28.8, 4.8 s.
func TestGreenWaveOffsets(t *testing.T) {
	v := 50 / 3.6
	off := GreenWaveOffsets([]float64{0, 400 / v, 900 / v}, 60)
	want := []float64{0, 28.8, 4.8}
	for i := range want {
		if !near(off[i], want[i], 1e-9) {
			t.Errorf("offset %d = %.3f, want %.3f", i, off[i], want[i])
		}
	}
	// Preemption: arriving in 30 s behind 4 queued vehicles with 5 s lead: green at 30 − 5 − 8 = 17 s.
	p := PreemptAt(30, 4, 5, 6)
	if p.GreenAtS != 17 || p.HoldUntilS != 36 {
		t.Errorf("preemption %+v, want green at 17, hold to 36", p)
	}
	if p := PreemptAt(3, 4, 5, 6); p.GreenAtS != 0 {
		t.Errorf("imminent arrival: green at %.1f, want 0", p.GreenAtS)
	}
}

func TestQueues(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  float64
		want float64
	}{
		{"occupancy 30% of 150 m × 2 lanes", QueueFromOccupancy(0.3, 150, 2), 12},
		{"occupancy clamps at 1", QueueFromOccupancy(1.7, 75, 1), 10},
		{"red 40 s at 900 veh/h", QueueAtRedEnd(900, 40), 10},
		{"600 veh/h at 20 km/h on 300 m", QueueFromSpeed(600, 20, 300, 1), 9},
		{"standstill is jam density", QueueFromSpeed(600, 0, 300, 2), 80},
		{"X at capacity", DegreeOfSaturation(900, 1800, 30, 60), 1},
	} {
		if !near(tt.got, tt.want, 1e-9) {
			t.Errorf("%s: %.4f, want %.4f", tt.name, tt.got, tt.want)
		}
	}
}
