package system

import (
	"encoding/json"

	"citybrain/api"
	"citybrain/engine/zones"
	"citybrain/eventlog"
)

// applyTyped carries out the operator actions of other types than incident actions (the log consumer's
// goroutine, in log order). A zone action that fails (a zone that exists, a bad polygon) is kept as its
// result for the API; it is not an error of the consumer.
func (s *System) applyTyped(seq uint64, typ string, data []byte) error {
	switch typ {
	case eventlog.TypeZone:
		var a zones.Action
		if err := json.Unmarshal(data, &a); err != nil {
			s.badMessages.Add(1)
			s.logger.Printf("skipping zone action at log message %d: cannot decode: %v", seq, err)
			return nil
		}
		s.Zones.ApplyAction(a)
	}
	return nil
}

// onAlert hands alerts that fired or changed to their outlets (the engine's tick goroutine: never blocks).
func (s *System) onAlert(list []zones.Alert) {
	if h := s.hubReady.Load(); h != nil {
		h.Broadcast("alerts", api.AlertMessage(list))
	}
}
