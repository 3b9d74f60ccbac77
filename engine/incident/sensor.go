package incident

import (
	"math"
	"strings"
)

// SensorBeyond tells whether a city sensor's reading is beyond its threshold and by how much (relative to the
// threshold). Most sensors warn by rising over it (water level, gas, smoke, temperature); a sensor whose type
// names a pressure warns by falling under it (a pipe's pressure drop). engine/zones judges readings the same way.
func SensorBeyond(typ string, value, threshold float64) (excess float64, beyond bool) {
	if math.IsNaN(value) || math.IsNaN(threshold) {
		return 0, false
	}
	d := value - threshold
	if FallingSensor(typ) {
		d = -d
	}
	if !(d > 0) {
		return 0, false
	}
	return d / math.Max(math.Abs(threshold), 1e-9), true
}

// FallingSensor reports whether a sensor type warns by falling under its threshold.
func FallingSensor(typ string) bool { return strings.Contains(strings.ToLower(typ), "pressure") }
