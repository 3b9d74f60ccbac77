package eval

import (
	"math"
	"slices"
	"testing"
	"time"

	"citybrain/engine/detect"
)

// A full closure of link C, fed by B, which A feeds: a row of B (the feeder) is a positive of the closure from
// 30 s after it began to its end; a row of A (two links up), of the closed link itself (rowLabel's), or a
// feeder of a partial closure is not.
func TestAFeederOfAFullClosureIsItsPositive(t *testing.T) {
	topo := []detect.Link{{Down: []int32{1}}, {Up: []int32{0}, Down: []int32{2, 3}}, {Up: []int32{1}}, {Up: []int32{1}}}
	idx := map[string]int32{"A": 0, "B": 1, "C": 2, "D": 3}
	start := simStart.Add(10 * time.Minute)
	truths := []Truth{
		{ID: "full", Class: ClassFull, Link: "C", Start: start, End: start.Add(10 * time.Minute)},
		{ID: "partial", Class: ClassPartial, Link: "D", Start: start.Add(30 * time.Minute), End: start.Add(40 * time.Minute)},
	}
	ms := func(d time.Duration) int64 { return start.Add(d).UnixMilli() }
	for _, c := range []struct {
		name string
		li   int32
		t    int64
		want string
	}{
		{"the feeder a minute in", 1, ms(time.Minute), "full"},
		{"the feeder at its end", 1, ms(10 * time.Minute), "full"},
		{"the feeder 20 s in", 1, ms(20 * time.Second), ""},
		{"the feeder after its end", 1, ms(11 * time.Minute), ""},
		{"two links up", 0, ms(time.Minute), ""},
		{"the closed link", 2, ms(time.Minute), ""},
		{"the feeder of a partial closure", 1, ms(35 * time.Minute), ""},
	} {
		id, ok := feederOfClosure(idx, topo, c.li, c.t, truths)
		if id != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q, %v; want %q", c.name, id, ok, c.want)
		}
	}
}

// A training recipe for full closures' feeder positives (Feeders; eval --train-no-feeders, --train-feeders,
// --train-feeders-empty) decides which of them the trees are fitted on and at what weight: by default every one
// as a row of the closed link; weight 0 none (near rows: the shipped model's recipe); a weight below 1 each at
// that share; Empty only where the closed link itself has no row at that bucket end. Never the closed link's
// own rows, a partial closure's, an ordinary or a near row.
func TestAFeederRecipeFitsTheFeedersPositivesItKeeps(t *testing.T) {
	net, _ := lineRoad(t, "feeders")
	start := simStart.Add(10 * time.Minute)
	truths := []Truth{
		{ID: "full", Class: ClassFull, Link: "L2", Start: start, End: start.Add(10 * time.Minute)},
		{ID: "partial", Class: ClassPartial, Link: "L4", Start: start, End: start.Add(10 * time.Minute)},
	}
	x, _ := gateRows()
	at := start.Add(time.Minute).UnixMilli()
	later := start.Add(2 * time.Minute).UnixMilli()
	rows := []Row{
		{X: x, Link: 2, T: at, Label: 1, Truth: "full", Class: ClassFull},    // the closed link's own
		{X: x, Link: 1, T: at, Label: 1, Truth: "full", Class: ClassFull},    // its feeder's, the closed link has a row
		{X: x, Link: 1, T: later, Label: 1, Truth: "full", Class: ClassFull}, // its feeder's, the closed link has none
		{X: x, Link: 4, T: at, Label: 1, Truth: "partial", Class: ClassPartial},
		{X: x, Link: 3, T: at, Label: -1, Truth: "partial", Class: ClassPartial},
		{X: x, Link: 0, T: at},
		{X: x, Link: 5, T: at},
	}
	run := &corpusRun{city: "feeders", rows: rows, truths: truths, net: net}
	for _, c := range []struct {
		name   string
		fd     *Feeders
		weighs []float64 // the positives' weights relative to the closed link's row, in row order
	}{
		{"the default recipe", nil, []float64{1, 1, 1}},
		{"weight 1 (the default)", &Feeders{Weight: 1}, []float64{1, 1, 1}},
		{"no feeders (the shipped recipe)", &Feeders{Weight: 0}, []float64{1}},
		{"a quarter", &Feeders{Weight: 0.25}, []float64{1, 0.25, 0.25}},
		{"only where the closed link has no row", &Feeders{Weight: 1, Empty: true}, []float64{1, 1}},
		{"half, only where the closed link has no row", &Feeders{Weight: 0.5, Empty: true}, []float64{1, 0.5}},
	} {
		d, err := gbCollect([]*corpusRun{run}, 0, c.fd)
		if err != nil {
			t.Fatal(err)
		}
		var rel []float64
		var pos, neg float64
		for i, y := range d.y {
			if y == 1 {
				rel = append(rel, d.rel[i])
				pos += d.w[i]
			} else {
				neg += d.w[i]
			}
		}
		if !slices.Equal(rel, c.weighs) || len(d.y) != len(c.weighs)+2 {
			t.Errorf("%s: %d rows fitted on, the positives weighing %v; want the two ordinary rows and positives %v", c.name, len(d.y), rel, c.weighs)
		}
		if math.Abs(pos-gbPosShare*neg) > 1e-12 {
			t.Errorf("%s: the positives weigh %g, the negatives %g; want %g of them", c.name, pos, neg, gbPosShare)
		}
	}
	// The recipe is every model's, the leave-one-city-out ones' too (Config.trainOptions), and its models are
	// cached apart; the default recipe keeps the keys every model so far was cached under.
	for _, c := range []struct {
		cfg  Config
		want *Feeders
	}{
		{Config{}, nil},
		{Config{TrainNoFeeders: true}, &Feeders{Weight: 0}},
		{Config{TrainFeeders: &Feeders{Weight: 0.25}}, &Feeders{Weight: 0.25}},
		{Config{TrainFeeders: &Feeders{Weight: 1, Empty: true}}, &Feeders{Weight: 1, Empty: true}},
		{Config{TrainFeeders: &Feeders{Weight: 1}}, nil},
	} {
		got := c.cfg.trainOptions().Feeders
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%+v: the models are fitted with the recipe %v; want %v", c.cfg, got, c.want)
		}
	}
	runs := []*corpusRun{run}
	keys := map[string]string{}
	for _, fd := range []*Feeders{nil, {Weight: 0}, {Weight: 0.25}, {Weight: 0.5}, {Weight: 1, Empty: true}, {Weight: 0.5, Empty: true}} {
		k := trainingKey(runs, TrainOptions{Feeders: fd})
		if prev, ok := keys[k]; ok {
			t.Errorf("the recipes %q and %q share a cache key", prev, fd)
		}
		keys[k] = fd.String()
	}
	if trainingKey(runs, TrainOptions{Feeders: &Feeders{Weight: 1}}) != trainingKey(runs, TrainOptions{}) {
		t.Error("weight 1 is the default recipe but is cached apart from it")
	}
}
