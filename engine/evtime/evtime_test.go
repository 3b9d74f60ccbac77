package evtime

import "testing"

func TestIndexRoundsTowardNegativeInfinity(t *testing.T) {
	for _, c := range []struct{ t, step, idx, floor int64 }{
		{0, 5000, 0, 0},
		{4999, 5000, 0, 0},
		{5000, 5000, 1, 5000},
		{-1, 5000, -1, -5000},
		{-5000, 5000, -1, -5000},
		{-5001, 5000, -2, -10000},
		{1_733_500_000_123, 60_000, 28_891_666, 1_733_499_960_000},
	} {
		if got := Index(c.t, c.step); got != c.idx {
			t.Errorf("Index(%d, %d) = %d, want %d", c.t, c.step, got, c.idx)
		}
		if got := Floor(c.t, c.step); got != c.floor {
			t.Errorf("Floor(%d, %d) = %d, want %d", c.t, c.step, got, c.floor)
		}
	}
}
