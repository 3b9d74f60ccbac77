package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"citybrain/api/cap"
	"citybrain/engine/zones"
	"citybrain/eventlog"
)

// routesZones adds the zones and alerts routes (docs/zones.md).
func (s *Server) routesZones(mux *http.ServeMux) {
	a := s.Auth
	mux.HandleFunc("GET /api/v1/zones", a.Open(s.needZones(s.handleZones)))
	mux.HandleFunc("GET /api/v1/zones/{id}", a.Open(s.needZones(s.handleZone)))
	mux.HandleFunc("POST /api/v1/zones", a.Require(s.needZones(s.handleZoneWrite("create")), RoleCommander, RolePlanner))
	mux.HandleFunc("PUT /api/v1/zones/{id}", a.Require(s.needZones(s.handleZoneWrite("update")), RoleCommander, RolePlanner))
	mux.HandleFunc("DELETE /api/v1/zones/{id}", a.Require(s.needZones(s.handleZoneWrite("delete")), RoleCommander, RolePlanner))
	mux.HandleFunc("GET /api/v1/alerts", a.Open(s.needZones(s.handleAlerts)))
	mux.HandleFunc("GET /api/v1/alerts/{id}", a.Open(s.needZones(s.handleAlert)))
	mux.HandleFunc("GET /api/v1/closures", a.Open(s.needZones(s.handleClosures)))
	mux.HandleFunc("GET /api/v1/cap.atom", a.Open(s.handleCAPAtom))
	mux.HandleFunc("GET /api/v1/cap/{id}", a.Open(s.handleCAPMessage))
}

// handleCAPAtom serves GET /api/v1/cap.atom: the recent CAP 1.2 messages (confirmed incidents and zone alerts,
// with their updates and cancels), newest first, as an Atom feed.
func (s *Server) handleCAPAtom(w http.ResponseWriter, r *http.Request) {
	if s.CAP == nil {
		writeError(w, http.StatusServiceUnavailable, "the CAP feed is not running")
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + "/api/v1/cap"
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	cap.WriteAtom(w, base+".atom", base, s.CAP.Recent())
}

// handleCAPMessage serves GET /api/v1/cap/{identifier}: one CAP message as application/cap+xml.
func (s *Server) handleCAPMessage(w http.ResponseWriter, r *http.Request) {
	if s.CAP == nil {
		writeError(w, http.StatusServiceUnavailable, "the CAP feed is not running")
		return
	}
	m, ok := s.CAP.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no CAP message %s among the recent ones", r.PathValue("id")))
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Write(m.XML)
}

func (s *Server) needZones(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Zones == nil {
			writeError(w, http.StatusServiceUnavailable, "zones are not running")
			return
		}
		next(w, r)
	}
}

// zoneJSON is a zone as the API shows it: with the road links through it.
type zoneJSON struct {
	zones.Zone
	LinksThrough []string `json:"links_through"`
}

func (s *Server) handleZones(w http.ResponseWriter, r *http.Request) {
	out := []zoneJSON{}
	for _, z := range s.Zones.Zones() {
		_, links, _ := s.Zones.Zone(z.ID)
		out = append(out, zoneJSON{z, nonNil(links)})
	}
	writeJSON(w, out)
}

func (s *Server) handleZone(w http.ResponseWriter, r *http.Request) {
	z, links, ok := s.Zones.Zone(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no zone %s", r.PathValue("id")))
		return
	}
	writeJSON(w, zoneJSON{z, nonNil(links)})
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// handleZoneWrite serves POST /api/v1/zones (a zone; its id is made when not given), PUT /api/v1/zones/{id}
// and DELETE /api/v1/zones/{id}. The action goes to the log first (restarts and replays carry it), then the
// zones manager carries it out; the answer is the zone.
func (s *Server) handleZoneWrite(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := s.Auth.Authenticate(r)
		a := zones.Action{ID: newID(), Op: op, By: p.Name, Role: p.Role, TS: time.Now().UnixMilli()}
		if op == "delete" {
			a.ZoneID = r.PathValue("id")
			if _, _, ok := s.Zones.Zone(a.ZoneID); !ok {
				writeError(w, http.StatusNotFound, fmt.Sprintf("no zone %s", a.ZoneID))
				return
			}
		} else {
			data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
			if err != nil || len(data) > 1<<20 {
				writeError(w, http.StatusRequestEntityTooLarge, "a zone must be JSON of at most 1 MiB")
				return
			}
			var z zones.Zone
			if err := json.Unmarshal(data, &z); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf(`body must be a zone {"name", "kind", "polygon": [[lng, lat], ...] | "links": [...], "rules": [...]}: %v`, err))
				return
			}
			if op == "update" {
				z.ID = r.PathValue("id")
			} else if z.ID == "" {
				z.ID = "zone-" + newID()[:10]
			}
			// Check before logging: a bad zone never enters the log.
			check := z
			if err := check.Validate(); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			a.Zone = &z
		}
		data, err := json.Marshal(&a)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if _, err := s.Log.AppendTyped(ctx, eventlog.TypeZone, a.ID, data); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		for {
			if err, done := s.Zones.Result(a.ID); done {
				if err != nil {
					writeError(w, zoneErrorStatus(err), err.Error())
					return
				}
				break
			}
			select {
			case <-ctx.Done():
				writeError(w, http.StatusAccepted, "the zone action is in the log and will be applied; the engine has not caught up yet")
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		if op == "delete" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		z, links, _ := s.Zones.Zone(a.Zone.ID)
		w.Header().Set("Content-Type", "application/json")
		if op == "create" {
			w.Header().Set("Location", "/api/v1/zones/"+z.ID)
			w.WriteHeader(http.StatusCreated)
		}
		json.NewEncoder(w).Encode(zoneJSON{z, nonNil(links)})
	}
}

