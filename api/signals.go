package api

import (
	"fmt"
	"net/http"
	"strings"

	"citybrain/engine/dispatch"
)

// handlePlanGet serves GET /api/v1/intersections/{id}/plan?method=webster|max_pressure: the measured state of
// each approach (flow, queue, degree of saturation) and a recommended plan with its expected change in delay.
func (s *Server) handlePlanGet(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	rec, err := m.Recommend(r.PathValue("id"), r.URL.Query().Get("method"))
	if err != nil {
		dispatchError(w, err)
		return
	}
	writeJSON(w, sanitizeRec(rec))
}

// sanitizeRec replaces NaN speeds (no probe data) by -1 so the JSON encodes.
func sanitizeRec(rec dispatch.Recommendation) dispatch.Recommendation {
	aps := append([]dispatch.ApproachState(nil), rec.Approaches...)
	for i := range aps {
		if aps[i].SpeedKmh != aps[i].SpeedKmh {
			aps[i].SpeedKmh = -1
		}
		if aps[i].FlowVph != aps[i].FlowVph {
			aps[i].FlowVph = 0
		}
		if aps[i].Occupancy != aps[i].Occupancy {
			aps[i].Occupancy = 0
		}
		aps[i].DegreeOfSat = round1(aps[i].DegreeOfSat*100) / 100
	}
	rec.Approaches = aps
	return rec
}

// handlePlanDecide serves POST /api/v1/intersections/{id}/plan {"decision": "accept"|"reject", "method",
// "note"} (police): records the decision (audited); an accepted plan becomes the intersection's current plan
// and its effect is tracked (GET …/plans).
func (s *Server) handlePlanDecide(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	var body struct {
		Decision string `json:"decision"`
		Method   string `json:"method"`
		Note     string `json:"note"`
	}
	if !readBody(w, r, &body) {
		return
	}
	var accept bool
	switch body.Decision {
	case "accept":
		accept = true
	case "reject":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("decision %q must be accept or reject", body.Decision))
		return
	}
	p := s.principal(r)
	d, err := m.Decide(r.PathValue("id"), body.Method, accept, p.Name, p.Role, body.Note)
	if err != nil {
		dispatchError(w, err)
		return
	}
	d.Plan = sanitizeRec(d.Plan)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, d)
}

// handlePlanDecisions serves GET /api/v1/intersections/{id}/plans: decisions there, newest first, accepted ones
// with the approaches' state before (at acceptance) and now.
func (s *Server) handlePlanDecisions(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	ds := m.Decisions(r.PathValue("id"))
	for i := range ds {
		ds[i].Plan = sanitizeRec(ds[i].Plan)
	}
	if ds == nil {
		ds = []dispatch.PlanDecision{}
	}
	writeJSON(w, ds)
}

// handleCorridorPlan serves GET /api/v1/corridors/plan?links=a,b,c: green-wave offsets for consecutive links.
func (s *Server) handleCorridorPlan(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	var ids []string
	for _, id := range strings.Split(r.URL.Query().Get("links"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	c, err := m.CorridorPlan(ids)
	if err != nil {
		dispatchError(w, err)
		return
	}
	writeJSON(w, c)
}
