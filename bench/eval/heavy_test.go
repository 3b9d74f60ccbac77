package eval

import "testing"

// A city's leave-one-city-out model is fitted on the other cities' runs at both loads and judged on the
// city's own runs of the corpus: its heavier runs are neither fitted on nor scored.
func TestHeavierRunsTrainOnlyTheModelsOfOtherCities(t *testing.T) {
	var runs []*corpusRun
	for _, c := range []string{"a", "b", "c"} {
		for _, load := range []float64{0, 0.75} {
			for _, low := range []bool{false, true} {
				runs = append(runs, &corpusRun{city: c, seed: 1, low: low, load: load})
			}
		}
	}
	train, test := locoSplit(runs, "b")
	if len(train) != 8 || len(test) != 2 {
		t.Fatalf("b: %d training runs (want 8: a and c at both loads and densities), %d judged (want 2)", len(train), len(test))
	}
	heavy := 0
	for _, r := range train {
		if r.city == "b" {
			t.Errorf("b's model is fitted on b's run (load %g)", r.load)
		}
		if r.load != 0 {
			heavy++
		}
	}
	if heavy != 4 {
		t.Errorf("b's model is fitted on %d heavier runs, want 4 (a's and c's)", heavy)
	}
	for _, r := range test {
		if r.city != "b" || r.load != 0 {
			t.Errorf("b is judged on a run of %s at load %g", r.city, r.load)
		}
	}
}

// The operating point is chosen on the load the model is judged at: calCorpus's city b (three false alarms
// an hour at p = 0.65) as a heavier training-only run keeps the threshold above 0.65 only when the heavier
// runs are calibrated on too.
func TestCalibrationStaysOnTheCorpusLoad(t *testing.T) {
	runs, m := calCorpus(t)
	runs[len(runs)-1].load = 0.75
	calibrate(m, calibrationRuns(runs, TrainOptions{}), 0.5)
	if m.Threshold > 0.65 {
		t.Errorf("calibrated on the corpus's own runs: threshold %.2f misses city a's closures (p = 0.65)", m.Threshold)
	}
	if p := proxyAll(runs[:9], m, m.Operating); p.fullFast != 9 {
		t.Errorf("calibrated on the corpus's own runs: %d of 9 closures found", p.fullFast)
	}
	calibrate(m, calibrationRuns(runs, TrainOptions{CalibrateHeavy: true}), 0.5)
	if m.Threshold <= 0.65 {
		t.Errorf("calibrated on the heavier run too: threshold %.2f, where it alarms three times an hour", m.Threshold)
	}
}

// A model's cache key tells a heavier run from a run of the corpus with the same rows, one load from
// another, and a calibration on the heavier runs from one without.
func TestLocoModelKeyHoldsTheLoad(t *testing.T) {
	runs := cacheCorpus(t)
	twin := *runs[1]
	twin.seed = 1
	key := func(load float64, opt TrainOptions) string {
		tw := twin
		tw.load = load
		return trainingKey([]*corpusRun{runs[0], &tw}, opt)
	}
	base := key(0, TrainOptions{})
	heavy := key(0.75, TrainOptions{})
	if base == heavy {
		t.Error("a heavier run keys like a run of the corpus with the same rows")
	}
	if heavy == key(0.6, TrainOptions{}) {
		t.Error("two loads key alike")
	}
	if heavy == key(0.75, TrainOptions{CalibrateHeavy: true}) {
		t.Error("calibrating on the heavier runs keys like calibrating without them")
	}
}

// A heavier city runs its randomTrips demand at the shorter period and names its demand and runs by the
// load; the corpus's own run names carry no load (their cached runs keep their keys).
func TestHeavierCityNamesItsLoad(t *testing.T) {
	cf := &cityFiles{Period: 0.5}
	h := cf.heavier(0.75)
	if h.Period != 0.375 || h.Load != 0.75 || cf.Period != 0.5 || cf.Load != 0 {
		t.Errorf("heavier(0.75) of period 0.5: period %g load %g (the city's own: %g, %g)", h.Period, h.Load, cf.Period, cf.Load)
	}
	if cf.loadTag() != "" || h.loadTag() != "x0.75" {
		t.Errorf("load tags %q (the corpus's) and %q (heavier)", cf.loadTag(), h.loadTag())
	}
	if runKey("grid"+cf.loadTag(), 1, 3600, nil) == runKey("grid"+h.loadTag(), 1, 3600, nil) {
		t.Error("a heavier run keys like the corpus's")
	}
	own := (&cityFiles{Routes: []string{"r.rou.xml"}}).heavier(0.75)
	if own.Period != 0 || own.Load != 0.75 {
		t.Errorf("a scenario's own demand: period %g load %g (its vehicles are scaled by SUMO instead)", own.Period, own.Load)
	}
}
