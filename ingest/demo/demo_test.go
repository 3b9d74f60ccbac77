package demo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
)

var cst = time.FixedZone("CST", 8*3600)

// runFor runs c for d simulated seconds as fast as possible and hands every event to f.
func runFor(t testing.TB, c *City, steps int, f func(e *engine.Event)) {
	t.Helper()
	for i := 0; i < steps; i++ {
		evs := c.step()
		for k := range evs {
			f(&evs[k])
		}
	}
}

func TestDeterministicForSeed(t *testing.T) {
	digest := func(seed int64) uint64 {
		c, err := New(Config{Seed: seed, Start: time.Date(2026, 11, 27, 7, 0, 0, 0, cst), Duration: 20 * time.Minute,
			IncidentEvery: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h := fnv.New64a()
		n := 0
		if err := c.Run(context.Background(), func(evs []engine.Event) error {
			for i := range evs {
				fmt.Fprintf(h, "%v\n", evs[i])
			}
			n += len(evs)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, g := range c.GroundTruth() {
			fmt.Fprintf(h, "%+v\n", g)
		}
		if n < 10000 {
			t.Fatalf("seed %d: only %d events in 20 minutes", seed, n)
		}
		return h.Sum64()
	}
	a, b, other := digest(7), digest(7), digest(8)
	if a != b {
		t.Fatalf("same seed gave different events: %x vs %x", a, b)
	}
	if a == other {
		t.Fatalf("seeds 7 and 8 gave the same events")
	}
}

func TestEventsValidOnNetworkAndComplete(t *testing.T) {
	c, err := New(Config{Seed: 3, Start: time.Date(2026, 11, 27, 6, 0, 0, 0, cst), DayLength: time.Hour,
		IncidentEvery: 6 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const steps = 2 * 3600
	kinds := map[engine.Kind]int{}
	types := map[string]int{}
	var probes, offNet, trueDetections, falseAlarms int
	bad := 0
	var lastTS int64
	runFor(t, c, steps, func(e *engine.Event) {
		kinds[e.Kind]++
		if err := ingest.Validate(e); err != nil {
			if bad++; bad <= 5 {
				t.Errorf("invalid %v event %+v: %v", e.Kind, *e, err)
			}
		}
		if e.TS != c.ts(c.t-1) {
			t.Fatalf("event time %d, want the step's %d", e.TS, c.ts(c.t-1))
		}
		lastTS = e.TS
		switch e.Kind {
		case engine.KindProbe:
			probes++
			if probes%20 == 0 && len(c.net.Nearest(e.Lat, e.Lng, 30, 1)) == 0 {
				offNet++
			}
			if !engine.Has(e.HeadingDeg) {
				t.Fatalf("probe without heading: %+v", *e)
			}
		case engine.KindVideo:
			types[e.Type]++
			if e.Type == "stalled_vehicle" || e.Type == "crash" {
				if e.Confidence >= 0.6 {
					trueDetections++
				} else {
					falseAlarms++
				}
			}
		case engine.KindDetector:
			if e.IntervalS != detIntervalS {
				t.Fatalf("detector interval %v", e.IntervalS)
			}
		}
	})
	if bad > 0 {
		t.Fatalf("%d invalid events", bad)
	}
	if lastTS != time.Date(2026, 11, 27, 6, 0, 0, 0, cst).Add((steps-1)*time.Second).UnixMilli() {
		t.Fatalf("last event time %d", lastTS)
	}
	for _, k := range engine.Kinds {
		if kinds[k] == 0 {
			t.Errorf("no %v events in two simulated hours (%v)", k, kinds)
		}
	}
	if offNet > 0 {
		t.Errorf("%d of %d sampled probes are more than 30 m from every link", offNet, probes/20)
	}
	// Rates: ~20% of vehicles every 3-5 s; detectors and cameras every 30 s; units every 5 s; sensors every 60 s.
	if want := float64(len(c.dets)) * steps / detIntervalS; float64(kinds[engine.KindDetector]) != want {
		t.Errorf("%d detector events, want %v", kinds[engine.KindDetector], want)
	}
	if want := len(c.units) * steps / unitEveryS; kinds[engine.KindUnit] != want {
		t.Errorf("%d unit events, want %d", kinds[engine.KindUnit], want)
	}
	if want := len(c.sensors) * steps / sensorEveryS; kinds[engine.KindSensor] != want {
		t.Errorf("%d sensor events, want %d", kinds[engine.KindSensor], want)
	}
	if perS := float64(probes) / steps; perS < 0.02*float64(c.cfg.Vehicles)/4 || perS > 0.25*float64(c.cfg.Vehicles)/3 {
		t.Errorf("%.1f probes per second for a peak of %d vehicles", perS, c.cfg.Vehicles)
	}
	if types["vehicle_count"] == 0 || types["queue"] == 0 {
		t.Errorf("video types %v: want vehicle_count and queue", types)
	}
	if trueDetections == 0 || falseAlarms == 0 {
		t.Errorf("%d incident detections at confidence >= 0.6, %d false alarms: want both", trueDetections, falseAlarms)
	}
	gt := c.GroundTruth()
	if len(gt) < 10 {
		t.Fatalf("%d incidents in two hours at one per ~6 minutes", len(gt))
	}
	calls := 0
	for _, g := range gt {
		l, ok := c.net.Link(g.LinkID)
		if !ok || !g.End.After(g.Start) || g.LanesBlocked < 1 || g.LanesBlocked > g.Lanes || g.OffsetM > l.LengthM {
			t.Errorf("bad ground truth %+v", g)
		}
		if len(c.net.Nearest(g.Lat, g.Lng, 5, 8)) == 0 {
			t.Errorf("incident %s is not on a link", g.ID)
		}
		calls += g.Calls
	}
	if calls != kinds[engine.KindReport] {
		t.Errorf("ground truth counts %d calls, %d reports emitted", calls, kinds[engine.KindReport])
	}
}

// meanSpeed returns the mean speed (m/s) of the vehicles on the links, weighted by vehicle.
func meanSpeed(c *City, links ...int32) float64 {
	s, n := 0.0, 0
	for _, li := range links {
		m, k := c.linkSpeeds(li)
		s += m * float64(k)
		n += k
	}
	return s / float64(max(n, 1))
}

func TestIncidentCollapsesSpeeds(t *testing.T) {
	c, err := New(Config{Seed: 2, Start: time.Date(2026, 11, 27, 8, 0, 0, 0, cst), DayLength: 24 * time.Hour,
		IncidentEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, c, 600, func(*engine.Event) {})
	best, bf := int32(-1), 0.0
	for li := range c.links {
		// The link with the highest recent flow that still flows freely (over 30 km/h).
		if f := c.links[li].flow; f > bf && c.links[li].lengthM > 100 && meanSpeed(c, int32(li)) > 30/3.6 {
			best, bf = int32(li), f
		}
	}
	up := c.nodes[c.links[best].from].in
	var linkBefore, upBefore, linkDuring, upDuring float64
	for i := 0; i < 300; i++ {
		c.step()
		linkBefore += meanSpeed(c, best) / 300
		upBefore += meanSpeed(c, up...) / 300
	}
	c.injectIncident(best, "crash", 1200, c.t)
	for i := 0; i < 900; i++ {
		c.step()
		if i >= 600 {
			linkDuring += meanSpeed(c, best) / 300
			upDuring += meanSpeed(c, up...) / 300
		}
	}
	t.Logf("link %s (%v lanes): %.1f -> %.1f km/h; upstream %.1f -> %.1f km/h", c.links[best].g.ID, c.links[best].lanes,
		linkBefore*3.6, linkDuring*3.6, upBefore*3.6, upDuring*3.6)
	if linkDuring > 0.5*linkBefore {
		t.Errorf("blocked link: %.1f km/h before, %.1f during: want at least halved", linkBefore*3.6, linkDuring*3.6)
	}
	if upDuring > 0.7*upBefore {
		t.Errorf("upstream links: %.1f km/h before, %.1f during: want a drop of 30%% or more", upBefore*3.6, upDuring*3.6)
	}
	// After clearance the queue dissolves.
	runFor(t, c, 900, func(*engine.Event) {})
	if after := meanSpeed(c, best); after < 2*linkDuring {
		t.Errorf("blocked link after clearance: %.1f km/h, during %.1f", after*3.6, linkDuring*3.6)
	}
}

func TestRushHourBusierThanNight(t *testing.T) {
	// One day per simulated hour from 00:00: the night is the first ~15 minutes, the morning peak around minute 20.
	c, err := New(Config{Seed: 5, Start: time.Date(2026, 11, 27, 0, 0, 0, 0, cst), DayLength: time.Hour, IncidentEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	var night, rush, nn, nr float64
	for i := 0; i < 1500; i++ {
		c.step()
		switch h := c.hourAt(c.t); {
		case h >= 2 && h < 5:
			night += float64(c.active)
			nn++
		case h >= 8 && h < 10:
			rush += float64(c.active)
			nr++
		}
	}
	night, rush = night/nn, rush/nr
	t.Logf("mean vehicles: night %.0f, morning rush %.0f", night, rush)
	if rush < 3*night {
		t.Errorf("morning rush %.0f vehicles, night %.0f: want at least three times as many", rush, night)
	}
}

func TestRunStopsAndPaces(t *testing.T) {
	c, err := New(Config{Seed: 1, Speedup: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	t0 := time.Now()
	steps := 0
	if err := c.Run(ctx, func([]engine.Event) error { steps++; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 400*time.Millisecond || steps != 1 {
		t.Errorf("real-time run cancelled after 150 ms returned after %v with %d steps, want promptly after 1", d, steps)
	}

	// As fast as possible, cancelled from inside emit.
	c0, _ := New(Config{Seed: 1})
	ctx, cancel = context.WithCancel(context.Background())
	steps = 0
	if err := c0.Run(ctx, func([]engine.Event) error {
		if steps++; steps == 50 {
			cancel()
		}
		return nil
	}); err != nil || steps != 50 {
		t.Errorf("cancelled at step 50: err %v after %d steps", err, steps)
	}

	// Duration and pacing: 10 simulated seconds at 20x take about half a second.
	c20, _ := New(Config{Seed: 1, Speedup: 20, Duration: 10 * time.Second})
	t0, steps = time.Now(), 0
	if err := c20.Run(context.Background(), func([]engine.Event) error { steps++; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); steps != 10 || d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("10 s at 20x: %d steps in %v, want 10 in about 0.5 s", steps, d)
	}

	// emit's error ends the run and is returned.
	boom := errors.New("boom")
	if err := c0.Run(context.Background(), func([]engine.Event) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Run returned %v, want the emit error", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Speedup: -1}, {Speedup: math.NaN()}, {Vehicles: -5}, {Duration: -time.Second},
		{Flows: "/nonexistent/flow.txt"}} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "cannot ") {
			t.Errorf("New(%+v) = %v, want a 'cannot ...' error", cfg, err)
		}
	}
}

const smallDir = "/work/shared/data/citybrain/nanchang-small"

func TestCityBrainFlows(t *testing.T) {
	net, err := geo.LoadCityBrainFile(filepath.Join(smallDir, "roadnet.txt"))
	if err != nil {
		t.Skipf("no City Brain sample: %v", err)
	}
	c, err := New(Config{Network: net, Flows: filepath.Join(smallDir, "flow.txt"), Seed: 1,
		Start: time.Date(2026, 11, 27, 8, 0, 0, 0, cst)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.flows) == 0 {
		t.Fatal("no flow routes loaded")
	}
	onFlow := map[*int32]bool{}
	for _, f := range c.flows {
		onFlow[&f.links[0]] = true
	}
	cars, fromFlows := 0, 0
	runFor(t, c, 900, func(e *engine.Event) {
		if err := ingest.Validate(e); err != nil {
			t.Fatalf("invalid %+v: %v", *e, err)
		}
	})
	for li := range c.links {
		for _, vi := range c.links[li].q {
			if v := &c.veh[vi]; v.kind == kindCar {
				cars++
				if onFlow[&v.route[0]] {
					fromFlows++
				}
			}
		}
	}
	if cars == 0 || fromFlows < cars*9/10 {
		t.Errorf("%d cars, %d on flow-file routes: want nearly all", cars, fromFlows)
	}
}

func TestFlowFileErrors(t *testing.T) {
	net, err := geo.LoadCityBrainFile(filepath.Join(smallDir, "roadnet.txt"))
	if err != nil {
		t.Skipf("no City Brain sample: %v", err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"count":     "x\n",
		"short":     "2\n0 100 10\n1\n56\n",
		"mismatch":  "1\n0 100 10\n3\n56 89\n",
		"noroutes":  "1\n0 100 10\n1\nnosuchroad\n",
		"badheader": "1\n0 100\n1\n56\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{Network: net, Flows: p}); err == nil || !strings.Contains(err.Error(), "cannot") {
			t.Errorf("%s: New = %v, want an error", name, err)
		}
	}
}

func FuzzLoadFlows(f *testing.F) {
	net, err := geo.LoadCityBrainFile(filepath.Join(smallDir, "roadnet.txt"))
	if err != nil {
		f.Skip("no City Brain sample")
	}
	c := &City{net: net, rng: rand.New(rand.NewPCG(1, 2))}
	c.buildGraph()
	f.Add("1\n0 100 10\n2\n56 89\n")
	f.Add("2\n0 1e9 0\n1\n56\n3 1 2\n1\n89\n")
	p := filepath.Join(f.TempDir(), "flow.txt")
	f.Fuzz(func(t *testing.T, body string) {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		routes, _, err := c.loadFlows(p)
		if err != nil && !strings.HasPrefix(err.Error(), "cannot ") {
			t.Fatalf("error %q", err)
		}
		for _, r := range routes {
			if len(r.links) == 0 || !(r.weight >= 1) {
				t.Fatalf("bad route %+v", r)
			}
		}
	})
}

func BenchmarkCityStep(b *testing.B) {
	c, err := New(Config{Seed: 1, Start: time.Date(2026, 11, 27, 8, 0, 0, 0, cst), DayLength: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	runFor(b, c, 300, func(*engine.Event) {})
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for b.Loop() {
		events += len(c.step())
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/step")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sim-s/wall-s")
}
