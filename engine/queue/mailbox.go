package queue

import (
	"sync"
	"sync/atomic"
)

// Mailbox is a hand-off of one item between goroutines where the newest state is what matters: Put never
// blocks, and an item the consumer has not taken yet is merged with the next one (its policy is Merge). The
// engine's tick hands its deltas to the websocket hub through one, so the tick never waits for websocket
// work and a hub that falls behind sends one merged delta instead of a growing backlog.
type Mailbox[T any] struct {
	name   string
	merge  func(old, new T) T
	mu     sync.Mutex
	item   T
	full   bool
	closed bool
	signal chan struct{} // one token while an item waits

	pushed atomic.Uint64
	merged atomic.Uint64
}

// NewMailbox returns an empty mailbox named name (for /metrics) that merges with merge.
func NewMailbox[T any](name string, merge func(old, new T) T) *Mailbox[T] {
	return &Mailbox[T]{name: name, merge: merge, signal: make(chan struct{}, 1)}
}

// Put leaves v in the mailbox, merged into the item waiting there if any. After Close it does nothing.
func (m *Mailbox[T]) Put(v T) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.pushed.Add(1)
	if m.full {
		m.item = m.merge(m.item, v)
		m.merged.Add(1)
	} else {
		m.item, m.full = v, true
	}
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// Take waits for an item and removes it; false once the mailbox is closed (an item still waiting is dropped).
func (m *Mailbox[T]) Take() (T, bool) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			var zero T
			return zero, false
		}
		if m.full {
			v := m.item
			var zero T
			m.item, m.full = zero, false
			m.mu.Unlock()
			return v, true
		}
		m.mu.Unlock()
		<-m.signal
	}
}

// Close ends the mailbox: Take returns false. Safe to call twice.
func (m *Mailbox[T]) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// Stat returns the mailbox's figures: Len is 1 while an item waits, Full counts merges.
func (m *Mailbox[T]) Stat() Stat {
	m.mu.Lock()
	n := 0
	if m.full {
		n = 1
	}
	m.mu.Unlock()
	return Stat{Name: m.name, Policy: Merge, Len: n, Limit: 1, Pushed: m.pushed.Load(), Full: m.merged.Load()}
}
