package eval

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A full closure whose lanes close one by one is full when its last lane closes: its 180-s bar counts from
// then (Metrics.Within180Full), while its match window and its time to detect still count from its first lane
// (Within180 stays the count from the first lane). Truths: a two-lane closure whose lanes SUMO closed at 100 s
// and 400 s, found at 500 s (400 s after its first lane, 100 s after it became full), and one closed at once,
// found 200 s after; a partial closure found 150 s after it began counts from its start in both.
func TestAFullClosureCountsFromWhenItsLastLaneCloses(t *testing.T) {
	bs := []blockage{
		{ID: "blk-1", Class: ClassFull, Edge: "e1", Lanes: []string{"e1_0", "e1_1"}, StartS: 90, DurS: 900, Lat: 44.5, Lng: 11.34},
		{ID: "blk-2", Class: ClassFull, Edge: "e2", Lanes: []string{"e2_0", "e2_1"}, StartS: 1190, DurS: 900, Lat: 44.51, Lng: 11.35},
		{ID: "blk-3", Class: ClassPartial, Edge: "e3", Lanes: []string{"e3_0"}, Open: []string{"e3_1"}, StartS: 2290, DurS: 600, Lat: 44.52, Lng: 11.36},
	}
	stops := map[string][2]float64{
		blockerPrefix + "0_0": {100, 1000}, blockerPrefix + "0_1": {400, 1300},
		blockerPrefix + "1_0": {1200, 2100}, blockerPrefix + "1_1": {1200, 2100},
		blockerPrefix + "2_0": {2300, 2900},
	}
	run := &simRun{EndS: 3600}
	truths := truthsOf(run, bs, stops)
	if len(truths) != 3 {
		t.Fatalf("%d truths, want 3 (notes %v)", len(truths), run.Notes)
	}
	if truths[0].Full == nil || !truths[0].Full.Equal(simTime(400)) || !truths[0].Start.Equal(simTime(100)) {
		t.Fatalf("blk-1 starts at %v, full at %v; want %v (its first lane) and %v (its last)", truths[0].Start, truths[0].Full, simTime(100), simTime(400))
	}
	if truths[2].Full != nil {
		t.Errorf("a partial closure carries a time it became full (%v)", truths[2].Full)
	}
	dets := []Detection{
		{ID: "d1", Lat: 44.5, Lng: 11.34, DetectedAt: simTime(500)},
		{ID: "d2", Lat: 44.51, Lng: 11.35, DetectedAt: simTime(1400)},
		{ID: "d3", Lat: 44.52, Lng: 11.36, DetectedAt: simTime(2450)},
	}
	res, _, m := score(truths, dets, simTime(3600), 1)
	if res[0].TTDS == nil || *res[0].TTDS != 400 || res[0].TTDFullS == nil || *res[0].TTDFullS != 100 {
		t.Errorf("blk-1: time to detect %v s, from full %v s; want 400 and 100", res[0].TTDS, res[0].TTDFullS)
	}
	if m.Within180 != 1 || m.Within180Full != 2 || m.Within300 != 2 {
		t.Errorf("within 180 s from the first lane %d, from full %d, within 300 s %d; want 1 (the partial closure), 2, 2", m.Within180, m.Within180Full, m.Within300)
	}
	// The merged groups (the report's per-city counts) count the same.
	sc := &Scenario{Truths: res}
	if g := merge([]*Scenario{sc}, func(_ *Scenario, t *TruthResult) bool { return t.Class == ClassFull }, func(*Scenario) bool { return false }); g.Within180 != 0 || g.Within180Full != 1 {
		t.Errorf("full closures merged: within 180 s %d from the first lane, %d from full; want 0 and 1", g.Within180, g.Within180Full)
	}
	// The report's target and table show both counts.
	rep := &Report{Scenarios: []*Scenario{{Source: "bologna", Variant: VarTraffic, Truths: res}}}
	rep.summarise()
	var target string
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Name, "full closures") {
			target = tg.Value
		}
	}
	if target != "1/2 (50 %) [first lane 0]" {
		t.Errorf("the full-closure target reads %q, want %q", target, "1/2 (50 %) [first lane 0]")
	}
	if tab := rep.Table(); !strings.Contains(tab, "| bologna | 1/2 (50 %) [first lane 0] |") {
		t.Errorf("the table's bologna row does not show both counts:\n%s", tab)
	}
	// The match window still opens at the first lane − 60 s: a detection 30 s before it matches.
	res, _, _ = score(truths[:1], []Detection{{ID: "early", Lat: 44.5, Lng: 11.34, DetectedAt: simTime(70)}}, simTime(3600), 1)
	if !res[0].Detected || *res[0].TTDFullS != -330 {
		t.Errorf("a detection 30 s before the first lane closed: detected %v, from full %v; want true, -330", res[0].Detected, res[0].TTDFullS)
	}
}

