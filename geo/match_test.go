package geo

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"
)

// fix is one synthetic GPS fix with the link the vehicle was really on.
type fix struct {
	ts       time.Time
	lat, lng float64
	heading  float64
	trueLink string
}

// simulateTrace drives a vehicle along the network for steps fixes, every dt, at speedMps, choosing a random
// next link at each node (no U-turns unless at a dead end), and adds Gaussian position noise (sigmaM) and
// heading noise (headingSigma; a negative value reports no heading).
func simulateTrace(n *Network, rng *rand.Rand, steps int, dt time.Duration, speedMps, sigmaM, headingSigma float64) []fix {
	links := n.Links()
	l := links[rng.Intn(len(links))]
	off := rng.Float64() * l.GeomLengthM()
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	out := make([]fix, 0, steps)
	for i := 0; i < steps; i++ {
		p, b := l.PointAt(off)
		dn, de := rng.NormFloat64()*sigmaM, rng.NormFloat64()*sigmaM
		f := fix{ts: t0.Add(time.Duration(i) * dt), lat: p.Lat + metresToDegLat(dn), lng: p.Lng + metresToDegLng(de, p.Lat),
			heading: math.NaN(), trueLink: l.ID}
		if headingSigma >= 0 {
			f.heading = normDeg(b + rng.NormFloat64()*headingSigma)
		}
		out = append(out, f)
		off += speedMps * dt.Seconds() * (0.8 + 0.4*rng.Float64())
		for off > l.GeomLengthM() {
			off -= l.GeomLengthM()
			end, _ := n.Node(l.To)
			var next []*Link
			for _, id := range end.Out {
				c, _ := n.Link(id)
				if c.To != l.From || len(end.Out) == 1 {
					next = append(next, c)
				}
			}
			l = next[rng.Intn(len(next))]
		}
	}
	return out
}

// matchAccuracy runs vehicles traces through a matcher and returns the share of fixes matched to the true link.
func matchAccuracy(t testing.TB, n *Network, cfg MatcherConfig, vehicles, steps int, dt time.Duration, sigmaM, headingSigma float64) float64 {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	m := NewMatcher(n, cfg)
	right, total := 0, 0
	for v := 0; v < vehicles; v++ {
		id := fmt.Sprintf("v%d", v)
		for _, f := range simulateTrace(n, rng, steps, dt, 11, sigmaM, headingSigma) {
			got, ok := m.Match(id, f.ts, f.lat, f.lng, f.heading)
			total++
			if ok && got.LinkID == f.trueLink {
				right++
			}
		}
	}
	return float64(right) / float64(total)
}

// nearestAccuracy is the baseline: the nearest link whose direction is within 90° of the reported heading (any
// nearest link when there is none), ignoring history. It sees the same traces as matchAccuracy.
func nearestAccuracy(n *Network, vehicles, steps int, dt time.Duration, sigmaM, headingSigma float64) float64 {
	rng := rand.New(rand.NewSource(1))
	right, total := 0, 0
	for v := 0; v < vehicles; v++ {
		for _, f := range simulateTrace(n, rng, steps, dt, 11, sigmaM, headingSigma) {
			cands := n.Nearest(f.lat, f.lng, 50, 8)
			total++
			for _, c := range cands {
				if math.IsNaN(f.heading) || angleDiffDeg(f.heading, c.BearingDeg) <= 90 {
					if c.Link.ID == f.trueLink {
						right++
					}
					break
				}
			}
		}
	}
	return float64(right) / float64(total)
}

