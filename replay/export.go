package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/eventlog"
)

// ExportOptions selects what Export writes.
type ExportOptions struct {
	From, To time.Time     // event time [From, To) of the events written; zero: unbounded
	Format   Format        // arrow, parquet or ndjson
	Slack    time.Duration // see SeqRange (0: DefaultSlack)
	Mem      memory.Allocator
}

// ExportStats tells what an export wrote.
type ExportStats struct {
	Events   uint64 `json:"events"`
	Batches  uint64 `json:"batches"`
	FirstSeq uint64 `json:"first_seq"` // log sequences read
	LastSeq  uint64 `json:"last_seq"`
}

// Export writes the events of the log l with event time in [From, To) to w in the engine schema, one batch
// per log batch (rows outside the range dropped), streaming: memory is bounded by one log message and, for
// Parquet, one row group (64Ki rows).
func Export(ctx context.Context, l *eventlog.Log, w io.Writer, opt ExportOptions) (ExportStats, error) {
	var st ExportStats
	if opt.Mem == nil {
		opt.Mem = l.Mem()
	}
	if !opt.From.IsZero() && !opt.To.IsZero() && !opt.From.Before(opt.To) {
		return st, fmt.Errorf("cannot export [%s, %s): the range is empty", opt.From.Format(time.RFC3339), opt.To.Format(time.RFC3339))
	}
	bw, err := NewWriter(w, opt.Format, opt.Mem)
	if err != nil {
		return st, err
	}
	first, last, ok, err := l.SeqRange(ctx, opt.From, opt.To, opt.Slack)
	if err != nil {
		bw.Close()
		return st, err
	}
	if ok {
		st.FirstSeq, st.LastSeq = first, last
		rr, err := l.NewRangeReader(ctx, first, last)
		if err != nil {
			bw.Close()
			return st, err
		}
		defer rr.Close()
		// Operator decisions of the range go with a Parquet export as its metadata (MetaDecisions).
		dw, keep := bw.(interface{ setDecisions([]byte) })
		var decisions []Decision
		if keep {
			note := func(seq uint64, typ string, data []byte) {
				if json.Valid(data) {
					if decisions = append(decisions, Decision{Seq: seq, Type: typ, Data: append(json.RawMessage(nil), data...)}); len(decisions) > MaxDecisions {
						decisions = decisions[1:]
					}
				}
			}
			rr.OnAction = func(seq uint64, a engine.Action) error {
				data, err := json.Marshal(&a)
				if err == nil {
					note(seq, eventlog.TypeAction, data)
				}
				return nil
			}
			rr.OnTyped = func(seq uint64, typ string, data []byte) error { note(seq, typ, data); return nil }
		}
		err = CopyBatches(ctx, rr, bw, opt.From, opt.To, opt.Mem, func(rec arrow.Record) {
			st.Events += uint64(rec.NumRows())
			st.Batches++
		})
		if err != nil {
			bw.Close()
			return st, err
		}
		if keep && decisions != nil {
			js, err := json.Marshal(decisions)
			if err != nil {
				bw.Close()
				return st, fmt.Errorf("cannot encode the decisions of the range: %w", err)
			}
			dw.setDecisions(js)
		}
	}
	if err := bw.Close(); err != nil {
		return st, err
	}
	return st, nil
}

// CopyBatches reads every batch of r and writes its rows with event time in [from, to) (zero: unbounded)
// to w, calling written (when not nil) for each batch written.
func CopyBatches(ctx context.Context, r BatchReader, w BatchWriter, from, to time.Time, mem memory.Allocator, written func(arrow.Record)) error {
	for {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		out := FilterTime(rec, from, to, mem)
		rec.Release()
		if out == nil {
			continue
		}
		err = w.Write(out)
		if err == nil && written != nil {
			written(out)
		}
		out.Release()
		if err != nil {
			return err
		}
	}
}

// FilterTime returns the rows of rec with event time in [from, to) (zero: unbounded): rec itself (retained)
// when every row is in range, nil when none is, otherwise a new record. The caller releases the result.
func FilterTime(rec arrow.Record, from, to time.Time, mem memory.Allocator) arrow.Record {
	lo, hi := int64(-1)<<62, int64(1)<<62
	if !from.IsZero() {
		lo = from.UnixMilli()
	}
	if !to.IsZero() {
		hi = to.UnixMilli()
	}
	ts := rec.Column(engine.ColTS).(*array.Timestamp)
	n := ts.Len()
	in := 0
	for i := 0; i < n; i++ {
		if v := int64(ts.Value(i)); v >= lo && v < hi {
			in++
		}
	}
	switch in {
	case 0:
		return nil
	case n:
		rec.Retain()
		return rec
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	for i := 0; i < n; i++ {
		if v := int64(ts.Value(i)); v >= lo && v < hi {
			bb.AppendRow(rec, i)
		}
	}
	return bb.NewRecord()
}
