package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"citybrain/engine/dispatch"
	"citybrain/geo"
)

// routesEmergency adds the emergency-response and signal-control routes (api/units.go, api/signals.go).
// Reading is open like the rest of the read API; dispatching needs the commander role, deciding on a signal
// plan the police role (admin always).
func (s *Server) routesEmergency(mux *http.ServeMux) {
	a := s.Auth
	mux.HandleFunc("GET /api/v1/units", a.Open(s.handleUnits))
	mux.HandleFunc("GET /api/v1/incidents/{id}/units", a.Open(s.handleIncidentUnits))
	mux.HandleFunc("POST /api/v1/dispatch", a.Require(s.handleDispatch, RoleCommander))
	mux.HandleFunc("GET /api/v1/dispatches", a.Open(s.handleDispatches))
	mux.HandleFunc("GET /api/v1/dispatches/{id}", a.Open(s.handleDispatchGet))
	mux.HandleFunc("POST /api/v1/dispatches/{id}", a.Require(s.handleDispatchClose, RoleCommander))
	mux.HandleFunc("GET /api/v1/dispatch/audit", a.Require(s.handleDispatchAudit, RoleCommander, RolePolice))
	mux.HandleFunc("GET /api/v1/intersections/{id}/plan", a.Open(s.handlePlanGet))
	mux.HandleFunc("POST /api/v1/intersections/{id}/plan", a.Require(s.handlePlanDecide, RolePolice))
	mux.HandleFunc("GET /api/v1/intersections/{id}/plans", a.Open(s.handlePlanDecisions))
	mux.HandleFunc("GET /api/v1/corridors/plan", a.Open(s.handleCorridorPlan))
	mux.HandleFunc("POST /api/v1/signals/decide", a.Require(s.handleSignalsDecide, RolePolice))
}

// dispatcher returns the dispatch manager or answers 503.
func (s *Server) dispatcher(w http.ResponseWriter) *dispatch.Manager {
	if s.Dispatch == nil {
		writeError(w, http.StatusServiceUnavailable, "emergency dispatch is not running (no road network loaded)")
	}
	return s.Dispatch
}

// dispatchError maps the dispatch package's errors to HTTP statuses.
func dispatchError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, dispatch.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, dispatch.ErrInvalid), errors.Is(err, geo.ErrNoRoute):
		code = http.StatusUnprocessableEntity
	}
	writeError(w, code, err.Error())
}

// readBody decodes a small JSON body into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot read request body: %v", err))
		return false
	}
	return true
}

func (s *Server) principal(r *http.Request) Principal {
	p, _ := s.Auth.Authenticate(r)
	return p
}

// lineString is a GeoJSON LineString ([lng, lat] pairs, 6 decimals).
func lineString(pts []geo.LatLng) map[string]any {
	c := make([][2]float64, len(pts))
	for i, p := range pts {
		c[i] = [2]float64{math.Round(p.Lng*1e6) / 1e6, math.Round(p.Lat*1e6) / 1e6}
	}
	return map[string]any{"type": "LineString", "coordinates": c}
}

func round1(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*10) / 10
}

// handleUnits serves GET /api/v1/units: every known unit with its latest position and, when one holds it, its
// dispatch.
func (s *Server) handleUnits(w http.ResponseWriter, r *http.Request) {
	units := s.Engine.Units()
	out := make([]map[string]any, 0, len(units))
	for _, u := range units {
		o := map[string]any{"id": u.ID, "type": u.Type, "status": u.Status, "lat": u.Lat, "lng": u.Lng,
			"updated_at": fmtTime(u.TS), "source": u.Source, "dispatch_id": nil}
		if !math.IsNaN(u.SpeedKmh) {
			o["speed_kmh"] = round1(u.SpeedKmh)
		}
		if s.Dispatch != nil {
			if id, busy := s.Dispatch.Busy(u.ID); busy {
				o["dispatch_id"], o["status"] = id, "dispatched"
			}
		}
		out = append(out, o)
	}
	writeJSON(w, out)
}

