package dispatch

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"citybrain/engine/queues"
	"citybrain/engine/signals"
	"citybrain/geo"
)

// Signal control methods (GET …/plan?method= and POST /api/v1/signals/decide).
const (
	// MethodControl is max-pressure on the engine's lane estimates: stages chosen freely where the program
	// allows it, in program order where its sequence is fixed (signals.Program.FixedSequence).
	MethodControl = "citybrain"
	// MethodCyclic keeps every program's order of main greens.
	MethodCyclic = "citybrain_cyclic"
)

// HorizonS is how far ahead the controller counts expected arrivals.
const HorizonS = 10.0

// SignalRequest is a signal's state as its street controller reports it when it asks for a decision.
type SignalRequest struct {
	ID       string  `json:"id"`        // signal id (or an intersection it controls)
	Phase    int     `json:"phase"`     // the program phase shown: a main green (or -1 in a transition)
	ElapsedS float64 `json:"elapsed_s"` // how long it has been shown
	State    string  `json:"state"`     // the state shown now, a character per link index
}

// SignalDecision is the controller's answer for one signal.
type SignalDecision struct {
	ID        string    `json:"id"`
	Phase     int       `json:"phase"` // the program phase (a main green) to show
	Hold      bool      `json:"hold"`  // keep showing the current one
	Reason    string    `json:"reason"`
	Stage     int       `json:"stage"` // index of Phase among the main greens
	Pressures []float64 `json:"pressures"`
	Cyclic    bool      `json:"cyclic"`
	Err       string    `json:"error,omitempty"`
}

// SignalStage is one main green of a signal plan.
type SignalStage struct {
	Phase int      `json:"phase"`
	State string   `json:"state"`
	Lanes []string `json:"lanes"`
	// Shares (parallel to Lanes): the part of each lane's vehicles this stage lets go (below 1 on a shared
	// lane whose other movements wait for another stage); its pressure counts in that part.
	Shares   []float64 `json:"lane_shares,omitempty"`
	Between  []string  `json:"transition_lanes,omitempty"`
	MinS     float64   `json:"min_s,omitempty"`
	MaxS     float64   `json:"max_s,omitempty"`
	Pressure float64   `json:"pressure"`
}

// SignalPlan is what the controller would do at a signal now, and why: its program's stages, the engine's
// estimate of every incoming lane, the state the signal last reported and the decision.
type SignalPlan struct {
	Signal      string            `json:"signal"`
	Program     string            `json:"program"`
	Nodes       []string          `json:"intersections"`
	Method      string            `json:"method"`
	Cyclic      bool              `json:"cyclic"`
	EstimatedAt time.Time         `json:"estimated_at"` // event time of the newest data
	ReportedAt  *time.Time        `json:"reported_at"`  // when the signal last reported its state
	Current     *SignalRequest    `json:"current"`      // that report
	Phases      []geo.SignalPhase `json:"phases"`
	Stages      []SignalStage     `json:"stages"`
	Lanes       []queues.LaneView `json:"lanes"`
	Decision    SignalDecision    `json:"decision"`
	// LastDecision is the answer the signal's controller was given at its last request (what it runs now).
	LastDecision *SignalDecision `json:"last_decision"`
	Control      signals.Control `json:"control"`
}

// signalControl decides signals from the estimator's lanes; it remembers each signal's last report.
type signalControl struct {
	net *geo.Network
	est *queues.Estimator
	ctl signals.Control

	mu      sync.Mutex
	last    map[string]SignalRequest
	lastDec map[string]SignalDecision
	progs   map[string]*compiled
}

// compiled is a signal's program analysed once: its stages over its incoming lanes.
type compiled struct {
	lanes  []string
	stages []signals.Stage
	mains  []int
	fixed  bool
}

func newSignalControl(net *geo.Network, est *queues.Estimator, ctl signals.Control) *signalControl {
	if ctl == (signals.Control{}) {
		ctl = signals.DefaultControl()
	}
	return &signalControl{net: net, est: est, ctl: ctl, last: map[string]SignalRequest{}, lastDec: map[string]SignalDecision{},
		progs: map[string]*compiled{}}
}

