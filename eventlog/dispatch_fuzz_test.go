package eventlog

import (
	"bytes"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
)

// FuzzLogMessage feeds the log's reader any message (any type header, any body), as a foreign publisher
// or a broken store could leave it: it never panics and never stops the consumer; what it cannot read goes
// to Bad, batches reach Batch only with the engine schema.
func FuzzLogMessage(f *testing.F) {
	mem := memory.NewGoAllocator()
	bb := engine.NewBatchBuilder(mem)
	e := engine.NewEvent(engine.KindProbe)
	e.TS, e.ID, e.Lat, e.Lng, e.SpeedKmh = 1795737600000, "v", 30.25, 120.16, 20
	bb.Append(&e, 1)
	rec := bb.NewRecord()
	good, err := EncodeRecord(rec, mem)
	rec.Release()
	bb.Release()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", good)
	f.Add("", good[:len(good)-20])
	f.Add(TypeAction, []byte(`{"id":"a1","incident_id":"i1","status":"dismissed","by":"k","role":"commander"}`))
	f.Add(TypeAction, []byte(`{broken`))
	f.Add(TypeZone, []byte(`{"id":"z"}`))
	f.Add(TypeDispatch, []byte(`null`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		cm := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer cm.AssertSize(t, 0)
		l := &Log{mem: cm}
		hdr := nats.Header{}
		if typ != "" {
			hdr.Set(HeaderType, typ)
		}
		bad := 0
		err := l.dispatch(1, hdr, bytes.Clone(data), Handlers{
			Batch: func(_ uint64, rec arrow.Record) error {
				if err := engine.CheckSchema(rec.Schema()); err != nil {
					t.Fatalf("a batch of another schema: %v", err)
				}
				return nil
			},
			Action: func(uint64, engine.Action) error { return nil },
			Typed:  func(uint64, string, []byte) error { return nil },
			Bad:    func(uint64, error) { bad++ },
		})
		if err != nil {
			t.Fatalf("a message stopped the consumer: %v", err)
		}
	})
}
