package zones

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tidwall/rtree"

	"citybrain/engine"
	"citybrain/geo"
)

// Config configures a Manager.
type Config struct {
	Res     int          // the engine's base H3 resolution (cells of congestion rules)
	Network *geo.Network // resolves link zones and finds the links through polygons (nil: polygons only)
	// MaxAlerts bounds the alerts kept (active ones always are; the oldest ended ones go first). Default 10,000.
	MaxAlerts int
	// MaxZones bounds the zones (default 50,000).
	MaxZones int
	// OnAlert, when set, gets every alert that fired or changed, in order, after each delta or action; it is
	// called without the manager's lock on the caller's goroutine (the engine's tick goroutine for OnDelta)
	// and must not block.
	OnAlert func([]Alert)
}

// Action is an operator's change of zones, carried in the log (replay.TypeZone) so that replays and
// restarts see it where it happened.
type Action struct {
	ID     string `json:"id"` // unique; the log deduplicates by it
	Op     string `json:"op"` // create, update, delete
	Zone   *Zone  `json:"zone,omitempty"`
	ZoneID string `json:"zone_id,omitempty"` // delete
	By     string `json:"by"`
	Role   string `json:"role"`
	TS     int64  `json:"ts"` // wall clock of the action, ms
}

// Errors callers map to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// zoneState is a zone with its prepared geometry and running rule state (Manager.mu).
type zoneState struct {
	z     Zone
	sh    *shape
	cong  map[uint64]cellCong // congestion rules: latest 1-minute state of each covered cell with data
	since []int64             // per rule: event time since a congestion rule's level has held (0: not holding)
	dirty bool
	cover bool // indexed in cellZones
}

type cellCong struct {
	congestion float64
	samples    uint32
}

// congOf is a cell's congestion in the zones' window, of the published speed estimate as the map shows it;
// samples is 0 when the window holds no speed observation (the cell then counts for no zone).
func congOf(v *engine.CellView) cellCong {
	if d := v.Derive(0); !math.IsNaN(d.SpeedKmh) {
		return cellCong{congestion: d.Congestion, samples: v.W[0].Samples}
	}
	return cellCong{}
}

// Manager holds the zones and their alerts. Safe for concurrent use (one mutex, mu).
type Manager struct {
	cfg Config

	mu        sync.Mutex
	zones     map[string]*zoneState
	tree      rtree.RTreeG[*zoneState]
	cellZones map[uint64][]*zoneState // cells watched by congestion rules
	timing    map[*zoneState]bool     // zones with a congestion rule holding or firing: judged every delta
	units     map[string]unitSeen
	assets    map[string]int64 // "kind:id" → event time of the latest reading judged
	incidents map[string]incSeen
	alerts    map[string]*Alert
	order     []string // alert ids, oldest first
	open      map[condKey]string
	bySubject map[string]map[condKey]bool // open conditions by subject (incident, sensor, unit id)
	now       int64                       // newest event time seen
	results   map[string]error
	resOrder  []string
	changed   []string // alert ids changed since the last notification
}

type unitSeen struct {
	TS    int64    `json:"ts"`
	Zones []string `json:"zones,omitempty"`
}

type incSeen struct {
	lat, lng float64
	typ      string
	active   bool
	sensors  []string // sensors among its evidence
}

func seenOf(in *engine.Incident) incSeen {
	s := incSeen{lat: in.Lat, lng: in.Lng, typ: in.Type, active: in.Active()}
	for _, ev := range in.Evidence {
		if ev.Kind == "sensor" && !slices.Contains(s.sensors, ev.ID) {
			s.sensors = append(s.sensors, ev.ID)
		}
	}
	return s
}

// New returns an empty manager.
func New(cfg Config) *Manager {
	if cfg.Res == 0 {
		cfg.Res = geo.DefaultRes
	}
	if cfg.MaxAlerts <= 0 {
		cfg.MaxAlerts = 10_000
	}
	if cfg.MaxZones <= 0 {
		cfg.MaxZones = 50_000
	}
	return &Manager{cfg: cfg, zones: map[string]*zoneState{}, cellZones: map[uint64][]*zoneState{},
		timing: map[*zoneState]bool{}, units: map[string]unitSeen{}, assets: map[string]int64{},
		incidents: map[string]incSeen{}, alerts: map[string]*Alert{}, open: map[condKey]string{},
		bySubject: map[string]map[condKey]bool{},
		results:   map[string]error{}}
}

