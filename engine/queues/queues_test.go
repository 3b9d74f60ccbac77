package queues

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// corridor is a small network: a → [S1 at B] → b (200 m) → [S2 at C] → c, a cross street x joining at B and
// y at C, and a side road b2 leaving B. All links one lane, 50 km/h.
//
//	      X          Y
//	      |x         |y
//	A -a- B ---b---- C -c- D
//	      |b2
//	      E
func corridor(t *testing.T) *geo.Network {
	t.Helper()
	const lat0, lng0 = 30.25, 120.16
	mLat, mLng := 1/111320.0, 1/(111320.0*math.Cos(lat0*math.Pi/180))
	pt := func(x, y float64) geo.LatLng { return geo.LatLng{Lat: lat0 + y*mLat, Lng: lng0 + x*mLng} }
	nodes := []geo.Node{
		{ID: "A", LatLng: pt(-150, 0)}, {ID: "B", LatLng: pt(0, 0), Signalised: true}, {ID: "C", LatLng: pt(200, 0), Signalised: true},
		{ID: "D", LatLng: pt(350, 0)}, {ID: "X", LatLng: pt(0, 150)}, {ID: "Y", LatLng: pt(200, 150)}, {ID: "E", LatLng: pt(0, -150)},
	}
	link := func(id, from, to string, a, b geo.LatLng) geo.Link {
		return geo.Link{ID: id, From: from, To: to, Lanes: 1, SpeedLimitKmh: 50, Geometry: []geo.LatLng{a, b},
			LaneInfo: []geo.Lane{{ID: id + "_0", Index: 0}}}
	}
	links := []geo.Link{
		link("a", "A", "B", pt(-150, 0), pt(0, 0)), link("b", "B", "C", pt(0, 0), pt(200, 0)),
		link("c", "C", "D", pt(200, 0), pt(350, 0)), link("x", "X", "B", pt(0, 150), pt(0, 0)),
		link("y", "Y", "C", pt(200, 150), pt(200, 0)), link("b2", "B", "E", pt(0, 0), pt(0, -150)),
	}
	net, err := geo.NewNetwork("test", nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	ph := func(st ...string) []geo.SignalPhase {
		var out []geo.SignalPhase
		for _, s := range st {
			out = append(out, geo.SignalPhase{State: s, DurS: 30})
		}
		return out
	}
	net.SetSignals(
		&geo.Signal{ID: "S1", Nodes: []string{"B"}, Phases: ph("GGr", "yyr", "rrG", "rry"), Links: []geo.SignalLink{
			{Index: 0, From: "a", To: "b", FromLane: "a_0", ToLane: "b_0", Turn: geo.TurnStraight},
			{Index: 1, From: "a", To: "b2", FromLane: "a_0", ToLane: "b2_0", Turn: geo.TurnRight},
			{Index: 2, From: "x", To: "b", FromLane: "x_0", ToLane: "b_0", Turn: geo.TurnLeft}}},
		&geo.Signal{ID: "S2", Nodes: []string{"C"}, Phases: ph("Gr", "yr", "rG", "ry"), Links: []geo.SignalLink{
			{Index: 0, From: "b", To: "c", FromLane: "b_0", ToLane: "c_0", Turn: geo.TurnStraight},
			{Index: 1, From: "y", To: "c", FromLane: "y_0", ToLane: "c_0", Turn: geo.TurnRight}}},
	)
	return net
}

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli()

// feeder builds batches as the engine hands them to Observe: detector readings with their lane and probe
// points with their matched link, on a checked allocator.
type feeder struct {
	t   *testing.T
	mem *memory.CheckedAllocator
	est *Estimator
	net *geo.Network
}

type row struct {
	ev   schema.Event
	link string
	off  float64
}

func det(lane string, atS, count, intervalS, occ float64) row {
	ev := schema.NewEvent(schema.KindDetector)
	ev.TS, ev.ID, ev.Lane = t0+int64(atS*1000), "loop-"+lane, lane
	ev.Lat, ev.Lng = 30.25, 120.16
	ev.FlowVph, ev.IntervalS, ev.Occupancy = count*3600/intervalS, intervalS, occ
	return row{ev: ev, off: 0.8, link: lane[:len(lane)-2]}
}

func probe(id, link string, atS, off, kmh float64) row {
	ev := schema.NewEvent(schema.KindProbe)
	ev.TS, ev.ID, ev.SpeedKmh = t0+int64(atS*1000), id, kmh
	ev.Lat, ev.Lng = 30.25, 120.16
	return row{ev: ev, link: link, off: off}
}

func (f *feeder) feed(rows ...row) {
	f.t.Helper()
	bb := schema.NewBatchBuilder(f.mem)
	defer bb.Release()
	links := make([]int32, len(rows))
	offs := make([]float32, len(rows))
	idx := map[string]int32{}
	for i, l := range f.net.Links() {
		idx[l.ID] = int32(i)
	}
	for i := range rows {
		bb.Append(&rows[i].ev, 0)
		links[i], offs[i] = -1, 0
		if li, ok := idx[rows[i].link]; ok {
			links[i], offs[i] = li, float32(rows[i].off)
		}
	}
	rec := bb.NewRecord()
	f.est.Observe(rec, links, offs)
	rec.Release()
}

func newFeeder(t *testing.T) *feeder {
	net := corridor(t)
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return &feeder{t: t, mem: mem, est: New(net, DefaultConfig()), net: net}
}

func (f *feeder) lane(id string) LaneView {
	return f.est.Lanes([]string{id}, 10)[0]
}

// Vehicles counted through S1's green travel down b and queue at S2's red; S2's green discharges them into c.
func TestPropagation(t *testing.T) {
	f := newFeeder(t)
	f.est.Report("S1", "GGr", t0)
	f.est.Report("S2", "rG", t0)
	// The loops' first readings place them 0.8 along their links: 30 m before S1 on a, 40 m before S2 on b.
	f.feed(det("a_0", 0, 0, 2, 0), det("b_0", 0, 0, 2, 0), det("x_0", 0, 0, 2, 0), det("y_0", 0, 0, 2, 0))
	// 4 vehicles through a's loop in 2 s; no probe has moved yet: half go straight into b, half right into b2.
	// They enter b 2 s + 30 m / 13.9 m/s after the reading (6.2 s) and reach its loop 160 m later (17.7 s).
	f.feed(det("a_0", 2, 4, 2, 0.2), det("b_0", 2, 0, 2, 0))
	if v := f.lane("b_0"); v.QueueVeh != 0 || v.ArriveVeh != 0 {
		t.Fatalf("b right after: %+v (nothing due within 10 s)", v)
	}
	f.feed(det("b_0", 8, 0, 2, 0))
	if v := f.lane("b_0"); math.Abs(v.ArriveVeh-2) > 1e-9 {
		t.Errorf("b at 8 s: %.2f expected within 10 s, want 2", v.ArriveVeh)
	}
	f.feed(det("b_0", 20, 0, 2, 0))
	v := f.lane("b_0")
	if math.Abs(v.QueueVeh-2) > 1e-9 || v.Green {
		t.Fatalf("b at 20 s: %+v, want 2 waiting at red", v)
	}
	if v.WaitS < 10 || v.OutFill != 0 {
		t.Errorf("b waits %.0f s, out fill %.2f", v.WaitS, v.OutFill)
	}
	// S2 turns green; its loop counts the 2 through: b is empty, c has them on their way.
	f.est.Report("S2", "Gr", t0+20_000)
	f.feed(det("b_0", 22, 2, 2, 0.3))
	if v := f.lane("b_0"); v.QueueVeh != 0 || v.GapS != 0 || !v.Green {
		t.Errorf("b after discharge: %+v", v)
	}
	if fill := f.est.fill(f.est.byID["c"]); fill <= 0 {
		t.Errorf("c fill %.3f, want the 2 vehicles on it", fill)
	}
}

// Counts during red are stored between the loop and the stop line and leave at the green; a loop occupied
// through red means the queue reaches it; a green loop that sees nothing for the gap means an empty lane.
func TestCorrections(t *testing.T) {
	f := newFeeder(t)
	f.est.Report("S1", "rrG", t0)
	f.feed(det("a_0", 2, 1, 2, 0.2)) // loop at 0.8 of 150 m: 30 m before the stop line, 4 vehicles' room
	if v := f.lane("a_0"); v.QueueVeh != 1 || math.Abs(v.LoopM-30) > 0.5 {
		t.Errorf("one stored: %+v", v)
	}
	f.feed(det("a_0", 4, 0, 2, 0.9))
	if v := f.lane("a_0"); v.QueueVeh < 4.9 {
		t.Errorf("queue over the loop: %+v, want 30 m / 7.5 m stored + 1 on the loop", v)
	}
	f.est.Report("S1", "GGr", t0+4_000)
	f.feed(det("a_0", 6, 2, 2, 0.5), det("a_0", 8, 2, 2, 0.4))
	for s := 10.0; s <= 16; s += 2 {
		f.feed(det("a_0", s, 0, 2, 0))
	}
	if v := f.lane("a_0"); v.QueueVeh != 0 || v.GapS < 8 {
		t.Errorf("gapped out: %+v, want empty", v)
	}
	// Counts nothing predicted: a rate of unpredicted arrivals, expected within the horizon.
	for s := 18.0; s <= 318; s += 2 {
		f.feed(det("x_0", s, 1, 2, 0.1))
	}
	if v := f.lane("x_0"); v.ArriveVeh < 2.5 || v.ArriveVeh > 5 {
		t.Errorf("x with a vehicle every 2 s from outside for 300 s (the rate's half-life): %.2f expected in 10 s, want 2.5..5", v.ArriveVeh)
	}
}

// Probe moves teach the turning ratios; a standing probe bounds the queue from below.
func TestProbes(t *testing.T) {
	f := newFeeder(t)
	for i := 0; i < 20; i++ {
		id := string(rune('A' + i))
		f.feed(probe(id, "a", float64(i), 0.5, 40), probe(id, "b", float64(i)+5, 0.2, 40))
	}
	r := f.est.ratios(f.est.byID["a"], []int32{f.est.byID["b"], f.est.byID["b2"]})
	if r[0] < 0.8 || math.Abs(r[0]+r[1]-1) > 1e-9 {
		t.Errorf("a → b share %.2f after 20 probes straight on, want > 0.8", r[0])
	}
	if v := f.lane("a_0"); v.TurnShares["b"] != r[0] {
		t.Errorf("lane turn shares %v", v.TurnShares)
	}
	f.est.Report("S2", "rG", t0)
	f.feed(probe("Z", "b", 40, 0.5, 0)) // standing 100 m before S2's stop line
	if v := f.lane("b_0"); v.QueueVeh < 9 {
		t.Errorf("standing probe 100 m back: queue %.1f, want about 100/7.5 × 0.7", v.QueueVeh)
	}
}

func TestWaitFor(t *testing.T) {
	f := newFeeder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if f.est.WaitFor(ctx, t0) {
		t.Fatal("nothing seen yet, but WaitFor reported it had")
	}
	done := make(chan bool)
	go func() { done <- f.est.WaitFor(context.Background(), t0+4000) }()
	f.feed(det("a_0", 2, 0, 2, 0))
	f.feed(det("a_0", 4, 0, 2, 0))
	if !<-done {
		t.Error("WaitFor did not see the event at 4 s")
	}
	if f.est.Now() != t0+4000 {
		t.Errorf("now %d", f.est.Now()-t0)
	}
	// A network without signals answers nothing and ignores batches.
	e := New(nil, Config{})
	if v := e.Lanes([]string{"a_0"}, 10); v[0].Link != "" {
		t.Errorf("no network: %+v", v)
	}
}

// A partial green (some of a lane's movements green, others red): only the vehicles bound for the green ones
// go on, the others stop before the stop line, and a loop that then counts nothing does not mean an empty
// lane (the head vehicle waits for its red movement) but a wait.
func TestPartialGreen(t *testing.T) {
	f := newFeeder(t)
	f.est.Report("S1", "GrG", t0) // a: straight green, right red
	f.feed(det("a_0", 0, 0, 2, 0))
	f.feed(det("a_0", 2, 4, 2, 0.3)) // no probe yet: half straight, half right
	for s := 4.0; s <= 14; s += 2 {
		f.feed(det("a_0", s, 0, 2, 0))
	}
	v := f.lane("a_0")
	if math.Abs(v.QueueVeh-2) > 1e-9 || !v.Green {
		t.Fatalf("a after 12 s of a partial green with nothing crossing: %+v, want the 2 bound right still waiting", v)
	}
	if v.WaitS < 8 {
		t.Errorf("a's head waits %.0f s, want counted since the last crossing", v.WaitS)
	}
	if b, b2 := f.est.fill(f.est.byID["b"]), f.est.fill(f.est.byID["b2"]); b <= 0 || b2 != 0 {
		t.Errorf("fills b %.3f, b2 %.3f: only the straight movement was green", b, b2)
	}
	// The whole lane green: they go, and a loop that then counts nothing for the gap means an empty lane.
	f.est.Report("S1", "GGr", t0+14_000)
	for s := 16.0; s <= 26; s += 2 {
		f.feed(det("a_0", s, 0, 2, 0))
	}
	if v := f.lane("a_0"); v.QueueVeh != 0 {
		t.Errorf("a after a full green gapped out: %+v, want empty", v)
	}
}

// The perimeter: a and x come from the edge of the network (entries); b runs from S1 to S2 (inner). The
// area's fill counts the inner links only.
func TestPerimeter(t *testing.T) {
	f := newFeeder(t)
	if f.est.AreaFill() != 0 {
		t.Fatalf("empty area fill %.3f", f.est.AreaFill())
	}
	for _, tt := range []struct {
		lane  string
		entry bool
	}{{"a_0", true}, {"x_0", true}, {"y_0", true}, {"b_0", false}} {
		if v := f.lane(tt.lane); v.Entry != tt.entry {
			t.Errorf("%s entry %v, want %v", tt.lane, v.Entry, tt.entry)
		}
	}
	f.est.Report("S1", "GGr", t0)
	f.est.Report("S2", "rG", t0)
	f.feed(det("a_0", 0, 0, 2, 0), det("b_0", 0, 0, 2, 0))
	f.feed(det("a_0", 2, 8, 2, 0.5)) // 8 through S1: 4 straight into b (200 m: 26.7 vehicles' storage)
	if got, want := f.est.AreaFill(), 4/(200/7.5); math.Abs(got-want) > 0.01 {
		t.Errorf("area fill %.3f, want %.3f (4 vehicles on b)", got, want)
	}
}
