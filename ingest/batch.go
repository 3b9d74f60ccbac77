package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"citybrain/engine"
	"citybrain/engine/schema"
)

// Bounds of what one batch keeps of its rejected events: every one is counted and named in the dead-letter
// log, but only so much of their raw bytes is kept.
const (
	MaxDeadRaw      = 16 << 10 // raw bytes kept of one rejected event
	maxDeadRawBatch = 1 << 20  // raw bytes kept of all of a batch's rejected events
	maxDeadLetters  = 10_000   // dead letters of one batch; the rest are summed up in one more
)

// batch is one incoming batch on its way to the log: the single validate → cell → accept or reject →
// dead-letter path that every input format (JSON lines, Arrow rows, in-process events) goes through.
// Owned by one goroutine; Release it.
type batch struct {
	in      *Ingestor
	via     string
	want    engine.Kind // KindUnknown: any kind
	trusted bool        // an in-process source: no bound on event times ahead of the wall clock
	now     time.Time
	aheadMs int64 // latest event time accepted (ms), when !trusted
	bb      *engine.BatchBuilder
	res     Result
	dead    []DeadLetter
	deadRaw int            // raw bytes kept in dead
	more    int            // rejected events beyond maxDeadLetters
	view    schema.RowView // the columnar JSON decoder's row (decodecols.go)
	keys    keyCache       // its key lookups by position
	// columnar counts the events decoded straight into columns (the rest went through the row path).
	columnar int
	moreAt   int // the line of the first of them
}

func (in *Ingestor) newBatch(via string, want engine.Kind) *batch {
	now := in.cfg.Now().UTC()
	b := &batch{in: in, via: via, want: want, now: now, bb: engine.NewBatchBuilder(in.cfg.Mem), aheadMs: 1<<63 - 1}
	if in.cfg.MaxAhead >= 0 {
		b.aheadMs = now.Add(in.cfg.MaxAhead).UnixMilli()
	}
	return b
}

// add takes one decoded event: err is what decoding and validation found (nil: the event is valid). A valid
// event of the wanted kind, not too far ahead of the wall clock, whose position has a cell is appended;
// anything else is rejected with its line and raw bytes (nil raw: the event is re-encoded as JSON for the
// dead letter). It returns the event's cell and whether it was accepted.
func (b *batch) add(line int, raw []byte, ev *engine.Event, err error) (uint64, bool) {
	if err == nil && b.want != engine.KindUnknown && ev.Kind != b.want {
		err = fieldErr("kind", "%s on a subject for %s", ev.Kind, b.want)
	}
	if err == nil && !b.trusted && ev.TS > b.aheadMs {
		err = fieldErr("ts", "%s is more than %s ahead of the server's clock (%s)",
			time.UnixMilli(ev.TS).UTC().Format(time.RFC3339), b.in.cfg.MaxAhead, b.now.Format(time.RFC3339))
	}
	var cell uint64
	if err == nil {
		cell, err = b.in.cells.Cell(ev.Lat, ev.Lng)
	}
	if err != nil {
		b.reject(line, raw, ev, err)
		return 0, false
	}
	b.bb.Append(ev, cell)
	b.res.Accepted++
	return cell, true
}

// reject counts, lists (up to MaxErrors) and dead-letters one event, keeping a bounded part of its raw bytes.
func (b *batch) reject(line int, raw []byte, ev *engine.Event, err error) {
	b.res.Rejected++
	if len(b.res.Errors) < b.in.cfg.MaxErrors {
		b.res.Errors = append(b.res.Errors, LineError{Line: line, Err: err})
	}
	if len(b.dead) >= maxDeadLetters {
		if b.more == 0 {
			b.moreAt = line
		}
		b.more++
		return
	}
	keep := min(MaxDeadRaw, maxDeadRawBatch-b.deadRaw)
	if raw == nil && ev != nil && keep > 0 {
		raw = AppendJSON(nil, ev)
	}
	raw = raw[:min(len(raw), keep)]
	b.deadRaw += len(raw)
	b.dead = append(b.dead, DeadLetter{ReceivedAt: b.now, Via: b.via, Line: line, Error: err.Error(), Raw: string(raw)})
}

// store appends the dead letters and the accepted events (rec when not nil, otherwise what add built) and
// returns the batch's answer. It may be called once per batch.
func (b *batch) store(ctx context.Context, rec arrow.Record, id BatchID) (Result, error) {
	if rec == nil {
		rec = b.bb.NewRecord()
		defer rec.Release()
	}
	dead := b.dead
	if b.more > 0 {
		dead = append(dead, DeadLetter{ReceivedAt: b.now, Via: b.via, Line: b.moreAt,
			Error: fmt.Sprintf("and %d more rejected events from line %d on (the first %d are kept one by one)", b.more, b.moreAt, maxDeadLetters)})
	}
	if err := b.in.store(ctx, rec, dead, id, &b.res); err != nil {
		return Result{}, err
	}
	return b.res, nil
}

// Release frees what the batch holds.
func (b *batch) Release() { b.bb.Release() }
