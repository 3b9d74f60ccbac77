package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"citybrain/geo"
)

// A synthetic hour that drifts into gridlock: vehicles in the network double and the speed falls from the
// middle window to the last, one blockage from minute 10 to 20 near one square. The health says so per window.
func TestCorpusHealthMeasuresEachWindowOfARun(t *testing.T) {
	run := &simRun{City: "synth", Seed: 3, EndS: 3600, Notes: []string{"b1 (full_closure on e1): 1 of 2 blockers stopped; scored as a partial closure",
		"sumo: Vehicles: Inserted: 900 (Loaded: 1000) Running: 400 Waiting: 100 Teleports: 7 (Jam: 7) Statistics (avg of 500): Speed: 5.46"}}
	// The block at square (0,0)'s centre; square (10,0) is 1.5 km east of it.
	cos := math.Cos(45 * math.Pi / 180)
	run.Origin.Lat, run.Origin.Lng = 45, 11
	blockAt := [2]float64{45 + 75.0/110_574, 11 + 75.0/(111_320*cos)}
	run.Truths = []Truth{{ID: "b1", Start: simTime(600), End: simTime(1200), Lat: blockAt[0], Lng: blockAt[1]}}
	for w := int32(0); w < 12; w++ {
		veh := 100.0 // vehicles in the network over the window, then growing from window 6
		kmh := 20.0
		if w >= 6 {
			veh *= float64(w - 4)
			kmh = 20 / float64(w-4)
		}
		// Half the vehicle-seconds at the blocked square, half 1.5 km away; the blocked square stands still.
		run.Speed = append(run.Speed,
			SpeedObs{Window: w, Unit: "S:0,0", SumKmh: 0, VehS: veh * 150},
			SpeedObs{Window: w, Unit: "S:10,0", SumKmh: 2 * kmh * veh * 150, VehS: veh * 150},
			// Two links: one standing, one moving; a link without vehicles is not counted; P: units are not
			// the network.
			SpeedObs{Window: w, Unit: "L:a", SumKmh: 4 * 300, VehS: 300},
			SpeedObs{Window: w, Unit: "L:b", SumKmh: 30 * 300, VehS: 300},
			SpeedObs{Window: w, Unit: "L:c"},
			SpeedObs{Window: w, Unit: "P:a", SumKmh: 1e6, VehS: 1e6},
		)
	}
	h := corpusHealth(run)
	if h.Running != 400 || h.Waiting != 100 || h.Loaded != 1000 || h.Inserted != 900 || h.Teleports != 7 || h.FirstBlockS != 600 {
		t.Fatalf("closing statistics and first blockage: %+v", h)
	}
	if len(h.Windows) != 12 {
		t.Fatalf("%d windows, want 12", len(h.Windows))
	}
	for _, c := range []struct {
		w                   int
		veh, kmh, away, shr float64
		blocked, started    int
	}{
		{0, 100, 20, 20, 1, 0, 0},   // before the blockage: every square is away
		{2, 100, 20, 40, 0.5, 1, 1}, // 10–15 min: the blocked square is not
		{4, 100, 20, 40, 0.5, 0, 1}, // 20–25 min: ended, but started: still not away
		{11, 700, 20.0 / 7, 40.0 / 7, 0.5, 0, 1},
	} {
		w := h.Windows[c.w]
		if w.Window != c.w || math.Abs(w.Vehicles-c.veh) > 1e-3 || math.Abs(w.Kmh-c.kmh) > 2e-3 || math.Abs(w.AwayKmh-c.away) > 2e-3 ||
			math.Abs(w.AwayShare-c.shr) > 1e-3 || w.Blocked != c.blocked || w.Started != c.started || w.Links != 2 || w.SlowLinks != 0.5 {
			t.Errorf("window %d: %+v, want %+v", c.w, w, c)
		}
	}
	// Without teleports SUMO leaves their line out: none, not unknown; nor does it print Loaded when every
	// loaded vehicle entered.
	if h := corpusHealth(&simRun{Notes: []string{"sumo: Vehicles: Inserted: 9 Running: 0 Waiting: 0 Statistics"}}); h.Teleports != 0 || h.Inserted != 9 || h.Loaded != 9 {
		t.Errorf("no teleports line: %+v", h)
	}
	tab := healthTable([]HealthRun{h})
	for _, want := range []string{"| synth/seed3 | 5, 25, 55 min | 10.0 min | 100 / 100 / 700 | 20.0 / 20.0 / 2.9 | 50 % / 50 % / 50 % | 20.0 (100 %) / 40.0 (50 %) / 5.7 (50 %) | ×7.00, ×0.14 | 400, 100 of 1000, 7 |"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	// The report carries it in its JSON (no NaN that would break encoding) and its table.
	rep := &Report{Health: []HealthRun{h}}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Table(), "synth/seed3") {
		t.Errorf("the report's table lacks the health table")
	}
}

