// Package ingesttest holds what tests of ingest's doors share: a sink that keeps what is stored in memory,
// with the log's deduplication rules. It is imported by tests only.
package ingesttest

import (
	"context"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"citybrain/ingest"
)

// MemSink is an ingest.Sink in memory. Safe for concurrent use; Release what it holds.
type MemSink struct {
	mu   sync.Mutex
	Recs []arrow.Record
	Dead []ingest.DeadLetter
	ids  map[string]string // message id → body hash
	// Fail, when set, is returned by every Append and AppendDead.
	Fail error
}

// Append implements ingest.Sink.
func (s *MemSink) Append(_ context.Context, rec arrow.Record, id ingest.BatchID) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return 0, s.Fail
	}
	if s.ids == nil {
		s.ids = map[string]string{}
	}
	if id.ID != "" {
		if h, ok := s.ids[id.ID]; ok {
			if h != id.Hash {
				return 0, ingest.ErrKeyReused
			}
			return uint64(len(s.Recs)), ingest.ErrDuplicate
		}
		s.ids[id.ID] = id.Hash
	}
	rec.Retain()
	s.Recs = append(s.Recs, rec)
	return uint64(len(s.Recs)), nil
}

// AppendDead implements ingest.Sink.
func (s *MemSink) AppendDead(_ context.Context, letters []ingest.DeadLetter, _ ingest.BatchID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	s.Dead = append(s.Dead, letters...)
	return nil
}

// Rows is the number of events stored.
func (s *MemSink) Rows() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.Recs {
		n += r.NumRows()
	}
	return n
}

// Release frees the records kept.
func (s *MemSink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.Recs {
		r.Release()
	}
	s.Recs = nil
}
