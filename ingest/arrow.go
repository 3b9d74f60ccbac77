package ingest

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"citybrain/engine"
)

func countKinds(rec arrow.Record, st *Stats) {
	kinds := rec.Column(engine.ColKind).(*array.Uint8)
	var n [8]uint64
	for i := 0; i < kinds.Len(); i++ {
		n[kinds.Value(i)&7]++
	}
	for k, c := range n {
		if c > 0 {
			st.Accepted[k].Add(c)
		}
	}
}

// IngestArrow is the binary fast path: data is an Arrow IPC stream of record batches in the engine schema
// (engine.Schema; the cell column may be 0 and is always recomputed). Every row is validated by the same rules
// as JSON; a batch whose rows are all valid and correctly celled goes to the log as it came, otherwise the
// valid rows are rebuilt into a new batch and the others dead-lettered. Line numbers count rows from 1 across
// the stream's batches.
func (in *Ingestor) IngestArrow(ctx context.Context, data []byte, via, msgID string) (Result, error) {
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(in.cfg.Mem))
	if err != nil {
		return Result{}, fmt.Errorf("cannot read Arrow IPC stream: %w", err)
	}
	defer r.Release()
	if err := engine.CheckSchema(r.Schema()); err != nil {
		return Result{}, err
	}
	in.stats.Bytes.Add(uint64(len(data)))
	var res Result
	line := 0
	for part := 0; r.Next(); part++ {
		rec := r.Record()
		b := in.newBatch(via, engine.KindUnknown)
		b.res.Errors = res.Errors // the answer lists the first MaxErrors of the whole stream
		clean := true
		cells := rec.Column(engine.ColCell).(*array.Uint64)
		var ev engine.Event
		for i := 0; i < int(rec.NumRows()); i++ {
			line++
			engine.ReadEvent(rec, i, &ev)
			cell, ok := b.add(line, nil, &ev, Validate(&ev))
			if !ok || cells.Value(i) != cell || cells.IsNull(i) {
				clean = false
			}
		}
		var out arrow.Record
		if clean {
			out = rec // every row valid and correctly celled: it goes to the log as it came
		}
		id := msgID
		if id != "" && part > 0 {
			id = fmt.Sprintf("%s#%d", msgID, part)
		}
		pr, err := b.store(ctx, out, id)
		b.Release()
		if err != nil {
			return res, err
		}
		res.Errors = pr.Errors
		res.Accepted += pr.Accepted
		res.Rejected += pr.Rejected
		res.Seq = max(res.Seq, pr.Seq)
	}
	if err := r.Err(); err != nil {
		return res, fmt.Errorf("cannot read Arrow IPC stream after %d rows: %w", line, err)
	}
	if res.Accepted == 0 && res.Rejected == 0 {
		return res, ErrNoEvents
	}
	return res, nil
}
