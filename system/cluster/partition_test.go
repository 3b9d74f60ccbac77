package cluster

import (
	"log"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/geo"
	"citybrain/ingest"
)

// A partition whose stored snapshot cannot be read (here a damaged archive; in CI15 chunks its object store
// could no longer serve after a NATS node's SIGKILL) starts anyway: it replays the partition from the log,
// catches up with every event, says why in its status, and its next snapshot replaces the damaged one.
func TestPartitionStartsFromTheLogWhenItsSnapshotIsUnreadable(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, nc := logtest.Server(t)
	cfg := eventlog.DefaultConfig()
	cfg.Mem, cfg.Partitions = mem, 1
	l, err := eventlog.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	bb := engine.NewBatchBuilder(mem)
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC).UnixMilli()
	for i := range n {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh = t0+int64(i)*1000, "veh-"+strconv.Itoa(i%7), 25
		e.Lat, e.Lng = 30.25+float64(i)*0.0002, 120.15
		cell, err := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
		if err != nil {
			t.Fatal(err)
		}
		bb.Append(&e, cell)
	}
	rec := bb.NewRecord()
	bb.Release()
	_, err = l.Append(t.Context(), rec, ingest.BatchID{ID: "b1"})
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := OpenSnapshots(t.Context(), js, 1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(t.Context(), SnapBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(t.Context(), objName(0), []byte("snap-9/state.json\x00 not a tar archive")); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Restore(t.Context(), 0, engine.New(engine.Config{Tick: time.Hour}), 1<<40); err == nil {
		t.Fatal("the damaged archive restores: the test damages nothing")
	}
	p, err := StartPartition(t.Context(), PartitionConfig{K: 0, Node: "e1", Epoch: 1, Log: l, NC: nc, Snaps: snaps,
		Engine: engine.Config{Tick: 20 * time.Millisecond}, Logger: log.New(testWriter{t}, "", 0)})
	if err != nil {
		t.Fatalf("a partition with an unreadable snapshot does not start: %v", err)
	}
	waitFor(t, "the partition replayed from the log", func() bool {
		return p.CaughtUp() && p.Engine().Status().Events == n
	})
	st := p.Status(0)
	if st.Restored != 0 || !strings.Contains(st.SnapshotError, "snapshot") {
		t.Errorf("status restored %d, snapshot error %q: want 0 and why the snapshot was not used", st.Restored, st.SnapshotError)
	}
	if err := p.Stop(true); err != nil { // a clean stop stores a snapshot
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Tick: time.Hour})
	defer eng.Stop()
	seq, err := snaps.Restore(t.Context(), 0, eng, 1<<40)
	if err != nil || seq == 0 || eng.Status().Events != n {
		t.Errorf("after the replayed partition's snapshot: restore at %d, %d events, %v; want its %d events", seq, eng.Status().Events, err, n)
	}
}
