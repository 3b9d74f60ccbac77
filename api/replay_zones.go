package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"citybrain/engine"
	"citybrain/engine/zones"
	"citybrain/eventlog"
)

// sessionZones is a replay session's zones manager: fed by the session engine's deltas and the zone actions
// of the replayed range, seeded with the zones defined when the session (re)starts.
type sessionZones struct {
	rp  *Replays
	hub func() *Hub
	mu  sync.Mutex
	m   *zones.Manager // nil without Replays.NewZones
}

func (rp *Replays) newSessionZones(hub func() *Hub) *sessionZones {
	return &sessionZones{rp: rp, hub: hub}
}

func (sz *sessionZones) manager() *zones.Manager {
	sz.mu.Lock()
	defer sz.mu.Unlock()
	return sz.m
}

// restart starts a fresh manager (the session built a new engine).
func (sz *sessionZones) restart() {
	if sz.rp.NewZones == nil {
		return
	}
	m := sz.rp.NewZones(func(list []zones.Alert) {
		if h := sz.hub(); h != nil {
			h.Broadcast("alerts", AlertMessage(list))
		}
	})
	sz.mu.Lock()
	sz.m = m
	sz.mu.Unlock()
}

func (sz *sessionZones) typed(typ string, data []byte) {
	m := sz.manager()
	if m == nil || typ != eventlog.TypeZone {
		return
	}
	var a zones.Action
	if json.Unmarshal(data, &a) == nil {
		m.ApplyAction(a) // a zone the seed already holds answers "exists": that is fine here
	}
}

func (sz *sessionZones) onDelta(d *engine.Delta) {
	if m := sz.manager(); m != nil {
		m.OnDelta(d)
	}
}

func (s *Server) replayZones(w http.ResponseWriter, r *http.Request) *zones.Manager {
	if _, ok := s.session(w, r); !ok {
		return nil
	}
	v, ok := s.Replays.zones.Load(r.PathValue("id"))
	var m *zones.Manager
	if ok {
		m = v.(*sessionZones).manager()
	}
	if m == nil {
		writeError(w, http.StatusServiceUnavailable, "this replay session judges no zones")
	}
	return m
}

// handleReplayAlerts serves GET /api/v1/replays/{id}/alerts: the alerts the session's zones raised so far.
func (s *Server) handleReplayAlerts(w http.ResponseWriter, r *http.Request) {
	if m := s.replayZones(w, r); m != nil {
		out := []alertJSON{}
		for _, a := range m.Alerts(zones.AlertFilter{}) {
			out = append(out, toAlertJSON(a))
		}
		writeJSON(w, out)
	}
}

// handleReplayZones serves GET /api/v1/replays/{id}/zones.
func (s *Server) handleReplayZones(w http.ResponseWriter, r *http.Request) {
	if m := s.replayZones(w, r); m != nil {
		out := []zoneJSON{}
		for _, z := range m.Zones() {
			_, links, _ := m.Zone(z.ID)
			out = append(out, zoneJSON{z, nonNil(links)})
		}
		writeJSON(w, out)
	}
}
