package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"citybrain/engine"
	"citybrain/engine/zones"
	"citybrain/replay"
)

// Replays is the replay API's state: the sessions (replay.Manager) and one websocket hub per session, fed
// by the session engine's deltas. Set Server.Replays to serve /api/v1/replays (docs/replay.md).
type Replays struct {
	Manager *replay.Manager
	Hub     HubConfig // configuration of each session's hub
	hubs    sync.Map  // session id → *Hub
	// NewZones, when set, makes each session's zones manager (api/replay_zones.go): the session judges the
	// zones of the log in its range, seeded with the zones defined now, and serves its own alerts.
	NewZones func(onAlert func([]zones.Alert)) *zones.Manager
	zones    sync.Map // session id → *sessionZones
}

// NewReplays returns the replay API over m.
func NewReplays(m *replay.Manager, hub HubConfig) *Replays { return &Replays{Manager: m, Hub: hub} }

// Create opens a session over the log or a file in the import directory, with its hub. spec.OnDelta,
// OnClose and Active are set here.
func (rp *Replays) Create(spec replay.Spec) (*replay.Session, *Hub, error) {
	return rp.create(spec, func(spec replay.Spec) (*replay.Session, error) { return rp.Manager.Create(spec) })
}

// CreateFrom is Create over any source (the command line's files).
func (rp *Replays) CreateFrom(spec replay.Spec, source string, open replay.Source) (*replay.Session, *Hub, error) {
	return rp.create(spec, func(spec replay.Spec) (*replay.Session, error) { return rp.Manager.CreateFrom(spec, source, open) })
}

func (rp *Replays) create(spec replay.Spec, mk func(replay.Spec) (*replay.Session, error)) (*replay.Session, *Hub, error) {
	paused := spec.Paused
	spec.Paused = true // the hub must exist before the first delta
	var hubp struct {
		sync.Mutex
		h    *Hub
		id   string
		sess *replay.Session
	}
	sz := rp.newSessionZones(func() *Hub {
		hubp.Lock()
		defer hubp.Unlock()
		return hubp.h
	})
	spec.OnRestart = sz.restart
	spec.OnTyped = sz.typed
	spec.OnDelta = func(d *engine.Delta) {
		sz.onDelta(d)
		hubp.Lock()
		h, sess := hubp.h, hubp.sess
		hubp.Unlock()
		if h != nil {
			if d.Reset && sess != nil {
				h.SetEngine(sess.Engine()) // a backward seek: the session runs a new engine
			}
			h.OnDelta(d)
		}
	}
	spec.OnClose = func() {
		hubp.Lock()
		h, id := hubp.h, hubp.id
		hubp.Unlock()
		if h != nil {
			h.Close()
		}
		rp.hubs.Delete(id)
		rp.zones.Delete(id)
	}
	spec.Active = func() bool {
		hubp.Lock()
		defer hubp.Unlock()
		return hubp.h != nil && hubp.h.Stats().Clients > 0
	}
	s, err := mk(spec)
	if err != nil {
		return nil, nil, err
	}
	h := NewHub(rp.Hub, s.Engine())
	hubp.Lock()
	hubp.h, hubp.id, hubp.sess = h, s.ID(), s
	hubp.Unlock()
	rp.hubs.Store(s.ID(), h)
	rp.zones.Store(s.ID(), sz)
	if !paused {
		if err := s.Play(); err != nil {
			return nil, nil, err
		}
	}
	return s, h, nil
}

// HubOf returns the hub of session id.
func (rp *Replays) HubOf(id string) (*Hub, bool) {
	h, ok := rp.hubs.Load(id)
	if !ok {
		return nil, false
	}
	return h.(*Hub), true
}

// replayRoutes adds the replay and export routes (docs/replay.md) when s.Replays is set. Creating,
// controlling and listing replays and exporting need the planner role (admin always); watching a session
// (its websocket, cells and status) is open like /ws, to whoever knows its id.
func (s *Server) replayRoutes(mux *http.ServeMux) {
	a := s.Auth
	if s.Log != nil {
		mux.HandleFunc("GET /api/v1/export", a.Require(s.handleExport, RolePlanner))
	}
	if s.Replays == nil {
		return
	}
	mux.HandleFunc("POST /api/v1/replays", a.Require(s.handleReplayCreate, RolePlanner))
	mux.HandleFunc("GET /api/v1/replays", a.Require(s.handleReplayList, RolePlanner))
	mux.HandleFunc("GET /api/v1/replays/{id}", a.Open(s.handleReplayGet))
	mux.HandleFunc("DELETE /api/v1/replays/{id}", a.Require(s.handleReplayDelete, RolePlanner))
	mux.HandleFunc("POST /api/v1/replays/{id}/{action}", a.Require(s.handleReplayAction, RolePlanner))
	mux.HandleFunc("GET /api/v1/replays/{id}/decisions", a.Open(s.handleReplayDecisions))
	mux.HandleFunc("GET /api/v1/replays/{id}/ws", a.Open(s.handleReplayWS))
	mux.HandleFunc("GET /api/v1/replays/{id}/cells", a.Open(s.handleReplayCells))
	mux.HandleFunc("GET /api/v1/replays/{id}/status", a.Open(s.handleReplayStatus))
	mux.HandleFunc("GET /api/v1/replays/{id}/alerts", a.Open(s.handleReplayAlerts))
	mux.HandleFunc("GET /api/v1/replays/{id}/zones", a.Open(s.handleReplayZones))
}

