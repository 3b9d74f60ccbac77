package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// A partial closure squeezes traffic at its point, not along its whole link (corpus c6, writeBlockers' pacers):
// on a 2-lane link of about 500 m with one lane blocked at 300 m, the open lane's traffic passes the point at
// the closure's squeeze speed, runs at twice that or more 100–250 m before the point and recovers to twice that
// or more 15–60 m past it. c5's sign held the open lane at the squeeze speed over the whole link: with main's
// writeBlockers this test measured the open lane 15–60 m past the point at 14.3 km/h (the 100–250 m before it
// passes there too: 42.5 km/h over 20 vehicle-s, traffic keeps to the blocked lane until the blocker, away from
// the signed one). The pacers are no traffic: the loops count every vehicle type but theirs (loopTypes), and no
// probe, bus or video event of the run fed to the engine comes from one.
func TestAPartialClosureSqueezesTrafficAtItsPointOnly(t *testing.T) {
	for _, name := range []string{"sumo", "netgenerate"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (scripts/install-sumo.sh): the squeeze is not simulated: %v", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := tool(ctx, dir, "netgenerate", "--grid", "--grid.number", "2", "--grid.length", "500", "--default.lanenumber", "2",
		"--default.speed", "13.89", "--default-junction-type", "traffic_light", "--no-turnarounds", "true", "-o", "sq.net.xml"); err != nil {
		t.Fatal(err)
	}
	if err := placeNet(filepath.Join(dir, "sq.net.xml"), 500000, 5040000); err != nil {
		t.Fatal(err)
	}
	const edge, open, blocked, loopPos = "A0B0", "A0B0_1", "A0B0_0", 280.0
	demand := `<routes>
    <flow id="car" begin="0" end="900" vehsPerHour="600" departLane="random" departSpeed="max"><route edges="A0B0"/></flow>
</routes>
`
	// The harness's loop on the open lane (runSim gives it loopTypes), and in the direct run below two more at
	// the same place: one counting every vehicle, one the pacers alone.
	loops := fmt.Sprintf(`<additional>
    <e1Detector id="loop_open" lane=%q pos="%.1f" freq="60" file="e1.xml"/>
</additional>
`, open, loopPos)
	check := fmt.Sprintf(`<additional>
    <e1Detector id="check_all" lane=%q pos="%.1f" freq="60" file="e1.xml"/>
    <e1Detector id="check_pacers" vTypes=%q lane=%q pos="%.1f" freq="60" file="e1.xml"/>
</additional>
`, open, loopPos, pacerType, open, loopPos)
	if err := os.WriteFile(filepath.Join(dir, "demand.rou.xml"), []byte(demand), 0o644); err != nil {
		t.Fatal(err)
	}
	types, err := loopTypes([]string{filepath.Join(dir, "demand.rou.xml")})
	if err != nil {
		t.Fatal(err)
	}
	for f, s := range map[string]string{"loops.add.xml": loops, "check.add.xml": check, "direct.add.xml": string(withVTypes([]byte(loops), types))} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bl := blockage{ID: "blk-1", Class: ClassPartial, Position: "mid_block", Edge: edge, Lanes: []string{blocked}, Open: []string{open},
		PosM: 300, StartS: 120, DurS: 600, SqueezeKmh: 15}
	const endS = 900

	// SUMO on the blockers' files directly, FCD of every vehicle.
	if err := writeBlockers(filepath.Join(dir, "blockers.rou.xml"), []blockage{bl}); err != nil {
		t.Fatal(err)
	}
	if err := tool(ctx, dir, "sumo", "-n", "sq.net.xml", "-r", "demand.rou.xml,blockers.rou.xml", "-a", "direct.add.xml,check.add.xml",
		"--begin", "0", "--end", fmt.Sprint(endS), "--seed", "1", "--fcd-output", "fcd.xml", "--fcd-output.attributes", "x,y,speed,pos,lane",
		"--no-step-log", "true", "--no-warnings", "true", "--log", "sumo.log"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "fcd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type mean struct{ sum, n float64 }
	var atPoint, before, after mean
	_, err = readFCDFast(f, func(p *fcdPoint) {
		if p.lane != open || strings.HasPrefix(p.id, pacerPrefix) || strings.HasPrefix(p.id, blockerPrefix) || p.t < bl.StartS+60 || p.t >= bl.StartS+bl.DurS {
			return
		}
		switch {
		case math.Abs(p.pos-bl.PosM) <= 10:
			atPoint.sum += p.kmh
			atPoint.n++
		case p.pos >= bl.PosM-250 && p.pos <= bl.PosM-100:
			before.sum += p.kmh
			before.n++
		case p.pos >= bl.PosM+15 && p.pos <= bl.PosM+60:
			after.sum += p.kmh
			after.n++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if atPoint.n < 10 || before.n < 10 || after.n < 10 {
		t.Fatalf("open-lane traffic seen %v vehicle-seconds at the point, %v 100–250 m before it, %v 15–60 m past it: want 10 or more each",
			atPoint.n, before.n, after.n)
	}
	at, up, down := atPoint.sum/atPoint.n, before.sum/before.n, after.sum/after.n
	// The loops of the direct run: the harness's counts every vehicle but the pacers.
	e1, err := os.ReadFile(filepath.Join(dir, "e1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range regexp.MustCompile(`id="([^"]+)" nVehContrib="([0-9]+)"`).FindAllSubmatch(e1, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		count[string(m[1])] += n
	}
	t.Logf("open lane during the closure: %.1f km/h at the point (±10 m, %v vehicle-s), %.1f km/h 100–250 m before it (%v), %.1f km/h 15–60 m past it (%v); loops %v",
		at, atPoint.n, up, before.n, down, after.n, count)
	if at < squeezeMinKmh-2 || at > squeezeMaxKmh+2 {
		t.Errorf("open lane at the point: %.1f km/h; want the squeeze (%g–%g km/h, this one %g)", at, squeezeMinKmh, squeezeMaxKmh, bl.SqueezeKmh)
	}
	if up < 2*bl.SqueezeKmh {
		t.Errorf("open lane 100–250 m before the point: %.1f km/h; want %g or more (twice the squeeze: not a whole-link crawl)", up, 2*bl.SqueezeKmh)
	}
	if down < 2*bl.SqueezeKmh {
		t.Errorf("open lane 15–60 m past the point: %.1f km/h; want %g or more (twice the squeeze: traffic recovers past the point)", down, 2*bl.SqueezeKmh)
	}
	if count["check_pacers"] < 10 || count["loop_open"] == 0 || count["loop_open"]+count["check_pacers"] != count["check_all"] {
		t.Errorf("the open lane's loop counted %d, at the same place pacers %d of %d vehicles: want 10 or more pacers, the loop all but them",
			count["loop_open"], count["check_pacers"], count["check_all"])
	}

	// The same city through runSim: nothing fed to the engine comes from a pacer.
	net, err := geo.LoadSUMONetFile(filepath.Join(dir, "sq.net.xml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{TempDir: t.TempDir()}
	cfg.fill()
	if cfg.SUMO == "" {
		cfg.SUMO, _ = exec.LookPath("sumo")
	}
	cf := &cityFiles{Dir: dir, Net: "sq.net.xml", Detectors: "loops.add.xml", net: net}
	run, err := runSim(ctx, cfg, &city{Name: "squeeze-test"}, cf, []string{"demand.rou.xml"}, 1, endS, []blockage{bl})
	if err != nil {
		t.Fatal(err)
	}
	for kind, evs := range map[string][]engine.Event{"probe": run.Probes, "bus": run.Transit, "video": run.Video} {
		for _, e := range evs {
			if strings.HasPrefix(e.ID, pacerPrefix) {
				t.Errorf("a %s event of pacer %s", kind, e.ID)
				break
			}
		}
	}
	counted := 0.0
	for _, e := range run.Loops {
		if e.Lane == open {
			counted += e.FlowVph * e.IntervalS / 3600
		}
	}
	// runSim's run adds the rerouting device (not the same run to the vehicle): a tolerance well under the
	// pacers' count.
	if d := math.Abs(counted - float64(count["loop_open"])); d > math.Max(3, float64(count["check_pacers"])/3) {
		t.Errorf("runSim's loop on the open lane counted %.0f vehicles; the direct run's %d, pacers %d there: want the direct run's count",
			counted, count["loop_open"], count["check_pacers"])
	}
	if len(run.Truths) != 1 || run.Truths[0].Class != ClassPartial {
		t.Errorf("truths %+v: want the partial closure", run.Truths)
	}
}

// The loops' definitions get the types they count, whichever of SUMO's two names an e1 has; one that names its
// own types keeps them.
func TestLoopsCountEveryTypeButThePacers(t *testing.T) {
	dir := t.TempDir()
	rou := filepath.Join(dir, "r.rou.xml")
	if err := os.WriteFile(rou, []byte(`<routes><vType id="car" vClass="passenger"/><vTypeDistribution id="mix"><vType id="van" probability="1"/></vTypeDistribution>`+
		`<vType id="`+pacerType+`"/></routes>`), 0o644); err != nil {
		t.Fatal(err)
	}
	types, err := loopTypes([]string{rou})
	if err != nil {
		t.Fatal(err)
	}
	want := "DEFAULT_BIKETYPE DEFAULT_CONTAINERTYPE DEFAULT_PEDTYPE DEFAULT_RAILTYPE DEFAULT_TAXITYPE DEFAULT_VEHTYPE car " + blockerType + " van"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("loop types %q; want %q", got, want)
	}
	in := `<additional>
    <e1Detector id="a" lane="x_0" pos="5" freq="60" file="e1.xml"/>
    <inductionLoop id="b" lane="x_1" pos="5" freq="60" file="e1.xml"/>
    <e1Detector id="c" vTypes="bus" lane="x_1" pos="5" freq="60" file="e1.xml"/>
</additional>`
	out := string(withVTypes([]byte(in), []string{"car", "van"}))
	wantOut := strings.Replace(strings.Replace(in, `<e1Detector id="a"`, `<e1Detector vTypes="car van" id="a"`, 1), `<inductionLoop id="b"`, `<inductionLoop vTypes="car van" id="b"`, 1)
	if out != wantOut {
		t.Errorf("withVTypes:\n%s\nwant\n%s", out, wantOut)
	}
}
