package sumo

import (
	"errors"
	"math"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/ingest"
)

func TestReadDetectors(t *testing.T) {
	defs, err := ReadDetectors(strings.NewReader(detectorsSnippet))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 4 {
		t.Fatalf("got %d detectors, want 4 (two are commented out)", len(defs))
	}
	want := Detector{ID: "0.127_2.73_4_1__l0", Lane: "15_0", Pos: 77.542050042, Freq: 1800, File: "e1_output.xml"}
	if defs[2] != want {
		t.Errorf("defs[2] = %+v, want %+v", defs[2], want)
	}
	if defs[3].Pos != -31.3626881232 {
		t.Errorf("negative pos = %v", defs[3].Pos)
	}
	for _, bad := range []struct{ in, want string }{
		{`<add><e1Detector id="a" pos="1"/></add>`, "attribute lane"},
		{`<add><e1Detector id="a" lane="x_0" pos="p"/></add>`, `pos="p"`},
		{`<add><e1Detector id="a" lane="x_0" pos="1"/>` + "\n" + `<inductionLoop id="a" lane="x_0" pos="2"/></add>`, `line 2, <inductionLoop id="a">): duplicate`},
		{`<add><e1Detector id="a" lane="x_0" pos="1"></add>`, "line 1"},
	} {
		if _, err := ReadDetectors(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ReadDetectors(%s) error %v, want it to contain %q", bad.in, err, bad.want)
		}
	}
}

func TestPlaceDetectors(t *testing.T) {
	defs, err := ReadDetectors(strings.NewReader(detectorsSnippet))
	if err != nil {
		t.Fatal(err)
	}
	net := fakeNet{"104_0": {44.5, 11.3}, "104_1": {44.5, 11.3001}, "15_0": {44.49, 11.32}}
	if _, err := PlaceDetectors(defs, net); err == nil || !strings.Contains(err.Error(), `lane "86_0"`) {
		t.Errorf("placing on a net without lane 86_0: err = %v", err)
	}
	net["86_0"] = [2]float64{44.495, 11.33}
	sites, err := PlaceDetectors(defs, net)
	if err != nil {
		t.Fatal(err)
	}
	if s := sites["0.127_2.73_6_1__l1"]; s.Lane != "104_1" || s.Lng != 11.3001 || math.Abs(s.Lat-(44.5+23e-5)) > 1e-12 {
		t.Errorf("site = %+v", s)
	}
}

func TestReadE1Snippet(t *testing.T) {
	sites := map[string]Site{
		"0.127_2.73_6_1__l0": {Lane: "104_0", Lat: 44.5, Lng: 11.3},
		"0.127_2.73_4_1__l0": {Lane: "15_0", Lat: 44.49, Lng: 11.32},
	}
	var st E1Stats
	var skips []string
	evs := collect(t, func(emit func(engine.Event) error) error {
		var err error
		st, err = ReadE1(strings.NewReader(e1Snippet), E1Options{Start: testStart, Sites: sites,
			OnSkip: func(where, reason, detail string) { skips = append(skips, where+": "+reason+" ("+detail+")") }}, emit)
		return err
	})
	if len(skips) != 1 || skips[0] != "e1 output line 8: detector not in the definitions (detector 0.127_2.73_6_1__l1)" {
		t.Errorf("skips = %q", skips)
	}
	if st.Intervals != 3 || st.Detectors != 2 || st.Unplaced != 1 || len(evs) != 2 {
		t.Fatalf("stats %+v, %d events; want 3 intervals, 2 events, 1 unplaced", st, len(evs))
	}
	for i := range evs {
		if err := ingest.Validate(&evs[i]); err != nil {
			t.Errorf("event %d invalid: %v", i, err)
		}
	}
	e := evs[0]
	if e.Kind != engine.KindDetector || e.ID != "0.127_2.73_6_1__l0" || e.Lane != "104_0" || e.Lat != 44.5 || e.Lng != 11.3 {
		t.Errorf("event = %+v", e)
	}
	if e.FlowVph != 60 || e.Occupancy != 0.0087 || e.SpeedKmh != 34.56 || e.IntervalS != 60 {
		t.Errorf("flow %v occ %v speed %v interval %v; want 60, 0.0087, 34.56, 60", e.FlowVph, e.Occupancy, e.SpeedKmh, e.IntervalS)
	}
	if want := testStart.UnixMilli() + 60000; e.TS != want {
		t.Errorf("ts = %d, want interval end %d", e.TS, want)
	}
	empty := evs[1]
	if empty.FlowVph != 0 || engine.Has(empty.SpeedKmh) || empty.Occupancy != 0 {
		t.Errorf("empty interval: flow %v speed %v occ %v; want 0, absent, 0", empty.FlowVph, empty.SpeedKmh, empty.Occupancy)
	}
	// StampAtBegin and IDPrefix.
	evs = collect(t, func(emit func(engine.Event) error) error {
		_, err := ReadE1(strings.NewReader(e1Snippet), E1Options{Start: testStart, Sites: sites, StampAtBegin: true, IDPrefix: "bo/", Source: "loops"}, emit)
		return err
	})
	if evs[0].TS != testStart.UnixMilli() || evs[0].ID != "bo/0.127_2.73_6_1__l0" || evs[0].Source != "loops" {
		t.Errorf("StampAtBegin event = %+v", evs[0])
	}
}

