package dispatch

import (
	"fmt"
	"math"
	"time"

	"citybrain/engine"
	"citybrain/engine/signals"
	"citybrain/geo"
)

// Plan methods.
const (
	MethodWebster     = "webster"
	MethodMaxPressure = "max_pressure"
)

// Assumed plan of an intersection nobody has re-timed: an even two-phase split of a 90 s cycle (the common
// urban fixed-time default; the real controller's plan is not in the feeds).
const (
	defaultCycleS = 90.0
	jamKmPerLane  = 1000 / signals.JamSpacingM // veh/km per lane at standstill
)

// ApproachState is the measured state of one approach of an intersection.
type ApproachState struct {
	LinkID      string  `json:"link"`
	Side        string  `json:"side"`
	Phase       int     `json:"phase"`
	Lanes       int     `json:"lanes"`
	FlowVph     float64 `json:"flow_vph"`
	FlowSource  string  `json:"flow_source"` // detector, speed_model (Greenshields from probe speed), none
	SatFlowVph  float64 `json:"sat_flow_vph"`
	SpeedKmh    float64 `json:"speed_kmh"`  // the engine's estimate (as on the map); NaN: no observation
	Confidence  float64 `json:"confidence"` // of SpeedKmh, 0..1 (engine.Estimate.Confidence)
	FreeFlowKmh float64 `json:"free_flow_kmh"`
	Occupancy   float64 `json:"occupancy"`
	QueueVeh    float64 `json:"queue_veh"`
	DegreeOfSat float64 `json:"degree_of_saturation"` // under the current plan
	Samples     uint32  `json:"samples"`
}

// PhasePlan is one phase of a recommended plan.
type PhasePlan struct {
	Name       string   `json:"name"`
	Approaches []string `json:"approaches"`
	FlowVph    float64  `json:"critical_flow_vph"`
	Ratio      float64  `json:"flow_ratio"`
	GreenS     float64  `json:"green_s"`
	CurrentS   float64  `json:"current_green_s"`
	Pressure   float64  `json:"pressure,omitempty"`
}

// Recommendation is a recommended signal plan for an intersection, with its expected effect.
type Recommendation struct {
	NodeID         string          `json:"intersection"`
	Method         string          `json:"method"`
	GeneratedAt    time.Time       `json:"generated_at"`
	Approaches     []ApproachState `json:"approaches"`
	Phases         []PhasePlan     `json:"phases"`
	CycleS         float64         `json:"cycle_s"`
	LostS          float64         `json:"lost_s"`
	Y              float64         `json:"y"`
	Oversaturated  bool            `json:"oversaturated"`
	ServeNow       int             `json:"serve_now_phase"` // max-pressure: the phase to serve now
	CurrentCycleS  float64         `json:"current_cycle_s"`
	CurrentSource  string          `json:"current_source"` // accepted (an earlier plan) or assumed (even 90 s)
	DelayNowS      float64         `json:"delay_now_s"`    // flow-weighted HCM delay, current plan
	DelayPlanS     float64         `json:"delay_plan_s"`   // ... recommended plan
	DelayChangePct float64         `json:"delay_change_pct"`
	// Signal is the signal controller's plan where the network carries the intersection's program.
	Signal *SignalPlan `json:"signal,omitempty"`
}

// Effect is the measured state of an intersection's approaches at one moment.
type Effect struct {
	At            time.Time `json:"at"`
	MeanSpeedKmh  float64   `json:"mean_speed_kmh"`
	MeanOccupancy float64   `json:"mean_occupancy"`
	FlowVph       float64   `json:"flow_vph"`
	QueueVeh      float64   `json:"queue_veh"`
	Samples       uint32    `json:"samples"`
}

// PlanDecision is an officer's accept or reject of a recommendation.
type PlanDecision struct {
	ID       string         `json:"id"`
	NodeID   string         `json:"intersection"`
	Accepted bool           `json:"accepted"`
	By       string         `json:"by"`
	Role     string         `json:"role"`
	At       time.Time      `json:"at"`
	Note     string         `json:"note,omitempty"`
	Plan     Recommendation `json:"plan"`
	Before   Effect         `json:"before"`
	After    *Effect        `json:"after,omitempty"` // filled when read: the approaches now
}

