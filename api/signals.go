package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"citybrain/engine/dispatch"
	"citybrain/engine/queues"
)

// handlePlanGet serves GET /api/v1/intersections/{id}/plan?method=webster|max_pressure|citybrain|
// citybrain_cyclic: the measured state of each approach (flow, queue, degree of saturation) and a recommended
// two-group plan with its expected change in delay; where the network carries the signal's program (SUMO
// nets), also `signal`: the program's stages, the engine's estimate of every incoming lane and the decision
// the signal controller makes now (the one POST /api/v1/signals/decide gives the street controller). The id
// may also name a signal that controls several intersections.
func (s *Server) handlePlanGet(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	id, method := r.PathValue("id"), r.URL.Query().Get("method")
	var sp *dispatch.SignalPlan
	if plan, err := m.SignalPlan(id, method); err == nil {
		sp = &plan
	} else if !errors.Is(err, dispatch.ErrNotFound) && !errors.Is(err, dispatch.ErrNoSignals) {
		dispatchError(w, err)
		return
	}
	recMethod := method
	if method == dispatch.MethodControl || method == dispatch.MethodCyclic {
		recMethod = dispatch.MethodMaxPressure
	}
	rec, err := m.Recommend(id, recMethod)
	switch {
	case err == nil:
		rec = sanitizeRec(rec)
		rec.Signal = sanitizePlan(sp)
		writeJSON(w, rec)
	case sp != nil && errors.Is(err, dispatch.ErrNotFound):
		writeJSON(w, map[string]any{"intersection": id, "signal": sanitizePlan(sp)})
	default:
		dispatchError(w, err)
	}
}

// sanitizePlan replaces infinite gaps (a loop that never counted) by -1 so the JSON encodes.
func sanitizePlan(p *dispatch.SignalPlan) *dispatch.SignalPlan {
	if p == nil {
		return nil
	}
	cp := *p
	cp.Lanes = append([]queues.LaneView(nil), p.Lanes...)
	for i := range cp.Lanes {
		if math.IsInf(cp.Lanes[i].GapS, 0) || math.IsNaN(cp.Lanes[i].GapS) {
			cp.Lanes[i].GapS = -1
		}
	}
	return &cp
}

// maxDecideBody bounds POST /api/v1/signals/decide (a city of ~10,000 signals).
const maxDecideBody = 4 << 20

// handleSignalsDecide serves POST /api/v1/signals/decide (police; a signal gateway's token): the street
// controllers report their state, `{"at": RFC 3339 or Unix ms event time, "method": "citybrain" |
// "citybrain_cyclic", "wait_ms": how long to wait for the feeds up to at (default 1000, at most 5000),
// "signals": [{"id", "phase", "elapsed_s", "state"}]}`, and get the phase each should show:
// `{"decisions": [{"id", "phase", "hold", "reason", "stage", "pressures", "cyclic"}]}`.
func (s *Server) handleSignalsDecide(w http.ResponseWriter, r *http.Request) {
	m := s.dispatcher(w)
	if m == nil {
		return
	}
	var body struct {
		At      json.RawMessage          `json:"at"`
		Method  string                   `json:"method"`
		WaitMs  *int                     `json:"wait_ms"`
		Signals []dispatch.SignalRequest `json:"signals"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxDecideBody+1))
	if err == nil && len(data) > maxDecideBody {
		err = fmt.Errorf("body over %d bytes", maxDecideBody)
	}
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot read request body: %v", err))
		return
	}
	at, err := parseEventTime(body.At)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("at: %v", err))
		return
	}
	if len(body.Signals) == 0 {
		writeError(w, http.StatusBadRequest, "signals: at least one signal's state is needed")
		return
	}
	for i, sr := range body.Signals {
		if sr.ID == "" || len(sr.ID) > 256 || len(sr.State) > 4096 || sr.ElapsedS < 0 || math.IsNaN(sr.ElapsedS) || sr.ElapsedS > 1e6 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("signals[%d]: needs an id (at most 256 bytes), a state of at most 4,096 links and 0 <= elapsed_s <= 1e6", i))
			return
		}
	}
	wait := time.Second
	if body.WaitMs != nil {
		wait = time.Duration(min(max(*body.WaitMs, 0), 5000)) * time.Millisecond
	}
	ds, err := m.DecideSignals(r.Context(), at, wait, body.Method, body.Signals)
	if err != nil {
		dispatchError(w, err)
		return
	}
	writeJSON(w, map[string]any{"decisions": ds})
}

// parseEventTime reads an event time as the wire format gives it: RFC 3339 with a zone, or Unix milliseconds.
func parseEventTime(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 {
		return 0, errors.New("required (RFC 3339 or Unix milliseconds)")
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return ms, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, errors.New("must be an RFC 3339 string or Unix milliseconds")
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q: %w", str, err)
	}
	return t.UnixMilli(), nil
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