// A full closure of L1 from 900 to 1500 s (windows 3 and 4): its link stands in both, the link feeding it (L0)
// stands in window 4 only and in neither window before (1, 2), so it spills back; its reverse (R1, ending where
// it begins) does not count as a feeder, although it stands throughout.
func TestSpillbackReadsTheBlockedLinkAndItsFeeders(t *testing.T) {
	const lat, lng = 30.25, 120.15
	mLng := 1 / (111320.0 * math.Cos(lat*math.Pi/180))
	pt := func(x float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng + x*mLng} }
	var nodes []geo.Node
	for i := 0; i <= 3; i++ {
		nodes = append(nodes, geo.Node{ID: fmt.Sprint("N", i), LatLng: pt(300 * float64(i)), Signalised: true})
	}
	link := func(id string, from, to int) geo.Link {
		return geo.Link{ID: id, From: fmt.Sprint("N", from), To: fmt.Sprint("N", to), Lanes: 1, SpeedLimitKmh: 50,
			Geometry: []geo.LatLng{pt(300 * float64(from)), pt(300 * float64(to))}}
	}
	net, err := geo.NewNetwork("spill-test", nodes, []geo.Link{link("L0", 0, 1), link("L1", 1, 2), link("L2", 2, 3), link("R1", 2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	run := &simRun{EndS: 1800, Truths: []Truth{{ID: "blk", Class: ClassFull, Link: "L1",
		Start: simStart.Add(900 * time.Second), End: simStart.Add(1500 * time.Second)}}}
	obs := func(unit string, w int32, kmh float64) {
		run.Speed = append(run.Speed, SpeedObs{Window: w, Unit: "L:" + unit, SumKmh: kmh * 100, VehS: 100})
	}
	for w := int32(0); w < 6; w++ {
		l1, l0 := 30.0, 30.0
		if w == 3 || w == 4 {
			l1 = 2
		}
		if w == 4 {
			l0 = 3
		}
		obs("L1", w, l1)
		obs("L0", w, l0)
		obs("R1", w, 1)
	}
	got, missing := spillbackOf(run, net)
	if len(missing) != 0 || len(got) != 1 {
		t.Fatalf("spillbackOf: %+v, missing %v; want one blockage", got, missing)
	}
	b := got[0]
	if b.LinkDuring != 2 || b.LinkDuringOf != 2 || b.LinkBefore != 0 || b.LinkBeforeOf != 2 {
		t.Errorf("blocked link standing %d of %d during, %d of %d before; want 2 of 2, 0 of 2", b.LinkDuring, b.LinkDuringOf, b.LinkBefore, b.LinkBeforeOf)
	}
	if len(b.Feeders) != 1 || b.Feeders[0] != "L0" {
		t.Errorf("feeders %v; want [L0] (R1 is the reverse)", b.Feeders)
	}
	if b.FeedDuring != 1 || b.FeedDuringOf != 2 || b.FeedBefore != 0 || b.FeedBeforeOf != 2 || !b.spillback() {
		t.Errorf("feeders standing %d of %d during, %d of %d before, spillback %v; want 1 of 2, 0 of 2, true", b.FeedDuring, b.FeedDuringOf, b.FeedBefore, b.FeedBeforeOf, b.spillback())
	}
}
