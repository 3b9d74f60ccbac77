package dispatch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"citybrain/geo"
)

// Action kinds: every operator decision of the manager is one.
const (
	ActionDispatch = "dispatch" // a unit sent to an incident
	ActionClose    = "close"    // a dispatch cleared or cancelled by an operator
	ActionPlan     = "plan"     // a signal plan accepted or rejected
)

// Action is an operator decision as the log keeps it (Config.Journal): what was decided, by whom and when,
// with what the decision was made on, so that applying it again after a crash or in a replay needs nothing
// of the moment. Apply is idempotent by the decision's id.
type Action struct {
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	By   string    `json:"by"`
	Role string    `json:"role"`
	Note string    `json:"note,omitempty"`
	At   time.Time `json:"at"`

	Dispatch *Dispatch  `json:"dispatch,omitempty"` // ActionDispatch: the dispatch as decided
	Target   geo.LatLng `json:"target,omitempty"`   // ActionDispatch: where the unit is sent

	DispatchID string `json:"dispatch_id,omitempty"` // ActionClose
	Status     string `json:"status,omitempty"`      // ActionClose: cleared or cancelled

	Plan *PlanDecision `json:"plan,omitempty"` // ActionPlan
}

// Bounds of what the manager keeps: the oldest closed dispatches, plan decisions and audit entries go
// first (the log keeps them all, for its retention).
const (
	MaxClosedDispatches = 1000
	MaxDecisionsPerNode = 100
	MaxAudit            = 10_000
)

// Journal writes a decision where it survives the process (the log) before it takes effect; an error
// refuses the decision.
type Journal func(Action) error

func newDecisionID(prefix string, now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// commit journals a prepared decision, then applies it. Callers hold m.decide, so that two decisions
// about one unit are prepared and committed one after the other.
func (m *Manager) commit(a Action) error {
	if m.cfg.Journal != nil {
		if err := m.cfg.Journal(a.forJournal()); err != nil {
			return fmt.Errorf("cannot record %s decision %s: %w", a.Kind, a.ID, err)
		}
	}
	return m.Apply(a)
}

// Apply carries out a decision (from commit, or read back from the log by the consumer after a restart or
// in order). A decision already applied is a no-op.
func (m *Manager) Apply(a Action) error {
	m.mu.Lock()
	var notify *Dispatch
	err := m.applyLocked(a, &notify)
	var cp Dispatch
	if notify != nil {
		cp = notify.copy()
	}
	m.mu.Unlock()
	if notify != nil {
		m.notify(cp)
	}
	return err
}

func (m *Manager) applyLocked(a Action, changed **Dispatch) error {
	switch a.Kind {
	case ActionDispatch:
		if a.Dispatch == nil {
			return fmt.Errorf("cannot apply dispatch decision %s: no dispatch: %w", a.ID, ErrInvalid)
		}
		if _, done := m.dispatches[a.Dispatch.ID]; done {
			return nil
		}
		if other, busy := m.busy[a.Dispatch.UnitID]; busy {
			return fmt.Errorf("cannot dispatch unit %s (held by dispatch %s): %w", a.Dispatch.UnitID, other, ErrConflict)
		}
		d := *a.Dispatch
		d.Target = a.Target
		if d.Route != nil {
			m.setRouteLocked(&d, d.Route)
		}
		m.dispatches[d.ID] = &d
		m.order = append(m.order, d.ID)
		m.busy[d.UnitID] = d.ID
		m.auditLocked(Audit{At: a.At, By: a.By, Role: a.Role, Action: "dispatch", Subject: d.ID,
			Note: fmt.Sprintf("unit %s to incident %s, ETA %.0f s", d.UnitID, d.IncidentID, d.InitialETAS)})
		*changed = &d
	case ActionClose:
		d, ok := m.dispatches[a.DispatchID]
		if !ok {
			return fmt.Errorf("cannot close dispatch %s: %w", a.DispatchID, ErrNotFound)
		}
		if d.ClosedAt != nil {
			return nil
		}
		m.closeLocked(d, a.Status, a.At)
		m.auditLocked(Audit{At: a.At, By: a.By, Role: a.Role, Action: "close", Subject: d.ID, Note: a.Status + ": " + a.Note})
		*changed = d
	case ActionPlan:
		if a.Plan == nil {
			return fmt.Errorf("cannot apply plan decision %s: no plan: %w", a.ID, ErrInvalid)
		}
		list := m.decisions[a.Plan.NodeID]
		for _, d := range list {
			if d.ID == a.Plan.ID {
				return nil
			}
		}
		d := *a.Plan
		d.After = nil
		if list = append(list, &d); len(list) > MaxDecisionsPerNode {
			list = list[len(list)-MaxDecisionsPerNode:]
		}
		m.decisions[d.NodeID] = list
		act := "plan_reject"
		if d.Accepted {
			act = "plan_accept"
		}
		m.auditLocked(Audit{At: a.At, By: a.By, Role: a.Role, Action: act, Subject: d.NodeID,
			Note: fmt.Sprintf("%s cycle %.0f s, expected delay %+.1f%%; %s", d.Plan.Method, d.Plan.CycleS, d.Plan.DelayChangePct, d.Note)})
	default:
		return fmt.Errorf("cannot apply decision %s of kind %q: %w", a.ID, a.Kind, ErrInvalid)
	}
	m.trimLocked()
	return nil
}

func (m *Manager) auditLocked(a Audit) {
	if m.audit = append(m.audit, a); len(m.audit) > MaxAudit {
		m.audit = append([]Audit(nil), m.audit[len(m.audit)-MaxAudit:]...)
	}
}

// trimLocked forgets the oldest closed dispatches beyond MaxClosedDispatches.
func (m *Manager) trimLocked() {
	closed := 0
	for _, id := range m.order {
		if m.dispatches[id].ClosedAt != nil {
			closed++
		}
	}
	if closed <= MaxClosedDispatches {
		return
	}
	keep := m.order[:0]
	for _, id := range m.order {
		if d := m.dispatches[id]; d.ClosedAt != nil && closed > MaxClosedDispatches {
			delete(m.dispatches, id)
			closed--
			continue
		}
		keep = append(keep, id)
	}
	m.order = keep
}

// state is what the manager keeps across restarts (engine snapshot part "dispatch.json"); the log after
// the snapshot brings the rest.
type state struct {
	Dispatches []stateDispatch            `json:"dispatches"`
	Decisions  map[string][]*PlanDecision `json:"decisions"`
	Audit      []Audit                    `json:"audit"`
}

type stateDispatch struct {
	Dispatch
	Target geo.LatLng `json:"target"`
}

// MarshalState returns the manager's decisions as JSON (for the engine's snapshots).
func (m *Manager) MarshalState() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := state{Decisions: m.decisions, Audit: m.audit}
	for _, id := range m.order {
		d := m.dispatches[id]
		st.Dispatches = append(st.Dispatches, stateDispatch{Dispatch: d.copy(), Target: d.Target})
	}
	return json.Marshal(&st)
}

