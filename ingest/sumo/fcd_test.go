package sumo

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
)

var testStart = time.Date(2026, 11, 27, 8, 0, 0, 0, time.FixedZone("CET", 3600))

func collect(t *testing.T, f func(emit func(engine.Event) error) error) []engine.Event {
	t.Helper()
	var out []engine.Event
	if err := f(func(e engine.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadFCDSnippet(t *testing.T) {
	type truth struct {
		lane string
		pos  float64
	}
	var truths []truth
	var st FCDStats
	evs := collect(t, func(emit func(engine.Event) error) error {
		var err error
		st, err = ReadFCD(strings.NewReader(fcdSnippet), FCDOptions{Start: testStart, UTMZone: -1,
			Truth: func(e *engine.Event, lane string, pos float64) { truths = append(truths, truth{lane, pos}) }}, emit)
		return err
	})
	if st.Timesteps != 2 || st.Points != 6 || st.Probes != 4 || st.Transit != 2 || st.LastTime != 1 {
		t.Fatalf("stats = %+v, want 2 timesteps, 6 points, 4 probes, 2 transit, last time 1", st)
	}
	if len(evs) != 6 || len(truths) != 6 {
		t.Fatalf("got %d events, %d truths, want 6 each", len(evs), len(truths))
	}
	for i := range evs {
		if err := ingest.Validate(&evs[i]); err != nil {
			t.Errorf("event %d invalid: %v", i, err)
		}
	}
	a := evs[3] // Audinot_7_0 at t=1
	if a.Kind != engine.KindProbe || a.ID != "Audinot_7_0" || a.Lat != 44.490465 || a.Lng != 11.327480 {
		t.Errorf("probe = %+v", a)
	}
	if a.SpeedKmh != 6.588 || a.HeadingDeg != 353.90 || a.Source != "sumo" {
		t.Errorf("probe speed %v heading %v source %q, want %v, 353.9, sumo", a.SpeedKmh, a.HeadingDeg, a.Source, 1.83*3.6)
	}
	if want := testStart.Add(time.Second).UnixMilli(); a.TS != want {
		t.Errorf("ts = %d, want %d", a.TS, want)
	}
	if truths[3] != (truth{"131_0", 1.83}) || truths[1] != (truth{"78[0]_0", 0}) {
		t.Errorf("truths = %+v", truths)
	}
	b := evs[5]
	if b.Kind != engine.KindTransit || b.Route != "bus_130" || b.Mode != "bus" || b.SpeedKmh != 5.868 {
		t.Errorf("bus = %+v, want transit route bus_130 mode bus speed %v", b, 1.63*3.6)
	}
}

func TestReadFCDOptions(t *testing.T) {
	lines := map[string]string{"bus_130": "130"}
	evs := collect(t, func(emit func(engine.Event) error) error {
		_, err := ReadFCD(strings.NewReader(fcdSnippet), FCDOptions{Start: testStart, Source: "sim-bo", IDPrefix: "bo/",
			Lines: lines, TransitTypes: map[string]string{"passenger1": "tram", "bus": ""}}, emit)
		return err
	})
	var routes, kinds []string
	for _, e := range evs {
		if e.Source != "sim-bo" || !strings.HasPrefix(e.ID, "bo/") {
			t.Errorf("event %s source %q: want prefix bo/ and source sim-bo", e.ID, e.Source)
		}
		kinds = append(kinds, e.Kind.String())
		routes = append(routes, e.Route+"/"+e.Mode)
	}
	// Costa (passenger1) is a tram by the map; the bus type is forced to a probe.
	if got := strings.Join(kinds, ","); got != "probe,transit,probe,probe,transit,probe" {
		t.Errorf("kinds = %s", got)
	}
	if routes[1] != "Costa_12/tram" {
		t.Errorf("tram route = %s, want Costa_12/tram", routes[1])
	}
	// Line lookup by the base id.
	if r := routeOf(lines, "bus_130_7"); r != "130" {
		t.Errorf("routeOf(bus_130_7) = %q, want 130", r)
	}
}

func TestHeadingConvergence(t *testing.T) {
	// Bologna lies 2.33° east of UTM zone 32's central meridian (9°E): grid north is 1.63° clockwise of true
	// north, which matches the 1.61° median measured between SUMO's angle and the bearing of successive
	// geo positions (docs/sumo.md).
	got := TrueHeading(90, 44.4967, 11.33, 0)
	if math.Abs(got-91.634) > 0.01 {
		t.Errorf("TrueHeading(90) in Bologna = %.3f, want 91.634", got)
	}
	if got := TrueHeading(359.5, 44.4967, 11.33, 0); math.Abs(got-1.134) > 0.01 {
		t.Errorf("TrueHeading(359.5) = %.3f, want wrap to 1.134", got)
	}
	for _, a := range []float64{-0.0001, 359.996, 720} {
		if got := TrueHeading(a, 0, 9, 32); got != 0 {
			t.Errorf("TrueHeading(%v) = %v, want 0", a, got)
		}
	}
	if got := TrueHeading(12.34567, 0, 9, 32); got != 12.35 {
		t.Errorf("TrueHeading(12.34567) = %v, want 12.35 (2 decimals)", got)
	}
	if got := TrueHeading(370, 44.5, 11.33, -1); got != 10 {
		t.Errorf("uncorrected TrueHeading(370) = %v, want 10", got)
	}
	if z := UTMZoneOf("+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"); z != 32 {
		t.Errorf("UTMZoneOf = %d, want 32", z)
	}
	if z := UTMZoneOf("!"); z != -1 {
		t.Errorf("UTMZoneOf(!) = %d, want -1", z)
	}
}

// syntheticFCD writes steps timesteps of n vehicles each, in Bologna.
func syntheticFCD(steps, n int, typ string) string {
	var b strings.Builder
	b.WriteString("<fcd-export>\n")
	for s := 0; s < steps; s++ {
		fmt.Fprintf(&b, "  <timestep time=\"%d.00\">\n", s)
		for v := 0; v < n; v++ {
			fmt.Fprintf(&b, "    <vehicle id=\"veh%d\" x=\"11.3%04d\" y=\"44.49%03d\" angle=\"%d.00\" type=\"%s\" speed=\"%d.%02d\" pos=\"%d.00\" lane=\"%d_0\" slope=\"0.00\"/>\n",
				v, v%10000, (v*7+s)%1000, (v*13)%360, typ, v%15, s%100, s, v%300)
		}
		b.WriteString("  </timestep>\n")
	}
	b.WriteString("</fcd-export>\n")
	return b.String()
}

func TestPenetrationDeterministicSubset(t *testing.T) {
	in := syntheticFCD(1, 4000, "passenger1")
	ids := func(rate float64) map[string]bool {
		m := map[string]bool{}
		collect(t, func(emit func(engine.Event) error) error {
			_, err := ReadFCD(strings.NewReader(in), FCDOptions{Start: testStart, Penetration: rate},
				func(e engine.Event) error { m[e.ID] = true; return emit(e) })
			return err
		})
		return m
	}
	low, high, again := ids(0.1), ids(0.5), ids(0.1)
	if n := len(low); n < 330 || n > 470 {
		t.Errorf("10%% of 4000 vehicles gave %d probes, want 400 ± 70", n)
	}
	if n := len(high); n < 1850 || n > 2150 {
		t.Errorf("50%% of 4000 vehicles gave %d probes, want 2000 ± 150", n)
	}
	for id := range low {
		if !high[id] {
			t.Fatalf("%s is a probe at 10%% but not at 50%%: rates must nest", id)
		}
		if !again[id] {
			t.Fatalf("%s is a probe in one run at 10%% but not in another: sampling must be deterministic", id)
		}
	}
	if len(again) != len(low) {
		t.Errorf("two runs at 10%% gave %d and %d probes", len(low), len(again))
	}
}

func TestSampleIntervalOncePerInterval(t *testing.T) {
	in := syntheticFCD(60, 50, "passenger1")
	per := map[string][]int64{}
	st := FCDStats{}
	collect(t, func(emit func(engine.Event) error) error {
		var err error
		st, err = ReadFCD(strings.NewReader(in), FCDOptions{Start: testStart, Interval: 10},
			func(e engine.Event) error { per[e.ID] = append(per[e.ID], e.TS); return emit(e) })
		return err
	})
	if len(per) != 50 {
		t.Fatalf("%d vehicles reported, want 50", len(per))
	}
	phases := map[int64]bool{}
	for id, ts := range per {
		// The first timestep always reports, then once per 10 s bucket: 6 or 7 reports in 60 s.
		if len(ts) < 6 || len(ts) > 7 {
			t.Errorf("%s reported %d times in 60 s at a 10 s interval, want 6 or 7", id, len(ts))
		}
		for i := 2; i < len(ts); i++ {
			if d := ts[i] - ts[i-1]; d != 10000 {
				t.Errorf("%s: reports %d ms apart, want 10000", id, d)
			}
		}
		if len(ts) > 1 {
			phases[(ts[1]-testStart.UnixMilli())%10000] = true
		}
	}
	if len(phases) < 5 {
		t.Errorf("reports fall on %d distinct phases of the interval, want them spread (>= 5)", len(phases))
	}
	if st.SampledOut+st.Probes != st.Points || st.Points != 3000 {
		t.Errorf("stats %+v: sampled out + probes must equal the 3000 points", st)
	}
}

type fakeNet map[string][2]float64

func (f fakeNet) LanePosition(lane string, pos float64) (float64, float64, bool) {
	p, ok := f[lane]
	return p[0] + pos*1e-5, p[1], ok
}

func TestReadFCDNet(t *testing.T) {
	in := strings.ReplaceAll(fcdSnippet, `x="11.3`, `x="1173`) // metres, not degrees
	if _, err := ReadFCD(strings.NewReader(in), FCDOptions{Start: testStart}, func(engine.Event) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "--fcd-output.geo") || !strings.Contains(err.Error(), "line 13") {
		t.Errorf("metre coordinates without Net: err = %v, want a hint at --fcd-output.geo on line 13", err)
	}
	net := fakeNet{"131_0": {44.49, 11.32}, "121_0": {44.50, 11.31}}
	var st FCDStats
	var skips []string
	evs := collect(t, func(emit func(engine.Event) error) error {
		var err error
		st, err = ReadFCD(strings.NewReader(in), FCDOptions{Start: testStart, Net: net,
			OnSkip: func(where, reason, detail string) { skips = append(skips, where+": "+reason) }}, emit)
		return err
	})
	if len(evs) != 4 || st.Unplaced != 2 {
		t.Fatalf("got %d events, %d unplaced; want 4 placed, 2 (lane 78[0]_0) unplaced", len(evs), st.Unplaced)
	}
	if len(skips) != 2 || skips[1] != "FCD output line 19: lane not on the network" {
		t.Errorf("skips = %q", skips)
	}
	if e := evs[2]; e.Lng != 11.32 || math.Abs(e.Lat-(44.49+1.83e-5)) > 1e-12 {
		t.Errorf("placed at %v,%v, want 44.4900183,11.32", e.Lat, e.Lng)
	}
}

func TestReadFCDErrors(t *testing.T) {
	good := func(engine.Event) error { return nil }
	cases := []struct {
		name, in string
		opt      FCDOptions
		want     []string
	}{
		{"zero start", fcdSnippet, FCDOptions{}, []string{"Start"}},
		{"bad penetration", fcdSnippet, FCDOptions{Start: testStart, Penetration: 1.5}, []string{"Penetration"}},
		{"empty", "", FCDOptions{Start: testStart}, []string{"no <fcd-export>"}},
		{"wrong root", e1Snippet, FCDOptions{Start: testStart}, []string{"line 6", "<detector>", "not SUMO FCD"}},
		{"truncated", fcdSnippet[:len(fcdSnippet)-60], FCDOptions{Start: testStart}, []string{"cannot read FCD output", "unexpected EOF"}},
		{"bad speed", strings.Replace(fcdSnippet, `speed="1.83"`, `speed="fast"`, 1), FCDOptions{Start: testStart},
			[]string{"line 18", `<vehicle id="Audinot_7_0">`, `speed="fast"`}},
		{"nan speed", strings.Replace(fcdSnippet, `speed="1.83"`, `speed="NaN"`, 1), FCDOptions{Start: testStart}, []string{"line 18", "not a finite number"}},
		{"negative speed", strings.Replace(fcdSnippet, `speed="1.83"`, `speed="-3"`, 1), FCDOptions{Start: testStart}, []string{"line 18", "negative speed"}},
		{"no id", strings.Replace(fcdSnippet, `id="Costa_12_0" `, ``, 1), FCDOptions{Start: testStart}, []string{"line 14", "<vehicle>", "attribute id"}},
		{"bad time", strings.Replace(fcdSnippet, `time="1.00"`, `time="1:xx:00"`, 1), FCDOptions{Start: testStart}, []string{"line 17", "<timestep>", "HH:MM:SS"}},
		{"vehicle outside", strings.Replace(fcdSnippet, `<timestep time="1.00">`, ``, 1), FCDOptions{Start: testStart}, []string{"outside a <timestep>"}},
		{"mismatched tag", strings.Replace(fcdSnippet, `</timestep>`, `</timestap>`, 1), FCDOptions{Start: testStart}, []string{"line 16", "timestap"}},
		{"multi-line element", "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"v\"\n x=\"11.3\" y=\"44.5\"\n speed=\"x\"/>\n</timestep></fcd-export>",
			FCDOptions{Start: testStart}, []string{"line 3,", `<vehicle id="v">`}},
		{"lat out of range", strings.Replace(fcdSnippet, `y="44.490465"`, `y="91"`, 1), FCDOptions{Start: testStart}, []string{"line 18", "not longitude/latitude"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadFCD(strings.NewReader(c.in), c.opt, good)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if c.opt.Start.IsZero() || c.opt.Penetration != 0 {
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line == 0 {
				t.Errorf("error %v is not a *ParseError with a line", err)
			}
		})
	}
}

func TestReadFCDEmitError(t *testing.T) {
	stop := errors.New("downstream full")
	n := 0
	st, err := ReadFCD(strings.NewReader(fcdSnippet), FCDOptions{Start: testStart}, func(engine.Event) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	var ee *EmitError
	if !errors.Is(err, stop) || !errors.As(err, &ee) || ee.ID != "Costa_12_0" || ee.Line != 14 {
		t.Fatalf("err = %v, want EmitError for Costa_12_0 on line 14 wrapping the callback's error", err)
	}
	if st.Points != 2 {
		t.Errorf("reader went on after the emit error: %d points", st.Points)
	}
}

func TestHumanReadableTime(t *testing.T) {
	for in, want := range map[string]float64{"150.00": 150, "00:02:30": 150, "1:00:00:01.5": 86401.5, "-5": -5} {
		got, err := simTime("time", in)
		if err != nil || got != want {
			t.Errorf("simTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:b:c", "1:2:3:4:5", "inf"} {
		if _, err := simTime("time", bad); err == nil {
			t.Errorf("simTime(%q) accepted", bad)
		}
	}
}

func TestStripIndexAndVehicleLines(t *testing.T) {
	for in, want := range map[string]string{"bus_130_0": "bus_130", "line4.12": "line4", "42": "42", "_7": "_7", "bus": "bus", "a_b": "a_b"} {
		if got := StripIndex(in); got != want {
			t.Errorf("StripIndex(%q) = %q, want %q", in, got, want)
		}
	}
	routes := `<routes><vehicle id="b1" line="27A" depart="0"><route edges="a b"/></vehicle>
<flow id="f" line="11" begin="0" end="60" period="10" type="bus"/><trip id="t" depart="0" from="a" to="b"/></routes>`
	lines, err := ReadVehicleLines(strings.NewReader(routes))
	if err != nil || len(lines) != 2 || lines["b1"] != "27A" || lines["f"] != "11" {
		t.Fatalf("ReadVehicleLines = %v, %v; want b1→27A, f→11", lines, err)
	}
	if r := routeOf(lines, "f.3"); r != "11" {
		t.Errorf("flow vehicle f.3 route = %q, want 11", r)
	}
	if _, err := ReadVehicleLines(strings.NewReader("<routes><vehicle id='x'></routes>")); err == nil {
		t.Error("ReadVehicleLines accepted mismatched tags")
	}
}

func TestOpenPlainAndGzip(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "fcd.xml")
	if err := os.WriteFile(plain, []byte(fcdSnippet), 0o644); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(fcdSnippet))
	zw.Close()
	gz := filepath.Join(dir, "fcd.xml.gz")
	if err := os.WriteFile(gz, zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{plain, gz} {
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ReadFCD(f, FCDOptions{Start: testStart}, func(engine.Event) error { return nil })
		if cerr := f.Close(); err != nil || cerr != nil || st.Points != 6 {
			t.Errorf("%s: %d points, err %v, close %v; want 6 points", p, st.Points, err, cerr)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.xml")); err == nil || !strings.Contains(err.Error(), "cannot open SUMO output") {
		t.Errorf("missing file: err = %v", err)
	}
}