// ApplyAction carries out a zone action read from the log (the log consumer, in log order). The outcome is
// also kept for Result.
func (m *Manager) ApplyAction(a Action) error {
	m.mu.Lock()
	err := m.applyLocked(a)
	m.results[a.ID] = err
	m.resOrder = append(m.resOrder, a.ID)
	if len(m.resOrder) > 1000 {
		delete(m.results, m.resOrder[0])
		m.resOrder = m.resOrder[1:]
	}
	changed := m.takeChanged()
	m.mu.Unlock()
	m.notify(changed)
	return err
}

// Result returns the outcome of the action with id, and false while it has not been carried out.
func (m *Manager) Result(id string) (error, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	err, ok := m.results[id]
	return err, ok
}

func (m *Manager) applyLocked(a Action) error {
	switch a.Op {
	case "create", "update":
		if a.Zone == nil {
			return fmt.Errorf("cannot %s zone: no zone: %w", a.Op, ErrInvalid)
		}
		z := *a.Zone
		z.Rules = slices.Clone(z.Rules)
		if err := z.Validate(); err != nil {
			return fmt.Errorf("cannot %s zone %s: %v: %w", a.Op, z.ID, err, ErrInvalid)
		}
		old := m.zones[z.ID]
		if a.Op == "create" && old != nil {
			return fmt.Errorf("cannot create zone %s: it exists: %w", z.ID, ErrConflict)
		}
		if a.Op == "update" && old == nil {
			return fmt.Errorf("cannot update zone %s: %w", z.ID, ErrNotFound)
		}
		if old == nil && len(m.zones) >= m.cfg.MaxZones {
			return fmt.Errorf("cannot create zone %s: %d zones is the limit: %w", z.ID, m.cfg.MaxZones, ErrConflict)
		}
		sh, err := buildShape(&z, m.cfg.Res, m.cfg.Network)
		if err != nil {
			return fmt.Errorf("cannot %s zone %s: %v: %w", a.Op, z.ID, err, ErrInvalid)
		}
		z.UpdatedAt = a.TS
		if old != nil {
			z.CreatedAt, z.CreatedBy, z.Role = old.z.CreatedAt, old.z.CreatedBy, old.z.Role
			m.unindex(old)
			m.resolveZone(old.z.ID, "zone changed")
		} else {
			z.CreatedAt, z.CreatedBy, z.Role = a.TS, a.By, a.Role
		}
		m.index(&zoneState{z: z, sh: sh, since: make([]int64, len(z.Rules))})
		return nil
	case "delete":
		old := m.zones[a.ZoneID]
		if old == nil {
			return fmt.Errorf("cannot delete zone %s: %w", a.ZoneID, ErrNotFound)
		}
		m.unindex(old)
		m.resolveZone(old.z.ID, "zone deleted")
		return nil
	default:
		return fmt.Errorf("cannot apply zone action %q: op must be create, update or delete: %w", a.Op, ErrInvalid)
	}
}

func (m *Manager) index(zs *zoneState) {
	m.zones[zs.z.ID] = zs
	b := zs.sh.bbox
	m.tree.Insert([2]float64{b.MinLng, b.MinLat}, [2]float64{b.MaxLng, b.MaxLat}, zs)
	for _, r := range zs.z.Rules {
		if r.Type == RuleCongestion {
			zs.cover = true
		}
	}
	if zs.cover {
		zs.cong = map[uint64]cellCong{}
		for _, c := range zs.sh.cells {
			m.cellZones[c] = append(m.cellZones[c], zs)
		}
	}
}

func (m *Manager) unindex(zs *zoneState) {
	delete(m.zones, zs.z.ID)
	b := zs.sh.bbox
	m.tree.Delete([2]float64{b.MinLng, b.MinLat}, [2]float64{b.MaxLng, b.MaxLat}, zs)
	if zs.cover {
		for _, c := range zs.sh.cells {
			l := m.cellZones[c]
			if i := slices.Index(l, zs); i >= 0 {
				l = slices.Delete(l, i, i+1)
			}
			if len(l) == 0 {
				delete(m.cellZones, c)
			} else {
				m.cellZones[c] = l
			}
		}
	}
	delete(m.timing, zs)
}