// replayRequest is the body of POST /api/v1/replays.
type replayRequest struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Speed   *float64 `json:"speed"` // default 1; 0 = as fast as possible
	File    string   `json:"file"`  // a file name in the import directory instead of the log
	Paused  bool     `json:"paused"`
	WarmupS *float64 `json:"warmup_s"` // default 900; 0 = none
}

func (s *Server) handleReplayCreate(w http.ResponseWriter, r *http.Request) {
	var req replayRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "cannot parse replay request: "+err.Error())
		return
	}
	spec := replay.Spec{File: req.File, Paused: req.Paused, Speed: 1}
	var err error
	if spec.From, err = replay.ParseTime(req.From); err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	if spec.To, err = replay.ParseTime(req.To); err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if req.Speed != nil {
		spec.Speed = *req.Speed
	}
	if req.WarmupS != nil {
		if *req.WarmupS < 0 || *req.WarmupS > 7*86400 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("warmup_s %g must be 0 to 604800 (a week)", *req.WarmupS))
			return
		}
		spec.Warmup = time.Duration(*req.WarmupS * float64(time.Second))
		if spec.Warmup == 0 {
			spec.Warmup = -1
		}
	}
	p, _ := s.Auth.Authenticate(r)
	spec.Owner = p.Name
	sess, _, err := s.Replays.Create(spec)
	switch {
	case errors.Is(err, replay.ErrTooMany):
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Location", "/api/v1/replays/"+sess.ID())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(replayDoc(sess))
}

// replayInfo is a session as the API shows it: replay.Info plus the paths to watch it.
type replayInfo struct {
	replay.Info
	WS     string `json:"ws"`
	Cells  string `json:"cells"`
	Status string `json:"status"`
}

func replayDoc(sess *replay.Session) replayInfo {
	p := "/api/v1/replays/" + sess.ID()
	return replayInfo{Info: sess.Info(), WS: p + "/ws", Cells: p + "/cells", Status: p + "/status"}
}

func (s *Server) handleReplayList(w http.ResponseWriter, r *http.Request) {
	list := s.Replays.Manager.List()
	if list == nil {
		list = []replay.Info{}
	}
	writeJSON(w, list)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) (*replay.Session, bool) {
	sess, ok := s.Replays.Manager.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no replay session %q (closed or expired?)", r.PathValue("id")))
	}
	return sess, ok
}

func (s *Server) handleReplayGet(w http.ResponseWriter, r *http.Request) {
	if sess, ok := s.session(w, r); ok {
		writeJSON(w, replayDoc(sess))
	}
}

// handleReplayDecisions serves GET /api/v1/replays/{id}/decisions: the operator decisions (incident
// actions, dispatches, signal plans, zones) the session has met in the log so far, oldest first.
func (s *Server) handleReplayDecisions(w http.ResponseWriter, r *http.Request) {
	if sess, ok := s.session(w, r); ok {
		list := sess.Decisions()
		if list == nil {
			list = []replay.Decision{}
		}
		writeJSON(w, list)
	}
}

func (s *Server) handleReplayDelete(w http.ResponseWriter, r *http.Request) {
	if sess, ok := s.session(w, r); ok {
		sess.Close()
		w.WriteHeader(http.StatusNoContent)
	}
}

