package ingest

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

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

// arrowCap is the allocation cap of decoding an Arrow IPC stream of n bytes: what its uncompressed buffers
// can need, with room for compressed ones, never more than the decoded-body limit.
func (in *Ingestor) arrowCap(n int) int64 {
	return min(in.cfg.MaxDecoded, max(16*int64(n), 1<<20))
}

// IngestArrow is the binary fast path: data is an Arrow IPC stream of record batches in the engine schema
// (engine.Schema; the cell column may be 0 and is always recomputed), read by ReadIPCInPlace (lengths checked
// against the bytes received, structure checked; the columns are views into data, which the caller must not
// change until IngestArrow returns). Every row is validated by the same
// rules as JSON. The whole stream is read and judged before anything is stored, so an unreadable stream
// stores nothing; then each batch whose rows are all valid and correctly celled goes to the log as it came,
// otherwise its valid rows are rebuilt into a new batch and the others dead-lettered. Line numbers count
// rows from 1 across the stream's batches. via and key are as for Ingest.
func (in *Ingestor) IngestArrow(ctx context.Context, data []byte, via, key string) (Result, error) {
	return in.ingestArrow(ctx, data, via, key, "")
}

// ingestArrow is IngestArrow of a body whose hash (as batchID takes it) the caller computed while reading it
// (empty: not known).
func (in *Ingestor) ingestArrow(ctx context.Context, data []byte, via, key, hash string) (Result, error) {
	if err := in.admit(); err != nil {
		return Result{}, err
	}
	in.stats.Bytes.Add(uint64(len(data)))
	lease := lease{b: in.budget}
	defer lease.release()
	if err := lease.grow(2 * int64(len(data))); err != nil {
		return Result{}, err
	}
	type part struct {
		b     *batch
		clean arrow.Record // the batch as it came, when every row was valid and correctly celled
	}
	var parts []part
	defer func() {
		for _, p := range parts {
			p.b.Release()
			if p.clean != nil {
				p.clean.Release()
			}
		}
	}()
	var errs []LineError
	line := 0
	err := ReadIPCInPlace(data, in.arrowCap(len(data)), func(rec arrow.Record) error {
		b := in.newBatch(via, engine.KindUnknown)
		parts = append(parts, part{b: b})
		b.res.Errors = errs // the answer lists the first MaxErrors of the whole stream
		if n := int(rec.NumRows()); in.cleanRecord(rec, engine.KindUnknown, b.aheadMs) {
			// Every row is accepted as it is (columns.go): the batch goes to the log as it came.
			line += n
			b.res.Accepted += n
			rec.Retain()
			parts[len(parts)-1].clean = rec
			return nil
		}
		clean := true
		cells := rec.Column(engine.ColCell).(*array.Uint64)
		var ev engine.Event
		for i := 0; i < int(rec.NumRows()); i++ {
			line++
			engine.ReadEvent(rec, i, &ev)
			cell, ok := b.add(line, nil, &ev, Validate(&ev))
			if !ok || cells.Value(i) != cell {
				clean = false
			}
		}
		errs = b.res.Errors
		if clean {
			rec.Retain()
			parts[len(parts)-1].clean = rec
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, p := range parts {
		res.Accepted += p.b.res.Accepted
		res.Rejected += p.b.res.Rejected
	}
	if res.Accepted == 0 && res.Rejected == 0 {
		return res, ErrNoEvents
	}
	id := batchIDOf(via, key, hash, data)
	for k, p := range parts {
		pid := id
		if k > 0 && pid.ID != "" {
			pid.ID = fmt.Sprintf("%s#%d", id.ID, k)
		}
		pr, err := p.b.store(ctx, p.clean, pid)
		if err != nil {
			if k > 0 {
				return Result{}, fmt.Errorf("%w (batch %d of %d; the ones before it are stored and a retry counts them once)", err, k+1, len(parts))
			}
			return Result{}, err
		}
		res.Seq = max(res.Seq, pr.Seq)
	}
	res.Errors = errs
	return res, nil
}
