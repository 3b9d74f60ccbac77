package system

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// eventClockTick is the engine's wall-clock tick under Config.EventClock: long enough never to fall inside a
// run, so that the engine ticks only when the feeder calls Step.
const eventClockTick = 24 * time.Hour

// Step brings what the engine and the dispatcher publish up to every message the log holds now, for a feeder
// that drives the clock (Config.EventClock): it waits until the log consumer has handled every message
// appended so far, ticks the engine (its incidents, link speeds, units and status then cover them, at the
// newest event time) and then the dispatcher (ETAs, green waves, re-routes at that time). Call it after each
// simulated step's feeds are accepted: a run then depends on the feeds' event time only, never on where the
// wall-clock ticks fell (with SUMO many times faster than real time, they fell anywhere in simulated time).
func (s *System) Step(ctx context.Context) error {
	st, err := s.Log.State(ctx)
	if err != nil {
		return fmt.Errorf("cannot step the engine: %w", err)
	}
	if err := s.consumed.wait(ctx, st.LastSeq); err != nil {
		return fmt.Errorf("cannot step the engine (log message %d not applied): %w", st.LastSeq, err)
	}
	s.Engine.Flush()
	if s.Dispatch != nil {
		s.Dispatch.Tick()
	}
	return nil
}

// progress is a sequence that only grows, with waiters.
type progress struct {
	mu      sync.Mutex
	seq     uint64
	changed chan struct{} // closed and replaced at every advance
}

func (p *progress) advance(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.seq {
		return
	}
	p.seq = seq
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// wait returns when the sequence has reached seq, or with ctx's error.
func (p *progress) wait(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		if p.seq >= seq {
			p.mu.Unlock()
			return nil
		}
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
