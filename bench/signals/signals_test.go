package signals

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func dataDir() string {
	if d := os.Getenv("CITYBRAIN_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "data")
}

// TestClosedLoopShort is the CI form of the SUMO experiment: 300 simulated seconds of Bologna under fixed
// time, max-pressure and fixed time with emergency preemption. It checks the runs complete, SUMO's tripinfo is
// read, the controllers acted, and the emergency vehicle is given green.
func TestClosedLoopShort(t *testing.T) {
	if _, err := exec.LookPath("sumo"); err != nil {
		t.Skip("skipping: sumo is not installed (scripts/install-sumo.sh); the closed-loop experiment needs it")
	}
	if _, err := os.Stat(filepath.Join(dataDir(), "sumo", "bologna-acosta", "acosta_buslanes.net.xml")); err != nil {
		t.Skipf("skipping: Bologna scenario missing (%v); set CITYBRAIN_DATA", err)
	}
	sc, err := Builtin("bologna", dataDir(), t.TempDir(), 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.TLs) < 5 || len(sc.EV) < 3 {
		t.Fatalf("Bologna: %d signals, emergency route %v", len(sc.TLs), sc.EV)
	}
	var rs []Result
	for _, m := range []string{Fixed, MaxPressure, Webster, Preempt} {
		o := Options{ReplanS: 100}
		r, err := Run(context.Background(), sc, m, o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Vehicles < 100 || !(r.MeanTravelS > 0) || !(r.MeanDelayS > 0) {
			t.Errorf("%s: %d trips, travel %.1f, delay %.1f", m, r.Vehicles, r.MeanTravelS, r.MeanDelayS)
		}
		switch m {
		case MaxPressure:
			if r.Switches == 0 {
				t.Errorf("max-pressure never switched a phase")
			}
		case Webster:
			if r.Replans < 2 {
				t.Errorf("Webster re-planned %d times in 300 s at a 100 s period", r.Replans)
			}
		case Preempt:
			if r.Preemptions == 0 {
				t.Errorf("no signal preempted for the emergency vehicle")
			}
		}
		rs = append(rs, r)
	}
	t.Logf("\n%s", Table(rs))
}

func TestActuatedProgramsFile(t *testing.T) {
	sc := &Scenario{TLs: map[string]*TL{"a": {ID: "a", Phases: []Phase{{Dur: 30, State: "GGrr"}, {Dur: 3, State: "yyrr"},
		{Dur: 20, State: "rrGG", MinDur: 8, MaxDur: 50}}}}}
	p := filepath.Join(t.TempDir(), "act.xml")
	if err := sc.writeActuated(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{`type="actuated"`, `duration="30" minDur="15" maxDur="60"`, `duration="3" minDur="3" maxDur="3"`, `minDur="8" maxDur="50"`} {
		if !contains(string(b), want) {
			t.Errorf("actuated file lacks %s:\n%s", want, b)
		}
	}
	if !(Phase{Dur: 30, State: "GGrr"}).Main() || (Phase{Dur: 3, State: "yyrr"}).Main() || (Phase{Dur: 2, State: "GGrr"}).Main() {
		t.Error("Main() misclassifies phases")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
