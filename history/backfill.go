package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine"
)

// Reader yields the log's batches in order (replay.RangeReader is one); Next returns io.EOF at the end.
type Reader interface {
	Next(ctx context.Context) (arrow.Record, error)
	Close() error
}

// Opener opens the log's batches with event time in [from, to) (and some before, which Backfill skips).
type Opener func(ctx context.Context, from, to time.Time) (Reader, error)

// Backfiller recomputes slots the store lacks from the event log: a fresh engine with the live
// configuration runs over the range (after a warm-up of the longest window) and is sampled at every step
// boundary, exactly as the live engine is. One backfill runs at a time.
type Backfiller struct {
	Store  *Store
	Open   Opener
	Engine engine.Config // the live configuration (OnDelta is cleared)
	mu     sync.Mutex
}

// Fill computes the slots of [from, to) (ms) that the store does not hold. Steps with no events are stored as
// empty slots, so a range is read from the log once. It returns the number of slots written.
func (b *Backfiller) Fill(ctx context.Context, from, to int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.Store
	step := s.stepMs()
	from -= ((from % step) + step) % step
	// Skip a held prefix and suffix: the common case is a store that holds the recent past.
	for from < to && s.Has(from) {
		from += step
	}
	for to > from && s.Has(to-step) {
		to -= step
	}
	if from >= to {
		return 0, nil
	}
	warm := engine.Windows[len(engine.Windows)-1].Milliseconds()
	r, err := b.Open(ctx, time.UnixMilli(from-warm), time.UnixMilli(to))
	if err != nil {
		return 0, fmt.Errorf("cannot read the log for history [%s, %s): %w", time.UnixMilli(from).UTC().Format(time.RFC3339), time.UnixMilli(to).UTC().Format(time.RFC3339), err)
	}
	defer r.Close()
	cfg := b.Engine
	cfg.OnDelta = nil
	eng := engine.New(cfg)
	defer eng.Stop()
	written := 0
	next := from + step // the next boundary to sample
	sample := func(end int64) {
		if !s.Has(end - step) {
			eng.Flush()
			s.Sample(end, eng)
			written++
		}
	}
	var seq uint64
	for next <= to {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return written, err
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		lo, _ := extent(rec)
		// Boundaries passed before this batch's events: sample first (the windows end at the boundary).
		for next <= to && lo >= next {
			sample(next)
			next += step
		}
		seq++
		err = eng.Apply(seq, rec)
		rec.Release()
		if err != nil {
			return written, fmt.Errorf("cannot replay the log for history: %w", err)
		}
	}
	// After the log's last event: the remaining boundaries. The windows then hold what the engine has;
	// steps past the end of the data are empty slots.
	eng.Flush()
	for ; next <= to; next += step {
		if st := eng.Status(); st.Now > 0 && st.Now >= next-step {
			sample(next)
		} else if !s.Has(next - step) {
			s.put(next-step, &slot{})
			written++
		}
	}
	return written, nil
}

// extent returns the smallest and largest event time (ms) of a batch.
func extent(rec arrow.Record) (lo, hi int64) {
	if rec.NumRows() == 0 {
		return 1 << 62, -1 << 62
	}
	ts := rec.Column(engine.ColTS).(*array.Timestamp)
	lo, hi = 1<<62, -1<<62
	for i := 0; i < ts.Len(); i++ {
		v := int64(ts.Value(i))
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}
