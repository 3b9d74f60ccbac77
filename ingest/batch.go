package ingest

import (
	"context"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"citybrain/engine"
)

// batch is one incoming batch on its way to the log: the single validate → cell → accept or reject →
// dead-letter path that every input format (JSON lines, Arrow rows, in-process events) goes through.
// Owned by one goroutine; Release it.
type batch struct {
	in   *Ingestor
	via  string
	want engine.Kind // KindUnknown: any kind
	now  time.Time
	bb   *engine.BatchBuilder
	res  Result
	dead []DeadLetter
}

func (in *Ingestor) newBatch(via string, want engine.Kind) *batch {
	return &batch{in: in, via: via, want: want, now: time.Now().UTC(), bb: engine.NewBatchBuilder(in.cfg.Mem)}
}

// add takes one decoded event: err is what decoding and validation found (nil: the event is valid). A valid
// event of the wanted kind whose position has a cell is appended; anything else is rejected with its line and
// raw bytes (nil raw: the event is re-encoded as JSON for the dead letter). It returns the event's cell and
// whether it was accepted.
func (b *batch) add(line int, raw []byte, ev *engine.Event, err error) (uint64, bool) {
	if err == nil && b.want != engine.KindUnknown && ev.Kind != b.want {
		err = fieldErr("kind", "%s on a subject for %s", ev.Kind, b.want)
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

// reject counts, lists (up to MaxErrors) and dead-letters one event.
func (b *batch) reject(line int, raw []byte, ev *engine.Event, err error) {
	b.res.Rejected++
	if len(b.res.Errors) < b.in.cfg.MaxErrors {
		b.res.Errors = append(b.res.Errors, LineError{Line: line, Err: err})
	}
	if raw == nil && ev != nil {
		raw = AppendJSON(nil, ev)
	}
	if len(raw) > MaxDeadRaw {
		raw = raw[:MaxDeadRaw]
	}
	b.dead = append(b.dead, DeadLetter{ReceivedAt: b.now, Via: b.via, Line: line, Error: err.Error(), Raw: string(raw)})
}

// MaxDeadRaw bounds the raw bytes kept of one rejected event.
const MaxDeadRaw = 16 << 10

// store appends the accepted events (rec when not nil, otherwise what add built) and the dead letters, and
// returns the batch's answer. It may be called once per batch.
func (b *batch) store(ctx context.Context, rec arrow.Record, msgID string) (Result, error) {
	if rec == nil {
		rec = b.bb.NewRecord()
		defer rec.Release()
	}
	if err := b.in.store(ctx, rec, b.dead, msgID, &b.res); err != nil {
		return Result{}, err
	}
	return b.res, nil
}

// Release frees what the batch holds.
func (b *batch) Release() { b.bb.Release() }