// resolveZone ends the zone's open conditions.
func (m *Manager) resolveZone(zoneID, why string) {
	var keys []condKey
	for k := range m.open {
		if k.zone == zoneID {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		m.resolve(k, m.now, why)
	}
}

// within calls fn for each zone containing (lat, lng).
func (m *Manager) within(lat, lng float64, fn func(zs *zoneState)) {
	p := [2]float64{lng, lat}
	m.tree.Search(p, p, func(_, _ [2]float64, zs *zoneState) bool {
		if zs.sh.contains(lat, lng) {
			fn(zs)
		}
		return true
	})
}

// OnDelta judges the rules against one engine tick (the engine's tick goroutine).
func (m *Manager) OnDelta(d *engine.Delta) {
	m.mu.Lock()
	if d.Now > m.now {
		m.now = d.Now
	}
	m.cells(d)
	m.judgeIncidents(d.Incidents)
	if d.Units != nil {
		m.judgeUnits(d.Units)
	}
	if d.Assets != nil {
		m.judgeAssets(d.Assets)
	}
	changed := m.takeChanged()
	m.mu.Unlock()
	m.notify(changed)
}

func (m *Manager) notify(changed []Alert) {
	if len(changed) > 0 && m.cfg.OnAlert != nil {
		m.cfg.OnAlert(changed)
	}
}

// takeChanged returns copies of the alerts changed since the last call, each once, in order of change
// (m.mu held). Copies are taken now so they carry everything the delta added.
func (m *Manager) takeChanged() []Alert {
	if len(m.changed) == 0 {
		return nil
	}
	var out []Alert
	seen := map[string]bool{}
	for i := len(m.changed) - 1; i >= 0; i-- {
		id := m.changed[i]
		if seen[id] {
			continue
		}
		seen[id] = true
		if a := m.alerts[id]; a != nil {
			out = append(out, a.clone())
		}
	}
	slices.Reverse(out)
	m.changed = m.changed[:0]
	return out
}

// cells updates the congestion of the zones whose cells changed and judges congestion rules.
func (m *Manager) cells(d *engine.Delta) {
	if len(m.cellZones) == 0 {
		return
	}
	for _, v := range d.Changed {
		zs := m.cellZones[v.Cell]
		if len(zs) == 0 {
			continue
		}
		cc := congOf(v)
		for _, z := range zs {
			if cc.samples == 0 {
				delete(z.cong, v.Cell)
			} else {
				z.cong[v.Cell] = cc
			}
			z.dirty = true
			m.timing[z] = true
		}
	}
	for _, c := range d.Removed {
		for _, z := range m.cellZones[c] {
			delete(z.cong, c)
			z.dirty = true
			m.timing[z] = true
		}
	}
	// Deterministic order: zones by id.
	var judge []*zoneState
	for z := range m.timing {
		judge = append(judge, z)
	}
	sort.Slice(judge, func(i, j int) bool { return judge[i].z.ID < judge[j].z.ID })
	for _, z := range judge {
		m.judgeCongestion(z, d.Now)
	}
}

// zoneTPI is the sample-weighted mean congestion of the zone's cells as a TPI, and the samples behind it.
func zoneTPI(z *zoneState) (float64, uint32) {
	var sum float64
	var n uint32
	for _, c := range z.cong {
		sum += c.congestion * float64(c.samples)
		n += c.samples
	}
	if n == 0 {
		return 0, 0
	}
	return engine.TPI(sum / float64(n)), n
}

func (m *Manager) judgeCongestion(z *zoneState, now int64) {
	tpi, n := zoneTPI(z)
	z.dirty = false
	holding := false
	for i, r := range z.z.Rules {
		if r.Type != RuleCongestion {
			continue
		}
		k := condKey{z.z.ID, i, ""}
		if n >= engine.MinSamples && tpi >= r.MinTPI {
			if z.since[i] == 0 {
				z.since[i] = now
			}
			holding = true
			if _, open := m.open[k]; !open && float64(now-z.since[i]) >= r.ForS*1000 {
				lat, lng := z.sh.center()
				a := m.fire(z, i, r.Type, "", now, lat, lng, sevOr(r.Severity, 3),
					fmt.Sprintf("%s: traffic index %.1f (%s) for %s", z.z.Name, tpi, engine.Level(tpi), fmtDur(now-z.since[i])))
				a.addEvidence(Evidence{Kind: "zone", ID: z.z.ID, Type: "tpi", TS: now, Lat: lat, Lng: lng, Value: round2(tpi), Threshold: r.MinTPI})
			}
			continue
		}
		z.since[i] = 0
		if _, open := m.open[k]; open {
			m.resolve(k, now, fmt.Sprintf("traffic index %.1f below %.1f", tpi, r.MinTPI))
		}
	}
	if !holding {
		delete(m.timing, z)
	}
}

func (m *Manager) judgeIncidents(list []engine.Incident) {
	for i := range list {
		in := &list[i]
		active := in.Active()
		m.incidents[in.ID] = seenOf(in)
		if !active {
			delete(m.incidents, in.ID)
		}
		// A hazard alert whose sensor is evidence of this incident names it.
		for _, ev := range in.Evidence {
			if ev.Kind != "sensor" {
				continue
			}
			for k := range m.bySubject[ev.ID] {
				if id := m.open[k]; k.rule < 0 {
					if a := m.alerts[id]; a != nil && a.IncidentID != in.ID && active {
						a.IncidentID = in.ID
						m.touch(a, max(a.UpdatedAt, in.UpdatedAt))
					}
				}
			}
		}
		ts := in.DetectedAt
		if ts == 0 {
			ts = in.UpdatedAt
		}
		inside := map[string]bool{}
		m.within(in.Lat, in.Lng, func(z *zoneState) {
			inside[z.z.ID] = true
			for ri, r := range z.z.Rules {
				if r.Type != RuleIncident || len(r.IncidentTypes) > 0 && !slices.Contains(r.IncidentTypes, in.Type) {
					continue
				}
				k := condKey{z.z.ID, ri, in.ID}
				if id, open := m.open[k]; open {
					a := m.alerts[id]
					if !active {
						m.resolve(k, max(in.ClearedAt, in.UpdatedAt), "incident "+in.Status)
					} else if a.Severity != max(in.Severity, 1) || a.Message != incidentMsg(z, in) {
						a.Severity, a.Message = max(in.Severity, 1), incidentMsg(z, in)
						m.touch(a, in.UpdatedAt)
					}
					continue
				}
				if !active {
					continue
				}
				a := m.fire(z, ri, r.Type, in.ID, ts, in.Lat, in.Lng, sevOr(r.Severity, max(in.Severity, 1)), incidentMsg(z, in))
				a.IncidentID = in.ID
				a.addEvidence(Evidence{Kind: "incident", ID: in.ID, Type: in.Type, TS: ts, Lat: in.Lat, Lng: in.Lng, Value: round2(in.Score)})
			}
		})
		// An incident that moved out of a zone (its position leans to new evidence) ends that zone's alert.
		for k := range m.bySubject[in.ID] {
			if k.rule >= 0 && !inside[k.zone] {
				m.resolve(k, in.UpdatedAt, "incident moved out of the zone")
			}
		}
	}
}

func incidentMsg(z *zoneState, in *engine.Incident) string {
	return fmt.Sprintf("%s: %s incident %s (%s, severity %d)", z.z.Name, strings.ReplaceAll(in.Type, "_", " "), in.ID, in.Status, in.Severity)
}

func (m *Manager) judgeUnits(units []engine.Unit) {
	for i := range units {
		u := &units[i]
		prev, seen := m.units[u.ID]
		if seen && prev.TS >= u.TS {
			continue
		}
		var now []string
		m.within(u.Lat, u.Lng, func(z *zoneState) { now = append(now, z.z.ID) })
		sort.Strings(now)
		for _, id := range now {
			if !slices.Contains(prev.Zones, id) {
				m.unitEvent(m.zones[id], u, RuleUnitEnter)
			}
		}
		for _, id := range prev.Zones {
			if z := m.zones[id]; z != nil && !slices.Contains(now, id) {
				m.unitEvent(z, u, RuleUnitLeave)
			}
		}
		m.units[u.ID] = unitSeen{TS: u.TS, Zones: now}
	}
}

func (m *Manager) unitEvent(z *zoneState, u *engine.Unit, typ string) {
	for ri, r := range z.z.Rules {
		if r.Type != typ || len(r.UnitTypes) > 0 && !slices.Contains(r.UnitTypes, u.Type) {
			continue
		}
		verb := "entered"
		if typ == RuleUnitLeave {
			verb = "left"
		}
		a := m.fire(z, ri, typ, u.ID, u.TS, u.Lat, u.Lng, sevOr(r.Severity, 1),
			fmt.Sprintf("%s: %s %s %s (%s)", z.z.Name, u.Type, u.ID, verb, u.Status))
		a.Status = AlertEvent
		m.close(condKey{z.z.ID, ri, u.ID})
		a.addEvidence(Evidence{Kind: "unit", ID: u.ID, Type: u.Type, TS: u.TS, Lat: u.Lat, Lng: u.Lng})
	}
}

// hazardMatch tells whether a sensor type belongs to a hazard zone kind.
func hazardMatch(kind, sensorType string) bool {
	t := strings.ToLower(sensorType)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(t, s) {
				return true
			}
		}
		return false
	}
	switch kind {
	case KindUnderpass, KindFlood:
		return has("water", "flood", "rain")
	case KindPipe:
		return has("pressure", "pipe", "leak")
	case KindGas:
		return has("gas", "methane", "co2", "h2s")
	case KindFire:
		return has("smoke", "fire", "temperature", "heat")
	}
	return false
}