// program is a signal's program in the controller's terms.
func program(s *geo.Signal) *signals.Program {
	p := &signals.Program{Lanes: make([]string, len(s.Links)), To: make([]string, len(s.Links))}
	for _, ph := range s.Phases {
		p.Phases = append(p.Phases, signals.ProgramPhase{State: ph.State, DurS: ph.DurS, MinS: ph.MinS, MaxS: ph.MaxS})
	}
	for i, l := range s.Links {
		if l.Index >= 0 {
			p.Lanes[i], p.To[i] = l.FromLane, l.To
		}
	}
	return p
}

// ErrNoSignals is returned when the network carries no signal programs or the manager has no estimator.
var ErrNoSignals = fmt.Errorf("no signal programs or lane estimates: %w", ErrInvalid)

// DecideSignals answers a batch of signal requests at event time at (ms): it waits (up to wait) until the
// engine has seen the feeds up to at, records every signal's reported state, and decides each. A request that
// names an unknown signal gets an answer with Err set.
func (m *Manager) DecideSignals(ctx context.Context, at int64, wait time.Duration, method string, reqs []SignalRequest) ([]SignalDecision, error) {
	sc := m.sig
	if sc == nil {
		return nil, fmt.Errorf("cannot decide signals: %w", ErrNoSignals)
	}
	if method == "" {
		method = MethodControl
	}
	if method != MethodControl && method != MethodCyclic {
		return nil, fmt.Errorf("cannot decide signals (method %q: %s or %s): %w", method, MethodControl, MethodCyclic, ErrInvalid)
	}
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		sc.est.WaitFor(wctx, at)
		cancel()
	}
	out := make([]SignalDecision, len(reqs))
	for i, r := range reqs {
		s, ok := sc.net.Signal(r.ID)
		if !ok {
			out[i] = SignalDecision{ID: r.ID, Phase: r.Phase, Hold: true, Err: "unknown signal"}
			continue
		}
		if r.State != "" {
			sc.est.Report(s.ID, r.State, at)
		}
		d := sc.decide(s, r, method).Decision
		sc.mu.Lock()
		sc.last[s.ID], sc.lastDec[s.ID] = r, d
		sc.mu.Unlock()
		out[i] = d
		out[i].ID = r.ID
	}
	return out, nil
}

// compile returns signal s's analysed program.
func (sc *signalControl) compile(s *geo.Signal) *compiled {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if c := sc.progs[s.ID]; c != nil {
		return c
	}
	p := program(s)
	c := &compiled{fixed: p.FixedSequence()}
	c.lanes, c.stages, c.mains = p.Stages()
	sc.progs[s.ID] = c
	return c
}

// decide builds the plan of signal s for request r.
func (sc *signalControl) decide(s *geo.Signal, r SignalRequest, method string) SignalPlan {
	c := sc.compile(s)
	lanes, stages, mains := c.lanes, c.stages, c.mains
	ctl := sc.ctl
	ctl.Cyclic = method == MethodCyclic || c.fixed
	views := sc.est.Lanes(lanes, HorizonS)
	gate := 0.0
	if ctl.GateFill > 0 {
		gate = ctl.Gate(sc.est.AreaFill())
		ctl.Saturated = gate > 0
	}
	ls := make([]signals.LaneState, len(views))
	for i, v := range views {
		ls[i] = signals.LaneState{Queue: v.QueueVeh, Arrivals: v.ArriveVeh, Storage: v.Storage, OutFill: v.OutFill,
			WaitS: v.WaitS, GapS: v.GapS}
		if !v.HasLoop {
			ls[i].GapS = 0 // no loop: never judged gapped out by it
		}
		if v.Entry {
			ls[i].Gated = gate
		}
	}
	stages = servedShares(stages, views)
	cur := -1
	for k, m := range mains {
		if m == r.Phase {
			cur = k
		}
	}
	plan := SignalPlan{Signal: s.ID, Program: s.Program, Nodes: s.Nodes, Method: method, Cyclic: ctl.Cyclic,
		Phases: s.Phases, Lanes: views, Control: ctl}
	if now := sc.est.Now(); now != math.MinInt64 {
		plan.EstimatedAt = time.UnixMilli(now).UTC()
	}
	d := signals.Decide(stages, ls, cur, r.ElapsedS, ctl)
	dec := SignalDecision{ID: s.ID, Phase: r.Phase, Hold: d.Hold, Reason: d.Reason, Stage: d.Phase, Pressures: d.Pressures, Cyclic: ctl.Cyclic}
	if d.Phase >= 0 && d.Phase < len(mains) {
		dec.Phase = mains[d.Phase]
	}
	if cur < 0 && len(mains) > 0 && d.Phase < 0 {
		dec.Phase, dec.Stage = mains[0], 0
	}
	plan.Decision = dec
	for k, st := range stages {
		ss := SignalStage{Phase: mains[k], State: s.Phases[mains[k]].State, MinS: st.MinS, MaxS: st.MaxS, Pressure: d.Pressures[k],
			Shares: st.Share}
		for _, l := range st.Lanes {
			ss.Lanes = append(ss.Lanes, lanes[l])
		}
		for _, l := range st.Between {
			ss.Between = append(ss.Between, lanes[l])
		}
		plan.Stages = append(plan.Stages, ss)
	}
	return plan
}

