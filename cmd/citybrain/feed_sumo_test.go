package main

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/ingest"
)

const sumoFCDTest = `<fcd-export>
    <timestep time="0.00">
        <vehicle id="Audinot_7_0" x="11.327482" y="44.490448" angle="353.90" type="passenger4" speed="0.00" pos="0.00" lane="131_0" slope="0.00"/>
        <vehicle id="bus_130_0" x="11.318648" y="44.501820" angle="112.51" type="bus" speed="0.00" pos="0.00" lane="121_0" slope="0.00"/>
    </timestep>
    <timestep time="1.00">
        <vehicle id="Audinot_7_0" x="11.327480" y="44.490465" angle="353.90" type="passenger4" speed="1.83" pos="1.83" lane="131_0" slope="0.00"/>
        <vehicle id="bus_130_0" x="11.318667" y="44.501814" angle="112.51" type="bus" speed="1.63" pos="1.63" lane="121_0" slope="0.00"/>
    </timestep>
</fcd-export>
`

const sumoE1Test = `<detector>
    <interval begin="0.00" end="60.00" id="0.127_2.73_6_1__l1" nVehContrib="5" flow="300.00" occupancy="22.61" speed="11.26" harmonicMeanSpeed="9.75" length="5.00" nVehEntered="6"/>
    <interval begin="0.00" end="60.00" id="0.127_2.73_4_1__l0" nVehContrib="0" flow="0.00" occupancy="0.00" speed="-1.00" harmonicMeanSpeed="-1.00" length="-1.00" nVehEntered="0"/>
    <interval begin="0.00" end="60.00" id="not-a-detector" nVehContrib="0" flow="0.00" occupancy="0.00" speed="-1.00"/>
</detector>
`

// decodeNDJSON decodes feed output and fails on any rejected line.
func decodeNDJSON(t *testing.T, out string) []engine.Event {
	t.Helper()
	var evs []engine.Event
	if err := ingest.DecodeBatch([]byte(out), func(e engine.Event) { evs = append(evs, e) },
		func(le ingest.LineError) { t.Errorf("feed wrote a line the ingest rejects: %v", le) }); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestFeedSUMOFCD(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fcd.xml.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(sumoFCDTest))
	zw.Close()
	f.Close()
	out := captureStdout(t, func() error {
		return feedMain([]string{"sumo-fcd", path, "--start", "2026-11-27T08:00:00+01:00", "--id-prefix", "bo-", "--probe-types", "bus"})
	})
	evs := decodeNDJSON(t, out)
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4:\n%s", len(evs), out)
	}
	last := evs[3]
	if last.Kind != engine.KindProbe || last.ID != "bo-bus_130_0" || last.TS != 1795762801000 {
		t.Errorf("last event %+v: want probe bo-bus_130_0 (bus forced to probe) at 2026-11-27T07:00:01Z", last)
	}
	out = captureStdout(t, func() error {
		return feedMain([]string{"sumo-fcd", path, "--start", "2026-11-27T08:00:00+01:00", "--interval", "10s"})
	})
	evs = decodeNDJSON(t, out)
	if len(evs) != 2 || evs[1].Kind != engine.KindTransit || evs[1].Route != "bus_130" {
		t.Errorf("with a 10 s interval: %d events (want 2, one per vehicle), second %+v (want transit bus_130)", len(evs), evs[1])
	}
	if err := feedMain([]string{"sumo-fcd", path, "--start", "yesterday"}); err == nil || !strings.Contains(err.Error(), "--start") {
		t.Errorf("bad --start: err = %v", err)
	}
}

func TestFeedSUMOE1(t *testing.T) {
	scen := dataPath(t, "sumo/bologna-acosta")
	e1 := filepath.Join(t.TempDir(), "e1.xml")
	if err := os.WriteFile(e1, []byte(sumoE1Test), 0o644); err != nil {
		t.Fatal(err)
	}
	out := captureStdout(t, func() error {
		return feedMain([]string{"sumo-e1", e1, "--start", "2026-11-27T08:00:00+01:00",
			"--detectors", filepath.Join(scen, "acosta_detectors.add.xml"), "--net", filepath.Join(scen, "acosta_buslanes.net.xml")})
	})
	evs := decodeNDJSON(t, out)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (the unknown detector skipped):\n%s", len(evs), out)
	}
	d := evs[0]
	if d.Kind != engine.KindDetector || d.Lane != "104_1" || d.FlowVph != 300 || d.IntervalS != 60 ||
		d.Lat < 44.48 || d.Lat > 44.51 || d.Lng < 11.30 || d.Lng > 11.37 || d.TS != 1795762860000 {
		t.Errorf("detector event %+v: want lane 104_1, 300 veh/h, 60 s, in Bologna, at the interval end", d)
	}
	if err := feedMain([]string{"sumo-e1", e1}); err == nil || !strings.Contains(err.Error(), "--detectors") {
		t.Errorf("missing --detectors: err = %v", err)
	}
}
