package eval

import (
	"testing"

	"citybrain/engine/detect"
)

// The trees are fitted on the ordinary rows past the gate and on full closures' rows, not on a partial closure's:
// on corpus c6 a partial closure squeezes its traffic at one point and most of its link's rows read as ordinary
// traffic (fitOn). Rows near a blockage stay out as before.
func TestTheTreesAreNotFittedOnPartialClosuresRows(t *testing.T) {
	var x [detect.NumFeatures]float64
	x[detect.FStandLog] = 1 // past the gate
	var quiet [detect.NumFeatures]float64
	rows := []Row{
		{X: x, Label: 0},
		{X: x, Label: 0},
		{X: quiet, Label: 0}, // not past the gate
		{X: x, Label: 1, Truth: "blk-1", Class: ClassFull},
		{X: x, Label: 1, Truth: "blk-2", Class: ClassPartial},
		{X: x, Label: -1, Truth: "blk-2", Class: ClassPartial},
	}
	d, err := gbCollect([]*corpusRun{{city: "c", rows: rows}})
	if err != nil {
		t.Fatal(err)
	}
	var pos int
	for _, y := range d.y {
		if y == 1 {
			pos++
		}
	}
	if len(d.y) != 3 || pos != 1 {
		t.Fatalf("the trees are fitted on %d rows, %d of them positive; want 3 (two ordinary rows past the gate, the full closure's), 1 positive", len(d.y), pos)
	}
}
