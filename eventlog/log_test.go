package eventlog_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats-server/v2/server"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/geo"
	"citybrain/ingest"
)

// probes returns a batch of n probes from t0, one every 100 ms.
func probes(t testing.TB, mem memory.Allocator, n int, t0 int64) arrow.Record {
	t.Helper()
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	for i := 0; i < n; i++ {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh = t0+int64(i)*100, "veh-1", 30
		e.Lat, e.Lng = 30.25+float64(i)*0.001, 120.15
		cell, err := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
		if err != nil {
			t.Fatal(err)
		}
		bb.Append(&e, cell)
	}
	return bb.NewRecord()
}

// A batch appended again with the same message id (a client's retry after a lost answer, possibly across a
// restart) is not stored twice and is reported as a duplicate, so the ingestor counts it once.
func TestAppendDuplicateMessageID(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l := logtest.Open(t, mem)
	rec := probes(t, mem, 20, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
	defer rec.Release()
	seq, err := l.Append(t.Context(), rec, ingest.BatchID{ID: "batch-1"})
	if err != nil || seq != 1 {
		t.Fatalf("first append: seq %d err %v", seq, err)
	}
	seq, err = l.Append(t.Context(), rec, ingest.BatchID{ID: "batch-1"})
	if !errors.Is(err, ingest.ErrDuplicate) || seq != 1 {
		t.Errorf("retry: seq %d err %v, want seq 1 and ingest.ErrDuplicate", seq, err)
	}
	if st, _ := l.State(t.Context()); st.Msgs != 1 {
		t.Errorf("the log holds %d messages, want 1", st.Msgs)
	}
}

// A batch's headers are padded to a multiple of 8 bytes, so a reader's copy of the message has its Arrow
// body on a word and reads it in place: whatever the lengths of the message id and the body hash.
func TestAppendAlignsBody(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, nc := logtest.Server(t)
	cfg := eventlog.DefaultConfig()
	cfg.Mem = mem
	l, err := eventlog.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("citybrain.log.>") // the events subject and its partitions
	if err != nil {
		t.Fatal(err)
	}
	rec := probes(t, mem, 20, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
	defer rec.Release()
	for i := 0; i < 12; i++ {
		id := ingest.BatchID{ID: strings.Repeat("k", i), Hash: strings.Repeat("h", i*3)}
		if _, err := l.Append(t.Context(), rec, id); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(eventlog.HeaderRows) == "" {
			t.Fatalf("a message on %s without %s", m.Subject, eventlog.HeaderRows)
		}
		if p := uintptr(unsafe.Pointer(&m.Data[0])); p%8 != 0 {
			t.Errorf("id %q hash %q: the body starts %d bytes past a word (headers %v)", id.ID, id.Hash, p%8, m.Header)
		}
	}
}

// Where the server's disk cannot hold the configured size limit (JetStream reserves each stream's limit and
// takes at most 3/4 of the disk free), the log opens with what fits instead of not at all, and says so.
func TestOpenFitsTheDisk(t *testing.T) {
	for _, c := range []struct {
		store int64 // the server's JetStream store limit
		ok    bool
	}{{1 << 30, true}, {300 << 20, true}, {64 << 20, false}} {
		_, nc, stop := logtest.ServerWith(t, server.Options{JetStreamMaxStore: c.store})
		cfg := eventlog.DefaultConfig() // 20 GiB
		l, err := eventlog.Open(t.Context(), nc, cfg)
		switch {
		case !c.ok && err == nil:
			t.Errorf("store %d MiB: the log opened with %d MiB", c.store>>20, l.MaxBytes()>>20)
		case c.ok && err != nil:
			t.Errorf("store %d MiB: %v", c.store>>20, err)
		case c.ok && (l.MaxBytes() > c.store || l.MaxBytes() < 64<<20):
			t.Errorf("store %d MiB: the log got %d MiB", c.store>>20, l.MaxBytes()>>20)
		}
		if c.ok && err == nil {
			// It stores and reads like any log.
			rec := probes(t, memory.NewGoAllocator(), 10, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
			if _, err := l.Append(t.Context(), rec, ingest.BatchID{}); err != nil {
				t.Errorf("store %d MiB: %v", c.store>>20, err)
			}
			rec.Release()
			if err := l.AppendDead(t.Context(), []ingest.DeadLetter{{Via: "test", Error: "bad", Raw: "{}"}}, ingest.BatchID{}); err != nil {
				t.Errorf("store %d MiB: dead letter: %v", c.store>>20, err)
			}
		}
		stop()
	}
}
