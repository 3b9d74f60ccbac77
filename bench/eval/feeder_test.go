package eval

import (
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

// The shipped model's recipe (--train-no-feeders) fits a full closure's feeder rows as near rows: nearFeeders
// relabels exactly the positives of another link than the closure's, never the closed link's own rows, a
// partial closure's, an ordinary row or a near one.
func TestTheShippedRecipeFitsFeedersAsNearRows(t *testing.T) {
	net, _ := lineRoad(t, "feeders")
	start := simStart.Add(10 * time.Minute)
	truths := []Truth{
		{ID: "full", Class: ClassFull, Link: "L2", Start: start, End: start.Add(10 * time.Minute)},
		{ID: "partial", Class: ClassPartial, Link: "L4", Start: start, End: start.Add(10 * time.Minute)},
	}
	at := start.Add(time.Minute).UnixMilli()
	rows := []Row{
		{Link: 2, T: at, Label: 1, Truth: "full", Class: ClassFull},       // the closed link's own
		{Link: 1, T: at, Label: 1, Truth: "full", Class: ClassFull},       // its feeder's (feederOfClosure)
		{Link: 4, T: at, Label: 1, Truth: "partial", Class: ClassPartial}, // a partial closure's own
		{Link: 3, T: at, Label: -1, Truth: "partial", Class: ClassPartial},
		{Link: 0, T: at},
	}
	run := &corpusRun{city: "feeders", rows: rows, truths: truths, net: net}
	if n := nearFeeders([]*corpusRun{run}); n != 1 {
		t.Errorf("%d rows relabelled, want the feeder's one", n)
	}
	for i, want := range []int8{1, -1, 1, -1, 0} {
		if got := run.rows[i].Label; got != want {
			t.Errorf("row %d (link L%d): label %d, want %d", i, run.rows[i].Link, got, want)
		}
	}
}