func zoneErrorStatus(err error) int {
	switch {
	case errors.Is(err, zones.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, zones.ErrConflict):
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}

// handleAlerts serves GET /api/v1/alerts[?status=active|all][&zone=ID][&since=RFC3339][&limit=N], newest first.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := zones.AlertFilter{ZoneID: q.Get("zone"), Limit: 1000}
	switch q.Get("status") {
	case "", "all":
	case "active":
		f.ActiveOnly = true
	default:
		writeError(w, http.StatusBadRequest, "status must be active or all")
		return
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q must be RFC 3339", v))
			return
		}
		f.Since = t.UnixMilli()
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be 1..10000")
			return
		}
		f.Limit = n
	}
	out := []alertJSON{}
	for _, a := range s.Zones.Alerts(f) {
		out = append(out, toAlertJSON(a))
	}
	writeJSON(w, out)
}

func (s *Server) handleAlert(w http.ResponseWriter, r *http.Request) {
	a, ok := s.Zones.Alert(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no alert %s", r.PathValue("id")))
		return
	}
	writeJSON(w, toAlertJSON(a))
}

// alertJSON is an alert with RFC 3339 times (spec/api.md conventions).
type alertJSON struct {
	zones.Alert
	FiredAt    string            `json:"fired_at"`
	UpdatedAt  string            `json:"updated_at"`
	ResolvedAt *string           `json:"resolved_at"`
	Evidence   []alertEvidenceJS `json:"evidence"`
	Closures   []string          `json:"closures"`
}

type alertEvidenceJS struct {
	zones.Evidence
	TS string `json:"ts"`
}

func rfc(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

func toAlertJSON(a zones.Alert) alertJSON {
	j := alertJSON{Alert: a, FiredAt: rfc(a.FiredAt), UpdatedAt: rfc(a.UpdatedAt), Closures: nonNil(a.Closures), Evidence: []alertEvidenceJS{}}
	if a.ResolvedAt != 0 {
		t := rfc(a.ResolvedAt)
		j.ResolvedAt = &t
	}
	for _, e := range a.Evidence {
		j.Evidence = append(j.Evidence, alertEvidenceJS{e, rfc(e.TS)})
	}
	return j
}

// AlertMessage is the websocket message of alerts that fired or changed (docs/websocket.md).
func AlertMessage(list []zones.Alert) []byte {
	out := struct {
		Type   string      `json:"type"`
		Alerts []alertJSON `json:"alerts"`
	}{Type: "alerts"}
	for _, a := range list {
		out.Alerts = append(out.Alerts, toAlertJSON(a))
	}
	data, _ := json.Marshal(&out)
	return data
}

// handleClosures serves GET /api/v1/closures: the road links active hazard alerts recommend closing, as GeoJSON
// lines (properties: link, alert_id, zone_id, message) for the map.
func (s *Server) handleClosures(w http.ResponseWriter, r *http.Request) {
	type feature struct {
		Type       string         `json:"type"`
		Geometry   map[string]any `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: []feature{}}
	for _, a := range s.Zones.Alerts(zones.AlertFilter{ActiveOnly: true}) {
		for _, id := range a.Closures {
			var coords [][2]float64
			if s.Network != nil {
				if l, ok := s.Network.Link(id); ok {
					for _, p := range l.Geometry {
						coords = append(coords, [2]float64{p.Lng, p.Lat})
					}
				}
			}
			if coords == nil {
				continue
			}
			fc.Features = append(fc.Features, feature{Type: "Feature",
				Geometry:   map[string]any{"type": "LineString", "coordinates": coords},
				Properties: map[string]any{"link": id, "alert_id": a.ID, "zone_id": a.ZoneID, "message": a.Message}})
		}
	}
	w.Header().Set("Content-Type", "application/geo+json")
	json.NewEncoder(w).Encode(&fc)
}
