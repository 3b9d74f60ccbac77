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

// TestClosedLoopShort is the CI form of `make signals-sumo`: 300 simulated seconds of Bologna under fixed
// time, the perfect-information max-pressure bound, the closed loop through a running CityBrain, and fixed time
// with the emergency vehicle's green wave. It checks that each run completes and is read, that the closed loop
// fed CityBrain (nothing rejected) and ran what the plan API recommends, and that the controllers acted.
func TestClosedLoopShort(t *testing.T) {
	if _, err := exec.LookPath("sumo"); err != nil {
		t.Skip("skipping: sumo is not installed (apt-get install sumo sumo-tools); the closed-loop experiment needs it")
	}
	if _, err := os.Stat(filepath.Join(dataDir(), "sumo", "bologna-acosta", "run.sumocfg")); err != nil {
		t.Skipf("skipping: Bologna scenario missing (%v); set CITYBRAIN_DATA", err)
	}
	sc, err := Builtin("bologna", dataDir(), t.TempDir(), 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.TLs) < 5 || len(sc.EV) < 3 {
		t.Fatalf("Bologna: %d signals, emergency route %v", len(sc.TLs), sc.EV)
	}
	sc.EVDepS = 60
	var rs []Result
	for _, m := range []string{Fixed, PressureTraCI, CityBrain, Fixed + PreemptSuffix} {
		o := Defaults()
		r, err := Run(context.Background(), sc, m, o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Trips < 100 || !(r.MeanTravelS > 0) || !(r.MeanTimeLossS > 0) || r.Arrived < 100 {
			t.Errorf("%s: %d trips, %d arrived, travel %.1f, time loss %.1f", m, r.Trips, r.Arrived, r.MeanTravelS, r.MeanTimeLossS)
		}
		switch m {
		case PressureTraCI:
			if r.Switches == 0 || r.Signals < 5 {
				t.Errorf("max-pressure drove %d signals, %d switches", r.Signals, r.Switches)
			}
		case CityBrain:
			f := r.Feed
			if f == nil || f.Detectors == 0 || f.Probes == 0 || f.Decisions == 0 || f.Rejected > 0 {
				t.Fatalf("closed loop feed %+v", f)
			}
			if f.PlanChecks == 0 || f.PlanMismatches > 0 {
				t.Errorf("plan API: %d checks, %d differ from what the loop ran", f.PlanChecks, f.PlanMismatches)
			}
			if r.Switches == 0 {
				t.Error("the closed loop never switched a signal")
			}
		case Fixed + PreemptSuffix:
			if r.Preemptions == 0 {
				t.Errorf("no signal preempted for the emergency vehicle")
			}
		}
		rs = append(rs, r)
	}
	t.Logf("\n%s", Table(Summarize(rs)))
}

func TestProgramsFile(t *testing.T) {
	sc := &Scenario{TLs: map[string]*TL{"a": {ID: "a", Phases: []Phase{{Dur: 30, State: "GGrr"}, {Dur: 3, State: "yyrr"},
		{Dur: 20, State: "rrGG", MinDur: 8, MaxDur: 50}}}}}
	p := filepath.Join(t.TempDir(), "act.xml")
	if err := sc.writePrograms(p, "delay_based", nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{`type="delay_based"`, `duration="30" minDur="30" maxDur="30"`, `duration="3" minDur="3" maxDur="3"`, `minDur="8" maxDur="50"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("programs file lacks %s:\n%s", want, b)
		}
	}
	if err := sc.writePrograms(p, "actuated", map[string]bool{"a": true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); strings.Contains(string(b), "tlLogic") {
		t.Errorf("a skipped signal was written:\n%s", b)
	}
}

// TestPreemptRepeats runs the ambulance's closed loop (CityBrain's controller, its dispatch and green wave)
// twice on the same seed: the loop steps the engine and the dispatcher at each simulated step
// (system.Config.EventClock, System.Step), so every signal decision, every hold of the wave and every route the
// dispatch gives must come out the same, and so must the vehicles' times. Before, the dispatcher and the
// engine ticked on the wall clock and the same seed gave 446 s and 319 s (Hangzhou ×5).
func TestPreemptRepeats(t *testing.T) {
	if _, err := exec.LookPath("sumo"); err != nil {
		t.Skip("skipping: sumo is not installed (apt-get install sumo sumo-tools); the closed-loop experiment needs it")
	}
	if _, err := os.Stat(filepath.Join(dataDir(), "sumo", "bologna-acosta", "run.sumocfg")); err != nil {
		t.Skipf("skipping: Bologna scenario missing (%v); set CITYBRAIN_DATA", err)
	}
	var rs []Result
	for i := 0; i < 2; i++ {
		sc, err := Builtin("bologna", dataDir(), t.TempDir(), 300)
		if err != nil {
			t.Fatal(err)
		}
		sc.EVDepS = 60
		r, err := Run(context.Background(), sc, CityBrain+PreemptSuffix, Defaults())
		if err != nil {
			t.Fatal(err)
		}
		if r.Feed == nil || r.Feed.Decisions == 0 || r.Feed.Rejected > 0 {
			t.Fatalf("run %d: closed loop feed %+v", i+1, r.Feed)
		}
		if r.Preemptions == 0 {
			t.Fatalf("run %d: the dispatch's green wave held no signal (EV travel %.0f s)", i+1, r.EVTravelS)
		}
		t.Logf("run %d: digest %s, %d decisions, %d preemptions, EV travel %.0f s, time loss %.2f s", i+1, r.Feed.Digest,
			r.Feed.Decisions, r.Preemptions, r.EVTravelS, r.MeanTimeLossS)
		rs = append(rs, r)
	}
	a, b := rs[0], rs[1]
	if a.Feed.Digest != b.Feed.Digest || a.Feed.Decisions != b.Feed.Decisions {
		t.Errorf("the same seed gave different decisions: digest %s (%d) then %s (%d)", a.Feed.Digest, a.Feed.Decisions, b.Feed.Digest, b.Feed.Decisions)
	}
	if a.EVTravelS != b.EVTravelS || a.MeanTimeLossS != b.MeanTimeLossS || a.Preemptions != b.Preemptions || a.Arrived != b.Arrived {
		t.Errorf("the same seed gave different runs: EV %.0f / %.0f s, time loss %.3f / %.3f s, preemptions %d / %d, arrived %d / %d",
			a.EVTravelS, b.EVTravelS, a.MeanTimeLossS, b.MeanTimeLossS, a.Preemptions, b.Preemptions, a.Arrived, b.Arrived)
	}
}
