package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
)

// DefaultSlack is how far the log's order may stray from event-time order when a time range is mapped to
// sequences: the engine's allowed lateness (30 s) plus its longest window (15 min). An event that arrives
// later than that behind the event clock is not reflected in the live windows either.
const DefaultSlack = 30*time.Second + 15*time.Minute

// SeqRange returns the sequences [first, last] of the log messages that can hold events with event time
// (the ts column) in [from, to); a zero from or to is the start or end of the log. It binary-searches the
// messages by their event-time extent, assuming the log is in event-time order up to slack (DefaultSlack
// when 0), so it reads about 2·log2(messages) messages. ok is false when the range holds no message.
// Callers that need exactly the range filter rows by ts (Export does).
func (l *Log) SeqRange(ctx context.Context, from, to time.Time, slack time.Duration) (first, last uint64, ok bool, err error) {
	st, err := l.State(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	if st.Msgs == 0 || st.LastSeq < st.FirstSeq {
		return 0, 0, false, nil
	}
	if slack <= 0 {
		slack = DefaultSlack
	}
	first, last = st.FirstSeq, st.LastSeq
	if !from.IsZero() {
		lo := from.Add(-slack).UnixMilli()
		// The first message whose newest event is at or after lo.
		first, err = l.searchSeq(ctx, st.FirstSeq, st.LastSeq, func(_, maxTS int64) bool { return maxTS >= lo })
		if err != nil {
			return 0, 0, false, err
		}
	}
	if !to.IsZero() {
		hi := to.Add(slack).UnixMilli()
		// The first message whose oldest event is at or after hi; the range ends before it.
		end, err := l.searchSeq(ctx, first, st.LastSeq, func(minTS, _ int64) bool { return minTS >= hi })
		if err != nil {
			return 0, 0, false, err
		}
		last = end - 1
	}
	if first > last || first > st.LastSeq {
		return 0, 0, false, nil
	}
	return first, last, true, nil
}

// searchSeq returns the smallest sequence in [lo, hi] whose message satisfies pred (hi+1 when none does),
// assuming pred is monotone over sequences. Deleted messages are skipped forward.
func (l *Log) searchSeq(ctx context.Context, lo, hi uint64, pred func(minTS, maxTS int64) bool) (uint64, error) {
	end := hi + 1
	for lo < end {
		mid := lo + (end-lo)/2
		seq, minTS, maxTS, found, err := l.msgTimes(ctx, mid, end-1)
		if err != nil {
			return 0, err
		}
		if !found { // nothing stored in [mid, end): the answer is before mid
			end = mid
			continue
		}
		if pred(minTS, maxTS) {
			end = mid
			if seq == mid {
				continue
			}
			// Messages mid..seq-1 are deleted: seq is as good as mid.
			end = seq
			continue
		}
		lo = seq + 1
	}
	return end, nil
}

// msgTimes returns the event-time extent of the first stored message at or after seq (up to max).
func (l *Log) msgTimes(ctx context.Context, seq, upTo uint64) (at uint64, minTS, maxTS int64, found bool, err error) {
	for s := seq; s <= upTo; s++ {
		m, err := l.events.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, 0, false, fmt.Errorf("cannot read log message %d: %w", s, err)
		}
		if m.Header != nil && m.Header.Get(HeaderType) != "" {
			continue // not an event batch (an operator action)
		}
		minTS, maxTS = int64(1)<<62, -int64(1)<<62
		err = DecodeRecords(m.Data, func(rec arrow.Record) error {
			lo, hi := TSExtent(rec)
			minTS, maxTS = min(minTS, lo), max(maxTS, hi)
			return nil
		})
		if err != nil || minTS > maxTS {
			continue // a foreign message the consumers skip too
		}
		return s, minTS, maxTS, true, nil
	}
	return 0, 0, 0, false, nil
}

