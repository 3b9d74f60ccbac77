// Package api serves the REST API, the websocket hub and the embedded web UI. It computes no scores: it shows
// what the engine publishes.
package api

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/api/cap"
	"citybrain/engine/dispatch"
	"citybrain/engine/queue"
	"citybrain/engine/zones"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/httpin"
	"citybrain/replay/opendata"
)

// Server is the HTTP side of CityBrain.
type Server struct {
	Engine  View             // the engine, or a cluster's merged view (api/view.go)
	Ingest  *ingest.Ingestor // nil: POST /api/v1/events is refused (a replay server)
	Log     *eventlog.Log
	Hub     *Hub
	Auth    *Auth
	Version string
	Web     fs.FS // the web UI's files (index.html at the root); nil serves none
	Network *geo.Network

	// Counts owned by the wiring: events accepted and rejected over the log's whole life.
	Accepted func() uint64
	Rejected func() uint64
	// Ready reports whether the engine has caught up with the log present at start.
	Ready func() bool
	// Unreadable counts messages no reader could read, by where they were met (log, nats); nil: none.
	Unreadable func() map[string]uint64
	// Queues adds the figures of other bounded queues (ingest workers) to /metrics.
	Queues func() []queue.Stat
	// Memory reports the memory budget and backpressure (system's governor) in /api/v1/status and
	// /metrics; nil: none.
	Memory func() MemoryStatus
	// AllowedOrigins lists extra origins allowed to open /ws (the page's own origin always is).
	AllowedOrigins []string

	// Replays serves /api/v1/replays (api/replays.go; nil: no replay API). GET /api/v1/export is served
	// whenever Log is set.
	Replays  *Replays
	Dispatch *dispatch.Manager // emergency dispatch and signal plans (api/units.go, api/signals.go); nil: 503
	Zones    *zones.Manager    // zones and alerts (api/zones.go); nil: 503
	CAP      *cap.Feed         // CAP 1.2 feed (api/zones.go); nil: 503
	// OpenData serves /api/v1/opendata (api/opendata.go); nil: 503. OpenDataAnonymous lets callers without a
	// token read it when an auth configuration is given; OpenDataPerMinute is each caller's rate (default 60).
	OpenData          *opendata.Service
	OpenDataAnonymous bool
	OpenDataPerMinute int
	limOnce           sync.Once
	lim               *limiter

	// History serves GET /api/v1/history (api/history.go); nil: 404.
	History *History
	// Basemap serves the base map (api/basemap.go): GET /api/v1/basemap, its features and tiles.
	Basemap *Basemap
	// TimeZone is the city's IANA time zone (GET /api/v1/status "timezone"): the web app shows times in it.
	TimeZone string

	// Cluster, when set, serves GET /api/v1/cluster (an api node of a cluster, system/cluster); Waiting says
	// what the node waits for ("" when nothing), shown by /healthz; MoreMetrics appends to /metrics.
	Cluster     http.HandlerFunc
	Waiting     func() string
	MoreMetrics func(w io.Writer)
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	a := s.Auth
	mux.HandleFunc("GET /healthz", s.handleHealth)
	if s.Cluster != nil {
		mux.HandleFunc("GET /api/v1/cluster", a.Open(s.Cluster))
	}
	mux.HandleFunc("GET /metrics", a.Open(s.handleMetrics))
	mux.HandleFunc("GET /api/v1/status", a.Open(s.handleStatus))
	mux.HandleFunc("GET /api/v1/cells", a.Open(s.handleCells))
	mux.HandleFunc("GET /api/v1/incidents", a.Open(s.handleIncidents))
	mux.HandleFunc("POST /api/v1/incidents/{id}", a.Require(s.handleIncidentAction, RoleCommander))
	mux.HandleFunc("GET /api/v1/audit", a.Require(s.handleAudit, RoleAdmin))
	if s.Ingest != nil {
		events := httpin.New(s.Ingest)
		events.Caller = func(r *http.Request) string { p, _ := a.Authenticate(r); return p.Name }
		mux.HandleFunc("POST /api/v1/events", a.Open(events.ServeHTTP, RoleFeed))
	} else {
		mux.HandleFunc("POST /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusServiceUnavailable, "this server takes no events (a replay): send them to the live server")
		})
	}
	mux.HandleFunc("GET /api/v1/deadletters", a.Require(s.handleDead, RoleAdmin))
	mux.HandleFunc("GET /api/v1/whoami", s.handleWhoami)
	mux.HandleFunc("GET /api/v1/network", a.Open(s.handleNetwork))
	mux.HandleFunc("GET /api/v1/links", a.Open(s.handleLinks))
	mux.HandleFunc("GET /api/v1/transit", a.Open(s.handleTransit))
	mux.HandleFunc("GET /api/v1/sensors", a.Open(s.handleSensors))
	mux.HandleFunc("GET /api/v1/intersections", a.Open(s.needNetwork(s.handleIntersections)))
	mux.HandleFunc("GET /api/v1/intersections/{id}", a.Open(s.needNetwork(s.handleIntersection)))
	mux.HandleFunc("GET /ws", a.Open(func(w http.ResponseWriter, r *http.Request) {
		s.Hub.ServeWS(w, r, s.checkOrigin)
	}))
	// Replays and exports (api/replays.go, api/export.go).
	s.replayRoutes(mux)
	// History and the base map (api/history.go, api/basemap.go).
	mux.HandleFunc("GET /api/v1/history", a.Open(s.handleHistory))
	s.basemapRoutes(mux)
	s.routesEmergency(mux)
	s.routesZones(mux)
	s.routesOpenData(mux)

	if s.Web != nil {
		mux.Handle("GET /", http.FileServerFS(s.Web))
	}
	return s.secure(logPanics(mux))
}

