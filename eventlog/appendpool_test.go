package eventlog_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/ingest"
)

// Batches appended from several goroutines at once (the NATS ingest workers) are each stored as they were
// encoded: the appends share encoding buffers between batches, and none is reused while its bytes are still
// on their way (a message holding another batch's bytes, or a torn one, fails the comparison).
func TestConcurrentAppendsKeepTheirBytes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, nc := logtest.Server(t)
	cfg := eventlog.DefaultConfig()
	cfg.Mem = mem
	l, err := eventlog.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("citybrain.log.>")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 12
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli()
	sent := map[int64]arrow.Record{} // by the batch's first event time
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			start := t0 + int64(w*each+i)*1_000_000
			sent[start] = probes(t, mem, 50+37*i+w, start)
		}
	}
	defer func() {
		for _, r := range sent {
			r.Release()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rec := sent[t0+int64(w*each+i)*1_000_000]
				if _, err := l.Append(t.Context(), rec, ingest.BatchID{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := 0; n < workers*each; n++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		r, err := ipc.NewReader(bytes.NewReader(m.Data), ipc.WithAllocator(mem))
		if err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		if !r.Next() {
			t.Fatalf("message %d holds no batch: %v", n, r.Err())
		}
		got := r.Record()
		first := got.Column(0).(*array.Timestamp).Value(0)
		want, ok := sent[int64(first)]
		if !ok || !array.RecordEqual(got, want) {
			t.Errorf("message %d (first time %d, %d rows) is not the batch sent with that time", n, first, got.NumRows())
		}
		r.Release()
	}
}

// BenchmarkAppend: a 2,000-probe batch appended to the log of an in-process server (encode, publish, the
// answer); -benchmem shows what one append allocates.
func BenchmarkAppend(b *testing.B) {
	mem := memory.NewGoAllocator()
	_, nc := logtest.Server(b)
	cfg := eventlog.DefaultConfig()
	cfg.Mem = mem
	l, err := eventlog.Open(b.Context(), nc, cfg)
	if err != nil {
		b.Fatal(err)
	}
	rec := probes(b, mem, 2000, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
	defer rec.Release()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(b.Context(), rec, ingest.BatchID{}); err != nil {
			b.Fatal(err)
		}
	}
}
