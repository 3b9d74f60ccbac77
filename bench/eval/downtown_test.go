package eval

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// The downtown is the dense check outside the corpus (docs/incidents.md, "a dense city outside the corpus"):
// known by name only, placed apart from every other generated city, and unlike every corpus city in layout: a
// grid of one-way streets on short, uneven blocks where every junction is a signal.
func TestDowntownIsADenseCityOfOneWayStreetsOutsideTheCorpus(t *testing.T) {
	b := buildOutsideCity(t, "downtown", "netconvert")
	nt, types, n := junctionTypes(t, filepath.Join(b.dir, b.net))
	if n < 60 || types["traffic_light"] != n {
		t.Fatalf("the downtown's %d junctions (not dead ends) by type: %v; want at least 60, every one signalised", n, types)
	}
	ids := map[[2]string]bool{}
	for _, e := range nt.edges {
		ids[[2]string{e.From, e.To}] = true
	}
	var streets, oneWay int
	var lens []float64
	for _, e := range nt.edges {
		if e.carLanes() == 0 || nt.jType[e.From] == "dead_end" || nt.jType[e.To] == "dead_end" {
			continue
		}
		streets++
		if !ids[[2]string{e.To, e.From}] {
			oneWay++
		}
		lens = append(lens, e.length())
	}
	if oneWay < streets*2/3 {
		t.Errorf("the downtown's streets: %d of %d one-way; want at least two thirds", oneWay, streets)
	}
	slices.Sort(lens)
	if med := lens[len(lens)/2]; med > 160 {
		t.Errorf("the downtown's blocks: median street %.0f m; want short blocks (at most 160 m), where a red light's queue reaches back", med)
	}
	if p10, p90 := lens[len(lens)/10], lens[len(lens)*9/10]; p90 < 1.3*p10 {
		t.Errorf("the downtown's blocks are even: streets of %.0f m (10th percentile) to %.0f m (90th); want the 90th at least 1.3 times the 10th", p10, p90)
	}
	t.Logf("downtown: %d junctions %v; %d streets, %d one-way; street lengths 10th/50th/90th %.0f/%.0f/%.0f m", n, types, streets, oneWay, lens[len(lens)/10], lens[len(lens)/2], lens[len(lens)*9/10])
}

// The downtown runs near capacity by the corpus's rule (city.Period): at its period, without blockages, the
// vehicles in it and their mean speed level off over the hour (25–30 → 55–60 min within ×1.1 vehicles and ×0.9
// speed) at a city-centre speed, well under the town's and the suburb's 30–31 km/h; a fifth more demand
// (period × 0.8) no longer levels off. Two 60-min SUMO runs of seed 1 (about a minute each here); skipped with
// -short and without SUMO.
func TestDowntownRunsNearCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("two 60-min SUMO runs of the downtown: not in -short")
	}
	var sumoBin string
	for _, tool := range []string{"sumo", "netconvert", "python3"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed (scripts/install-sumo.sh): the downtown is not run: %v", tool, err)
		}
		if tool == "sumo" {
			sumoBin = p
		}
	}
	if _, err := os.Stat(filepath.Join(sumoHome(), "tools", "randomTrips.py")); err != nil {
		t.Skipf("SUMO's tools are missing (%v; apt-get install sumo-tools): the downtown's demand is not made", err)
	}
	c, ok := cityByName("downtown")
	if !ok {
		t.Fatal("no city downtown outside the corpus")
	}
	ctx := context.Background()
	cfg := &Config{Cache: t.TempDir(), Seeds: []int64{1}, Cities: []string{"downtown"}, NoDemo: true, SUMO: sumoBin}
	cfg.fill()
	cf, err := buildCity(ctx, cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	const seed = 1
	endS := float64(cfg.Minutes) * 60
	health := func(cf *cityFiles) (mid, last HealthWindow, h HealthRun) {
		t.Helper()
		routes, err := cf.demand(ctx, seed, endS)
		if err != nil {
			t.Fatal(err)
		}
		run, err := runSim(ctx, cfg, c, cf, routes, seed, endS, nil)
		if err != nil {
			t.Fatal(err)
		}
		h = corpusHealth(run)
		n := len(h.Windows)
		if n < 3 {
			t.Fatalf("the downtown's run at period %.3g has %d windows; want an hour's", cf.Period, n)
		}
		return h.Windows[(n-1)/2], h.Windows[n-1], h
	}
	mid, last, h := health(cf)
	t.Logf("period %.3g: vehicles %.0f → %.0f, %.1f → %.1f km/h, teleports %d", cf.Period, mid.Vehicles, last.Vehicles, mid.Kmh, last.Kmh, h.Teleports)
	if last.Vehicles > 1.1*mid.Vehicles || last.Kmh < 0.9*mid.Kmh || h.Teleports > 0 {
		t.Errorf("at its period %.3g the downtown does not level off: vehicles %.0f → %.0f, %.1f → %.1f km/h (25–30 → 55–60 min), %d teleports; want within ×1.1 and ×0.9, none",
			cf.Period, mid.Vehicles, last.Vehicles, mid.Kmh, last.Kmh, h.Teleports)
	}
	if mid.Kmh > 25 {
		t.Errorf("at its period %.3g the downtown runs at %.1f km/h (25–30 min); want a dense centre, at most 25 km/h (the town and the suburb run 30–31)", cf.Period, mid.Kmh)
	}
	hmid, hlast, hh := health(cf.heavier(0.8))
	t.Logf("period %.3g: vehicles %.0f → %.0f, %.1f → %.1f km/h, teleports %d", cf.Period*0.8, hmid.Vehicles, hlast.Vehicles, hmid.Kmh, hlast.Kmh, hh.Teleports)
	if hlast.Vehicles <= 1.1*hmid.Vehicles && hlast.Kmh >= 0.9*hmid.Kmh {
		t.Errorf("with a fifth more demand (period %.3g) the downtown still levels off (vehicles %.0f → %.0f, %.1f → %.1f km/h): its period is not near capacity",
			cf.Period*0.8, hmid.Vehicles, hlast.Vehicles, hmid.Kmh, hlast.Kmh)
	}
}