// servedShares sets, for each stage, the share of each lane's vehicles it lets go from the lane's turning
// ratios (the estimator's, learned from probes and counts): a shared lane whose straight movement is green
// and left red counts in that stage by its straight-and-right share. Lanes with no learned ratios keep the
// program's share (green movements over movements).
func servedShares(stages []signals.Stage, views []queues.LaneView) []signals.Stage {
	out := make([]signals.Stage, len(stages))
	for i, st := range stages {
		out[i] = st
		if len(st.GreenTo) != len(st.Lanes) {
			continue
		}
		out[i].Share = append([]float64(nil), st.Share...)
		for k, l := range st.Lanes {
			if l < 0 || l >= len(views) || k >= len(out[i].Share) || out[i].Share[k] >= 0.999 {
				continue
			}
			tot, g := 0.0, 0.0
			for _, r := range views[l].TurnShares {
				tot += r
			}
			seen := map[string]bool{}
			for _, to := range st.GreenTo[k] {
				if !seen[to] {
					seen[to] = true
					g += views[l].TurnShares[to]
				}
			}
			if tot > 0 {
				out[i].Share[k] = g / tot
			}
		}
	}
	return out
}

// approachQueue is the most vehicles waiting on a lane of the movement in → out at the signal controlling
// node (false when no program controls that movement or there is no estimator).
func (sc *signalControl) approachQueue(node, in, out string) (float64, bool) {
	if sc == nil {
		return 0, false
	}
	s, ok := sc.net.Signal(node)
	if !ok {
		return 0, false
	}
	var lanes []string
	for _, l := range s.Links {
		if l.Index >= 0 && l.From == in && l.To == out {
			lanes = append(lanes, l.FromLane)
		}
	}
	if len(lanes) == 0 {
		return 0, false
	}
	q := 0.0
	for _, v := range sc.est.Lanes(lanes, 0) {
		q = math.Max(q, v.QueueVeh)
	}
	return q, true
}

// SignalPlan returns the plan of the signal controlling intersection (or signal) id: its last reported
// state decided again on the latest estimates, as DecideSignals would answer now.
func (m *Manager) SignalPlan(id, method string) (SignalPlan, error) {
	sc := m.sig
	if sc == nil {
		return SignalPlan{}, fmt.Errorf("cannot plan signal %s: %w", id, ErrNoSignals)
	}
	if method == "" || method == MethodWebster || method == MethodMaxPressure {
		method = MethodControl
	}
	if method != MethodControl && method != MethodCyclic {
		return SignalPlan{}, fmt.Errorf("cannot plan signal %s (method %q): %w", id, method, ErrInvalid)
	}
	s, ok := sc.net.Signal(id)
	if !ok {
		return SignalPlan{}, fmt.Errorf("cannot plan signal %s (no program for it): %w", id, ErrNotFound)
	}
	sc.mu.Lock()
	r, reported := sc.last[s.ID]
	last, decided := sc.lastDec[s.ID]
	sc.mu.Unlock()
	if !reported {
		r = SignalRequest{ID: s.ID, Phase: -1}
	}
	plan := sc.decide(s, r, method)
	if decided {
		plan.LastDecision = &last
	}
	if reported {
		state, at := sc.est.Signal(s.ID)
		r.State = state
		plan.Current = &r
		if !at.IsZero() {
			plan.ReportedAt = &at
		}
	}
	return plan, nil
}
