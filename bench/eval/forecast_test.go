package eval

import (
	"math"
	"testing"
)

// The readings published at the end of a window are scored against the next window's truth, each kind on the
// same link-windows; the 1-minute kind falls back to the 5-minute estimate where the last minute had no probe.
func TestForecastsScoreTheNextWindow(t *testing.T) {
	s := &speedScore{truth: map[obsKey]SpeedObs{}, pairs: map[string][]speedPair{}}
	obs := func(w int32, unit string, kmh, vehS float64) {
		s.truth[obsKey{w, unit}] = SpeedObs{Window: w, Unit: unit, SumKmh: kmh * vehS, VehS: vehS}
	}
	obs(3, "L:a", 40, 600) // the window just closed: not a forecast
	obs(4, "L:a", 10, 600) // the next window: a queue formed
	obs(4, "L:b", 30, 600)
	obs(4, "L:c", 30, 100)               // too few vehicle-seconds to score
	obs(4, "L:d", 30, 600)               // no reading on d
	obs(4, "C:8a2a1072b59ffff", 30, 600) // not a link
	links := map[string]linkReading{
		"a": {reading: reading{Kmh: 20, Conf: 0.8}, Sample: 40, Est1: 12},
		"b": {reading: reading{Kmh: 30, Conf: 0.5}, Sample: 24, Est1: math.NaN()},
		"c": {reading: reading{Kmh: 30}, Sample: 30, Est1: 30},
	}
	s.forecasts(3, links)
	want := map[string]map[float64]float64{ // kind → truth → reading
		"link-next":        {10: 20, 30: 30},
		"link-next-sample": {10: 40, 30: 24},
		"link-next-1m":     {10: 12, 30: 30},
	}
	for kind, w := range want {
		ps := s.pairs[kind]
		if len(ps) != len(w) {
			t.Fatalf("%s: %d pairs %+v, want %d", kind, len(ps), ps, len(w))
		}
		for _, p := range ps {
			if est, ok := w[p.Truth]; !ok || est != p.Est {
				t.Errorf("%s: truth %.0f read %.0f, want %v", kind, p.Truth, p.Est, w[p.Truth])
			}
		}
	}
	if m := speedMetrics(s.pairs["link-next-sample"]); math.Abs(m.MAPE-(3.0+0.2)/2) > 1e-9 {
		t.Errorf("sample's forecast MAPE %.3f, want 1.6", m.MAPE)
	}
}
