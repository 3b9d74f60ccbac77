// Package dispatch keeps the emergency-response state the engine does not: which unit is sent to which
// incident, its route, its progress and ETA from its reported positions, the green-wave (signal preemption)
// plan along the route, and the signal plans officers accepted or rejected. Every operator decision is kept in
// an audit list (who, when, what).
//
// Concurrency: a Manager is guarded by one mutex (Manager.mu) that every exported method takes; no method
// calls out of the package while holding it except into its read-only Source and the immutable network. The
// hook Config.OnChange is called after the mutex is released.
package dispatch

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"citybrain/engine"
	"citybrain/engine/queues"
	"citybrain/engine/signals"
	"citybrain/geo"
)

// Source is what the manager reads from the engine (engine.Engine satisfies it).
type Source interface {
	Units() []engine.Unit
	Links(bbox geo.BBox) []engine.LinkStats
	Incidents() []engine.Incident
}

// Dispatch statuses.
const (
	StatusEnRoute   = "en_route"
	StatusArrived   = "arrived"
	StatusCleared   = "cleared"
	StatusCancelled = "cancelled"
)

// Errors callers map to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// Config configures a Manager.
type Config struct {
	Network *geo.Network
	Now     func() time.Time // wall clock (default time.Now)
	// ArriveM: a unit this close (route distance) to the incident has arrived (default 60 m).
	ArriveM float64
	// OffRouteM: a unit reported farther than this from its route is re-routed from where it is (default 150 m).
	OffRouteM float64
	// Window is the engine window (index into engine.Windows) live speeds and flows come from (default 1: 5 min).
	Window int
	// LeadS and HoldS time each preemption: green LeadS before the unit (after the queue) and held HoldS after
	// its expected arrival (defaults 5 s and 6 s).
	LeadS, HoldS float64
	// OnChange is called with a copy of a dispatch whenever it changes (e.g. to push it to the map).
	OnChange func(Dispatch)
	// Closed, when set, gives the road links recommended closed (zone hazard alerts, engine/zones); routes
	// avoid them. Called at most once a second, with the manager's lock held: it must not call back.
	Closed func() map[string]bool
	// Journal, when set, gets every operator decision (actions.go) before it takes effect: the log, so
	// that decisions survive a crash and appear in replays. nil: decisions live in memory only (tests).
	Journal Journal
	// Ready reports whether the engine has caught up with the log; Tick leaves dispatches alone until it
	// has (the incidents they serve are not back yet after a restart). nil: always ready.
	Ready func() bool
	// Queues, with a network that carries signal programs, is the engine's lane estimator: the manager then
	// decides signals (DecideSignals, SignalPlan) with Control (default signals.DefaultControl).
	Queues  *queues.Estimator
	Control signals.Control
}

// Audit is one operator decision.
type Audit struct {
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Role    string    `json:"role"`
	Action  string    `json:"action"` // dispatch, close, plan_accept, plan_reject
	Subject string    `json:"subject"`
	Note    string    `json:"note,omitempty"`
}

// Preempt is one signal of a dispatch's green wave.
type Preempt struct {
	Order      int       `json:"order"`
	NodeID     string    `json:"node_id"`
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	Approach   string    `json:"approach_link"`
	Side       string    `json:"side,omitempty"`
	Exit       string    `json:"exit_link"`
	DistM      float64   `json:"distance_m"` // along the route from the unit
	QueueVeh   float64   `json:"queue_veh"`
	ArriveS    float64   `json:"eta_s"`
	ArriveAt   time.Time `json:"eta_at"`
	GreenAt    time.Time `json:"green_at"`
	HoldUntil  time.Time `json:"hold_until"`
	Passed     bool      `json:"passed"`
	Controller string    `json:"controller_msg"` // a ready-to-send instruction
}