// handleReplayAction serves POST /api/v1/replays/{id}/{play|pause|seek|speed|close}; seek takes "at" and
// speed takes "speed", from a JSON body or the query.
func (s *Server) handleReplayAction(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(w, r)
	if !ok {
		return
	}
	var body struct {
		At    string   `json:"at"`
		Speed *float64 `json:"speed"`
	}
	if r.Body != nil {
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "cannot parse body: "+err.Error())
			return
		}
	}
	q := r.URL.Query()
	if body.At == "" {
		body.At = q.Get("at")
	}
	if body.Speed == nil && q.Get("speed") != "" {
		x, err := strconv.ParseFloat(q.Get("speed"), 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("speed %q is not a number", q.Get("speed")))
			return
		}
		body.Speed = &x
	}
	var err error
	switch r.PathValue("action") {
	case "play":
		if body.Speed != nil {
			err = sess.SetSpeed(*body.Speed)
		}
		if err == nil {
			err = sess.Play()
		}
	case "pause":
		err = sess.Pause()
	case "seek":
		var at time.Time
		if at, err = replay.ParseTime(body.At); err == nil && at.IsZero() {
			err = errors.New("seek needs at (a time)")
		}
		if err == nil {
			err = sess.Seek(at)
		}
	case "speed":
		if body.Speed == nil {
			err = errors.New("speed needs speed (a multiple of real time; 0 = as fast as possible)")
		} else {
			err = sess.SetSpeed(*body.Speed)
		}
	case "close":
		sess.Close()
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no replay action %q: use play, pause, seek, speed or close", r.PathValue("action")))
		return
	}
	if errors.Is(err, replay.ErrClosed) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, replayDoc(sess))
}

func (s *Server) handleReplayWS(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(w, r); !ok {
		return
	}
	h, ok := s.Replays.HubOf(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "the replay session has no hub")
		return
	}
	h.ServeWS(w, r, s.checkOrigin)
}

// handleReplayCells serves the session engine's cells like GET /api/v1/cells.
func (s *Server) handleReplayCells(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(w, r)
	if !ok {
		return
	}
	writeCells(w, r, sess.Engine())
}

// writeCells answers a cells query (spec/api.md "Cells") from eng.
func writeCells(w http.ResponseWriter, r *http.Request, eng View) {
	q, err := parseCellQuery(r.URL.Query().Get, eng.Config().Res)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	views, err := eng.Cells(q.Res, q.BBox)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Cell < views[j].Cell })
	buf := make([]byte, 0, 64+len(views)*400)
	buf = append(buf, '[')
	n := 0
	for _, v := range views {
		if !hasData(v, q.Window) {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendCell(buf, v, q.Window, false)
	}
	buf = append(buf, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// handleReplayStatus serves the session engine's progress in the shape of GET /api/v1/status plus the
// session's state.
func (s *Server) handleReplayStatus(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(w, r)
	if !ok {
		return
	}
	writeReplayStatus(w, sess)
}

func writeReplayStatus(w http.ResponseWriter, sess *replay.Session) {
	eng := sess.Engine()
	st := eng.Status()
	in := sess.Info()
	buf := []byte(`{"watermark":`)
	buf = appendTime(buf, st.Watermark)
	buf = append(buf, `,"now":`...)
	buf = appendTime(buf, st.Now)
	buf = append(buf, `,"events_accepted":`...)
	buf = strconv.AppendUint(buf, in.Events, 10)
	buf = append(buf, `,"events_reflected":`...)
	buf = strconv.AppendUint(buf, st.Events, 10)
	buf = append(buf, `,"events_rejected":0,"events_late":`...)
	buf = strconv.AppendUint(buf, st.Late, 10)
	buf = append(buf, `,"cells":`...)
	buf = strconv.AppendInt(buf, int64(st.Cells), 10)
	buf = append(buf, `,"caught_up":true,"replay":`...)
	doc, _ := json.Marshal(in)
	buf = append(buf, doc...)
	buf = append(buf, `,"allowed_lateness_s":`...)
	buf = strconv.AppendFloat(buf, eng.Config().Lateness.Seconds(), 'g', -1, 64)
	buf = append(buf, `,"base_res":`...)
	buf = strconv.AppendInt(buf, int64(eng.Config().Res), 10)
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// SessionHandler serves one replay session the way the live server serves the city: /ws, GET
// /api/v1/status and GET /api/v1/cells answer from the session; everything else goes to next (the replay
// API, the web UI). `citybrain replay --http` uses it so that the ordinary map page shows the replay.
func (s *Server) SessionHandler(sess *replay.Session, next http.Handler) http.Handler {
	a := s.Auth
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", a.Open(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := s.Replays.HubOf(sess.ID()); ok {
			h.ServeWS(w, r, s.checkOrigin)
			return
		}
		writeError(w, http.StatusGone, "the replay session is closed")
	}))
	mux.HandleFunc("GET /api/v1/status", a.Open(func(w http.ResponseWriter, r *http.Request) { writeReplayStatus(w, sess) }))
	mux.HandleFunc("GET /api/v1/cells", a.Open(func(w http.ResponseWriter, r *http.Request) { writeCells(w, r, sess.Engine()) }))
	mux.Handle("/", next)
	return mux
}
