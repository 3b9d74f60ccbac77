package window

import "math"

// Congestion levels, after the bands of China's road traffic performance index (TPI) that traffic police use:
// 0–2 smooth, 2–4 basically smooth, 4–6 light, 6–8 moderate, 8–10 severe congestion.
const (
	LevelSmooth          = "smooth"
	LevelBasicallySmooth = "basically_smooth"
	LevelLight           = "light"
	LevelModerate        = "moderate"
	LevelSevere          = "severe"
)

// Congestion is 1 − speed/freeFlow clamped to 0..1 (1 = standstill). A free-flow speed that is not positive
// gives 0: with nothing to compare against there is no evidence of congestion.
func Congestion(speed, freeFlow float64) float64 {
	if !(freeFlow > 0) || math.IsNaN(speed) {
		return 0
	}
	c := 1 - speed/freeFlow
	return math.Max(0, math.Min(1, c))
}

// TPI maps congestion (0..1) to the 0..10 traffic performance index. The mapping is piecewise linear through
// travel-time ratios: TPI 2 at 25% speed loss (travel time ×1.33), 4 at 40% (×1.67), 6 at 55% (×2.2), 8 at 70%
// (×3.3), 10 at standstill. Below 25% loss traffic is smooth however the road is classed. See docs/congestion.md.
func TPI(congestion float64) float64 {
	knots := [...][2]float64{{0, 0}, {0.25, 2}, {0.40, 4}, {0.55, 6}, {0.70, 8}, {1, 10}}
	c := math.Max(0, math.Min(1, congestion))
	for i := 1; i < len(knots); i++ {
		if c <= knots[i][0] {
			a, b := knots[i-1], knots[i]
			return a[1] + (c-a[0])/(b[0]-a[0])*(b[1]-a[1])
		}
	}
	return 10
}

// Level names the TPI band of tpi; band edges belong to the more congested level (TPI 2 is basically smooth).
func Level(tpi float64) string {
	switch {
	case tpi < 2:
		return LevelSmooth
	case tpi < 4:
		return LevelBasicallySmooth
	case tpi < 6:
		return LevelLight
	case tpi < 8:
		return LevelModerate
	default:
		return LevelSevere
	}
}
