package incident

import (
	"math"
	"testing"
)

func TestSensorBeyond(t *testing.T) {
	for _, c := range []struct {
		typ        string
		val, thr   float64
		beyond     bool
		excessNear float64
	}{
		{"water_level", 0.5, 0.25, true, 1},
		{"water_level", 0.2, 0.25, false, 0},
		{"gas_ppm", 50, 50, false, 0},
		{"pipe_pressure", 1.2, 2.0, true, 0.4}, // a pressure drop
		{"water_pressure", 3.0, 2.0, false, 0},
		{"smoke", math.NaN(), 1, false, 0},
	} {
		ex, ok := SensorBeyond(c.typ, c.val, c.thr)
		if ok != c.beyond || math.Abs(ex-c.excessNear) > 1e-9 {
			t.Errorf("%s %g vs %g: %v %g, want %v %g", c.typ, c.val, c.thr, ok, ex, c.beyond, c.excessNear)
		}
	}
}