func (m *Manager) judgeAssets(assets []engine.Event) {
	for i := range assets {
		ev := &assets[i]
		if ev.Kind != engine.KindSensor && ev.Kind != engine.KindVideo {
			continue
		}
		key := ev.Kind.String() + ":" + ev.ID
		if ts, ok := m.assets[key]; ok && ts >= ev.TS {
			continue
		}
		m.assets[key] = ev.TS
		m.within(ev.Lat, ev.Lng, func(z *zoneState) {
			if ev.Kind == engine.KindSensor && hazardMatch(z.z.Kind, ev.Type) && engine.Has(ev.Threshold) && engine.Has(ev.Value) {
				m.judgeReading(z, -1, "hazard", ev, ev.Value > ev.Threshold, ev.Threshold, sevOr(0, 4))
			}
			for ri, r := range z.z.Rules {
				switch r.Type {
				case RuleSensor:
					if ev.Kind != engine.KindSensor || !engine.Has(ev.Value) || !typeMatch(r.SensorTypes, ev.Type) {
						continue
					}
					thr, over := ev.Threshold, false
					switch {
					case r.Above != nil:
						thr, over = *r.Above, ev.Value > *r.Above
					case r.Below != nil:
						thr, over = *r.Below, ev.Value < *r.Below
					case engine.Has(ev.Threshold):
						over = ev.Value > ev.Threshold // as the engine's incident evidence judges it
					default:
						continue
					}
					m.judgeReading(z, ri, r.Type, ev, over, thr, sevOr(r.Severity, 3))
				case RuleCrowd:
					n, ok := crowdCount(ev)
					if !ok {
						continue
					}
					m.judgeReading(z, ri, r.Type, ev, n >= r.Count, r.Count, sevOr(r.Severity, 2))
				}
			}
		})
	}
}

