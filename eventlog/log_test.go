package eventlog_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/geo"
	"citybrain/ingest"
)

// probes returns a batch of n probes from t0, one every 100 ms.
func probes(t *testing.T, mem memory.Allocator, n int, t0 int64) arrow.Record {
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
