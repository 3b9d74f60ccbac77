// Package natsin is the NATS door of ingest: the subjects citybrain.in.<kind>, citybrain.in.batch and
// citybrain.in.arrow, served by a bounded pool of workers that answer requests once the batch is stored.
package natsin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/engine/queue"
	"citybrain/ingest"
)

// NATS ingest subjects (spec/events.md "Framing"): citybrain.in.<kind> carries one event or an NDJSON batch
// of that kind, citybrain.in.batch mixed kinds, and citybrain.in.arrow the binary Arrow IPC path.
const (
	SubjectPrefix = "citybrain.in."
	SubjectBatch  = SubjectPrefix + "batch"
	SubjectArrow  = SubjectPrefix + "arrow"
	QueueGroup    = "citybrain-ingest"
)

// Source consumes the ingest subjects. Messages with a reply subject get the same JSON answer as HTTP
// (or {"error": ...}) once the batch is stored; a Nats-Msg-Id header deduplicates retries.
type Source struct {
	// Panics counts messages that panicked the ingest code (a bug; each was dead-lettered).
	Panics atomic.Uint64

	in   *ingest.Ingestor
	subs []*nats.Subscription
	wg   sync.WaitGroup
	work *queue.Queue[*nats.Msg] // subscription → workers; full: the subscription waits (its pending limit applies)
	once sync.Once

	mu     sync.RWMutex // held for reading while a message is queued; closed is set under the write lock
	closed bool
}

// Serve subscribes to citybrain.in.> in the ingest queue group with workers goroutines processing
// messages; a bounded queue of 4×workers messages sits between the subscription and the workers (when it is
// full the subscription's own pending limit applies, and NATS reports slow-consumer drops as errors on nc).
func Serve(in *ingest.Ingestor, nc *nats.Conn, workers int) (*Source, error) {
	if workers <= 0 {
		workers = 4
	}
	s := &Source{in: in, work: queue.New[*nats.Msg]("nats-ingest", 4*workers, queue.Block)}
	sub, err := nc.QueueSubscribe(SubjectPrefix+">", QueueGroup, func(m *nats.Msg) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if !s.closed {
			s.work.Push(m, nil)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cannot subscribe to %s>: %w", SubjectPrefix, err)
	}
	// What may wait in the client for the workers: beyond it NATS drops messages and reports a slow consumer
	// (publishers that asked for an answer get none and retry).
	if err := sub.SetPendingLimits(1<<16, 64<<20); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("cannot set pending limits: %w", err)
	}
	// The server must know the subscription before anyone is told ingest is up: without this, a request made
	// right after start can meet "no responders".
	if err := nc.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("cannot register the ingest subscription with the server: %w", err)
	}
	s.subs = append(s.subs, sub)
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for m := range s.work.C() {
				s.handle(m)
			}
		}()
	}
	return s, nil
}

// QueueDepth is the number of messages waiting for a worker.
func (s *Source) QueueDepth() int { return s.work.Len() }

// Queue returns the figures of the queue between the subscription and the workers.
func (s *Source) Queue() queue.Stat { return s.work.Stat() }

// handle ingests one message and answers it when it asks for an answer.
func (s *Source) handle(m *nats.Msg) {
	var msgID string
	if m.Header != nil {
		msgID = m.Header.Get(nats.MsgIdHdr)
	}
	out := s.process(m.Subject, m.Data, msgID)
	if m.Reply != "" {
		m.Respond(out)
	}
}

// process ingests the data of one message on subject and returns its answer (spec/events.md "Bad input":
// the counts, or {"error": ...}). No message stops a worker: one that panics the ingest code is counted,
// dead-lettered and answered with an error like any other unreadable message.
func (s *Source) process(subject string, data []byte, msgID string) (out []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	via := "nats:" + subject
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("BUG: cannot ingest message on %s: %v", subject, v)
			s.Panics.Add(1)
			s.in.RejectMessage(ctx, via, data, err)
			out = append(ingest.AppendQuoted([]byte(`{"error":`), err.Error()), "}\n"...)
		}
	}()
	if len(msgID) > 256 {
		msgID = msgID[:256]
	}
	var res ingest.Result
	var err error
	switch {
	case subject == SubjectArrow:
		res, err = s.in.IngestArrow(ctx, data, via, msgID)
	case subject == SubjectBatch:
		res, err = s.in.Ingest(ctx, data, via, engine.KindUnknown, msgID)
	default:
		name := strings.TrimPrefix(subject, SubjectPrefix)
		k := engine.ParseKind(name)
		if k == engine.KindUnknown {
			err = fmt.Errorf("subject %s names no event kind (probe, detector, transit, video, report, unit, sensor, or batch, arrow)", subject)
			break
		}
		res, err = s.in.Ingest(ctx, data, via, k, msgID)
	}
	if err != nil && unreadable(err) {
		// Nobody may be waiting for an answer: the message is counted and kept on the dead-letter log.
		if derr := s.in.RejectMessage(ctx, via, data, err); derr != nil {
			err = fmt.Errorf("%v; %w", err, derr)
		}
	}
	if err != nil {
		return append(ingest.AppendQuoted([]byte(`{"error":`), err.Error()), "}\n"...)
	}
	return ingest.AppendAnswer(nil, &res)
}

// unreadable reports whether err says the message is not a batch at all (as opposed to one that could not
// be stored now, was stored before, or reused a key, which the publisher handles by retrying or not).
func unreadable(err error) bool {
	for _, e := range []error{ingest.ErrStore, ingest.ErrBusy, ingest.ErrSlowDown, ingest.ErrKeyReused, ingest.ErrNoEvents, ingest.ErrDuplicate} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// Stop unsubscribes, lets the workers finish what they hold, and returns. Safe to call twice.
func (s *Source) Stop() {
	s.once.Do(func() {
		for _, sub := range s.subs {
			sub.Drain()
		}
		// Drain is asynchronous; wait a bounded time for it, then refuse what still comes.
		for _, sub := range s.subs {
			for i := 0; i < 200 && sub.IsValid(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.work.Close()
		s.wg.Wait()
	})
}
