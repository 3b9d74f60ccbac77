package system

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"citybrain/engine/dispatch"
	"citybrain/eventlog"
)

// journalDispatch writes a dispatch or plan decision to the log before it takes effect (dispatch.Journal):
// acknowledged means stored, so a SIGKILL right after loses nothing, and replays see it where it happened.
func (s *System) journalDispatch(a dispatch.Action) error {
	data, err := json.Marshal(&a)
	if err != nil {
		return fmt.Errorf("cannot encode decision %s: %w", a.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = s.Log.AppendTyped(ctx, eventlog.TypeDispatch, a.ID, data)
	return err
}

// applyDispatch carries out a decision read from the log (the consumer's goroutine, in log order). One the
// process applied when it was made is a no-op; one that cannot be applied (a unit held by another dispatch)
// is logged, not an error of the consumer.
func (s *System) applyDispatch(seq uint64, data []byte) {
	var a dispatch.Action
	if err := json.Unmarshal(data, &a); err != nil {
		s.badMessages.Add(1)
		s.logger.Printf("skipping dispatch decision at log message %d: cannot decode: %v", seq, err)
		return
	}
	if s.Dispatch == nil {
		return // no road network in this run: nothing to dispatch on
	}
	if err := s.Dispatch.Apply(a); err != nil {
		s.logger.Printf("dispatch decision %s at log message %d: %v", a.ID, seq, err)
	}
}
