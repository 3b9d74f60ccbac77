package ingest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/ingesttest"
)

// arrowSeeds are real streams in the engine schema (plain, zstd, lz4; every kind of event) and the lies of
// issue 15's row 1.
func arrowSeeds(f *testing.F) {
	mem := memory.NewGoAllocator()
	evs := probeEvents(20)
	for _, k := range engine.Kinds {
		e := engine.NewEvent(k)
		e.TS, e.ID, e.Lat, e.Lng = 1795737600000, "x-"+k.String(), 30.25, 120.16
		e.SpeedKmh, e.Type, e.Text, e.Value = 12, "crash", "a note", 1.5
		evs = append(evs, e)
	}
	for _, opts := range [][]ipc.Option{nil, {ipc.WithZstd()}, {ipc.WithLZ4()}} {
		good := ipcStream(f, mem, evs, opts...)
		f.Add(good)
		msgs, err := ingest.IPCMessages(good)
		if err != nil || len(msgs) < 2 {
			f.Fatal(err)
		}
		bomb := bytes.Clone(good)
		binary.LittleEndian.PutUint64(bomb[msgs[1].BodyLenAt:], 1<<42)
		f.Add(bomb)
		f.Add(good[:len(good)/2])
	}
}

// FuzzReadIPC: no stream, however made, panics the reader or allocates past its cap; what it passes on has
// the engine schema and a structure every row of which can be read.
func FuzzReadIPC(f *testing.F) {
	arrowSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = ingest.ReadIPC(data, 16<<20, func(rec arrow.Record) error {
			if err := engine.CheckSchema(rec.Schema()); err != nil {
				t.Fatalf("a batch of another schema passed: %v", err)
			}
			var ev engine.Event
			for i := 0; i < int(rec.NumRows()); i++ {
				engine.ReadEvent(rec, i, &ev)
			}
			return nil
		})
	})
}

// FuzzIngestArrow: the binary ingest path stores only valid events, counts every row once (accepted or
// rejected), and never panics.
func FuzzIngestArrow(f *testing.F) {
	arrowSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		sink := &ingesttest.MemSink{}
		defer sink.Release()
		in := ingest.New(ingest.Config{Mem: mem, MaxAhead: -1}, sink)
		res, err := in.IngestArrow(context.Background(), data, "fuzz", "")
		if err != nil {
			if sink.Rows() != 0 {
				t.Fatalf("an unreadable stream (%v) stored %d events", err, sink.Rows())
			}
			return
		}
		if int64(res.Accepted) != sink.Rows() {
			t.Fatalf("answered %d accepted, stored %d", res.Accepted, sink.Rows())
		}
		if res.Rejected != len(sink.Dead) {
			t.Fatalf("answered %d rejected, dead-lettered %d", res.Rejected, len(sink.Dead))
		}
		var ev engine.Event
		for _, rec := range sink.Recs {
			for i := 0; i < int(rec.NumRows()); i++ {
				engine.ReadEvent(rec, i, &ev)
				if err := ingest.Validate(&ev); err != nil {
					t.Fatalf("stored an invalid event: %v", err)
				}
			}
		}
	})
}