func TestReadE1Errors(t *testing.T) {
	sites := map[string]Site{"0.127_2.73_6_1__l0": {Lane: "104_0", Lat: 44.5, Lng: 11.3}}
	good := func(engine.Event) error { return nil }
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "  ", []string{"no <detector>"}},
		{"fcd instead", fcdSnippet, []string{"line 11", "<fcd-export>", "not SUMO e1"}},
		{"bad flow", strings.Replace(e1Snippet, `flow="60.00"`, `flow="1e999"`, 1), []string{"line 7", `<interval id="0.127_2.73_6_1__l0">`, "flow"}},
		{"no end", strings.Replace(e1Snippet, `end="60.00" id="0.127_2.73_6_1__l0"`, `id="0.127_2.73_6_1__l0"`, 1), []string{"line 7", "attribute end"}},
		{"occupancy over 100", strings.Replace(e1Snippet, `occupancy="0.87"`, `occupancy="187"`, 1), []string{"line 7", "percentage"}},
		{"speed -1 with flow", strings.Replace(e1Snippet, `speed="9.60"`, `speed="-1.00"`, 1), []string{"line 7", "no vehicle"}},
		{"speed -3", strings.Replace(e1Snippet, `speed="9.60"`, `speed="-3"`, 1), []string{"line 7", "negative speed"}},
		{"garbage", "<detector><interval id=\"x\" begin=\"0\"\n<", []string{"line 2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadE1(strings.NewReader(c.in), E1Options{Start: testStart, Sites: sites}, good)
			if err == nil {
				t.Fatal("no error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParseError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := ReadE1(strings.NewReader(e1Snippet), E1Options{Sites: sites}, good); err == nil || !strings.Contains(err.Error(), "Start") {
		t.Errorf("zero Start: err = %v", err)
	}
	zero := strings.Replace(e1Snippet, `begin="0.00" end="60.00" id="0.127_2.73_6_1__l0"`, `begin="60.00" end="60.00" id="0.127_2.73_6_1__l0"`, 1)
	st, err := ReadE1(strings.NewReader(zero), E1Options{Start: testStart, Sites: sites}, good)
	if err != nil || st.ZeroLength != 1 || st.Detectors != 0 {
		t.Errorf("zero-length interval: stats %+v err %v; want it skipped and counted", st, err)
	}
	noFlow := strings.Replace(e1Snippet, ` flow="300.00"`, ``, 1)
	noFlow = strings.Replace(noFlow, ` flow="60.00"`, ``, 1)
	evs := collect(t, func(emit func(engine.Event) error) error {
		_, err := ReadE1(strings.NewReader(noFlow), E1Options{Start: testStart, Sites: sites}, emit)
		return err
	})
	if len(evs) != 1 || evs[0].FlowVph != 60 {
		t.Errorf("flow from nVehContrib: %+v, want 1 veh in 60 s = 60 veh/h", evs)
	}
}