// TSExtent returns the oldest and newest event time (ms) of rec.
func TSExtent(rec arrow.Record) (lo, hi int64) {
	ts := rec.Column(engine.ColTS).(*array.Timestamp)
	lo, hi = int64(1)<<62, -int64(1)<<62
	for i := 0; i < ts.Len(); i++ {
		v := int64(ts.Value(i))
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// RangeReader reads the log messages with sequences [first, last] in order through an ordered consumer
// (reading ahead up to readAhead bytes), for exports and replay sessions. It is a BatchReader; Seq is the log
// sequence of the batch Next returned last. Owned by one goroutine.
type RangeReader struct {
	l          *Log
	first      uint64
	last       uint64
	cons       jetstream.Consumer
	it         jetstream.MessagesContext
	file       *fileSource // the message blocks read directly (nil: through the server)
	pending    []arrow.Record
	pendingSeq uint64
	seq        uint64
	done       bool
	idle       time.Duration // waited since the last message
	ahead      *aheadState   // the read-ahead goroutine's side (nil: none, readahead.go)

	// OnAction, when set, gets the operator actions of the range in log order, each after every batch
	// before it was returned by Next (actions are skipped otherwise).
	OnAction func(seq uint64, a engine.Action) error
	// OnTyped, when set, gets the other operator actions (Log.AppendTyped) likewise.
	OnTyped func(seq uint64, typ string, data []byte) error
	// OnBad, when set, is told of messages that cannot be decoded; they are skipped and counted in Bad.
	OnBad func(seq uint64, err error)
	Bad   uint64
}

// NewRangeReader returns a reader of the messages [first, last] (last 0: up to the log's last message
// when the reader is created).
func (l *Log) NewRangeReader(ctx context.Context, first, last uint64) (*RangeReader, error) {
	if last == 0 {
		st, err := l.State(ctx)
		if err != nil {
			return nil, err
		}
		last = st.LastSeq
	}
	first = max(first, 1)
	r := &RangeReader{l: l, first: first, last: last, done: first > last}
	if r.done {
		return r, nil
	}
	if l.offlineStore != "" && l.parts == 0 {
		// Straight from the message blocks when the stream has no gaps (fileread.go).
		if st, err := l.State(ctx); err == nil && st.Msgs > 0 && st.Msgs == st.LastSeq-st.FirstSeq+1 && first >= st.FirstSeq {
			r.file = openFileSource(l.offlineStore, first)
		}
	}
	if r.file == nil {
		if err := r.consume(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// consume creates the ordered consumer from r.first.
func (r *RangeReader) consume(ctx context.Context) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: r.l.allFilter()}
	if r.first > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.first
	}
	cons, err := r.l.js.OrderedConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return fmt.Errorf("cannot create consumer on %s: %w", EventsStream, err)
	}
	r.cons = cons
	return nil
}

// FromFiles says whether the reader is reading the message blocks directly (fileread.go).
func (r *RangeReader) FromFiles() bool { return r.file != nil }

// Seq is the log sequence of the last batch returned.
func (r *RangeReader) Seq() uint64 { return r.seq }

// Next returns the next batch (the caller releases it), or io.EOF after message last.
func (r *RangeReader) Next(ctx context.Context) (arrow.Record, error) {
	if r.ahead != nil {
		return r.nextAhead(ctx)
	}
	for len(r.pending) == 0 {
		if r.done {
			return nil, io.EOF
		}
		if err := r.fill(ctx); err != nil {
			return nil, err
		}
	}
	rec := r.pending[0]
	r.pending = r.pending[1:]
	r.seq = r.pendingSeq
	return rec, nil
}

// readAhead bounds the bytes of log messages the reader has asked for and not yet taken: enough to keep the
// server sending while the caller applies (one fetch of 256 messages at a time left the reader idle most of
// the time), and under the client's pending-bytes limit of a subscription (64 MiB), past which messages are
// dropped and the ordered consumer starts over.
const readAhead = 32 << 20

// fill decodes the next message into pending (or marks the end).
func (r *RangeReader) fill(ctx context.Context) error {
	for {
		seq, hdr, data, ok, err := r.nextMsg(ctx)
		if err != nil || !ok {
			return err // !ok: r.done
		}
		if seq > r.last {
			r.done = true
			r.drain()
			return nil
		}
		r.first = seq + 1
		err = r.l.dispatch(seq, hdr, data, Handlers{
			Batch: func(_ uint64, rec arrow.Record) error {
				rec.Retain()
				r.pending = append(r.pending, rec)
				return nil
			},
			Action: r.OnAction,
			Typed:  r.OnTyped,
			Bad: func(seq uint64, err error) {
				r.Bad++
				if r.OnBad != nil {
					r.OnBad(seq, err)
				}
			},
		})
		if err != nil {
			return fmt.Errorf("cannot read log message %d: %w", seq, err)
		}
		r.pendingSeq = seq
		if seq == r.last {
			r.done = true
			r.drain()
		}
		if len(r.pending) > 0 || r.done {
			return nil
		}
	}
}

// nextMsg returns the next message of the log at or after r.first, from the message blocks or through the
// server; ok false (and r.done) when the range has ended.
func (r *RangeReader) nextMsg(ctx context.Context) (seq uint64, hdr nats.Header, data []byte, ok bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, nil, nil, false, err
		}
		if r.file != nil {
			m, more, ferr := r.file.read()
			if ferr == nil && more {
				return m.seq, m.hdr, m.data, true, nil
			}
			// The blocks ended, or surprised the reader: on through the server from r.first (which ends the
			// range itself when the log holds nothing more).
			r.file.close()
			r.file = nil
			if err := r.consume(ctx); err != nil {
				return 0, nil, nil, false, err
			}
			continue
		}
		if r.it == nil {
			it, err := r.cons.Messages(jetstream.PullMaxBytes(readAhead))
			if err != nil {
				return 0, nil, nil, false, fmt.Errorf("cannot read %s: %w", EventsStream, err)
			}
			r.it = it
		}
		m, err := r.it.Next(jetstream.NextMaxWait(2 * time.Second))
		if errors.Is(err, nats.ErrTimeout) {
			// Nothing for 2 s. The range has ended only if the log holds no message at or after r.first (the
			// consumer takes every subject of the stream, so such a message would come, be it past last); on a
			// loaded machine the server may just be slow: wait on, and after a minute say so rather than end a
			// replay early without a word.
			st, serr := r.l.State(ctx)
			if serr == nil && st.LastSeq < r.first {
				r.done = true
				r.drain()
				return 0, nil, nil, false, nil
			}
			if r.idle += 2 * time.Second; r.idle >= time.Minute {
				if serr != nil {
					return 0, nil, nil, false, fmt.Errorf("cannot read %s: no message for %s (%w)", EventsStream, r.idle, serr)
				}
				return 0, nil, nil, false, fmt.Errorf("cannot read %s: no message for %s, though the log holds messages %d to %d and the range ends at %d",
					EventsStream, r.idle, max(st.FirstSeq, r.first), st.LastSeq, r.last)
			}
			continue
		}
		r.idle = 0
		if err != nil {
			return 0, nil, nil, false, fmt.Errorf("cannot read %s: %w", EventsStream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, nil, nil, false, fmt.Errorf("cannot read message metadata: %w", err)
		}
		return md.Sequence.Stream, m.Headers(), m.Data(), true, nil
	}
}

func (r *RangeReader) drain() {
	if r.it == nil {
		return
	}
	r.it.Stop()
	r.it = nil
}

// Close releases the batches still held. Safe to call twice.
func (r *RangeReader) Close() error {
	if r.ahead != nil {
		r.closeAhead()
	}
	if r.file != nil {
		r.file.close()
	}
	for _, rec := range r.pending {
		rec.Release()
	}
	r.pending = nil
	r.done = true
	r.drain()
	return nil
}