// Dispatch is one unit sent to one incident.
type Dispatch struct {
	ID          string       `json:"id"`
	IncidentID  string       `json:"incident_id"`
	UnitID      string       `json:"unit_id"`
	UnitType    string       `json:"unit_type"`
	By          string       `json:"by"`
	Role        string       `json:"role"`
	Status      string       `json:"status"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	ArrivedAt   *time.Time   `json:"arrived_at"`
	ClosedAt    *time.Time   `json:"closed_at"`
	InitialETAS float64      `json:"initial_eta_s"`
	ETAS        float64      `json:"eta_s"`
	ETAAt       time.Time    `json:"eta_at"`
	LengthM     float64      `json:"route_length_m"`
	ProgressM   float64      `json:"progress_m"`
	OffRouteM   float64      `json:"off_route_m"`
	Reroutes    int          `json:"reroutes"`
	PositionTS  int64        `json:"-"` // event time of the unit position last used
	Target      geo.LatLng   `json:"-"`
	Route       *geo.Route   `json:"-"`
	Geometry    []geo.LatLng `json:"-"`
	GreenWave   []Preempt    `json:"green_wave"`
	// RouteLinks are the links of the route in order (the crew's navigation; a SUMO vehicle can follow them).
	RouteLinks []string `json:"route_links"`
	// RouteEndM is where on the last of RouteLinks the route ends: metres of that link's geometry from its start
	// (the incident's position on it; a crew, or a simulated vehicle, stops there rather than at the link's end).
	RouteEndM float64 `json:"route_end_m"`
}

// Option is a unit that could respond to an incident.
type Option struct {
	Unit      engine.Unit
	ETAS      float64
	StraightM float64
	Route     *geo.Route
}

// Manager holds dispatches and plan decisions.
type Manager struct {
	cfg    Config
	src    Source
	router *geo.Router

	decide     sync.Mutex // held from preparing a decision to applying it (actions.go): one at a time
	mu         sync.Mutex // guards everything below
	units      *geo.PointIndex
	unitByID   map[string]engine.Unit
	heading    map[string]float64 // unit id → bearing of its last move of at least HeadingMinM
	dispatches map[string]*Dispatch
	order      []string
	busy       map[string]string // unit id → dispatch id
	audit      []Audit
	decisions  map[string][]*PlanDecision // node id → decisions, oldest first
	speeds     map[int]float64            // link index → live km/h
	speedsAt   time.Time
	sig        *signalControl // nil without programs or estimator
}

// New returns a manager reading src over cfg.Network.
func New(src Source, cfg Config) (*Manager, error) {
	if cfg.Network == nil {
		return nil, fmt.Errorf("cannot start dispatch (no road network): %w", ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ArriveM <= 0 {
		cfg.ArriveM = 60
	}
	if cfg.OffRouteM <= 0 {
		cfg.OffRouteM = 150
	}
	if cfg.Window < 0 || cfg.Window >= len(engine.Windows) {
		cfg.Window = 1
	}
	if cfg.Window == 0 {
		cfg.Window = 1
	}
	if cfg.LeadS <= 0 {
		cfg.LeadS = 5
	}
	if cfg.HoldS <= 0 {
		cfg.HoldS = 6
	}
	m := &Manager{cfg: cfg, src: src, router: cfg.Network.Router(), units: geo.NewPointIndex(),
		unitByID: map[string]engine.Unit{}, heading: map[string]float64{}, dispatches: map[string]*Dispatch{},
		busy: map[string]string{}, decisions: map[string][]*PlanDecision{}}
	if cfg.Queues != nil && len(cfg.Network.Signals()) > 0 {
		m.sig = newSignalControl(cfg.Network, cfg.Queues, cfg.Control)
	}
	return m, nil
}

// speedLocked returns the live speed function, refreshing the link speeds from the engine at most once a second.
// A link's speed is the engine's published estimate (what the map shows, window Config.Window), not the raw
// sample: one probe that crossed on green is not the queue the ambulance will meet.
func (m *Manager) speedLocked() geo.SpeedFunc {
	now := m.cfg.Now()
	if m.speeds == nil || now.Sub(m.speedsAt) > time.Second {
		sp := map[int]float64{}
		for _, ls := range m.src.Links(m.cfg.Network.BBox()) {
			if ls.W[m.cfg.Window].Samples == 0 {
				continue
			}
			if est := ls.Estimate(m.cfg.Window); !math.IsNaN(est.Kmh) {
				sp[ls.Link.Index()] = est.Kmh
			}
		}
		if m.cfg.Closed != nil {
			for id := range m.cfg.Closed() {
				if l, ok := m.cfg.Network.Link(id); ok {
					sp[l.Index()] = geo.Closed
				}
			}
		}
		m.speeds, m.speedsAt = sp, now
	}
	speeds := m.speeds
	return func(l *geo.Link) float64 {
		if v, ok := speeds[l.Index()]; ok {
			return v
		}
		return math.NaN()
	}
}

// syncUnitsLocked brings the unit rtree up to date with the engine's units.
// HeadingMinM: a unit that moved at least this far between two positions is heading that way; it is routed
// from a link running its way (geo.Router.RouteHeading), not turned back on the other carriageway.
const HeadingMinM = 15.0

// headingLocked is the bearing a unit was last seen moving on, NaN when unknown.
func (m *Manager) headingLocked(id string) float64 {
	if h, ok := m.heading[id]; ok {
		return h
	}
	return math.NaN()
}

func (m *Manager) syncUnitsLocked() {
	list := m.src.Units()
	seen := make(map[string]bool, len(list))
	for _, u := range list {
		seen[u.ID] = true
		if old, ok := m.unitByID[u.ID]; ok && u.TS > old.TS {
			a, b := geo.LatLng{Lat: old.Lat, Lng: old.Lng}, geo.LatLng{Lat: u.Lat, Lng: u.Lng}
			if geo.DistanceM(a, b) >= HeadingMinM {
				m.heading[u.ID] = geo.BearingDeg(a, b)
			}
		}
		m.unitByID[u.ID] = u
		m.units.Set(u.ID, geo.LatLng{Lat: u.Lat, Lng: u.Lng})
	}
	for id := range m.unitByID {
		if !seen[id] {
			delete(m.unitByID, id)
			delete(m.heading, id)
			m.units.Remove(id)
		}
	}
}

func (m *Manager) incident(id string) (engine.Incident, bool) {
	for _, in := range m.src.Incidents() {
		if in.ID == id {
			return in, true
		}
	}
	return engine.Incident{}, false
}

// available reports whether a unit may be sent: the engine says available (or nothing) and no open dispatch
// holds it.
func (m *Manager) availableLocked(u engine.Unit) bool {
	if _, busy := m.busy[u.ID]; busy {
		return false
	}
	return u.Status == "" || u.Status == "available"
}

// maxRouted bounds how many candidate units one Nearest call routes.
const maxRouted = 64

// Nearest returns up to k available units ordered by travel time to the incident over the road network with
// live speeds. Candidates come from the unit rtree nearest first; the search stops once the straight-line lower
// bound of the next candidate exceeds the k-th best travel time.
func (m *Manager) Nearest(incidentID string, k int) ([]Option, error) {
	in, ok := m.incident(incidentID)
	if !ok {
		return nil, fmt.Errorf("cannot find units for incident %s: %w", incidentID, ErrNotFound)
	}
	return m.NearestTo(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, k)
}

// NearestTo is Nearest for any point.
func (m *Manager) NearestTo(p geo.LatLng, k int) ([]Option, error) {
	if k <= 0 {
		return nil, fmt.Errorf("cannot find units (k = %d): %w", k, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncUnitsLocked()
	speed := m.speedLocked()
	var out []Option
	routed := 0
	m.units.Nearby(p, func(id string, up geo.LatLng, d float64) bool {
		u := m.unitByID[id]
		if !m.availableLocked(u) {
			return true
		}
		if len(out) >= k && m.router.LowerBoundS(up, p) > out[k-1].ETAS {
			return false
		}
		if routed >= maxRouted {
			return false
		}
		routed++
		rt, err := m.router.Route(up, p, speed)
		if err != nil {
			return true
		}
		out = append(out, Option{Unit: u, ETAS: rt.TravelS, StraightM: d, Route: rt})
		sort.SliceStable(out, func(i, j int) bool { return out[i].ETAS < out[j].ETAS })
		if len(out) > k {
			out = out[:k]
		}
		return true
	})
	return out, nil
}

// Assign sends a unit to an incident: routes it, marks it busy and records who decided (journaled first).
func (m *Manager) Assign(incidentID, unitID, by, role string) (Dispatch, error) {
	m.decide.Lock()
	defer m.decide.Unlock()
	in, ok := m.incident(incidentID)
	if !ok {
		return Dispatch{}, fmt.Errorf("cannot dispatch to incident %s: %w", incidentID, ErrNotFound)
	}
	if !in.Active() {
		return Dispatch{}, fmt.Errorf("cannot dispatch to incident %s (status %s): %w", incidentID, in.Status, ErrConflict)
	}
	m.mu.Lock()
	m.syncUnitsLocked()
	u, ok := m.unitByID[unitID]
	if !ok {
		m.mu.Unlock()
		return Dispatch{}, fmt.Errorf("cannot dispatch unit %s: %w", unitID, ErrNotFound)
	}
	if !m.availableLocked(u) {
		m.mu.Unlock()
		return Dispatch{}, fmt.Errorf("cannot dispatch unit %s (status %s, dispatch %s): %w", unitID, u.Status, m.busy[unitID], ErrConflict)
	}
	target := geo.LatLng{Lat: in.Lat, Lng: in.Lng}
	rt, err := m.router.RouteHeading(geo.LatLng{Lat: u.Lat, Lng: u.Lng}, target, m.headingLocked(u.ID), m.speedLocked())
	if err != nil {
		m.mu.Unlock()
		return Dispatch{}, fmt.Errorf("cannot dispatch unit %s to incident %s: %w", unitID, incidentID, err)
	}
	now := m.cfg.Now()
	d := &Dispatch{ID: newDecisionID("d", now), IncidentID: incidentID,
		UnitID: unitID, UnitType: u.Type, By: by, Role: role, Status: StatusEnRoute, CreatedAt: now,
		InitialETAS: rt.TravelS, PositionTS: u.TS, Target: target}
	m.setRouteLocked(d, rt)
	m.trackLocked(d, now)
	m.mu.Unlock()
	if err := m.commit(Action{ID: d.ID, Kind: ActionDispatch, By: by, Role: role, At: now, Dispatch: d, Target: target}); err != nil {
		return Dispatch{}, err
	}
	got, _ := m.Get(d.ID)
	return got, nil
}

func (m *Manager) setRouteLocked(d *Dispatch, rt *geo.Route) {
	d.Route, d.Geometry, d.LengthM, d.ProgressM = rt, rt.Geometry(), rt.LengthM, 0
	d.RouteLinks = d.RouteLinks[:0:0]
	for _, s := range rt.Steps {
		if n := len(d.RouteLinks); n == 0 || d.RouteLinks[n-1] != s.Link.ID {
			d.RouteLinks = append(d.RouteLinks, s.Link.ID)
		}
	}
	d.RouteEndM = 0
	if n := len(rt.Steps); n > 0 {
		d.RouteEndM = rt.Steps[n-1].ToM
	}
}

// Close ends a dispatch (cleared or cancelled) and frees its unit (journaled first).
func (m *Manager) Close(id, status, by, role, note string) (Dispatch, error) {
	if status != StatusCleared && status != StatusCancelled {
		return Dispatch{}, fmt.Errorf("cannot close dispatch %s (status %q: cleared or cancelled): %w", id, status, ErrInvalid)
	}
	m.decide.Lock()
	defer m.decide.Unlock()
	m.mu.Lock()
	d, ok := m.dispatches[id]
	var closed bool
	if ok {
		closed = d.ClosedAt != nil
	}
	m.mu.Unlock()
	if !ok {
		return Dispatch{}, fmt.Errorf("cannot close dispatch %s: %w", id, ErrNotFound)
	}
	if closed {
		return Dispatch{}, fmt.Errorf("cannot close dispatch %s (already %s): %w", id, d.Status, ErrConflict)
	}
	now := m.cfg.Now()
	a := Action{ID: newDecisionID("c", now), Kind: ActionClose, By: by, Role: role, Note: note, At: now, DispatchID: id, Status: status}
	if err := m.commit(a); err != nil {
		return Dispatch{}, err
	}
	got, _ := m.Get(id)
	return got, nil
}

func (m *Manager) closeLocked(d *Dispatch, status string, now time.Time) {
	d.Status, d.UpdatedAt = status, now
	t := now
	d.ClosedAt = &t
	if m.busy[d.UnitID] == d.ID {
		delete(m.busy, d.UnitID)
	}
}

// Tick updates every open dispatch from the units' latest positions and the incidents' statuses: progress,
// ETA, green wave, arrival (within ArriveM of the incident, or the unit reports on_scene) and clearing (the
// incident was cleared or dismissed). Call it periodically (Run) and before reading.
func (m *Manager) Tick() {
	if m.cfg.Ready != nil && !m.cfg.Ready() {
		return
	}
	incs := map[string]engine.Incident{}
	for _, in := range m.src.Incidents() {
		incs[in.ID] = in
	}
	m.mu.Lock()
	m.syncUnitsLocked()
	now := m.cfg.Now()
	var changed []Dispatch
	for _, id := range m.order {
		d := m.dispatches[id]
		if d.ClosedAt != nil {
			continue
		}
		before := d.Status
		if in, ok := incs[d.IncidentID]; ok && !in.Active() || !ok {
			m.closeLocked(d, StatusCleared, now)
			changed = append(changed, d.copy())
			continue
		}
		if m.trackLocked(d, now) || d.Status != before {
			changed = append(changed, d.copy())
		}
	}
	m.mu.Unlock()
	for _, d := range changed {
		m.notify(d)
	}
}

// trackLocked moves a dispatch along its route from its unit's latest position; it reports whether the unit
// moved.
func (m *Manager) trackLocked(d *Dispatch, now time.Time) bool {
	u, ok := m.unitByID[d.UnitID]
	moved := ok && u.TS > d.PositionTS
	speed := m.speedLocked()
	if d.Route == nil { // restored from the log or a snapshot: routed again from where the unit is
		if !ok {
			return false
		}
		rt, err := m.router.RouteHeading(geo.LatLng{Lat: u.Lat, Lng: u.Lng}, d.Target, m.headingLocked(u.ID), speed)
		if err != nil {
			return false
		}
		m.setRouteLocked(d, rt)
	}
	if moved && d.Status == StatusEnRoute {
		d.PositionTS = u.TS
		p := geo.LatLng{Lat: u.Lat, Lng: u.Lng}
		along, off := d.Route.PositionOf(p)
		if off > m.cfg.OffRouteM {
			if rt, err := m.router.RouteHeading(p, d.Target, m.headingLocked(u.ID), speed); err == nil {
				m.setRouteLocked(d, rt)
				d.Reroutes++
				along, off = 0, rt.SnapFromM
			}
		}
		d.ProgressM, d.OffRouteM = math.Max(d.ProgressM, along), off
		if d.LengthM-d.ProgressM <= m.cfg.ArriveM || u.Status == "on_scene" {
			d.Status = StatusArrived
			t := now
			d.ArrivedAt = &t
		}
	}
	// ETA: the rest of the route at live speeds.
	if d.Status == StatusEnRoute {
		d.ETAS = remainingS(d.Route, d.ProgressM, speed, m.router)
	} else {
		d.ETAS = 0
	}
	d.ETAAt = now.Add(time.Duration(d.ETAS * float64(time.Second)))
	d.GreenWave = m.greenWaveLocked(d, now, speed)
	d.UpdatedAt = now
	return moved
}

// remainingS is the travel time of a route from alongM to its end with live speeds.
func remainingS(rt *geo.Route, alongM float64, speed geo.SpeedFunc, r *geo.Router) float64 {
	t, done := 0.0, 0.0
	for _, s := range rt.Steps {
		rest := s.LengthM
		if alongM > done {
			rest = math.Max(0, done+s.LengthM-alongM)
		}
		done += s.LengthM
		if rest > 0 {
			t += rest / (r.SpeedKmh(s.Link, speed) / 3.6)
		}
	}
	return t
}

func (m *Manager) notify(d Dispatch) {
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(d)
	}
}

func (d *Dispatch) copy() Dispatch {
	c := *d
	c.GreenWave = append([]Preempt(nil), d.GreenWave...)
	return c
}

// Get returns a dispatch.
func (m *Manager) Get(id string) (Dispatch, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dispatches[id]
	if !ok {
		return Dispatch{}, false
	}
	return d.copy(), true
}

// List returns all dispatches, newest first (open ones only unless all).
func (m *Manager) List(all bool) []Dispatch {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Dispatch
	for i := len(m.order) - 1; i >= 0; i-- {
		d := m.dispatches[m.order[i]]
		if all || d.ClosedAt == nil {
			out = append(out, d.copy())
		}
	}
	return out
}

// Busy reports the open dispatch holding a unit, if any.
func (m *Manager) Busy(unitID string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.busy[unitID]
	return id, ok
}

// AuditLog returns the operator decisions, oldest first.
func (m *Manager) AuditLog() []Audit {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Audit(nil), m.audit...)
}

// Run ticks every interval until stop is closed.
func (m *Manager) Run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.Tick()
		}
	}
}

// queueAt estimates the queue on an approach link from its live state (occupancy from loops, else the speed
// estimate and flow), in vehicles per lane.
func queueAt(ls *engine.LinkStats, w int) float64 {
	if ls == nil {
		return 0
	}
	st := &ls.W[w]
	l := ls.Link
	if st.FlowN > 0 {
		return signals.QueueFromOccupancy(st.Occupancy(), l.LengthM, 1)
	}
	if v := ls.Estimate(w).Kmh; v < 15 { // false for NaN: no speed observation
		return signals.QueueFromSpeed(signals.SatFlowPerLane*0.5, v, l.LengthM, 1)
	}
	return 0
}

// The engine is the manager's source.
var _ Source = (*engine.Engine)(nil)