func TestMatcherAccuracy(t *testing.T) {
	n := GenerateWestLake(1)
	tests := []struct {
		name         string
		dt           time.Duration
		sigmaM       float64
		headingSigma float64 // <0: no heading reported
		min          float64
	}{
		// thresholds sit about 1 point under the measured accuracy (docs/geo.md)
		{"1s 5m with heading", time.Second, 5, 10, 0.98},
		{"1s 10m with heading", time.Second, 10, 15, 0.97},
		{"1s 5m no heading", time.Second, 5, -1, 0.965},
		{"5s 10m no heading", 5 * time.Second, 10, -1, 0.94},
		{"1s 20m with heading", time.Second, 20, 20, 0.925},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc := matchAccuracy(t, n, MatcherConfig{}, 40, 300, tt.dt, tt.sigmaM, tt.headingSigma)
			base := nearestAccuracy(n, 40, 300, tt.dt, tt.sigmaM, tt.headingSigma)
			t.Logf("accuracy %.4f (nearest-link baseline %.4f)", acc, base)
			if acc < tt.min {
				t.Errorf("accuracy %.4f, want at least %.2f", acc, tt.min)
			}
			if acc <= base {
				t.Errorf("accuracy %.4f is not above the nearest-link baseline %.4f", acc, base)
			}
		})
	}
}

func TestMatcherEviction(t *testing.T) {
	n := crossNetwork(t)
	m := NewMatcher(n, MatcherConfig{IdleTimeout: time.Minute, MaxVehicles: 3})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := m.Match("a", t0, 30.2505, 120.17, 0); !ok {
		t.Fatal("fix on the north arm did not match")
	}
	m.Match("b", t0.Add(30*time.Second), 30.2505, 120.17, 0)
	if m.Len() != 2 {
		t.Fatalf("Len = %d, want 2", m.Len())
	}
	m.Match("c", t0.Add(61*time.Second), 30.2505, 120.17, 0) // a is now idle for more than a minute
	if m.Len() != 2 {
		t.Errorf("after a's timeout Len = %d, want 2 (b, c)", m.Len())
	}
	for i := 0; i < 5; i++ {
		m.Match(fmt.Sprintf("x%d", i), t0.Add(62*time.Second), 30.2505, 120.17, 0)
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want the MaxVehicles bound 3", m.Len())
	}
	if got := m.Evict(t0.Add(time.Hour)); got != 3 || m.Len() != 0 {
		t.Errorf("Evict an hour later removed %d, Len %d; want 3 and 0", got, m.Len())
	}
	m.Match("z", t0, 30.2505, 120.17, 0)
	m.Forget("z")
	if m.Len() != 0 {
		t.Errorf("Forget left Len = %d", m.Len())
	}
}

func TestMatcherHeadingAndMisses(t *testing.T) {
	n := crossNetwork(t)
	m := NewMatcher(n, MatcherConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		lat     float64
		heading float64
		want    string
		ok      bool
	}{
		{"north arm heading north", 30.2505, 0, "CN", true},
		{"north arm heading south", 30.2505, 180, "NC", true},
		{"far away", 31, 0, "", false},
		{"invalid", math.NaN(), 0, "", false},
	}
	for i, tt := range tests {
		got, ok := m.Match(fmt.Sprintf("v%d", i), t0, tt.lat, 120.17, tt.heading)
		if ok != tt.ok || got.LinkID != tt.want {
			t.Errorf("%s: got %q, %v; want %q, %v", tt.name, got.LinkID, ok, tt.want, tt.ok)
		}
	}
	// Without heading, a vehicle that moved north along the arm is matched to CN from its history.
	for i, lat := range []float64{30.2502, 30.2504, 30.2506} {
		got, _ := m.Match("h", t0.Add(time.Duration(i)*time.Second), lat, 120.17, math.NaN())
		if i > 0 && got.LinkID != "CN" {
			t.Errorf("fix %d without heading: %s, want CN", i, got.LinkID)
		}
	}
}

func BenchmarkMatcher(b *testing.B) {
	n := GenerateWestLake(1)
	rng := rand.New(rand.NewSource(1))
	const vehicles = 1000
	traces := make([][]fix, vehicles)
	ids := make([]string, vehicles)
	for v := range traces {
		traces[v] = simulateTrace(n, rng, 100, time.Second, 11, 8, 15)
		ids[v] = fmt.Sprintf("veh-%d", v)
	}
	m := NewMatcher(n, MatcherConfig{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v := i % vehicles
		f := traces[v][(i/vehicles)%100]
		m.Match(ids[v], f.ts, f.lat, f.lng, f.heading)
		i++
	}
}