// RestoreState replaces the manager's decisions with a MarshalState's. Routes are recomputed from the
// units' next positions.
func (m *Manager) RestoreState(data []byte) error {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("cannot restore dispatch state: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dispatches, m.order, m.busy = map[string]*Dispatch{}, nil, map[string]string{}
	for _, sd := range st.Dispatches {
		d := sd.Dispatch
		d.Target, d.Route, d.Geometry, d.GreenWave = sd.Target, nil, nil, nil
		m.dispatches[d.ID] = &d
		m.order = append(m.order, d.ID)
		if d.ClosedAt == nil {
			m.busy[d.UnitID] = d.ID
		}
	}
	m.decisions = st.Decisions
	if m.decisions == nil {
		m.decisions = map[string][]*PlanDecision{}
	}
	m.audit = st.Audit
	return nil
}

// forJournal is the decision as the log keeps it: what was decided, without what is derived again from
// live data (a dispatch's green wave), every number encodable as JSON.
func (a Action) forJournal() Action {
	if a.Dispatch != nil {
		d := *a.Dispatch
		d.GreenWave = nil
		for _, x := range []*float64{&d.InitialETAS, &d.ETAS, &d.LengthM, &d.ProgressM, &d.OffRouteM} {
			finite(x, 0)
		}
		a.Dispatch = &d
	}
	if a.Plan != nil {
		p := a.Plan.jsonSafe()
		a.Plan = &p
	}
	return a
}

// finite makes x encodable as JSON: NaN (no data) becomes absent, ±Inf the largest float64 of its sign.
func finite(x *float64, absent float64) {
	switch {
	case math.IsNaN(*x):
		*x = absent
	case math.IsInf(*x, 1):
		*x = math.MaxFloat64
	case math.IsInf(*x, -1):
		*x = -math.MaxFloat64
	}
}

// jsonSafe returns d with every number encodable (a speed without data is -1, as the API serves it; other
// numbers without data 0), so that the decision can be journaled as it is kept.
func (d PlanDecision) jsonSafe() PlanDecision {
	r := &d.Plan
	r.Approaches = append([]ApproachState(nil), r.Approaches...)
	for i := range r.Approaches {
		a := &r.Approaches[i]
		finite(&a.SpeedKmh, -1)
		for _, x := range []*float64{&a.FlowVph, &a.SatFlowVph, &a.FreeFlowKmh, &a.Occupancy, &a.QueueVeh, &a.DegreeOfSat} {
			finite(x, 0)
		}
	}
	r.Phases = append([]PhasePlan(nil), r.Phases...)
	for i := range r.Phases {
		p := &r.Phases[i]
		for _, x := range []*float64{&p.FlowVph, &p.Ratio, &p.GreenS, &p.CurrentS, &p.Pressure} {
			finite(x, 0)
		}
	}
	for _, x := range []*float64{&r.CycleS, &r.LostS, &r.Y, &r.CurrentCycleS, &r.DelayNowS, &r.DelayPlanS, &r.DelayChangePct} {
		finite(x, 0)
	}
	for _, e := range []*Effect{&d.Before, d.After} {
		if e == nil {
			continue
		}
		finite(&e.MeanSpeedKmh, -1)
		for _, x := range []*float64{&e.MeanOccupancy, &e.FlowVph, &e.QueueVeh} {
			finite(x, 0)
		}
	}
	return d
}
