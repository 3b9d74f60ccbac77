package cluster

import (
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
	"citybrain/eventlog/logtest"
	"citybrain/geo"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two engine nodes share the partitions evenly; when one stops renewing (a SIGKILL), the other owns every
// partition once the dead node's leases and record are a TTL old, and a lease cannot be renewed by a node
// that lost it.
func TestLeasesShareAndFailOver(t *testing.T) {
	_, nc := logtest.Server(t)
	js, _ := jetstream.New(nc)
	kv, err := OpenKV(t.Context(), js, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	a, b := NewLeases(kv, "a", n), NewLeases(kv, "b", n)
	round := func(l *Leases, id string) {
		t.Helper()
		PutNode(t.Context(), kv, NodeInfo{ID: id, Role: "engine", Partitions: l.Held()})
		gained, lost, err := l.Round(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range lost {
			if c.Release {
				l.Release(t.Context(), c.Partition)
			}
		}
		_ = gained
	}
	waitFor(t, "an even share", func() bool {
		round(a, "a")
		round(b, "b")
		return len(a.Held()) == 3 && len(b.Held()) == 3
	})
	for _, k := range a.Held() {
		for _, j := range b.Held() {
			if k == j {
				t.Fatalf("partition %d held by both", k)
			}
		}
	}
	// b dies: a alone takes everything after the TTL.
	t0 := time.Now()
	waitFor(t, "a owning every partition", func() bool {
		round(a, "a")
		time.Sleep(100 * time.Millisecond)
		return len(a.Held()) == n
	})
	t.Logf("partitions moved %s after the last renewal (TTL 1 s, rounds every 100 ms)", time.Since(t0).Round(10*time.Millisecond))
	// b comes back from a pause: its renewals fail (wrong revision), so it stops its partitions at once.
	_, lost, _ := b.Round(t.Context())
	if len(lost) != 3 || len(b.Held()) != 0 {
		t.Errorf("a node whose leases were taken lost %d partitions and holds %v, want 3 lost and none held", len(lost), b.Held())
	}
	v, err := Read(t.Context(), kv)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; k++ {
		if v.Owners[k] != "a" {
			t.Errorf("partition %d owned by %q, want a", k, v.Owners[k])
		}
	}
}

func cellAt(t *testing.T, lat, lng float64) uint64 {
	t.Helper()
	c, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type deltaLog struct {
	mu     sync.Mutex
	deltas []*engine.Delta
}

func (d *deltaLog) add(x *engine.Delta) { d.mu.Lock(); d.deltas = append(d.deltas, x); d.mu.Unlock() }
func (d *deltaLog) n() int              { d.mu.Lock(); defer d.mu.Unlock(); return len(d.deltas) }

// The merged view is the union of the partitions' cells and incidents, a link's shares add up, a unit is its
// newest report; a new owner's frames (another epoch) and a lost frame make it fetch the partition's full
// state from the owner, and frames larger than a message arrive in chunks.
func TestMergedView(t *testing.T) {
	_, nc := logtest.Server(t)
	net := geo.GenerateWestLake(1)
	link := net.Links()[0]
	var dl deltaLog
	m, err := NewMerged(nc, 2, engine.Config{Res: 9, Network: net}, dl.add, log.New(testWriter{t}, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// c0 is the cell of the link's midpoint, which its speed estimate leans on.
	c0, c1 := engine.LinkCell(link, 9), cellAt(t, 30.27, 120.13)
	if c0 == c1 {
		t.Fatalf("the link's cell is c1")
	}
	view := func(c uint64, samples uint32) *engine.CellView {
		v := &engine.CellView{Cell: c, Res: 9, Lat: 30.25, Lng: 120.15}
		v.W[0].Samples, v.W[0].Events = samples, samples
		return v
	}
	lp := func(samples uint32) []LinkPart {
		p := LinkPart{ID: link.ID}
		p.W[0].Samples = samples
		return []LinkPart{p}
	}
	// Full states answered by "owners" of each partition.
	full := map[int]*Frame{
		0: {Partition: 0, Node: "e1", Epoch: 5, Seq: 1, Full: true, Changed: []*engine.CellView{view(c0, 3)},
			Units: []engine.Unit{{ID: "amb-1", TS: 100, Lat: 30.25}}, Links: lp(2), Status: engine.Status{Events: 3}},
		1: {Partition: 1, Node: "e2", Epoch: 7, Seq: 4, Full: true, Changed: []*engine.CellView{view(c1, 4)},
			Units: []engine.Unit{{ID: "amb-1", TS: 200, Lat: 30.27}}, Links: lp(5), Status: engine.Status{Events: 4},
			Incidents: []engine.Incident{{ID: "inc-1", Cell: c1}}},
	}
	var asked sync.Map
	var fullMu sync.Mutex
	for k := range 2 {
		nc.Subscribe(StateSubject(k), func(msg *nats.Msg) {
			n, _ := asked.LoadOrStore(k, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			fullMu.Lock()
			data, _ := EncodeFrame(full[k])
			fullMu.Unlock()
			publishChunks(nc, msg.Reply, fmt.Sprintf("full-%d", k), data)
		})
	}
	pub := func(f *Frame) {
		data, err := EncodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := publishChunks(nc, OutSubject(f.Partition), fmt.Sprintf("%s-%d-%d", f.Node, f.Epoch, f.Seq), data); err != nil {
			t.Fatal(err)
		}
	}
	pub(&Frame{Partition: 0, Node: "e1", Epoch: 5, Seq: 2, Status: engine.Status{Events: 3}})
	pub(&Frame{Partition: 1, Node: "e2", Epoch: 7, Seq: 5, Changed: []*engine.CellView{view(c1, 6)}, Status: engine.Status{Events: 6}})
	waitFor(t, "both partitions in sync", func() bool {
		s := m.Sync()
		return s[0].Synced && s[1].Synced
	})
	if got := len(m.All()); got != 2 {
		t.Errorf("%d cells, want 2 (one per partition)", got)
	}
	for _, v := range m.All() {
		if v.Cell == c1 && v.W[0].Samples != 6 {
			t.Errorf("partition 1's cell has %d samples, want 6 (the delta after its full state)", v.W[0].Samples)
		}
	}
	if st := m.Status(); st.Events != 3+6 {
		t.Errorf("merged events %d, want 9", st.Events)
	}
	if u := m.Units(); len(u) != 1 || u[0].TS != 200 {
		t.Errorf("units %+v, want amb-1 once, its newest report", u)
	}
	ls := m.Links(geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90})
	if len(ls) != 1 || ls[0].W[0].Samples != 7 {
		t.Errorf("links %+v, want one link with 2+5 samples", ls)
	}
	if len(ls) == 1 && ls[0].Cell[0].Samples != 3 {
		t.Errorf("the link's cell windows %+v, want its midpoint cell's (3 samples, partition 0)", ls[0].Cell[0])
	}
	if in := m.Incidents(); len(in) != 1 || in[0].ID != "inc-1" {
		t.Errorf("incidents %+v", in)
	}
	// A lost frame (seq 7 after 5) makes partition 1 resync; a heartbeat drops incidents no longer visible.
	fullMu.Lock()
	full[1].Seq = 7
	full[1].Incidents = nil
	fullMu.Unlock()
	pub(&Frame{Partition: 1, Node: "e2", Epoch: 7, Seq: 7})
	waitFor(t, "a second full state of partition 1", func() bool {
		n, _ := asked.Load(1)
		return n != nil && n.(*atomic.Int64).Load() >= 2 && m.Sync()[1].Synced
	})
	pub(&Frame{Partition: 1, Node: "e2", Epoch: 7, Seq: 8, HasVisible: true})
	waitFor(t, "the incident dropped", func() bool { return len(m.Incidents()) == 0 })
	// A new owner of partition 0 (failover): the old cell goes, the new owner's state comes, in a delta.
	c2 := cellAt(t, 30.24, 120.16)
	fullMu.Lock()
	full[0] = &Frame{Partition: 0, Node: "e3", Epoch: 9, Seq: 1, Full: true, Changed: []*engine.CellView{view(c2, 1)}}
	fullMu.Unlock()
	before := dl.n()
	pub(&Frame{Partition: 0, Node: "e3", Epoch: 9, Seq: 1, Results: map[string]string{"act-1": "", "act-2": "incident inc-9 is already cleared"}})
	waitFor(t, "the new owner's state", func() bool { return m.Sync()[0].Owner == "e3" && m.Sync()[0].Synced })
	cells := map[uint64]bool{}
	for _, v := range m.All() {
		cells[v.Cell] = true
	}
	if cells[c0] || !cells[c2] {
		t.Errorf("after the new owner: cells %v, want %x gone and %x there", cells, c0, c2)
	}
	// The delta is emitted just after the partition shows as in sync: wait for it.
	waitFor(t, "a delta removing the old owner's cell", func() bool {
		dl.mu.Lock()
		defer dl.mu.Unlock()
		for _, d := range dl.deltas[before:] {
			for _, c := range d.Removed {
				if c == c0 {
					return true
				}
			}
		}
		return false
	})
	if err, done := m.ActionResult("act-1"); !done || err != nil {
		t.Errorf("act-1: %v %v, want done without error", err, done)
	}
	if err, done := m.ActionResult("act-2"); !done || err == nil || !strings.Contains(err.Error(), "already cleared") {
		t.Errorf("act-2: %v %v, want the engine's error", err, done)
	}
}

// A frame larger than a message travels in chunks and is put back together; chunks out of order are refused.
func TestChunks(t *testing.T) {
	var a assembler
	data := []byte(strings.Repeat("x", 10))
	msg := func(i, n int, part string) *nats.Msg {
		m := nats.NewMsg("s")
		m.Data = []byte(part)
		m.Header.Set(hdrFrame, "f1")
		m.Header.Set(hdrChunk, fmt.Sprintf("%d/%d", i, n))
		return m
	}
	if out, err := a.add(msg(0, 2, string(data[:5]))); out != nil || err != nil {
		t.Fatalf("first chunk: %q %v", out, err)
	}
	if out, err := a.add(msg(1, 2, string(data[5:]))); string(out) != string(data) || err != nil {
		t.Fatalf("last chunk: %q %v", out, err)
	}
	if _, err := a.add(msg(1, 2, "zz")); err == nil {
		t.Error("a chunk without its first was accepted")
	}
	for _, h := range []string{"", "1", "2/1", "-1/2", "0/0", "a/b"} {
		m := msg(0, 1, "x")
		m.Header.Set(hdrChunk, h)
		if _, err := a.add(m); err == nil {
			t.Errorf("chunk header %q accepted", h)
		}
	}
	if _, err := DecodeFrame([]byte("not gob")); err == nil {
		t.Error("garbage decoded as a frame")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// A partition applied to its last message is caught up with no lag, whatever the consumer's last pending
// count said; one message behind its last, it lags.
func TestStatusTrustsWhatWasApplied(t *testing.T) {
	eng := engine.New(engine.Config{Tick: time.Hour})
	defer eng.Stop()
	p := &Partition{cfg: PartitionConfig{K: 5}, targetSeq: 1583, started: time.Now()}
	p.eng.Store(eng)
	p.applied.Store(1600)
	p.pending.Store(7)
	if st := p.Status(1607); st.CaughtUp || st.Lag != 7 {
		t.Errorf("applied 1600 of 1607: caught up %v, lag %d; want not caught up, the consumer's 7", st.CaughtUp, st.Lag)
	}
	p.applied.Store(1607)
	p.pending.Store(1) // the server's count, stale
	if st := p.Status(1607); !st.CaughtUp || st.Lag != 0 {
		t.Errorf("applied 1607 of 1607 with 1 pending reported: caught up %v, lag %d; want caught up, lag 0", st.CaughtUp, st.Lag)
	}
	if !p.CaughtUp() {
		t.Error("the partition does not say it caught up")
	}
	if st := p.Status(1610); st.Lag == 0 {
		t.Errorf("applied 1607, newest 1610: lag %d, want more than 0", st.Lag)
	}
}
