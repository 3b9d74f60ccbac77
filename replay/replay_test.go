package replay

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/ingest"
)

// openTestLog starts an in-process JetStream server under a temp dir and opens the log on it.
func openTestLog(t *testing.T, mem memory.Allocator) *eventlog.Log {
	t.Helper()
	return logtest.Open(t, mem)
}

// appendEvents writes events to the log in batches of the given sizes.
func appendEvents(t *testing.T, l *eventlog.Log, mem memory.Allocator, events []engine.Event, sizes []int) {
	t.Helper()
	for _, rec := range buildBatches(t, mem, events, sizes) {
		if _, err := l.Append(context.Background(), rec, ingest.BatchID{}); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
}

func testEngineConfig(mem memory.Allocator) engine.Config {
	c := engine.DefaultConfig()
	c.Tick = 20 * time.Millisecond
	c.Shards = 2
	c.Mem = mem
	return c
}

// views returns an engine's published views keyed by cell, after a flush.
func views(e *engine.Engine) map[uint64]engine.CellView {
	e.Flush()
	out := map[uint64]engine.CellView{}
	for _, v := range e.All() {
		out[v.Cell] = *v
	}
	return out
}

func sameViews(t *testing.T, what string, got, want map[uint64]engine.CellView) {
	t.Helper()
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("%s: %d cells, want %d (>0)", what, len(got), len(want))
	}
	var keys []uint64
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		if g, ok := got[k]; !ok || g != want[k] {
			t.Errorf("%s: cell %x = %+v, want %+v", what, k, g, want[k])
			return
		}
	}
}

// liveRun feeds the batches of the log through an engine as the live consumer does and returns its views.
func liveRun(t *testing.T, l *eventlog.Log, mem memory.Allocator) map[uint64]engine.CellView {
	t.Helper()
	e := engine.New(testEngineConfig(mem))
	defer e.Stop()
	st, _ := l.State(context.Background())
	err := l.Read(context.Background(), 1, st.LastSeq, func(seq uint64, rec arrow.Record) error { return e.Apply(seq, rec) })
	if err != nil {
		t.Fatal(err)
	}
	return views(e)
}

