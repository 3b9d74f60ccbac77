// Package queue is the one hand-off between goroutines: a named, bounded FIFO with a stated behaviour when
// full and counters for /metrics (after nats-server's ipQueue). Every stage that passes work to another
// goroutine (log consumer → shards, engine → hub, hub → websocket writers, NATS subscriptions → ingest
// workers) does it through a Queue, so its depth and how often it filled up are visible.
package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

// Policy is what a Queue does with a push that finds it full.
type Policy uint8

const (
	// Block makes the producer wait for room: backpressure travels upstream (to the log consumer, to a
	// NATS worker and from there to the client as "slow down").
	Block Policy = iota
	// Reject refuses the push at once and lets the producer decide (coalesce a websocket client to a fresh
	// snapshot, answer an ingest client 429).
	Reject
	// DropOldest discards the oldest item to make room: newer state supersedes it (a latest-value mailbox,
	// alert deliveries).
	DropOldest
	// Merge merges the new item into the one waiting (Mailbox): the consumer gets the state after both.
	Merge
)

func (p Policy) String() string {
	switch p {
	case Reject:
		return "reject"
	case DropOldest:
		return "drop_oldest"
	case Merge:
		return "merge"
	}
	return "block"
}

// Queue is a bounded FIFO of T between goroutines. Any goroutine may push; the consumer receives from C (or
// Pop). The zero value is not usable: call New.
type Queue[T any] struct {
	name   string
	policy Policy
	ch     chan T

	pushed  atomic.Uint64
	full    atomic.Uint64 // pushes that found the queue full (blocked or refused)
	blocked atomic.Int64  // ns producers spent waiting for room (Block)

	closeOnce sync.Once
}

// New returns an empty queue named name (as it appears in /metrics) holding at most limit items.
func New[T any](name string, limit int, policy Policy) *Queue[T] {
	if limit < 1 {
		limit = 1
	}
	return &Queue[T]{name: name, policy: policy, ch: make(chan T, limit)}
}

// Push adds v. With Block it waits while the queue is full, until there is room or stop is closed (then
// false: v was not queued); with Reject it returns false at once when full; with DropOldest it discards the
// oldest item and always succeeds. Push after Close panics, as a
// send on a closed channel: the owner stops producers before it closes the queue.
func (q *Queue[T]) Push(v T, stop <-chan struct{}) bool {
	select {
	case q.ch <- v:
		q.pushed.Add(1)
		return true
	default:
	}
	q.full.Add(1)
	switch q.policy {
	case Reject:
		return false
	case DropOldest:
		for {
			select {
			case <-q.ch: // the oldest goes
			default:
			}
			select {
			case q.ch <- v:
				q.pushed.Add(1)
				return true
			default: // another producer took the room: drop again
			}
		}
	}
	t0 := time.Now()
	defer func() { q.blocked.Add(int64(time.Since(t0))) }()
	select {
	case q.ch <- v:
		q.pushed.Add(1)
		return true
	case <-stop:
		return false
	}
}

// TryPush adds v if there is room, whatever the policy, and reports whether it did.
func (q *Queue[T]) TryPush(v T) bool {
	select {
	case q.ch <- v:
		q.pushed.Add(1)
		return true
	default:
		q.full.Add(1)
		return false
	}
}

// C is the receiving end, for a consumer's select; it is closed by Close once drained.
func (q *Queue[T]) C() <-chan T { return q.ch }

// Pop waits for the next item; false once the queue is closed and empty.
func (q *Queue[T]) Pop() (T, bool) {
	v, ok := <-q.ch
	return v, ok
}

// Drain removes every queued item without blocking and returns how many there were.
func (q *Queue[T]) Drain() int {
	n := 0
	for {
		select {
		case _, ok := <-q.ch:
			if !ok {
				return n
			}
			n++
		default:
			return n
		}
	}
}

// Close ends the queue: the consumer receives what is queued, then sees it closed. Safe to call twice.
func (q *Queue[T]) Close() { q.closeOnce.Do(func() { close(q.ch) }) }

// Len is the number of items waiting.
func (q *Queue[T]) Len() int { return len(q.ch) }

// Stat returns the queue's figures now.
func (q *Queue[T]) Stat() Stat {
	return Stat{Name: q.name, Policy: q.policy, Len: len(q.ch), Limit: cap(q.ch), Pushed: q.pushed.Load(),
		Full: q.full.Load(), Blocked: time.Duration(q.blocked.Load())}
}

// Stat is a queue's figures: items waiting, the limit, items pushed, pushes that found it full, and the time
// producers spent waiting for room.
type Stat struct {
	Name    string
	Policy  Policy
	Len     int
	Limit   int
	Pushed  uint64
	Full    uint64
	Blocked time.Duration
	// Queues is how many queues of this name the figures sum (per-client queues); 0 or 1 for one.
	Queues int
}

// Sum adds o (a queue of the same name) into s: the figures of a family of queues, such as one per client.
func (s *Stat) Sum(o Stat) {
	s.Len += o.Len
	s.Limit += o.Limit
	s.Pushed += o.Pushed
	s.Full += o.Full
	s.Blocked += o.Blocked
	s.Queues++
}
