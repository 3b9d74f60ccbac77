package main

import (
	"strings"
	"testing"
)

// TestEvalRefusesCalibrationFlagsOutOfRange: a negative or NaN limit, cap or number of spared cities is refused
// with the flag named, before anything is built or run (a negative limit used to calibrate every model to the
// grid's strictest point, 0.99 held 6 times, without a word). A feature to ignore in training that the
// detector does not have is refused with its name, and so is a feeders' recipe out of range or at odds with
// itself.
func TestEvalRefusesCalibrationFlagsOutOfRange(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--cal-spare -1", "--cal-spare -1"},
		{"--cal-cap -2", "--cal-cap -2"},
		{"--cal-limit -0.5", "--cal-limit -0.5"},
		{"--cal-limit NaN", "--cal-limit NaN"},
		{"--train-ignore signal,no_such", "no feature \"no_such\""},
		{"--train-feeders 1.5", "--train-feeders 1.5"},
		{"--train-feeders NaN", "--train-feeders NaN"},
		{"--train-no-feeders --train-feeders-empty", "--train-feeders-empty"},
		{"--train-feeders 0 --train-feeders-empty", "--train-feeders-empty"},
		{"--train-no-feeders --train-feeders 0.5", "--train-feeders 0.5"},
	} {
		args := append(strings.Fields(c.args), "--no-sumo", "--no-demo", "--quiet", "--out", "", "--cache", t.TempDir())
		err := evalMain(args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("eval %s: error %v; want one naming %q", c.args, err, c.want)
		}
	}
}