func TestExportAndReplayGiveTheLogsCells(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l := openTestLog(t, mem)
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	// 20 minutes of events, 400 ms apart, in 4-second batches.
	events := testEvents(3000, t0.UnixMilli())
	for i := range events {
		events[i].TS = t0.UnixMilli() + int64(i)*400
	}
	sizes := make([]int, 300)
	for i := range sizes {
		sizes[i] = 10
	}
	appendEvents(t, l, mem, events, sizes)
	want := liveRun(t, l, mem)

	dir := t.TempDir()
	for _, f := range []Format{FormatParquet, FormatArrow, FormatNDJSON} {
		path := filepath.Join(dir, "all"+f.Ext())
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Export(context.Background(), l, fh, ExportOptions{Format: f, Mem: mem})
		fh.Close()
		if err != nil {
			t.Fatalf("export %s: %v", f, err)
		}
		if st.Events != 3000 || st.Batches != 300 {
			t.Errorf("export %s: %+v, want 3000 events in 300 batches", f, st)
		}
	}

	m := NewManager(ManagerConfig{Log: l, Engine: testEngineConfig(mem), FileDir: dir})
	defer m.Stop()
	for _, src := range []string{"", "all.parquet", "all.arrow", "all.ndjson"} {
		s, err := m.Create(Spec{File: src, Speed: 0})
		if err != nil {
			t.Fatalf("create %q: %v", src, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		in, err := s.WaitFinished(ctx)
		cancel()
		if err != nil {
			t.Fatalf("replay %q: %v (%+v)", src, err, in)
		}
		if in.Events != 3000 {
			t.Errorf("replay %q applied %d events, want 3000", src, in.Events)
		}
		sameViews(t, "replay of "+s.Info().Source, views(s.Engine()), want)
		s.Close()
		s.Close()
	}

	// A range export holds exactly the events of [from, to).
	from, to := t0.Add(5*time.Minute), t0.Add(6*time.Minute)
	path := filepath.Join(dir, "minute.parquet")
	fh, _ := os.Create(path)
	st, err := Export(context.Background(), l, fh, ExportOptions{From: from, To: to, Format: FormatParquet, Mem: mem})
	fh.Close()
	if err != nil || st.Events != 150 {
		t.Fatalf("export of one minute: %+v %v, want 150 events", st, err)
	}
	r, err := OpenFile(path, 0, mem)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := readAll(t, r)
	r.Close()
	for _, e := range got {
		if e.TS < from.UnixMilli() || e.TS >= to.UnixMilli() {
			t.Fatalf("event at %d outside [%d, %d)", e.TS, from.UnixMilli(), to.UnixMilli())
		}
	}
	if first, last, ok, _ := l.SeqRange(context.Background(), from, to, time.Second); !ok || first > 75 || last < 90 || last-first > 25 {
		t.Errorf("SeqRange of minute 5 with 1 s slack: [%d, %d] %v, want about [75, 91]", first, last, ok)
	}
}

func TestSessionPacingPauseSeekClose(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l := openTestLog(t, mem)
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	events := testEvents(600, t0.UnixMilli()) // 60 s of events
	sizes := make([]int, 60)
	for i := range sizes {
		sizes[i] = 10
	}
	appendEvents(t, l, mem, events, sizes)

	var mu sync.Mutex
	var seqs []uint64
	removedAll := false
	m := NewManager(ManagerConfig{Log: l, Engine: testEngineConfig(mem), MaxSessions: 1})
	defer m.Stop()
	closed := make(chan struct{})
	s, err := m.Create(Spec{From: t0, Speed: 60, Paused: true, OnClose: func() { close(closed) },
		OnDelta: func(d *engine.Delta) {
			mu.Lock()
			seqs = append(seqs, d.Seq)
			if len(d.Removed) > 0 && len(d.Changed) == 0 {
				removedAll = true
			}
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(Spec{}); err != ErrTooMany {
		t.Errorf("second session over a limit of 1: %v, want ErrTooMany", err)
	}
	time.Sleep(100 * time.Millisecond)
	if in := s.Info(); in.State != StatePaused || in.Events != 0 {
		t.Fatalf("paused session: %+v", in)
	}
	start := time.Now()
	if err := s.Play(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := s.WaitFinished(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// 60 s of event time at 60× is about 1 s.
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Errorf("60 s at 60× took %v, want about 1 s", took)
	}
	if in.RealTimeMultiple < 30 || in.RealTimeMultiple > 80 {
		t.Errorf("measured multiple %.1f, want about 60", in.RealTimeMultiple)
	}
	full := views(s.Engine())
	// Seek back to the middle: a new engine fast-forwarded to t0+30s holds fewer events.
	if err := s.Seek(t0.Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	in = s.Info()
	if in.State != StatePaused || in.Events == 0 || in.Events >= 600 || in.Position == "" {
		t.Errorf("after seek: %+v, want paused with part of the events", in)
	}
	half := views(s.Engine())
	var nFull, nHalf uint32
	for _, v := range full {
		nFull += v.W[2].Events
	}
	for _, v := range half {
		nHalf += v.W[2].Events
	}
	if nHalf == 0 || nHalf >= nFull {
		t.Errorf("events in 15-min windows after seek back: %d, before %d", nHalf, nFull)
	}
	if err := s.SetSpeed(0); err != nil {
		t.Fatal(err)
	}
	s.Play()
	if _, err := s.WaitFinished(ctx); err != nil {
		t.Fatal(err)
	}
	sameViews(t, "replay after seek", views(s.Engine()), full)
	s.Close()
	select {
	case <-closed:
	default:
		t.Error("Close returned before OnClose ran")
	}
	if _, ok := m.Get(s.ID()); ok {
		t.Error("the manager still serves a closed session")
	}
	if err := s.Play(); err != ErrClosed {
		t.Errorf("play after close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("delta seqs not contiguous across the seek: %v", seqs)
		}
	}
	if !removedAll {
		t.Error("the seek sent no delta removing the old engine's cells")
	}
	if len(m.List()) != 0 {
		t.Errorf("closed session still listed: %+v", m.List())
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l := openTestLog(t, mem)
	m := NewManager(ManagerConfig{Log: l, Engine: testEngineConfig(mem), Idle: 100 * time.Millisecond})
	defer m.Stop()
	s, err := m.Create(Spec{Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle session never expired")
	}
	if _, ok := m.Get(s.ID()); ok {
		t.Error("expired session still found")
	}
}
