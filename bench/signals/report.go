package signals

import (
	"fmt"
	"math"
	"strings"
)

// Table renders results as a Markdown table with the change against the fixed-time run of each scenario.
func Table(rs []Result) string {
	base := map[string]Result{}
	for _, r := range rs {
		if r.Method == Fixed {
			base[r.Scenario] = r
		}
	}
	var b strings.Builder
	b.WriteString("| network | method | trips | arrived | mean travel s | Δ travel | mean delay s | Δ delay | EV travel s | EV delay s | wall s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		f, ok := base[r.Scenario]
		dt, dd := "", ""
		if ok && r.Method != Fixed {
			dt = fmt.Sprintf("%+.1f%%", 100*(r.MeanTravelS-f.MeanTravelS)/f.MeanTravelS)
			dd = fmt.Sprintf("%+.1f%%", 100*(r.MeanDelayS-f.MeanDelayS)/f.MeanDelayS)
		}
		ev, evd := "did not arrive", ""
		if r.EVArrived {
			ev, evd = fmt.Sprintf("%.0f", r.EVTravelS), fmt.Sprintf("%.0f", r.EVDelayS)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.1f | %s | %.1f | %s | %s | %s | %.0f |\n", r.Scenario, r.Method,
			r.Vehicles, r.Arrived, r.MeanTravelS, dt, r.MeanDelayS, dd, ev, evd, r.WallS)
	}
	return b.String()
}

// Change is the relative change of b against a in percent (NaN when a is 0).
func Change(a, b float64) float64 {
	if a == 0 {
		return math.NaN()
	}
	return 100 * (b - a) / a
}