// Recommend computes a plan for a signalised intersection from the approaches' live flows: Webster's cycle and
// splits over the two phases (N/S and E/W approaches), or max-pressure (splits by pressure, the phase to serve
// now), with the expected delay change against the current plan.
func (m *Manager) Recommend(nodeID, method string) (Recommendation, error) {
	nd, ok := m.cfg.Network.Node(nodeID)
	if !ok {
		return Recommendation{}, fmt.Errorf("cannot plan intersection %s: %w", nodeID, ErrNotFound)
	}
	if method == "" {
		method = MethodWebster
	}
	if method != MethodWebster && method != MethodMaxPressure {
		return Recommendation{}, fmt.Errorf("cannot plan intersection %s (method %q: webster or max_pressure): %w", nodeID, method, ErrInvalid)
	}
	if len(nd.Approaches) == 0 {
		return Recommendation{}, fmt.Errorf("cannot plan intersection %s (no approaches): %w", nodeID, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recommendLocked(nd, method)
}

func (m *Manager) nodeStatsLocked(nd *geo.Node) map[string]*engine.LinkStats {
	const pad = 0.01
	list := m.src.Links(geo.BBox{MinLng: nd.Lng - pad, MinLat: nd.Lat - pad, MaxLng: nd.Lng + pad, MaxLat: nd.Lat + pad})
	out := map[string]*engine.LinkStats{}
	for i := range list {
		out[list[i].Link.ID] = &list[i]
	}
	return out
}

func (m *Manager) approachesLocked(nd *geo.Node, stats map[string]*engine.LinkStats) []ApproachState {
	w := m.cfg.Window
	var out []ApproachState
	for _, a := range nd.Approaches {
		l, ok := m.cfg.Network.Link(a.LinkID)
		if !ok {
			continue
		}
		ff, _ := m.cfg.Network.FreeFlowKmh(l.ID)
		st := ApproachState{LinkID: l.ID, Side: a.Side.String(), Lanes: l.Lanes, FreeFlowKmh: ff,
			SatFlowVph: signals.SatFlowPerLane * float64(l.Lanes), FlowSource: "none", SpeedKmh: math.NaN()}
		if a.Side == geo.SideEast || a.Side == geo.SideWest {
			st.Phase = 1
		}
		if ls := stats[l.ID]; ls != nil {
			ws := &ls.W[w]
			st.Samples = ws.Samples
			est := ls.Estimate(w)
			st.SpeedKmh, st.Confidence = est.Kmh, est.Confidence()
			switch {
			case ws.FlowN > 0:
				st.FlowVph, st.Occupancy, st.FlowSource = ws.FlowVph(), ws.Occupancy(), "detector"
			case !math.IsNaN(st.SpeedKmh) && ff > 0:
				// Greenshields: q = k_j v (1 − v/v_f) per lane.
				v := math.Min(st.SpeedKmh, ff)
				st.FlowVph, st.FlowSource = jamKmPerLane*v*(1-v/ff)*float64(l.Lanes), "speed_model"
			}
			st.QueueVeh = queueAt(ls, w) * float64(l.Lanes)
		}
		out = append(out, st)
	}
	return out
}

// currentLocked is the plan in force at a node as far as CityBrain knows: the last accepted one, else assumed.
func (m *Manager) currentLocked(nodeID string) (cycle float64, greens []float64, source string) {
	ds := m.decisions[nodeID]
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Accepted {
			g := make([]float64, len(ds[i].Plan.Phases))
			for j, p := range ds[i].Plan.Phases {
				g[j] = p.GreenS
			}
			return ds[i].Plan.CycleS, g, "accepted"
		}
	}
	o := signals.DefaultOptions()
	g := (defaultCycleS - 2*o.LostPerPhaseS) / 2
	return defaultCycleS, []float64{g, g}, "assumed"
}

func (m *Manager) recommendLocked(nd *geo.Node, method string) (Recommendation, error) {
	stats := m.nodeStatsLocked(nd)
	aps := m.approachesLocked(nd, stats)
	rec := Recommendation{NodeID: nd.ID, Method: method, GeneratedAt: m.cfg.Now(), Approaches: aps}
	phases := make([]signals.Phase, 2)
	moves := make([][]signals.Movement, 2)
	pp := []PhasePlan{{Name: "NS"}, {Name: "EW"}}
	outQ := m.outQueueLocked(nd, stats)
	for _, a := range aps {
		p := a.Phase
		pp[p].Approaches = append(pp[p].Approaches, a.LinkID)
		if a.SatFlowVph > 0 && a.FlowVph/a.SatFlowVph > phases[p].Ratio() {
			phases[p] = signals.Phase{Name: pp[p].Name, Flow: a.FlowVph, SatFlow: a.SatFlowVph}
		}
		moves[p] = append(moves[p], signals.Movement{In: a.QueueVeh, Out: outQ, SatFlow: a.SatFlowVph})
	}
	for p := range phases {
		if phases[p].SatFlow == 0 {
			phases[p].SatFlow = signals.SatFlowPerLane
		}
	}
	o := signals.DefaultOptions()
	plan, err := signals.Webster(phases, o)
	if err != nil {
		return Recommendation{}, fmt.Errorf("cannot plan intersection %s: %w", nd.ID, err)
	}
	rec.CycleS, rec.LostS, rec.Y, rec.Oversaturated = plan.CycleS, plan.LostS, plan.Y, plan.Oversaturated
	greens := plan.GreenS
	if method == MethodMaxPressure {
		best, pr := signals.MaxPressure(moves)
		rec.ServeNow = best
		for i := range pp {
			pp[i].Pressure = pr[i]
		}
		greens = signals.PressureSplit(pr, plan.CycleS-plan.LostS, o.MinGreenS)
	}
	cc, cg, src := m.currentLocked(nd.ID)
	rec.CurrentCycleS, rec.CurrentSource = cc, src
	for i := range pp {
		pp[i].FlowVph, pp[i].Ratio, pp[i].GreenS = phases[i].Flow, phases[i].Ratio(), greens[i]
		if i < len(cg) {
			pp[i].CurrentS = cg[i]
		}
	}
	for i := range rec.Approaches {
		a := &rec.Approaches[i]
		if a.Phase < len(cg) {
			a.DegreeOfSat = signals.DegreeOfSaturation(a.FlowVph, a.SatFlowVph, cg[a.Phase], cc)
		}
	}
	rec.Phases = pp
	rec.DelayNowS = signals.PlanDelay(phases, cc, cg)
	rec.DelayPlanS = signals.PlanDelay(phases, plan.CycleS, greens)
	if rec.DelayNowS > 0 && !math.IsInf(rec.DelayNowS, 0) {
		rec.DelayChangePct = 100 * (rec.DelayPlanS - rec.DelayNowS) / rec.DelayNowS
	}
	return rec, nil
}

// outQueueLocked is the mean queue per outgoing link of a node (the downstream term of max-pressure).
func (m *Manager) outQueueLocked(nd *geo.Node, stats map[string]*engine.LinkStats) float64 {
	if len(nd.Out) == 0 {
		return 0
	}
	sum := 0.0
	for _, id := range nd.Out {
		if ls := stats[id]; ls != nil {
			sum += queueAt(ls, m.cfg.Window) * float64(ls.Link.Lanes)
		}
	}
	return sum / float64(len(nd.Out))
}

func (m *Manager) effectLocked(nd *geo.Node) Effect {
	aps := m.approachesLocked(nd, m.nodeStatsLocked(nd))
	e := Effect{At: m.cfg.Now()}
	var sw float64
	for _, a := range aps {
		if !math.IsNaN(a.SpeedKmh) && a.Samples > 0 {
			e.MeanSpeedKmh += a.SpeedKmh * float64(a.Samples)
			sw += float64(a.Samples)
		}
		e.MeanOccupancy += a.Occupancy / float64(len(aps))
		e.FlowVph += a.FlowVph
		e.QueueVeh += a.QueueVeh
		e.Samples += a.Samples
	}
	if sw > 0 {
		e.MeanSpeedKmh /= sw
	}
	return e
}

// Decide records an officer's accept or reject of the current recommendation (method as in Recommend); on
// accept the approaches' state now is kept as the "before" of the effect.
func (m *Manager) Decide(nodeID, method string, accept bool, by, role, note string) (PlanDecision, error) {
	m.decide.Lock()
	defer m.decide.Unlock()
	rec, err := m.Recommend(nodeID, method)
	if err != nil {
		return PlanDecision{}, err
	}
	nd, _ := m.cfg.Network.Node(nodeID)
	m.mu.Lock()
	now := m.cfg.Now()
	safe := PlanDecision{ID: newDecisionID("p", now), NodeID: nodeID,
		Accepted: accept, By: by, Role: role, At: now, Note: note, Plan: rec, Before: m.effectLocked(nd)}.jsonSafe()
	d := &safe
	m.mu.Unlock()
	if err := m.commit(Action{ID: d.ID, Kind: ActionPlan, By: by, Role: role, Note: note, At: now, Plan: d}); err != nil {
		return PlanDecision{}, err
	}
	return *d, nil
}

// Decisions returns the decisions at an intersection, newest first, each with the approaches' state now as
// After (the watched effect of the change).
func (m *Manager) Decisions(nodeID string) []PlanDecision {
	nd, ok := m.cfg.Network.Node(nodeID)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ds := m.decisions[nodeID]
	if len(ds) == 0 {
		return nil
	}
	now := m.effectLocked(nd)
	out := make([]PlanDecision, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		d := *ds[i]
		if d.Accepted {
			e := now
			d.After = &e
		}
		out = append(out, d)
	}
	return out
}

// CorridorNode is one signalised intersection of a corridor plan.
type CorridorNode struct {
	NodeID  string  `json:"intersection"`
	ArriveS float64 `json:"travel_s"` // from the first intersection at live speeds
	OffsetS float64 `json:"offset_s"`
	CycleS  float64 `json:"own_cycle_s"` // its own Webster cycle
	// Signal is, where the network carries the intersection's program, what the signal controller last told
	// it (the phase the closed loop runs) and would tell it now.
	Signal *CorridorSignal `json:"signal,omitempty"`
}

// CorridorSignal is a corridor intersection's signal-controller state.
type CorridorSignal struct {
	ID           string          `json:"id"`
	LastDecision *SignalDecision `json:"last_decision"`
	Decision     SignalDecision  `json:"decision"`
}

// Corridor is a green-wave plan for a chain of links.
type Corridor struct {
	Links  []string       `json:"links"`
	CycleS float64        `json:"cycle_s"` // common cycle: the longest Webster cycle on the corridor
	Nodes  []CorridorNode `json:"intersections"`
	// BandS is the green each intersection gives the corridor direction under the common cycle (the smallest
	// of its Webster share for the corridor's approach phase).
	BandS float64 `json:"band_s"`
}

// CorridorPlan returns offsets for a green wave along consecutive links (each starting where the previous
// ends), with a common cycle and travel times at live speeds.
func (m *Manager) CorridorPlan(linkIDs []string) (Corridor, error) {
	if len(linkIDs) < 2 {
		return Corridor{}, fmt.Errorf("cannot plan corridor (%d links, need 2 or more): %w", len(linkIDs), ErrInvalid)
	}
	net := m.cfg.Network
	links := make([]*geo.Link, len(linkIDs))
	for i, id := range linkIDs {
		l, ok := net.Link(id)
		if !ok {
			return Corridor{}, fmt.Errorf("cannot plan corridor (link %s): %w", id, ErrNotFound)
		}
		if i > 0 && links[i-1].To != l.From {
			return Corridor{}, fmt.Errorf("cannot plan corridor (link %s does not start where %s ends): %w", id, links[i-1].ID, ErrInvalid)
		}
		links[i] = l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	speed := m.speedLocked()
	c := Corridor{Links: linkIDs, BandS: math.Inf(1)}
	var arrive []float64
	t := 0.0
	for i := 0; i+1 < len(links); i++ {
		t += links[i].LengthM / (m.router.SpeedKmh(links[i], speed) / 3.6)
		nd, _ := net.Node(links[i].To)
		if !nd.Signalised {
			continue
		}
		rec, err := m.recommendLocked(nd, MethodWebster)
		if err != nil {
			return Corridor{}, err
		}
		c.CycleS = math.Max(c.CycleS, rec.CycleS)
		for _, a := range rec.Approaches {
			if a.LinkID == links[i].ID {
				c.BandS = math.Min(c.BandS, rec.Phases[a.Phase].GreenS/rec.CycleS)
			}
		}
		cn := CorridorNode{NodeID: nd.ID, ArriveS: t, CycleS: rec.CycleS}
		if sp, err := m.SignalPlan(nd.ID, MethodControl); err == nil {
			cn.Signal = &CorridorSignal{ID: sp.Signal, LastDecision: sp.LastDecision, Decision: sp.Decision}
		}
		c.Nodes = append(c.Nodes, cn)
		arrive = append(arrive, t)
	}
	if len(c.Nodes) == 0 {
		return Corridor{}, fmt.Errorf("cannot plan corridor (no signalised intersection between its links): %w", ErrInvalid)
	}
	for i, off := range signals.GreenWaveOffsets(arrive, c.CycleS) {
		c.Nodes[i].OffsetS = off
		c.Nodes[i].ArriveS -= arrive[0]
	}
	if math.IsInf(c.BandS, 1) {
		c.BandS = 0
	}
	c.BandS *= c.CycleS
	return c, nil
}
