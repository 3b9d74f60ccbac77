package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"bytes"

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
	now := time.Now().UTC()
	for part := 0; r.Next(); part++ {
		rec := r.Record()
		var dead []DeadLetter
		bb := engine.NewBatchBuilder(in.cfg.Mem)
		clean := true
		cells := rec.Column(engine.ColCell).(*array.Uint64)
		var ev engine.Event
		var pr Result
		for i := 0; i < int(rec.NumRows()); i++ {
			line++
			engine.ReadEvent(rec, i, &ev)
			err := Validate(&ev)
			var cell uint64
			if err == nil {
				cell, err = in.cells.Cell(ev.Lat, ev.Lng)
			}
			if err != nil {
				clean = false
				pr.Rejected++
				if len(res.Errors) < in.cfg.MaxErrors {
					res.Errors = append(res.Errors, LineError{Line: line, Err: err})
				}
				dead = append(dead, DeadLetter{ReceivedAt: now, Via: via, Line: line, Error: err.Error(),
					Raw: string(AppendJSON(nil, &ev))})
				continue
			}
			if cells.Value(i) != cell || rec.Column(engine.ColCell).IsNull(i) {
				clean = false
			}
			bb.Append(&ev, cell)
			pr.Accepted++
		}
		out := rec
		if !clean {
			out = bb.NewRecord()
		} else {
			out.Retain()
		}
		bb.Release()
		id := msgID
		if id != "" && part > 0 {
			id = fmt.Sprintf("%s#%d", msgID, part)
		}
		err := in.store(ctx, out, dead, id, &pr)
		out.Release()
		if err != nil {
			return res, err
		}
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
