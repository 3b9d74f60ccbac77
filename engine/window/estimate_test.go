package window

import (
	"math"
	"testing"

	"citybrain/engine/schema"
)

// windows builds the three windows of a place: now holds the newest minute's fixes, five the rest of the five
// minutes and before the ten minutes before those (speed, number of probe fixes at that speed).
func windows(now, five, before [][2]float64) [len(schema.Windows)]schema.WindowStats {
	var ws [len(schema.Windows)]schema.WindowStats
	add := func(from int, fixes [][2]float64) {
		for _, f := range fixes {
			for i := from; i < len(ws); i++ {
				ws[i].SpeedSum += f[0] * f[1]
				ws[i].SpeedW += f[1]
				ws[i].Samples += uint32(f[1])
				ws[i].Events += uint32(f[1])
			}
		}
	}
	add(0, now)
	add(1, five)
	add(2, before)
	return ws
}

func TestOneFastCarDoesNotOutvoteTheQueueBeforeIt(t *testing.T) {
	// Five minutes with one car's two fixes at 60 km/h, after ten minutes in which 8 vehicle-minutes of
	// probes stood in a queue at 4 km/h.
	v := &CellView{W: windows(nil, [][2]float64{{60, 2}}, [][2]float64{{4, 96}})}
	ls := &LinkStats{W: v.W}
	for name, est := range map[string]Estimate{"cell": v.Estimate(1), "link": ls.Estimate(1)} {
		if sample, _ := v.W[1].Speed(); sample != 60 {
			t.Fatalf("sample %g, want 60", sample)
		}
		if !(est.Kmh > 4 && est.Kmh < 20) {
			t.Errorf("%s: a thin sample of 60 km/h after a queue at 4 reads %g km/h, want between 4 and 20", name, est.Kmh)
		}
	}
}

func TestStrongEvidenceOutweighsHistory(t *testing.T) {
	// Ten vehicle-minutes at 40 km/h now, a queue at 8 km/h before: the queue has cleared.
	v := &CellView{W: windows(nil, [][2]float64{{40, 120}}, [][2]float64{{8, 120}})}
	ls := &LinkStats{W: v.W}
	if est := ls.Estimate(1); !(est.Kmh > 32 && est.Kmh < 40) {
		t.Errorf("link reads %g km/h, want its own 40 km/h barely pulled toward the old queue", est.Kmh)
	}
	if est := v.Estimate(1); !(est.Kmh > 20 && est.Kmh < 40) {
		t.Errorf("cell reads %g km/h, want most of the way to its own 40 km/h", est.Kmh)
	}
}

func TestALinkLeansOnItsCell(t *testing.T) {
	// One car's fix at 50 km/h on the link; its cell saw ten vehicle-minutes at 12 km/h. No history.
	ls := &LinkStats{W: windows(nil, [][2]float64{{50, 1}}, nil), Cell: windows(nil, [][2]float64{{12, 120}}, nil)}
	est := ls.Estimate(1)
	if !(est.Kmh < 45 && est.Kmh > 12) {
		t.Errorf("link reads %g km/h, want its 50 km/h pulled toward its cell's 12", est.Kmh)
	}
	// Without a cell view the link reads its own sample.
	alone := &LinkStats{W: ls.W}
	if est := alone.Estimate(1); math.Abs(est.Kmh-50) > 1e-9 {
		t.Errorf("link without a cell reads %g km/h, want its sample 50", est.Kmh)
	}
	// The longest window has no history; a link's cell still counts.
	if est := alone.Estimate(2); math.Abs(est.Kmh-50) > 1e-9 {
		t.Errorf("15-min window reads %g km/h, want its sample 50", est.Kmh)
	}
}

func TestNoReadingWithoutAnObservationInTheWindow(t *testing.T) {
	v := &CellView{W: windows(nil, nil, [][2]float64{{30, 60}})}
	ls := &LinkStats{W: v.W, Cell: v.W}
	for _, est := range []Estimate{v.Estimate(1), ls.Estimate(1), v.Estimate(0)} {
		if !math.IsNaN(est.Kmh) || est.Confidence() != 0 {
			t.Errorf("a window without observations reads %g km/h at confidence %g, want none", est.Kmh, est.Confidence())
		}
	}
	if est := v.Estimate(2); math.Abs(est.Kmh-30) > 1e-9 {
		t.Errorf("15-min window reads %g, want 30", est.Kmh)
	}
}

func TestConfidenceGrowsWithEvidence(t *testing.T) {
	prev := 0.0
	for _, fixes := range []float64{1, 6, 12, 60, 600} {
		ls := &LinkStats{W: windows(nil, [][2]float64{{30, fixes}}, nil)}
		c := ls.Estimate(1).Confidence()
		if !(c > prev && c < 1) {
			t.Errorf("%g fixes: confidence %g, want more than %g and under 1", fixes, c, prev)
		}
		prev = c
	}
	if c := (&LinkStats{W: windows(nil, [][2]float64{{30, 12}}, nil)}).Estimate(1).Confidence(); math.Abs(c-0.5) > 1e-9 {
		t.Errorf("one vehicle-minute: confidence %g, want 0.5", c)
	}
	// History adds to it.
	with := (&LinkStats{W: windows(nil, [][2]float64{{30, 12}}, [][2]float64{{30, 120}})}).Estimate(1).Confidence()
	if with <= 0.5 {
		t.Errorf("with ten minutes of history: confidence %g, want more than without (0.5)", with)
	}
}