// crowdCount is a camera's pedestrian count or a crowd sensor's reading.
func crowdCount(ev *engine.Event) (float64, bool) {
	switch {
	case ev.Kind == engine.KindVideo && ev.Type == "pedestrian" && engine.Has(ev.Count):
		return ev.Count, true
	case ev.Kind == engine.KindSensor && engine.Has(ev.Value) && typeMatch([]string{"crowd", "people", "pedestrian", "footfall"}, ev.Type):
		return ev.Value, true
	}
	return 0, false
}

func typeMatch(want []string, t string) bool {
	if len(want) == 0 {
		return true
	}
	t = strings.ToLower(t)
	for _, w := range want {
		if strings.Contains(t, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// judgeReading opens, updates or resolves the condition (zone, rule, reading's source).
func (m *Manager) judgeReading(z *zoneState, ri int, rule string, ev *engine.Event, over bool, thr float64, sev int) {
	k := condKey{z.z.ID, ri, ev.ID}
	val := ev.Value
	if n, ok := crowdCount(ev); ok && rule == RuleCrowd {
		val = n
	}
	kind := "sensor"
	if ev.Kind == engine.KindVideo {
		kind = "camera"
	}
	evd := Evidence{Kind: kind, ID: ev.ID, Type: ev.Type, TS: ev.TS, Lat: ev.Lat, Lng: ev.Lng, Value: val, Threshold: thr, Unit: ev.Unit}
	if id, open := m.open[k]; open {
		if !over {
			m.resolve(k, ev.TS, fmt.Sprintf("%s back to %g", ev.ID, val))
			return
		}
		a := m.alerts[id]
		if a.Evidence[len(a.Evidence)-1].Value != val {
			a.addEvidence(evd)
			m.touch(a, ev.TS)
		}
		return
	}
	if !over {
		return
	}
	what := "over"
	if rule != RuleCrowd && val < thr {
		what = "under"
	}
	msg := fmt.Sprintf("%s: %s %s reads %g %s, %s %g", z.z.Name, strings.ReplaceAll(ev.Type, "_", " "), ev.ID, val, ev.Unit, what, thr)
	if rule == RuleCrowd {
		msg = fmt.Sprintf("%s: crowd of %g at %s (limit %g)", z.z.Name, val, ev.ID, thr)
	}
	a := m.fire(z, ri, rule, ev.ID, ev.TS, ev.Lat, ev.Lng, sev, msg)
	a.addEvidence(evd)
	if rule == "hazard" {
		a.Closures = slices.Clone(z.sh.links)
		if len(a.Closures) > 0 {
			a.Message += fmt.Sprintf("; close %d road link(s) through the zone", len(a.Closures))
		}
		// The engine opens a hazard incident from the same reading (or fuses it into one nearby); name it
		// when it is known, else when it comes (judgeIncidents).
		for id, in := range m.incidents {
			if in.active && slices.Contains(in.sensors, ev.ID) && (a.IncidentID == "" || id < a.IncidentID) {
				a.IncidentID = id
			}
		}
	}
}

// fire opens an alert (m.mu held) and returns it for its evidence to be added.
func (m *Manager) fire(z *zoneState, ri int, rule, subject string, ts int64, lat, lng float64, sev int, msg string) *Alert {
	a := &Alert{ID: alertID(z.z.ID, ri, subject, ts), ZoneID: z.z.ID, ZoneName: z.z.Name, ZoneKind: z.z.Kind,
		Rule: rule, RuleIndex: ri, Subject: subject, Status: AlertActive, Severity: sev, Message: msg,
		Lat: lat, Lng: lng, FiredAt: ts, UpdatedAt: ts, Version: 1}
	if old := m.alerts[a.ID]; old != nil {
		// The same condition at the same event time (a replayed delta after a restart): it is that alert.
		m.setOpen(condKey{z.z.ID, ri, subject}, a.ID)
		return &Alert{} // evidence added to a throwaway: the kept alert already has it
	}
	m.alerts[a.ID] = a
	m.order = append(m.order, a.ID)
	m.setOpen(condKey{z.z.ID, ri, subject}, a.ID)
	m.trim()
	m.changed = append(m.changed, a.ID)
	return a
}

func (m *Manager) touch(a *Alert, ts int64) {
	if ts > a.UpdatedAt {
		a.UpdatedAt = ts
	}
	a.Version++
	m.changed = append(m.changed, a.ID)
}

func (m *Manager) resolve(k condKey, ts int64, why string) {
	id, ok := m.open[k]
	m.close(k)
	if !ok {
		return
	}
	a := m.alerts[id]
	if a == nil || a.Status != AlertActive {
		return
	}
	a.Status = AlertResolved
	a.ResolvedAt = max(ts, a.FiredAt)
	a.Message += " — resolved: " + why
	m.touch(a, a.ResolvedAt)
}

func (m *Manager) setOpen(k condKey, id string) {
	m.open[k] = id
	s := m.bySubject[k.subject]
	if s == nil {
		s = map[condKey]bool{}
		m.bySubject[k.subject] = s
	}
	s[k] = true
}

func (m *Manager) close(k condKey) {
	delete(m.open, k)
	if s := m.bySubject[k.subject]; s != nil {
		delete(s, k)
		if len(s) == 0 {
			delete(m.bySubject, k.subject)
		}
	}
}

// trim drops the oldest ended alerts past MaxAlerts.
func (m *Manager) trim() {
	if len(m.order) <= m.cfg.MaxAlerts+m.cfg.MaxAlerts/4 { // amortised: a pass frees a quarter at least
		return
	}
	keep := m.order[:0]
	drop := len(m.order) - m.cfg.MaxAlerts
	for _, id := range m.order {
		if a := m.alerts[id]; drop > 0 && a != nil && !a.Active() {
			delete(m.alerts, id)
			drop--
			continue
		}
		keep = append(keep, id)
	}
	m.order = keep
}

func sevOr(s, d int) int {
	if s > 0 {
		return s
	}
	return d
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func fmtDur(ms int64) string {
	s := ms / 1000
	if s < 60 {
		return fmt.Sprintf("%ds", s)
	}
	return fmt.Sprintf("%dm%02ds", s/60, s%60)
}

// center is a representative point of the shape (the bbox centre, or the first point of a link zone).
func (s *shape) center() (float64, float64) {
	if len(s.lines) > 0 && len(s.lines[0]) > 0 {
		p := s.lines[0][len(s.lines[0])/2]
		return p.Lat, p.Lng
	}
	return (s.bbox.MinLat + s.bbox.MaxLat) / 2, (s.bbox.MinLng + s.bbox.MaxLng) / 2
}
