package eventlog

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
)

// Read-ahead of a RangeReader: reading the log (the message blocks or the server) on one goroutine of the
// reader and decoding its batches (the Arrow read in place and CheckRecord of every batch) on another, a few
// messages ahead of Next, so that a replay's session goroutine only applies (a replay spent half its CPU on its one goroutine
// reading and decoding). What Next returns, and when the callbacks run, is unchanged: they run in Next, on the
// caller's goroutine, in log order, each after every batch before it was returned.

// readAheadItem is one thing read from the log, in log order: a batch, an action, a typed action, a message
// that could not be decoded, or the end (err io.EOF) or an error.
type readAheadItem struct {
	seq    uint64
	rec    arrow.Record
	action *engine.Action
	typ    string
	data   []byte
	bad    error
	err    error
}

// aheadState is the goroutine's side of a RangeReader with read-ahead.
type aheadState struct {
	q      chan readAheadItem
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error // the error or io.EOF Next met (sticky)
}

// ReadAhead makes the reader read and decode up to depth items (batches, actions) ahead of Next on a
// goroutine of its own, which Close stops. Call it before the first Next, after setting OnAction, OnTyped
// and OnBad (the goroutine decodes actions only when OnAction is set); they still run in Next. A depth of 0
// or less reads nothing ahead.
func (r *RangeReader) ReadAhead(depth int) {
	if depth <= 0 || r.ahead != nil || r.done {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &aheadState{q: make(chan readAheadItem, depth), cancel: cancel}
	r.ahead = ra
	wantActions, wantTyped := r.OnAction != nil, r.OnTyped != nil
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(ra.q)
		r.readAheadLoop(ctx, ra, wantActions, wantTyped)
	}()
}

// rawMsg is one message as the log side read it, for the decoding goroutine: a message, the end of the
// range (end), or an error. last marks the range's last message.
type rawMsg struct {
	seq  uint64
	hdr  nats.Header
	data []byte
	last bool
	end  bool
	err  error
}

// readAheadMsgs is how many messages the log side reads ahead of the decoding.
const readAheadMsgs = 2

// readAheadLoop decodes messages into items until the range ends, an error, or ctx ends. The messages come
// from a goroutine of its own (readMsgs), so that reading the next message (a block file's read system
// call, the server) goes on while this one decodes (the Arrow read in place and CheckRecord): a replay's
// reader was the stage its apply waited on. Both goroutines are in ra.wg; both stop when ctx ends.
func (r *RangeReader) readAheadLoop(ctx context.Context, ra *aheadState, wantActions, wantTyped bool) {
	send := func(it readAheadItem) bool {
		select {
		case ra.q <- it:
			return true
		case <-ctx.Done():
			if it.rec != nil {
				it.rec.Release()
			}
			return false
		}
	}
	msgs := make(chan rawMsg, readAheadMsgs)
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(msgs)
		r.readMsgs(ctx, msgs)
	}()
	var items []readAheadItem
	h := Handlers{
		Batch: func(seq uint64, rec arrow.Record) error {
			rec.Retain()
			items = append(items, readAheadItem{seq: seq, rec: rec})
			return nil
		},
		Bad: func(seq uint64, err error) { items = append(items, readAheadItem{seq: seq, bad: err}) },
	}
	if wantActions {
		h.Action = func(seq uint64, a engine.Action) error {
			items = append(items, readAheadItem{seq: seq, action: &a})
			return nil
		}
	}
	if wantTyped {
		h.Typed = func(seq uint64, typ string, data []byte) error {
			items = append(items, readAheadItem{seq: seq, typ: typ, data: data})
			return nil
		}
	}
	for m := range msgs {
		switch {
		case m.err != nil:
			send(readAheadItem{err: m.err})
			return
		case m.end:
			send(readAheadItem{err: io.EOF})
			return
		}
		items = items[:0]
		// The handlers above return no error, so neither does dispatch.
		_ = r.l.dispatch(m.seq, m.hdr, m.data, h)
		for i, it := range items {
			if !send(it) {
				for _, rest := range items[i+1:] {
					if rest.rec != nil {
						rest.rec.Release()
					}
				}
				return
			}
		}
		if m.last {
			send(readAheadItem{err: io.EOF})
			return
		}
	}
	// msgs closed without an end: ctx ended.
}

// readMsgs reads the range's messages into msgs until its end, an error, or ctx ends; it owns the reader's
// fields of the log side (file, consumer, iterator, first) while it runs.
func (r *RangeReader) readMsgs(ctx context.Context, msgs chan<- rawMsg) {
	defer r.drain()
	put := func(m rawMsg) bool {
		select {
		case msgs <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		seq, hdr, data, ok, err := r.nextMsg(ctx)
		if err != nil {
			put(rawMsg{err: err})
			return
		}
		if !ok || seq > r.last {
			put(rawMsg{end: true})
			return
		}
		r.first = seq + 1
		if !put(rawMsg{seq: seq, hdr: hdr, data: data, last: seq == r.last}) || seq == r.last {
			return
		}
	}
}

// nextAhead is Next with read-ahead: the next batch from the goroutine, running the callbacks of what
// comes before it.
func (r *RangeReader) nextAhead(ctx context.Context) (arrow.Record, error) {
	ra := r.ahead
	for {
		if ra.err != nil {
			return nil, ra.err
		}
		var it readAheadItem
		var open bool
		select {
		case it, open = <-ra.q:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !open {
			ra.err = io.EOF
			continue
		}
		switch {
		case it.err == io.EOF:
			r.done = true
			ra.err = io.EOF
		case it.err != nil:
			ra.err = it.err
		case it.bad != nil:
			r.Bad++
			if r.OnBad != nil {
				r.OnBad(it.seq, it.bad)
			}
		case it.action != nil:
			if r.OnAction != nil {
				if err := r.OnAction(it.seq, *it.action); err != nil {
					ra.err = fmt.Errorf("cannot read log message %d: %w", it.seq, err)
				}
			}
		case it.typ != "":
			if r.OnTyped != nil {
				if err := r.OnTyped(it.seq, it.typ, it.data); err != nil {
					ra.err = fmt.Errorf("cannot read log message %d: %w", it.seq, err)
				}
			}
		case it.rec != nil:
			r.seq = it.seq
			return it.rec, nil
		}
	}
}

// closeAhead stops the goroutine and releases the batches it read that nobody took.
func (r *RangeReader) closeAhead() {
	ra := r.ahead
	ra.cancel()
	for it := range ra.q {
		if it.rec != nil {
			it.rec.Release()
		}
	}
	ra.wg.Wait()
	if ra.err == nil {
		ra.err = io.EOF
	}
}