// A run cached before truths carried Truth.Full learns it from its truths' ends: a blocker stops for its
// blockage's DurS, so the last lane's stop end less DurS is its start. A truth that carries Full keeps it.
func TestACachedRunLearnsWhenItsClosuresBecameFull(t *testing.T) {
	bs := []blockage{
		{ID: "blk-1", Class: ClassFull, Lanes: []string{"a_0", "a_1"}, DurS: 900},
		{ID: "blk-2", Class: ClassPartial, Lanes: []string{"b_0"}, DurS: 600},
		{ID: "blk-3", Class: ClassFull, Lanes: []string{"c_0", "c_1"}, DurS: 600},
	}
	kept := simTime(2000)
	run := &simRun{Truths: []Truth{
		{ID: "blk-1", Class: ClassFull, Start: simTime(100), End: simTime(1300)},
		{ID: "blk-2", Class: ClassPartial, Start: simTime(1000), End: simTime(1600)},
		{ID: "blk-3", Class: ClassFull, Start: simTime(1900), End: simTime(2600), Full: &kept},
	}}
	fullFromEnd(run, bs)
	if f := run.Truths[0].Full; f == nil || !f.Equal(simTime(400)) {
		t.Errorf("blk-1 full at %v, want %v (its end less 900 s)", f, simTime(400))
	}
	if run.Truths[1].Full != nil {
		t.Errorf("the partial closure was given a time it became full")
	}
	if f := run.Truths[2].Full; f != &kept {
		t.Errorf("blk-3 full at %v, want the %v it carried", f, kept)
	}
}

// SUMO's stop output keeps when a full closure became full, and a cached run's reading of it (fullFromEnd:
// its end less the stop's duration) gives the same time: on a two-lane link whose second lane is held at
// the blockers' departure by a vehicle standing at the link's start, the second blocker is inserted late and
// closes its lane after the first; every blocker's stop lasts its blockage's DurS.
func TestTheStopOutputKeepsWhenAClosureBecameFull(t *testing.T) {
	for _, name := range []string{"sumo", "netgenerate"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (scripts/install-sumo.sh): the closure is not simulated: %v", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := tool(ctx, dir, "netgenerate", "--grid", "--grid.number", "2", "--grid.length", "500", "--default.lanenumber", "2",
		"--default.speed", "13.89", "--default-junction-type", "traffic_light", "--no-turnarounds", "true", "-o", "fc.net.xml"); err != nil {
		t.Fatal(err)
	}
	// A vehicle standing at the start of lane 1 from 100 s to 250 s keeps the blocker of that lane from
	// being inserted at 120 s.
	holder := `<routes>
    <vehicle id="holder" depart="100" departLane="1" departPos="base"><route edges="A0B0"/><stop lane="A0B0_1" startPos="0" endPos="8" duration="150"/></vehicle>
</routes>
`
	if err := os.WriteFile(filepath.Join(dir, "holder.rou.xml"), []byte(holder), 0o644); err != nil {
		t.Fatal(err)
	}
	bl := blockage{ID: "blk-1", Class: ClassFull, Position: PosMidBlock, Edge: "A0B0", Lanes: []string{"A0B0_0", "A0B0_1"}, PosM: 300, StartS: 120, DurS: 400}
	if err := writeBlockers(filepath.Join(dir, "blockers.rou.xml"), []blockage{bl}); err != nil {
		t.Fatal(err)
	}
	const endS = 900
	if err := tool(ctx, dir, "sumo", "-n", "fc.net.xml", "-r", "holder.rou.xml,blockers.rou.xml",
		"--begin", "0", "--end", "900", "--seed", "1", "--stop-output", "stops.xml", "--stop-output.write-unfinished", "true",
		"--no-step-log", "true", "--no-warnings", "true", "--log", "sumo.log"); err != nil {
		t.Fatal(err)
	}
	stops, err := readStops(filepath.Join(dir, "stops.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lane := range []string{"0", "1"} {
		s, ok := stops[blockerPrefix+"0_"+lane]
		if !ok {
			t.Fatalf("the blocker of lane %s never stopped (stops %v)", lane, stops)
		}
		if s[1]-s[0] != bl.DurS {
			t.Errorf("the blocker of lane %s stopped %v–%v s: %v s, want its blockage's %v s", lane, s[0], s[1], s[1]-s[0], bl.DurS)
		}
	}
	run := &simRun{EndS: endS}
	truths := truthsOf(run, []blockage{bl}, stops)
	if len(truths) != 1 || truths[0].Class != ClassFull || truths[0].Full == nil {
		t.Fatalf("truths %+v (notes %v): want one full closure with the time it became full", truths, run.Notes)
	}
	tr := truths[0]
	if late := tr.Full.Sub(tr.Start); late < 60*time.Second {
		t.Fatalf("the last lane closed %v after the first; the held lane should close at least 60 s later", late)
	}
	t.Logf("lanes closed at %v s and %v s", tr.Start.Sub(simStart).Seconds(), tr.Full.Sub(simStart).Seconds())
	want := *tr.Full
	tr.Full = nil
	cached := &simRun{Truths: []Truth{tr}}
	fullFromEnd(cached, []blockage{bl})
	if f := cached.Truths[0].Full; f == nil || !f.Equal(want) {
		t.Errorf("read from the cached truth, full at %v; the stop output says %v", f, want)
	}
}
