package ingest

import (
	"fmt"
	"sync"
)

// budget bounds the decoded bytes held by every batch being ingested at once. A batch takes bytes before
// it allocates for them and gives them all back when it is done; a take that would pass the limit fails at
// once (no waiting: two batches each holding half could otherwise wait for each other forever).
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64 // guarded by mu
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// take reserves n bytes or returns ErrBusy.
func (b *budget) take(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return fmt.Errorf("%w (%d of %d bytes in flight): retry in a moment", ErrBusy, b.used, b.limit)
	}
	b.used += n
	return nil
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// InFlight is the number of decoded bytes held by batches being ingested.
func (in *Ingestor) InFlight() int64 {
	in.budget.mu.Lock()
	defer in.budget.mu.Unlock()
	return in.budget.used
}

// lease is one batch's share of the budget. Owned by the batch's goroutine.
type lease struct {
	b    *budget
	held int64
}

// grow makes the lease hold at least n bytes.
func (l *lease) grow(n int64) error {
	if n <= l.held {
		return nil
	}
	// Take in steps of 64 KiB at least, so a stream does not lock per line.
	step := max(n-l.held, 64<<10)
	if err := l.b.take(step); err != nil {
		return err
	}
	l.held += step
	return nil
}

func (l *lease) release() {
	if l.held > 0 {
		l.b.give(l.held)
		l.held = 0
	}
}
