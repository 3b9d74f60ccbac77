package geo

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fcdFix is one SUMO FCD record: the vehicle's true lane and its position.
type fcdFix struct {
	veh      string
	ts       time.Time
	lat, lng float64
	angle    float64
	edge     string // true edge id ("" on an internal junction lane)
}

// readFCD streams a SUMO FCD file written with --fcd-output.geo true.
func readFCD(t *testing.T, path string) []fcdFix {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("cannot open FCD (%s): %v", path, err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	var now time.Time
	var out []fcdFix
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("cannot parse FCD (%s): %v", path, err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch el.Name.Local {
		case "timestep":
			s, _ := strconv.ParseFloat(attr(el, "time"), 64)
			now = t0.Add(time.Duration(s * float64(time.Second)))
		case "vehicle":
			x, _ := strconv.ParseFloat(attr(el, "x"), 64)
			y, _ := strconv.ParseFloat(attr(el, "y"), 64)
			a, _ := strconv.ParseFloat(attr(el, "angle"), 64)
			lane := attr(el, "lane")
			edge := ""
			if !strings.HasPrefix(lane, ":") {
				if i := strings.LastIndexByte(lane, '_'); i > 0 {
					edge = lane[:i]
				}
			}
			out = append(out, fcdFix{veh: attr(el, "id"), ts: now, lat: y, lng: x, angle: a, edge: edge})
		}
	}
}

// TestMatcherSUMOFCD measures accuracy on real simulated trajectories: SUMO FCD of the Bologna scenario gives each
// vehicle's true lane and its lon/lat; the test adds noise and matches. It needs CITYBRAIN_FCD (see docs/geo.md).
func TestMatcherSUMOFCD(t *testing.T) {
	path := os.Getenv("CITYBRAIN_FCD")
	if path == "" {
		t.Skip("skipping: set CITYBRAIN_FCD to a SUMO FCD file of the Bologna scenario (docs/geo.md has the command)")
	}
	n, err := LoadSUMONetFile(dataFile(t, "sumo/bologna-acosta/acosta_buslanes.net.xml"))
	if err != nil {
		t.Fatal(err)
	}
	fixes := readFCD(t, path)
	tests := []struct {
		name         string
		every        int // keep one fix in every so many seconds
		sigmaM       float64
		headingSigma float64 // <0: no heading
		min          float64 // about 1 point under the accuracy measured in docs/geo.md
	}{
		{"1s 5m heading", 1, 5, 10, 0.975},
		{"1s 10m heading", 1, 10, 15, 0.945},
		{"1s 5m no heading", 1, 5, -1, 0.89},
		{"5s 10m no heading", 5, 10, -1, 0.83},
	}
	for _, tt := range tests {
		rng := rand.New(rand.NewSource(1))
		m := NewMatcher(n, MatcherConfig{})
		right, total, missed := 0, 0, 0
		start := time.Now()
		calls := 0
		for _, f := range fixes {
			if f.ts.Unix()%int64(tt.every) != 0 {
				continue
			}
			lat := f.lat + metresToDegLat(rng.NormFloat64()*tt.sigmaM)
			lng := f.lng + metresToDegLng(rng.NormFloat64()*tt.sigmaM, f.lat)
			h := math.NaN()
			if tt.headingSigma >= 0 {
				h = normDeg(f.angle + rng.NormFloat64()*tt.headingSigma)
			}
			got, ok := m.Match(f.veh, f.ts, lat, lng, h)
			calls++
			if f.edge == "" {
				continue // inside a junction: no true link to compare with
			}
			total++
			if !ok {
				missed++
			} else if got.LinkID == f.edge {
				right++
			}
		}
		el := time.Since(start)
		acc := float64(right) / float64(total)
		t.Logf("%s: %d fixes on edges, accuracy %.4f, unmatched %d, %.2f µs/fix", tt.name, total, acc, missed,
			float64(el.Microseconds())/float64(calls))
		if acc < tt.min {
			t.Errorf("%s: accuracy %.4f, want at least %.3f", tt.name, acc, tt.min)
		}
	}
}
