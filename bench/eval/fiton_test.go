package eval

import (
	"math"
	"testing"

	"citybrain/engine/detect"
)

// The trees are fitted on the ordinary rows past the gate and on full closures' rows, not on a partial closure's:
// on corpus c6 a partial closure squeezes its traffic at one point and most of its link's rows read as ordinary
// traffic (fitOn). Rows near a blockage stay out as before.
func TestTheTreesAreNotFittedOnPartialClosuresRows(t *testing.T) {
	x, quiet := gateRows()
	rows := []Row{
		{X: x, Label: 0},
		{X: x, Label: 0},
		{X: quiet, Label: 0}, // not past the gate
		{X: x, Label: 1, Truth: "blk-1", Class: ClassFull},
		{X: x, Label: 1, Truth: "blk-2", Class: ClassPartial},
		{X: x, Label: -1, Truth: "blk-2", Class: ClassPartial},
	}
	d, err := gbCollect([]*corpusRun{{city: "c", rows: rows}}, 0, nil)
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

// With a partial weight (TrainOptions.Partial, `eval --train-partial`) a partial closure's rows past the gate are
// fitted on as positives, each weighing that share of a full closure's row; the positives together still weigh
// gbPosShare of the negatives, and the Platt scaling counts the partial row at its weight. Rows near a blockage
// and rows short of the gate stay out.
func TestPartialClosuresRowsAreFittedOnAtTheirWeight(t *testing.T) {
	x, quiet := gateRows()
	rows := []Row{
		{X: x, Label: 0},
		{X: x, Label: 0},
		{X: x, Label: 0},
		{X: x, Label: 0},
		{X: x, Label: 1, Truth: "blk-1", Class: ClassFull},
		{X: x, Label: 1, Truth: "blk-2", Class: ClassPartial},
		{X: quiet, Label: 1, Truth: "blk-2", Class: ClassPartial}, // not past the gate
		{X: x, Label: -1, Truth: "blk-2", Class: ClassPartial},
	}
	d, err := gbCollect([]*corpusRun{{city: "c", rows: rows}}, 0.25, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.y) != 6 {
		t.Fatalf("the trees are fitted on %d rows; want 6 (four ordinary, the full closure's, the partial closure's past the gate)", len(d.y))
	}
	var full, part, neg float64
	for i, y := range d.y {
		switch {
		case y == 0:
			neg += d.w[i]
		case d.rel[i] == 1:
			full = d.w[i]
		default:
			part = d.w[i]
		}
	}
	if math.Abs(part-0.25*full) > 1e-12 || math.Abs(full+part-gbPosShare*neg) > 1e-12 {
		t.Fatalf("a full closure's row weighs %g, a partial closure's %g, the negatives %g; want the partial row a quarter of the full one's and the positives %g of the negatives", full, part, neg, gbPosShare)
	}
	// On two runs of a straight road, the second run's blockage a partial closure that shows in a feature of
	// its own (traffic squeezing past, not standing): fitted without its rows the trees read it as ordinary
	// traffic, fitted with them they score its rows higher; the two fits are cached under different keys.
	runs := cacheCorpus(t)
	own := (max(detect.FStandLog, detect.FExitDeficit) + 1) % detect.NumFeatures
	var blocked []int
	for i := range runs[1].rows {
		if row := &runs[1].rows[i]; row.Label == 1 {
			row.Class = ClassPartial
			row.X[detect.FStandLog] -= 2
			row.X[detect.FExitDeficit] -= 3
			row.X[own] += 3
			blocked = append(blocked, i)
		}
	}
	mean := func(m *detect.Model) float64 {
		var sum float64
		for _, i := range blocked {
			sum += m.Prob(&runs[1].rows[i].X)
		}
		return sum / float64(len(blocked))
	}
	plain, err := fitModel(runs, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	with, err := fitModel(runs, TrainOptions{Partial: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p, q := mean(plain), mean(with); !(q > p) {
		t.Fatalf("the partial closure's rows score %.3f fitted without them and %.3f fitted with them; want higher with them", p, q)
	}
	if trainingKey(runs, TrainOptions{Partial: 0.25}) == trainingKey(runs, TrainOptions{}) {
		t.Fatal("a model fitted on partial closures' rows is cached under the key of one fitted without them")
	}
	if _, err := fitModel(runs, TrainOptions{Kind: "logistic", Partial: 0.25}); err == nil {
		t.Fatal("a logistic fit took a partial weight it does not apply")
	}
}

// gateRows are the features of a row past the gate (x) and of one short of it (quiet).
func gateRows() (x, quiet [detect.NumFeatures]float64) {
	x[detect.FStandLog] = 1
	return x, quiet
}
