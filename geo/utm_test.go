package geo

import (
	"math"
	"strings"
	"testing"
)

func TestUTMKnownPoints(t *testing.T) {
	tests := []struct {
		name string
		zone UTMZone
		p    LatLng
		e, n float64
		tolM float64
	}{
		// On the central meridian the northing is k0 times the meridian arc (WGS84 arc to 45° = 4,984,944.378 m).
		{"central meridian 45N", UTMZone{Zone: 32}, LatLng{45, 9}, 500000, 0.9996 * 4984944.378, 0.01},
		{"equator", UTMZone{Zone: 32}, LatLng{0, 9}, 500000, 0, 0.001},
		{"equator south", UTMZone{Zone: 32, South: true}, LatLng{0, 9}, 500000, 10000000, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, n := LatLngToUTM(tt.zone, tt.p)
			if math.Abs(e-tt.e) > tt.tolM || math.Abs(n-tt.n) > tt.tolM {
				t.Errorf("LatLngToUTM(%v) = %.3f, %.3f, want %.3f, %.3f", tt.p, e, n, tt.e, tt.n)
			}
			back := UTMToLatLng(tt.zone, tt.e, tt.n)
			if d := DistanceM(back, tt.p); d > tt.tolM+0.001 {
				t.Errorf("UTMToLatLng(%.3f, %.3f) = %v, %.4f m from %v", tt.e, tt.n, back, d, tt.p)
			}
		})
	}
}

func TestUTMRoundTrip(t *testing.T) {
	for _, z := range []UTMZone{{32, false}, {50, false}, {18, true}} {
		cm := z.centralMeridian()
		for lat := -80.0; lat <= 84; lat += 7.3 {
			if (lat < 0) != z.South {
				continue
			}
			for dl := -3.0; dl <= 3; dl += 0.75 {
				p := LatLng{lat, cm + dl}
				e, n := LatLngToUTM(z, p)
				if back := UTMToLatLng(z, e, n); DistanceM(p, back) > 0.001 {
					t.Fatalf("zone %v: %v -> (%.3f, %.3f) -> %v", z, p, e, n, back)
				}
			}
		}
	}
}

func TestParseUTMProj(t *testing.T) {
	tests := []struct {
		in      string
		want    UTMZone
		wantErr string
	}{
		{"+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84 +units=m +no_defs", UTMZone{32, false}, ""},
		{"+proj=utm +zone=23 +south +ellps=WGS84 +units=m", UTMZone{23, true}, ""},
		{"+proj=merc +ellps=WGS84", UTMZone{}, "only UTM is supported"},
		{"+proj=utm +zone=61", UTMZone{}, "not 1..60"},
		{"+proj=utm +zone=32 +ellps=intl", UTMZone{}, "is not WGS84"},
		{"+proj=utm", UTMZone{}, "want +proj=utm with a +zone"},
	}
	for _, tt := range tests {
		got, err := ParseUTMProj(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseUTMProj(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseUTMProj(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}