// fmtTime is an RFC 3339 UTC time with milliseconds for encoding/json values ("" for no time).
func fmtTime(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// handleIncidentUnits serves GET /api/v1/incidents/{id}/units?k=3: the k available units with the shortest
// travel time to the incident over the road network at live speeds, each with its ETA and route.
func (s *Server) handleIncidentUnits(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	k := 3
	if v := r.URL.Query().Get("k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("k %q must be 1..20", v))
			return
		}
		k = n
	}
	opts, err := m.Nearest(r.PathValue("id"), k)
	if err != nil {
		dispatchError(w, err)
		return
	}
	out := make([]map[string]any, 0, len(opts))
	for _, o := range opts {
		out = append(out, map[string]any{"unit_id": o.Unit.ID, "type": o.Unit.Type, "status": o.Unit.Status,
			"lat": o.Unit.Lat, "lng": o.Unit.Lng, "eta_s": round1(o.ETAS), "route_length_m": round1(o.Route.LengthM),
			"straight_m": round1(o.StraightM), "route": lineString(o.Route.Geometry())})
	}
	writeJSON(w, out)
}

// handleDispatch serves POST /api/v1/dispatch {"incident_id","unit_id"} (commander).
func (s *Server) handleDispatch(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	var body struct {
		IncidentID string `json:"incident_id"`
		UnitID     string `json:"unit_id"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if body.IncidentID == "" || body.UnitID == "" {
		writeError(w, http.StatusBadRequest, "incident_id and unit_id are required")
		return
	}
	p := s.principal(r)
	d, err := m.Assign(body.IncidentID, body.UnitID, p.Name, p.Role)
	if err != nil {
		dispatchError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/dispatches/"+d.ID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(dispatchJSON(&d, true))
}

// dispatchJSON is a dispatch as served; with full, its route as GeoJSON.
func dispatchJSON(d *dispatch.Dispatch, full bool) map[string]any {
	o := map[string]any{"id": d.ID, "incident_id": d.IncidentID, "unit_id": d.UnitID, "unit_type": d.UnitType,
		"by": d.By, "role": d.Role, "status": d.Status, "created_at": d.CreatedAt, "updated_at": d.UpdatedAt,
		"arrived_at": d.ArrivedAt, "closed_at": d.ClosedAt, "initial_eta_s": round1(d.InitialETAS),
		"eta_s": round1(d.ETAS), "eta_at": d.ETAAt, "route_length_m": round1(d.LengthM),
		"progress_m": round1(d.ProgressM), "progress": 0.0, "off_route_m": round1(d.OffRouteM), "reroutes": d.Reroutes,
		"green_wave": d.GreenWave}
	if d.LengthM > 0 {
		o["progress"] = math.Round(1000*math.Min(1, d.ProgressM/d.LengthM)) / 1000
	}
	if full {
		o["route"] = map[string]any{"type": "Feature", "geometry": lineString(d.Geometry),
			"properties": map[string]any{"dispatch_id": d.ID, "unit_id": d.UnitID, "eta_s": round1(d.ETAS)}}
		o["route_links"] = d.RouteLinks
		o["route_end_m"] = round1(d.RouteEndM)
	}
	return o
}

// handleDispatches serves GET /api/v1/dispatches[?status=all]: open dispatches (all with status=all), newest
// first.
func (s *Server) handleDispatches(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	m.Tick()
	list := m.List(r.URL.Query().Get("status") == "all")
	out := make([]map[string]any, 0, len(list))
	for i := range list {
		out = append(out, dispatchJSON(&list[i], r.URL.Query().Get("route") == "true"))
	}
	writeJSON(w, out)
}

// handleDispatchGet serves GET /api/v1/dispatches/{id}: progress, ETA, route GeoJSON and green wave.
func (s *Server) handleDispatchGet(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	m.Tick()
	d, ok := m.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no dispatch %s", r.PathValue("id")))
		return
	}
	writeJSON(w, dispatchJSON(&d, true))
}

// handleDispatchClose serves POST /api/v1/dispatches/{id} {"status": "cleared"|"cancelled", "note"} (commander).
func (s *Server) handleDispatchClose(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	var body struct {
		Status string `json:"status"`
		Note   string `json:"note"`
	}
	if !readBody(w, r, &body) {
		return
	}
	p := s.principal(r)
	d, err := m.Close(r.PathValue("id"), strings.TrimSpace(body.Status), p.Name, p.Role, body.Note)
	if err != nil {
		dispatchError(w, err)
		return
	}
	writeJSON(w, dispatchJSON(&d, false))
}

// handleDispatchAudit serves GET /api/v1/dispatch/audit: every dispatch and signal-plan decision (who, when).
func (s *Server) handleDispatchAudit(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	writeJSON(w, m.AuditLog())
}
