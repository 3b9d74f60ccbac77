package ingest

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/geo"
)

// columnBases are valid events of every kind (and every video rule).
func columnBases() []engine.Event {
	ts := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli()
	mk := func(k engine.Kind, f func(e *engine.Event)) engine.Event {
		e := engine.NewEvent(k)
		e.TS, e.ID, e.Lat, e.Lng = ts, "v-1", 30.27, 120.15
		f(&e)
		return e
	}
	return []engine.Event{
		mk(engine.KindProbe, func(e *engine.Event) { e.SpeedKmh, e.HeadingDeg = 32.5, 90 }),
		mk(engine.KindDetector, func(e *engine.Event) { e.FlowVph, e.Occupancy, e.IntervalS, e.SpeedKmh, e.Lane = 900, 0.2, 60, 40, "2" }),
		mk(engine.KindDetector, func(e *engine.Event) { e.FlowVph, e.Occupancy, e.IntervalS = 0, 0, 30 }),
		mk(engine.KindTransit, func(e *engine.Event) { e.Route, e.SpeedKmh, e.Mode, e.DelayS, e.Load = "K1", 20, "bus", -30, 0.5 }),
		mk(engine.KindVideo, func(e *engine.Event) { e.Type, e.Count = "vehicle_count", 12 }),
		mk(engine.KindVideo, func(e *engine.Event) { e.Type, e.QueueM = "queue", 80 }),
		mk(engine.KindVideo, func(e *engine.Event) { e.Type, e.Confidence = "crash", 0.9 }),
		mk(engine.KindReport, func(e *engine.Event) { e.Type, e.Severity, e.Text = "crash", 3, "two cars" }),
		mk(engine.KindUnit, func(e *engine.Event) { e.UnitType, e.Status = "ambulance", "available" }),
		mk(engine.KindSensor, func(e *engine.Event) { e.Type, e.Value, e.Unit, e.Threshold = "water_level", 1.2, "m", 2 }),
	}
}

// mutate breaks (or not) one field of e with a value chosen to sit on or across a rule's edge.
func mutate(rng *rand.Rand, e *engine.Event) {
	nums := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 0.5, 1, 1.0000001, 30, 360, 361, 600, 600.01, 86_400, 86_401,
		100_000, 1e6, 1e7, -86_400, -86_401, 1e39, -1e39, math.MaxFloat32}
	strs := []string{"", "x", "bus", "tram", "crash", "queue", "vehicle_count", "fire_smoke", "ambulance", "busy", "flood",
		strings.Repeat("a", MaxIDBytes), strings.Repeat("a", MaxIDBytes+1), strings.Repeat("b", MaxShortBytes+1), strings.Repeat("t", MaxTextBytes+1)}
	num := func() float64 { return nums[rng.IntN(len(nums))] }
	str := func() string { return strs[rng.IntN(len(strs))] }
	switch rng.IntN(12) {
	case 0:
		e.Kind = engine.Kind(rng.IntN(10))
	case 1:
		e.TS = []int64{0, MinTS - 1, MinTS, MaxTS, MaxTS + 1, time.Now().Add(time.Hour).UnixMilli(), e.TS + 1}[rng.IntN(7)]
	case 2:
		e.ID = str()
	case 3:
		e.Lat = []float64{0, -90, 90, 90.5, math.NaN(), 30.1}[rng.IntN(6)]
	case 4:
		e.Lng = []float64{0, -180, 180, 181, math.NaN(), 120.3}[rng.IntN(6)]
	case 5:
		e.Severity = int8(rng.IntN(8) - 1)
	case 6, 7:
		r := &NumberRules[rng.IntN(len(NumberRules))]
		v := num()
		switch r.Col {
		case engine.ColSpeed:
			e.SpeedKmh = v
		case engine.ColHeading:
			e.HeadingDeg = v
		case engine.ColFlow:
			e.FlowVph = v
		case engine.ColOccupancy:
			e.Occupancy = v
		case engine.ColInterval:
			e.IntervalS = v
		case engine.ColDelay:
			e.DelayS = v
		case engine.ColLoad:
			e.Load = v
		case engine.ColConfidence:
			e.Confidence = v
		case engine.ColCount:
			e.Count = v
		case engine.ColQueue:
			e.QueueM = v
		case engine.ColValue:
			e.Value = v
		case engine.ColThreshold:
			e.Threshold = v
		}
	default:
		v := str()
		switch rng.IntN(9) {
		case 0:
			e.Source = v
		case 1:
			e.Lane = v
		case 2:
			e.Route = v
		case 3:
			e.Mode = v
		case 4, 5:
			e.Type = v
		case 6:
			e.UnitType = v
		case 7:
			e.Status = v
		default:
			e.Unit, e.Text = v, v
		}
	}
}

// The columnar check is an under-approximation of the row path: a one-row batch it passes is accepted by
// the row path with the same cell, and every valid event of every kind passes it (so clean batches take
// the fast path). Thousands of events with fields on and across the rules' edges.
func TestColumnarCheckAgreesWithRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := New(Config{Mem: mem}, nil)
	ahead := time.Now().Add(5 * time.Minute).UnixMilli()
	check := func(ev engine.Event) (fast, row bool) {
		cell, cerr := geo.CellOf(ev.Lat, ev.Lng, in.cfg.Res)
		bb := engine.NewBatchBuilder(mem)
		defer bb.Release()
		bb.Append(&ev, cell)
		rec := bb.NewRecord()
		defer rec.Release()
		var back engine.Event
		engine.ReadEvent(rec, 0, &back) // what the row path reads back from the columns
		c, err := in.cells.Cell(back.Lat, back.Lng)
		row = Validate(&back) == nil && back.TS <= ahead && err == nil && cerr == nil && c == cell
		return in.cleanRecord(rec, engine.KindUnknown, ahead), row
	}
	for _, ev := range columnBases() {
		if fast, row := check(ev); !fast || !row {
			t.Errorf("valid %s %s: columnar %t, rows %t", ev.Kind, ev.Type, fast, row)
		}
	}
	rng := rand.New(rand.NewPCG(13, 1))
	bases := columnBases()
	var passed, agreed int
	for i := 0; i < 5000; i++ {
		ev := bases[rng.IntN(len(bases))]
		for k := 0; k <= rng.IntN(3); k++ {
			mutate(rng, &ev)
		}
		fast, row := check(ev)
		if fast && !row {
			t.Fatalf("the columnar check passes an event the row path rejects: %+v (%v)", ev, Validate(&ev))
		}
		if fast {
			passed++
		}
		if fast == row {
			agreed++
		}
	}
	t.Logf("5000 mutated events: %d passed the columnar check, %d judged as the rows judge them", passed, agreed)
	if passed == 0 || agreed < 4750 {
		t.Errorf("columnar check passed %d and agreed on %d of 5000: it answers no too often to be the fast path", passed, agreed)
	}
}
