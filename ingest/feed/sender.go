package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"citybrain/engine"
)

// maxKeptErrors bounds the rejected-line errors a Sender keeps.
const maxKeptErrors = 20

// Sender batches events into NDJSON and hands the batches to its Sinks, pacing them by event time. It is owned by
// one goroutine: the adapter's, through Emit.
type Sender struct {
	Sinks     []Sink
	BatchSize int           // events per batch; default 500
	MaxDelay  time.Duration // with a rate, the longest an event waits in a batch; default 1 s
	// Rate scales event time to wall time: 1 replays at real speed, 10 ten times faster, 0 as fast as possible.
	Rate float64
	// Sleep waits (tests inject a fake); nil: a context-aware time.Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time

	ctx        context.Context
	buf        []byte
	n          int
	batchStart time.Time
	started    bool
	firstTS    int64
	wallStart  time.Time

	// Counters (read after Close).
	Sent, Accepted, Rejected, Batches int
	Errors                            []LineError // first rejected lines, bounded
}

// NewSender returns a Sender that sends to sinks within ctx.
func NewSender(ctx context.Context, rate float64, sinks ...Sink) *Sender {
	return &Sender{ctx: ctx, Rate: rate, Sinks: sinks, BatchSize: 500, MaxDelay: time.Second}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) sleep(d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(s.ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return s.ctx.Err()
	case <-t.C:
		return nil
	}
}

// Emit adds one event (the adapter callback). With a rate it first waits until the event's time, scaled, has come,
// sending what is batched before it sleeps; events older than the newest so far are sent without waiting.
func (s *Sender) Emit(ev engine.Event) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if s.Rate > 0 {
		if !s.started {
			s.started, s.firstTS, s.wallStart = true, ev.TS, s.now()
		}
		due := s.wallStart.Add(time.Duration(float64(ev.TS-s.firstTS) / s.Rate * float64(time.Millisecond)))
		if wait := due.Sub(s.now()); wait > 0 {
			if err := s.Flush(); err != nil {
				return err
			}
			if err := s.sleep(wait); err != nil {
				return err
			}
		}
	}
	if s.n == 0 {
		s.batchStart = s.now()
	}
	s.buf = appendLine(s.buf, &ev)
	s.n++
	if s.n >= max(s.BatchSize, 1) || (s.Rate > 0 && s.now().Sub(s.batchStart) >= s.MaxDelay) {
		return s.Flush()
	}
	return nil
}

// Flush sends the batched events to every sink.
func (s *Sender) Flush() error {
	if s.n == 0 {
		return nil
	}
	batch, n := s.buf, s.n
	s.buf, s.n = s.buf[:0], 0
	s.Sent += n
	s.Batches++
	for _, sink := range s.Sinks {
		res, err := sink.Send(s.ctx, batch, n)
		if err != nil {
			return err
		}
		s.Accepted += res.Accepted
		s.Rejected += res.Rejected
		for _, e := range res.Errors {
			if len(s.Errors) < maxKeptErrors {
				s.Errors = append(s.Errors, LineError{Line: s.Sent - n + e.Line, Error: e.Error})
			}
		}
	}
	return nil
}

// Close flushes and closes every sink.
func (s *Sender) Close() error {
	err := s.Flush()
	for _, sink := range s.Sinks {
		if cerr := sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot close sink: %w", cerr)
		}
	}
	return err
}

// Summary describes what was sent.
func (s *Sender) Summary() string {
	msg := fmt.Sprintf("sent %d events in %d batches: %d accepted, %d rejected", s.Sent, s.Batches, s.Accepted, s.Rejected)
	for _, e := range s.Errors {
		msg += fmt.Sprintf("\n  event %d: %s", e.Line, e.Error)
	}
	return msg
}

// IsFatal reports whether err is a sink error that retrying cannot fix.
func IsFatal(err error) bool { return errors.Is(err, ErrFatal) }
