package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
)

// appendIncident appends the spec/api.md incident object (plus additions: evidence_count, affected_cells,
// evidence weights, audit).
func appendIncident(buf []byte, in *engine.Incident) []byte {
	buf = append(buf, `{"id":`...)
	buf = ingest.AppendQuoted(buf, in.ID)
	buf = append(buf, `,"type":`...)
	buf = ingest.AppendQuoted(buf, in.Type)
	buf = append(buf, `,"lat":`...)
	buf = trimFloat(buf, in.Lat, 6)
	buf = append(buf, `,"lng":`...)
	buf = trimFloat(buf, in.Lng, 6)
	buf = append(buf, `,"cell":"`...)
	buf = append(buf, geo.CellString(in.Cell)...)
	buf = append(buf, `","score":`...)
	buf = trimFloat(buf, in.Score, 3)
	buf = append(buf, `,"severity":`...)
	buf = strconv.AppendInt(buf, int64(in.Severity), 10)
	buf = append(buf, `,"status":"`...)
	buf = append(buf, in.Status...)
	buf = append(buf, `","first_evidence_at":`...)
	buf = appendTime(buf, in.FirstEvidenceAt)
	buf = append(buf, `,"detected_at":`...)
	buf = appendTime(buf, in.DetectedAt)
	buf = append(buf, `,"updated_at":`...)
	buf = appendTime(buf, in.UpdatedAt)
	buf = append(buf, `,"cleared_at":`...)
	buf = appendTime(buf, in.ClearedAt)
	buf = append(buf, `,"evidence_count":`...)
	buf = strconv.AppendInt(buf, int64(in.EvidenceCount), 10)
	buf = append(buf, `,"evidence":[`...)
	for i, e := range in.Evidence {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"kind":`...)
		buf = ingest.AppendQuoted(buf, e.Kind)
		buf = append(buf, `,"id":`...)
		buf = ingest.AppendQuoted(buf, e.ID)
		buf = append(buf, `,"type":`...)
		buf = ingest.AppendQuoted(buf, e.Type)
		buf = append(buf, `,"ts":`...)
		buf = appendTime(buf, e.TS)
		buf = append(buf, `,"weight":`...)
		buf = trimFloat(buf, e.Weight, 3)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"affected_cells":[`...)
	for i, c := range in.Affected {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, geo.CellString(c)...)
		buf = append(buf, '"')
	}
	buf = append(buf, `],"audit":[`...)
	for i, a := range in.Audit {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"at":`...)
		buf = appendTime(buf, a.TS)
		buf = append(buf, `,"by":`...)
		buf = ingest.AppendQuoted(buf, a.By)
		buf = append(buf, `,"role":`...)
		buf = ingest.AppendQuoted(buf, a.Role)
		buf = append(buf, `,"status":`...)
		buf = ingest.AppendQuoted(buf, a.Status)
		buf = append(buf, `,"note":`...)
		buf = ingest.AppendQuoted(buf, a.Note)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// handleIncidents serves GET /api/v1/incidents[?status=active|all][&since=RFC3339]: active incidents by
// default, newest score first; since keeps those updated at or after the time (event time).
func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	all := false
	switch st := q.Get("status"); st {
	case "", "active":
	case "all":
		all = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q must be active or all", st))
		return
	}
	var since int64
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q is not RFC 3339", v))
			return
		}
		since = t.UnixMilli()
	}
	list := s.Engine.Incidents()
	out := make([]*engine.Incident, 0, len(list))
	for i := range list {
		in := &list[i]
		if (!all && !in.Active()) || in.UpdatedAt < since {
			continue
		}
		out = append(out, in)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Active() != out[j].Active() {
			return out[i].Active()
		}
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].DetectedAt < out[j].DetectedAt
	})
	buf := []byte{'['}
	for i, in := range out {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendIncident(buf, in)
	}
	buf = append(buf, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// handleIncidentAction serves POST /api/v1/incidents/{id} with {"status": "confirmed"|"dismissed"|"cleared",
// "note": "..."} (commanders). The action goes to the log first (so restarts and replays carry it), then
// the engine carries it out; the answer is the updated incident.
func (s *Server) handleIncidentAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		Status string `json:"status"`
		Note   string `json:"note"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || json.Unmarshal(data, &body) != nil {
		writeError(w, http.StatusBadRequest, `body must be JSON {"status": "confirmed"|"dismissed"|"cleared", "note": "..."}`)
		return
	}
	switch body.Status {
	case engine.StatusConfirmed, engine.StatusDismissed, engine.StatusCleared:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q must be confirmed, dismissed or cleared", body.Status))
		return
	}
	var cur *engine.Incident
	for _, in := range s.Engine.Incidents() {
		if in.ID == id {
			cur = &in
			break
		}
	}
	if cur == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no incident %s", id))
		return
	}
	if !cur.Active() && cur.Status != body.Status {
		writeError(w, http.StatusConflict, fmt.Sprintf("incident %s is already %s", id, cur.Status))
		return
	}
	p, _ := s.Auth.Authenticate(r)
	a := engine.Action{ID: newID(), IncidentID: id, Status: body.Status, By: p.Name, Role: p.Role, Note: body.Note,
		TS: time.Now().UnixMilli()}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	// On a partitioned log the action goes to the partition owning the incident's cell (docs/scale-out.md).
	if _, err := s.Log.AppendActionTo(ctx, eventlog.District(cur.Cell, s.Log.DistrictRes()), a); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	for {
		if err, done := s.Engine.ActionResult(a.ID); done {
			if err != nil {
				writeError(w, http.StatusConflict, err.Error())
				return
			}
			break
		}
		select {
		case <-ctx.Done():
			writeError(w, http.StatusAccepted, "the action is in the log and will be applied; the engine has not caught up yet")
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, in := range s.Engine.Incidents() {
		if in.ID == id {
			w.Header().Set("Content-Type", "application/json")
			w.Write(append(appendIncident(nil, &in), '\n'))
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no incident %s", id))
}

// handleAudit serves GET /api/v1/audit (admins): every operator action on incidents still held.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		At       time.Time `json:"at"`
		Incident string    `json:"incident"`
		By       string    `json:"by"`
		Role     string    `json:"role"`
		Status   string    `json:"status"`
		Note     string    `json:"note"`
	}
	var out []entry
	for _, in := range s.Engine.Incidents() {
		for _, a := range in.Audit {
			out = append(out, entry{At: time.UnixMilli(a.TS).UTC(), Incident: in.ID, By: a.By, Role: a.Role, Status: a.Status, Note: a.Note})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if out == nil {
		out = []entry{}
	}
	writeJSON(w, out)
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
