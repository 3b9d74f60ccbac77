package window

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// rawBucket keeps the raw events of one shard and bucket. While the bucket is open its rows are references
// into the log batches they came in (each part retains its batch: no per-row copy on the hot path); when the
// watermark passes the bucket's end it is sealed into compact records of its own rows only (a vectorised
// take per column), and the batches are released. Owned by the shard goroutine.
type rawBucket struct {
	open   []rawPart
	sealed []arrow.Record
}

type rawPart struct {
	rec  arrow.Record
	rows []int32
}

// rawAdd records rows of rec (already grouped by bucket) for retention.
func (s *shard) rawAdd(start int64, rec arrow.Record, rows []int32) {
	rb := s.raw[start]
	if rb == nil {
		rb = &rawBucket{}
		s.raw[start] = rb
	}
	rec.Retain()
	rb.open = append(rb.open, rawPart{rec: rec, rows: rows})
	s.rawRows.Add(int64(len(rows)))
}

// seal turns the open parts of rb into sealed records.
func (s *shard) seal(rb *rawBucket) {
	for _, p := range rb.open {
		rec, err := takeRows(s.w.cfg.Mem, p.rec, p.rows)
		if err != nil {
			// Cannot happen with the engine schema; keep the reference rather than lose the rows.
			panic(fmt.Sprintf("BUG: cannot seal raw bucket: %v", err))
		}
		rb.sealed = append(rb.sealed, rec)
		p.rec.Release()
	}
	rb.open = nil
}

// takeRows returns a new record holding rows of rec.
func takeRows(mem memory.Allocator, rec arrow.Record, rows []int32) (arrow.Record, error) {
	if len(rows) == int(rec.NumRows()) {
		contiguous := true
		for i, r := range rows {
			contiguous = contiguous && int(r) == i
		}
		if contiguous {
			rec.Retain()
			return rec, nil
		}
	}
	ib := array.NewInt32Builder(mem)
	ib.AppendValues(rows, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	ctx := compute.WithAllocator(context.Background(), mem)
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		c, err := compute.TakeArray(ctx, rec.Column(i), idx)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return array.NewRecord(rec.Schema(), cols, int64(len(rows))), nil
}

func (rb *rawBucket) release() int64 {
	var n int64
	for _, r := range rb.sealed {
		n += r.NumRows()
		r.Release()
	}
	for _, p := range rb.open {
		n += int64(len(p.rows))
		p.rec.Release()
	}
	rb.sealed, rb.open = nil, nil
	return n
}

// RawRecords returns copies of the sealed raw records of every shard whose bucket starts in [from, to),
// retained for the caller, who must Release each. Open buckets (not yet behind the watermark) are not
// included.
func (w *Set) RawRecords(from, to int64) []arrow.Record {
	var out []arrow.Record
	for _, s := range w.shards {
		reply := make(chan []arrow.Record, 1)
		if !s.in.Push(shardMsg{rawReq: &rawReq{from: from, to: to, reply: reply}}, w.stop) {
			return out
		}
		select {
		case recs := <-reply:
			out = append(out, recs...)
		case <-w.stop:
			return out
		}
	}
	return out
}

type rawReq struct {
	from, to int64
	reply    chan []arrow.Record
}

func (s *shard) raws(r *rawReq) []arrow.Record {
	var out []arrow.Record
	for start, rb := range s.raw {
		if start < r.from || start >= r.to {
			continue
		}
		for _, rec := range rb.sealed {
			rec.Retain()
			out = append(out, rec)
		}
	}
	return out
}
