package zones

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"citybrain/engine"
)

// Zones returns copies of every zone, by id.
func (m *Manager) Zones() []Zone {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Zone, 0, len(m.zones))
	for _, z := range m.zones {
		out = append(out, z.z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Zone returns the zone with id and the road links through it.
func (m *Manager) Zone(id string) (Zone, []string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	z, ok := m.zones[id]
	if !ok {
		return Zone{}, nil, false
	}
	return z.z, slices.Clone(z.sh.links), true
}

// Len is the number of zones.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.zones)
}

// AlertFilter selects alerts.
type AlertFilter struct {
	ActiveOnly bool
	ZoneID     string
	Since      int64 // alerts updated at or after this event time (ms); 0: all
	Limit      int   // newest first up to Limit (0: all)
}

// Alerts returns copies of the alerts that pass f, newest first.
func (m *Manager) Alerts(f AlertFilter) []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Alert
	for i := len(m.order) - 1; i >= 0; i-- {
		a := m.alerts[m.order[i]]
		if a == nil || f.ActiveOnly && !a.Active() || f.ZoneID != "" && a.ZoneID != f.ZoneID || a.UpdatedAt < f.Since {
			continue
		}
		out = append(out, a.clone())
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out
}

// Alert returns a copy of the alert with id.
func (m *Manager) Alert(id string) (Alert, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alerts[id]
	if !ok {
		return Alert{}, false
	}
	return a.clone(), true
}

// Closures returns the road links that active hazard alerts recommend closing (unit routing avoids them).
func (m *Manager) Closures() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for _, id := range m.open {
		if a := m.alerts[id]; a != nil && a.Active() {
			for _, l := range a.Closures {
				out[l] = true
			}
		}
	}
	return out
}

// state is what a snapshot keeps: the zones, the alerts, and the running rule state. Cell congestion and
// incidents are taken afresh from the engine's published state on Restore.
type state struct {
	Version int                 `json:"version"`
	Now     int64               `json:"now"`
	Zones   []Zone              `json:"zones"`
	Since   map[string][]int64  `json:"since,omitempty"`
	Alerts  []*Alert            `json:"alerts"`
	Open    []openState         `json:"open"`
	Units   map[string]unitSeen `json:"units"`
	Assets  map[string]int64    `json:"assets"`
}

type openState struct {
	Zone    string `json:"zone"`
	Rule    int    `json:"rule"`
	Subject string `json:"subject"`
	Alert   string `json:"alert"`
}

// MarshalState encodes the manager's state for a snapshot. Call it where no delta or action is being
// applied concurrently if it must match a log position (the engine's snapshot hook does).
func (m *Manager) MarshalState() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := state{Version: 1, Now: m.now, Since: map[string][]int64{}, Units: m.units, Assets: m.assets}
	for _, z := range m.zones {
		st.Zones = append(st.Zones, z.z)
		if slices.ContainsFunc(z.since, func(t int64) bool { return t != 0 }) {
			st.Since[z.z.ID] = z.since
		}
	}
	sort.Slice(st.Zones, func(i, j int) bool { return st.Zones[i].ID < st.Zones[j].ID })
	for _, id := range m.order {
		st.Alerts = append(st.Alerts, m.alerts[id])
	}
	for k, id := range m.open {
		st.Open = append(st.Open, openState{k.zone, k.rule, k.subject, id})
	}
	data, err := json.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("cannot encode zones state: %w", err)
	}
	return data, nil
}

// RestoreState loads a state written by MarshalState into an empty manager, then takes the cells and
// incidents the engine published (after its own snapshot was loaded) as the current picture.
func (m *Manager) RestoreState(data []byte, cells []*engine.CellView, incidents []engine.Incident) error {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("cannot decode zones state: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("cannot restore zones state version %d (this build reads 1)", st.Version)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range st.Zones {
		z := st.Zones[i]
		if err := z.Validate(); err != nil {
			return fmt.Errorf("cannot restore zone %s: %w", z.ID, err)
		}
		sh, err := buildShape(&z, m.cfg.Res, m.cfg.Network)
		if err != nil {
			return fmt.Errorf("cannot restore zone %s: %w", z.ID, err)
		}
		zs := &zoneState{z: z, sh: sh, since: make([]int64, len(z.Rules))}
		if s := st.Since[z.ID]; len(s) == len(z.Rules) {
			copy(zs.since, s)
		}
		m.index(zs)
		if slices.ContainsFunc(zs.since, func(t int64) bool { return t != 0 }) {
			m.timing[zs] = true
		}
	}
	for _, a := range st.Alerts {
		if a == nil || a.ID == "" {
			continue
		}
		m.alerts[a.ID] = a
		m.order = append(m.order, a.ID)
	}
	for _, o := range st.Open {
		if m.alerts[o.Alert] != nil {
			m.setOpen(condKey{o.Zone, o.Rule, o.Subject}, o.Alert)
		}
	}
	if st.Units != nil {
		m.units = st.Units
	}
	if st.Assets != nil {
		m.assets = st.Assets
	}
	m.now = st.Now
	for _, v := range cells {
		for _, z := range m.cellZones[v.Cell] {
			if cc := congOf(v); cc.samples > 0 {
				z.cong[v.Cell] = cc
			}
		}
	}
	for _, in := range incidents {
		if in.Active() {
			m.incidents[in.ID] = seenOf(&in)
		}
	}
	return nil
}
