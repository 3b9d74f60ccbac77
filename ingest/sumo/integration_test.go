package sumo

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// Bologna "Andrea Costa" scenario bounds (the net's convBoundary inverse-projected, with a margin).
const (
	boMinLat, boMaxLat = 44.48, 44.51
	boMinLng, boMaxLng = 11.30, 11.37
)

// dataDir is $CITYBRAIN_DATA, else ../shared/data relative to the repository root.
func dataDir() string {
	if d := os.Getenv("CITYBRAIN_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "data")
}

// runBologna runs scripts/sumo/run-bologna.sh for end simulated seconds with e1 period period and returns its
// output dir, skipping the test when sumo or the scenario is missing.
func runBologna(t testing.TB, end, period string) string {
	t.Helper()
	if _, err := exec.LookPath("sumo"); err != nil {
		t.Skip("sumo is not installed (run scripts/install-sumo.sh): skipping the SUMO integration test")
	}
	data, err := filepath.Abs(dataDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "sumo", "bologna-acosta", "run.sumocfg")); err != nil {
		t.Skipf("Bologna scenario missing (%v): set CITYBRAIN_DATA to the shared data dir", err)
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "sumo", "run-bologna.sh"), out, end, period)
	cmd.Env = append(os.Environ(), "CITYBRAIN_DATA="+data, "SUMO_HOME=/usr/share/sumo")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run-bologna.sh: %v\n%s", err, b)
	}
	t.Logf("sumo: %s simulated s of Bologna in %v", end, time.Since(start).Round(time.Millisecond))
	return out
}

