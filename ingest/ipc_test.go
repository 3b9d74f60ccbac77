package ingest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/ingesttest"
)

// ipcStream encodes events as an Arrow IPC stream in the engine schema (opts: compression).
func ipcStream(t testing.TB, mem memory.Allocator, events []engine.Event, opts ...ipc.Option) []byte {
	t.Helper()
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	for i := range events {
		bb.Append(&events[i], 0)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(engine.Schema), ipc.WithAllocator(mem)}, opts...)...)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func probeEvents(n int) []engine.Event {
	out := make([]engine.Event, n)
	for i := range out {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh = 1795737600000+int64(i)*100, "veh-1", 30
		e.Lat, e.Lng = 30.25+float64(i)*0.0001, 120.15
		out[i] = e
	}
	return out
}

// ipcMessages walks the framing of a well-formed stream.
func ipcMessages(t testing.TB, data []byte) []ingest.IPCMessage {
	t.Helper()
	msgs, err := ingest.IPCMessages(data)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// A stream whose record-batch header claims a body of 2^42 bytes (table row 1: the process died with
// "out of memory") is refused before anything is allocated for the body, as are other lying lengths, a
// compressed buffer that claims to inflate past the cap, and every truncation of a good stream.
func TestReadIPCRefusesLyingLengths(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := ipcStream(t, mem, probeEvents(100))
	msgs := ipcMessages(t, good)
	if len(msgs) != 2 || msgs[1].BodyLen == 0 {
		t.Fatalf("stream layout %+v, want a schema and a record batch with a body", msgs)
	}
	read := func(data []byte) (rows int64, err error) {
		err = ingest.ReadIPC(data, 64<<20, func(rec arrow.Record) error { rows += rec.NumRows(); return nil })
		return rows, err
	}
	if rows, err := read(good); err != nil || rows != 100 {
		t.Fatalf("good stream: %d rows, %v", rows, err)
	}

	bomb := bytes.Clone(good)
	binary.LittleEndian.PutUint64(bomb[msgs[1].BodyLenAt:], 1<<42)
	if _, err := read(bomb); err == nil || !strings.Contains(err.Error(), "claims a body of 4398046511104 bytes") {
		t.Errorf("body length 2^42: %v, want an error naming the claimed body", err)
	}
	negative := bytes.Clone(good)
	binary.LittleEndian.PutUint64(negative[msgs[1].BodyLenAt:], uint64(1)<<63)
	if _, err := read(negative); err == nil {
		t.Error("negative body length: no error")
	}
	meta := bytes.Clone(good)
	binary.LittleEndian.PutUint32(meta[msgs[1].Meta-4:], 0x7fffffff)
	if _, err := read(meta); err == nil || !strings.Contains(err.Error(), "bytes of metadata") {
		t.Errorf("metadata length 2^31-1: %v, want an error naming the metadata", err)
	}

	// Compressed: the first buffer of the body (the ts values) starts with its uncompressed length.
	zstd := ipcStream(t, mem, probeEvents(100), ipc.WithZstd())
	zm := ipcMessages(t, zstd)
	if rows, err := read(zstd); err != nil || rows != 100 {
		t.Fatalf("zstd stream: %d rows, %v", rows, err)
	}
	binary.LittleEndian.PutUint64(zstd[zm[1].Body:], 1<<40)
	if _, err := read(zstd); err == nil || !strings.Contains(err.Error(), "more memory than its cap") {
		t.Errorf("compressed buffer claiming 2^40 bytes: %v, want the allocation cap", err)
	}

	for n := 0; n < len(good)-8; n++ { // the last 8 bytes are the end-of-stream marker: optional
		if rows, err := read(good[:n]); err == nil && rows == 100 {
			t.Fatalf("truncated at %d of %d bytes: read whole", n, len(good))
		}
	}
}

// A batch that claims more rows than its buffers hold is refused before any row is read.
func TestReadIPCRefusesShortBuffers(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := ipcStream(t, mem, probeEvents(10))
	// The RecordBatch's length (rows) is the first field of its table; find the int64 10 in the metadata.
	m := ipcMessages(t, good)[1]
	at := bytes.Index(good[m.Meta:m.Meta+m.MetaLen], binary.LittleEndian.AppendUint64(nil, 10))
	if at < 0 {
		t.Fatal("cannot find the row count in the batch metadata")
	}
	liar := bytes.Clone(good)
	binary.LittleEndian.PutUint64(liar[m.Meta+at:], 1<<20)
	err := ingest.ReadIPC(liar, 64<<20, func(rec arrow.Record) error {
		t.Errorf("a batch of %d rows reached the callback", rec.NumRows())
		return nil
	})
	if err == nil {
		t.Error("a batch claiming 2^20 rows over buffers of 10: no error")
	}
}

// Numbers that do not fit the float32 columns, or break the physical ranges, are rejected by the Arrow
// path as by JSON (table row 6: speed 1e300 became +Inf and turned the city KPI null); strings over their
// limits too (row 5).
func TestIngestArrowRejectsOutOfRange(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sink := &ingesttest.MemSink{}
	in := ingest.New(ingest.Config{Mem: mem, MaxAhead: -1}, sink)
	evs := probeEvents(4)
	evs[1].SpeedKmh = math.Inf(1)
	evs[2].SpeedKmh = 1e30
	evs[3].ID = strings.Repeat("x", ingest.MaxIDBytes+1)
	res, err := in.IngestArrow(context.Background(), ipcStream(t, mem, evs), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 3 {
		t.Fatalf("accepted %d rejected %d, want 1 and 3 (%v)", res.Accepted, res.Rejected, res.Errors)
	}
	for i, want := range []string{"speed_kmh", "speed_kmh", "id"} {
		var fe *ingest.FieldError
		if !errors.As(res.Errors[i].Err, &fe) || fe.Field != want {
			t.Errorf("error %d: %v, want one naming %s", i, res.Errors[i].Err, want)
		}
	}
	sink.Release()
}