// checkOrigin allows browsers from the page's own origin and the configured ones; non-browser clients send
// no Origin.
func (s *Server) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.AllowedOrigins {
		if strings.EqualFold(a, o) {
			return true
		}
	}
	return false
}

func logPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				writeError(w, http.StatusInternalServerError, fmt.Sprintf("BUG: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.Waiting != nil {
		if why := s.Waiting(); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			writeJSON(w, map[string]string{"status": "waiting", "waiting": why})
			return
		}
	}
	if s.Ready != nil && !s.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"catching_up"}` + "\n"))
		return
	}
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Auth.Authenticate(r)
	if !ok {
		writeJSON(w, map[string]any{"authenticated": false, "auth_configured": s.Auth.Configured(),
			"can": canDo(map[bool]string{true: "", false: RoleViewer}[s.Auth.Configured()])})
		return
	}
	writeJSON(w, map[string]any{"authenticated": true, "name": p.Name, "role": p.Role,
		"auth_configured": s.Auth.Configured(), "can": canDo(p.Role)})
}

// canDo lists what a role may do, for clients to enable their controls (the server checks every call).
func canDo(role string) []string {
	can := []string{}
	if role == "" {
		return can
	}
	if role == RoleFeed {
		return append(can, "ingest") // write-only
	}
	can = append(can, "read")
	switch role {
	case RoleAdmin:
		can = append(can, "incident.update", "incident.dispatch", "zone.edit", "signal.plan", "replay.control", "export", "audit.read", "deadletters.read", "ingest")
	case RoleCommander:
		can = append(can, "incident.update", "incident.dispatch", "zone.edit")
	case RolePolice:
		can = append(can, "signal.plan")
	case RolePlanner:
		can = append(can, "replay.control", "export", "zone.edit")
	case RolePublic:
		return []string{"opendata.read"}
	}
	return can
}

// appendKPIs adds the city KPIs to the status object: network TPI (sample-weighted over cells with speed in
// the 5-minute window), mean speed, active incidents, units available and in total.
func (s *Server) appendKPIs(buf []byte) []byte {
	var tpiSum, w, speedSum, speedW float64
	for _, v := range s.Engine.All() {
		st := &v.W[1]
		if st.SpeedW <= 0 {
			continue
		}
		d := v.Derive(1)
		tpiSum += d.TPI * float64(st.Samples)
		w += float64(st.Samples)
		speedSum += st.SpeedSum
		speedW += st.SpeedW
	}
	active := 0
	for _, in := range s.Engine.Incidents() {
		if in.Active() {
			active++
		}
	}
	units := s.Engine.Units()
	avail := 0
	for _, u := range units {
		if u.Status == "available" {
			avail++
		}
	}
	buf = append(buf, `,"kpis":{"tpi":`...)
	if w > 0 {
		buf = trimFloat(buf, tpiSum/w, 2)
	} else {
		buf = append(buf, "null"...)
	}
	buf = append(buf, `,"mean_speed_kmh":`...)
	if speedW > 0 {
		buf = trimFloat(buf, speedSum/speedW, 1)
	} else {
		buf = append(buf, "null"...)
	}
	buf = append(buf, `,"active_incidents":`...)
	buf = strconv.AppendInt(buf, int64(active), 10)
	buf = append(buf, `,"units_available":`...)
	buf = strconv.AppendInt(buf, int64(avail), 10)
	buf = append(buf, `,"units_total":`...)
	buf = strconv.AppendInt(buf, int64(len(units)), 10)
	return append(buf, '}')
}

// MemoryStatus is the memory budget's state: the budget (0: none), the process's RSS, the log messages the
// engine lags behind ingest, why the doors refuse batches ("" : they do not), and how many they refused.
type MemoryStatus struct {
	Limit, RSS int64
	Backlog    uint64
	SlowDown   string
	Refused    uint64
	// Where the Go runtime's memory is (the rest of RSS is C memory: retained raw events, h3, the C
	// allocator): the heap live at the last collection, the heap's objects now (garbage included), heap held
	// free and not returned, and the runtime's other memory (stacks, metadata).
	GoHeapLive, GoHeapObjects, GoHeapFree, GoOther int64
	// Settles counts the quiet spells after which the governor gave a burst's memory back to the system.
	Settles uint64
}

// handleStatus serves GET /api/v1/status (spec/api.md "Status") with additions.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Engine.Status()
	buf := []byte(`{"watermark":`)
	buf = appendTime(buf, st.Watermark)
	buf = append(buf, `,"events_accepted":`...)
	buf = strconv.AppendUint(buf, s.Accepted(), 10)
	buf = append(buf, `,"events_rejected":`...)
	buf = strconv.AppendUint(buf, s.Rejected(), 10)
	buf = append(buf, `,"events_late":`...)
	buf = strconv.AppendUint(buf, st.Late, 10)
	buf = append(buf, `,"version":`...)
	buf = ingest.AppendQuoted(buf, s.Version)
	buf = append(buf, `,"now":`...)
	buf = appendTime(buf, st.Now)
	buf = append(buf, `,"events_too_late":`...)
	buf = strconv.AppendUint(buf, st.TooLate, 10)
	buf = append(buf, `,"events_ahead":`...)
	buf = strconv.AppendUint(buf, st.Ahead, 10)
	buf = append(buf, `,"events_reflected":`...)
	buf = strconv.AppendUint(buf, st.Events, 10)
	buf = append(buf, `,"log_seq":`...)
	buf = strconv.AppendUint(buf, st.AppliedSeq, 10)
	buf = append(buf, `,"cells":`...)
	buf = strconv.AppendInt(buf, int64(st.Cells), 10)
	buf = append(buf, `,"caught_up":`...)
	buf = strconv.AppendBool(buf, s.Ready == nil || s.Ready())
	buf = append(buf, `,"allowed_lateness_s":`...)
	buf = strconv.AppendFloat(buf, s.Engine.Config().Lateness.Seconds(), 'g', -1, 64)
	buf = append(buf, `,"base_res":`...)
	buf = strconv.AppendInt(buf, int64(s.Engine.Config().Res), 10)
	buf = append(buf, `,"raw":{"events":`...)
	buf = strconv.AppendInt(buf, st.RawRows, 10)
	buf = append(buf, `,"bytes":`...)
	buf = strconv.AppendInt(buf, st.RawBytes, 10)
	buf = append(buf, `,"retention_s":`...)
	buf = strconv.AppendFloat(buf, st.Retention.Seconds(), 'g', -1, 64)
	buf = append(buf, `,"retention_configured_s":`...)
	buf = strconv.AppendFloat(buf, s.Engine.Config().Retention.Seconds(), 'g', -1, 64)
	buf = append(buf, `,"shortened":`...)
	buf = strconv.AppendBool(buf, st.Retention < s.Engine.Config().Retention)
	buf = append(buf, '}')
	if s.Memory != nil {
		m := s.Memory()
		buf = append(buf, `,"memory":{"limit_bytes":`...)
		buf = strconv.AppendInt(buf, m.Limit, 10)
		buf = append(buf, `,"rss_bytes":`...)
		buf = strconv.AppendInt(buf, m.RSS, 10)
		buf = append(buf, `,"backlog_messages":`...)
		buf = strconv.AppendUint(buf, m.Backlog, 10)
		buf = append(buf, `,"slow_down":`...)
		buf = strconv.AppendBool(buf, m.SlowDown != "")
		if m.SlowDown != "" {
			buf = append(buf, `,"reason":`...)
			buf = ingest.AppendQuoted(buf, m.SlowDown)
		}
		buf = append(buf, `,"batches_refused":`...)
		buf = strconv.AppendUint(buf, m.Refused, 10)
		buf = append(buf, `,"go_heap_live_bytes":`...)
		buf = strconv.AppendInt(buf, m.GoHeapLive, 10)
		buf = append(buf, `,"go_heap_objects_bytes":`...)
		buf = strconv.AppendInt(buf, m.GoHeapObjects, 10)
		buf = append(buf, `,"go_heap_free_bytes":`...)
		buf = strconv.AppendInt(buf, m.GoHeapFree, 10)
		buf = append(buf, `,"go_other_bytes":`...)
		buf = strconv.AppendInt(buf, m.GoOther, 10)
		buf = append(buf, `,"settles":`...)
		buf = strconv.AppendUint(buf, m.Settles, 10)
		buf = append(buf, '}')
	}
	buf = append(buf, `,"features":["cells","incidents","units","transit","sensors","links","history","zones","alerts"]`...)
	if s.TimeZone != "" {
		buf = append(buf, `,"timezone":`...)
		buf = ingest.AppendQuoted(buf, s.TimeZone)
	}
	buf = s.appendKPIs(buf)
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

func (s *Server) handleDead(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be 1..10000")
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	letters, total, err := s.Log.Dead(ctx, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, map[string]any{"total": total, "dead_letters": letters})
}

// handleNetwork serves GET /api/v1/network?bbox=minLng,minLat,maxLng,maxLat&zoom=Z: the loaded road network's
// links as a GeoJSON FeatureCollection, simplified for the zoom (default 14). Without a network it is an
// empty collection.
func (s *Server) handleNetwork(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bbox, err := bboxParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	zoom := 14
	if z := q.Get("zoom"); z != "" {
		n, err := strconv.Atoi(z)
		if err != nil || n < 0 || n > 22 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("zoom %q must be an integer 0..22", z))
			return
		}
		zoom = n
	}
	w.Header().Set("Content-Type", "application/geo+json")
	if s.Network == nil {
		w.Write([]byte(`{"type":"FeatureCollection","features":[]}` + "\n"))
		return
	}
	w.Write(s.Network.GeoJSON(bbox, zoom))
}