func TestBolognaIntegration(t *testing.T) {
	out := runBologna(t, "240", "60")
	net, err := geo.LoadSUMONetFile(filepath.Join(out, "net.xml"))
	if err != nil {
		t.Fatal(err)
	}
	zone := UTMZoneOf(net.Projection)
	if zone != 32 {
		t.Errorf("Bologna net projection %q: zone %d, want 32", net.Projection, zone)
	}

	// FCD: every point, with its true lane.
	f, err := Open(filepath.Join(out, "fcd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type last struct {
		lat, lng float64
		lane     string
		ts       int64
	}
	prev := map[string]last{}
	var headErr, laneDist, speeds []float64
	routes := map[string]bool{}
	outside, noLane := 0, 0
	st, err := ReadFCD(f, FCDOptions{Start: testStart, UTMZone: zone,
		Truth: func(e *engine.Event, lane string, pos float64) {
			if lane == "" || math.IsNaN(pos) {
				noLane++
				return
			}
			if lat, lng, ok := net.LanePosition(lane, pos); ok {
				laneDist = append(laneDist, geo.DistanceM(geo.LatLng{Lat: e.Lat, Lng: e.Lng}, geo.LatLng{Lat: lat, Lng: lng}))
			}
			p, seen := prev[e.ID]
			prev[e.ID] = last{e.Lat, e.Lng, lane, e.TS}
			// Heading check on straight, fast, consecutive moves along one lane.
			if seen && p.lane == lane && e.TS-p.ts == 1000 && e.Kind == engine.KindProbe && e.SpeedKmh > 30 {
				if d := geo.DistanceM(geo.LatLng{Lat: p.lat, Lng: p.lng}, geo.LatLng{Lat: e.Lat, Lng: e.Lng}); d > 8 {
					b := geo.BearingDeg(geo.LatLng{Lat: p.lat, Lng: p.lng}, geo.LatLng{Lat: e.Lat, Lng: e.Lng})
					headErr = append(headErr, math.Abs(math.Remainder(b-e.HeadingDeg, 360)))
				}
			}
		}}, func(e engine.Event) error {
		if e.Lat < boMinLat || e.Lat > boMaxLat || e.Lng < boMinLng || e.Lng > boMaxLng {
			outside++
		}
		speeds = append(speeds, e.SpeedKmh)
		if e.Kind == engine.KindTransit {
			routes[e.Route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FCD: %+v, %d bus routes", st, len(routes))
	if st.Timesteps != 240 || st.Probes < 20000 || st.Transit < 100 || st.Probes+st.Transit != st.Points {
		t.Errorf("FCD stats %+v: want 240 timesteps (0..239), > 20000 probes, > 100 transit, all points emitted", st)
	}
	if outside != 0 || noLane != 0 {
		t.Errorf("%d points outside Bologna, %d without a lane", outside, noLane)
	}
	for r := range routes {
		if !strings.HasPrefix(r, "bus_") {
			t.Errorf("transit route %q: want bus_<line>", r)
		}
	}
	sort.Float64s(speeds)
	mean := 0.0
	for _, s := range speeds {
		mean += s
	}
	mean /= float64(len(speeds))
	if max := speeds[len(speeds)-1]; max > 90 || mean < 5 || mean > 50 {
		t.Errorf("speeds: mean %.1f km/h, max %.1f km/h; want an urban mean in 5..50 and max <= 90", mean, max)
	}
	sort.Float64s(headErr)
	if len(headErr) < 1000 {
		t.Fatalf("only %d heading samples", len(headErr))
	}
	if med, p90 := headErr[len(headErr)/2], headErr[len(headErr)*9/10]; med > 0.3 || p90 > 1.5 {
		t.Errorf("heading vs bearing of successive positions: median %.2f°, p90 %.2f°; want <= 0.3°, <= 1.5°", med, p90)
	}
	// The true lane position (geo's placement of lane+pos) agrees with SUMO's own geo output.
	sort.Float64s(laneDist)
	if len(laneDist) < st.Points/2 {
		t.Errorf("geo placed only %d of %d true lane positions", len(laneDist), st.Points)
	} else if med, p95 := laneDist[len(laneDist)/2], laneDist[len(laneDist)*95/100]; med > 2 || p95 > 5 {
		t.Errorf("SUMO geo position vs geo.LanePosition(true lane): median %.2f m, p95 %.2f m; want <= 2 m, <= 5 m", med, p95)
	}
	t.Logf("heading error median %.2f° (n=%d); lane placement distance median %.2f m",
		headErr[len(headErr)/2], len(headErr), laneDist[len(laneDist)/2])

	// e1 detectors.
	df, err := os.Open(filepath.Join(out, "detectors.add.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	defs, err := ReadDetectors(df)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 58 {
		t.Errorf("%d detector definitions, want the scenario's 58", len(defs))
	}
	sites, err := PlaceDetectors(defs, net)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := Open(filepath.Join(out, "e1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	var dets []engine.Event
	est, err := ReadE1(ef, E1Options{Start: testStart, Sites: sites}, func(e engine.Event) error { dets = append(dets, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("e1: %+v", est)
	if est.Detectors != 58*4 || est.Unplaced != 0 {
		t.Errorf("e1 stats %+v: want 58 detectors × 4 one-minute intervals, none unplaced", est)
	}
	flowing := 0
	for _, e := range dets {
		if e.Lat < boMinLat || e.Lat > boMaxLat || e.Lng < boMinLng || e.Lng > boMaxLng {
			t.Errorf("detector %s at %v,%v: outside Bologna", e.ID, e.Lat, e.Lng)
		}
		if e.FlowVph > 0 {
			flowing++
			if e.SpeedKmh > 90 || e.FlowVph > 3600 {
				t.Errorf("detector %s: flow %v veh/h speed %v km/h implausible", e.ID, e.FlowVph, e.SpeedKmh)
			}
		}
		// On its street: the link of its lane passes within 10 m (lane 0 of a wide road lies up to ~7 m off the
		// edge's centre line) and the point lies on the lane's own shape.
		link := e.Lane[:strings.LastIndexByte(e.Lane, '_')]
		linkM, laneM := math.Inf(1), math.Inf(1)
		for _, c := range net.Nearest(e.Lat, e.Lng, 30, 16) {
			if c.Link.ID != link {
				continue
			}
			linkM = c.DistanceM
			for _, ln := range c.Link.LaneInfo {
				if ln.ID == e.Lane {
					laneM = polylineDistM(geo.LatLng{Lat: e.Lat, Lng: e.Lng}, ln.Shape)
				}
			}
		}
		if linkM > 10 || laneM > 1 {
			t.Errorf("detector %s on lane %s placed at %v,%v: %.1f m from its link, %.1f m from its lane shape",
				e.ID, e.Lane, e.Lat, e.Lng, linkM, laneM)
		}
	}
	if flowing < len(dets)/3 {
		t.Errorf("only %d of %d detector intervals counted vehicles", flowing, len(dets))
	}
}

// polylineDistM is the distance in metres from p to the polyline pts (local equirectangular approximation).
func polylineDistM(p geo.LatLng, pts []geo.LatLng) float64 {
	const mPerDeg = 111320.0
	kx := mPerDeg * math.Cos(p.Lat*math.Pi/180)
	best := math.Inf(1)
	for i := 1; i < len(pts); i++ {
		ax, ay := (pts[i-1].Lng-p.Lng)*kx, (pts[i-1].Lat-p.Lat)*mPerDeg
		bx, by := (pts[i].Lng-p.Lng)*kx, (pts[i].Lat-p.Lat)*mPerDeg
		dx, dy := bx-ax, by-ay
		u := 0.0
		if l2 := dx*dx + dy*dy; l2 > 0 {
			u = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
		}
		best = math.Min(best, math.Hypot(ax+u*dx, ay+u*dy))
	}
	return best
}
