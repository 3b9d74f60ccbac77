package incident

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Tracker is the incident room: it fuses evidence into incidents tick by tick, carries out operator actions
// from the log, and publishes the visible incidents. Track and the snapshot methods belong to the engine's
// tick goroutine; Queue, Result and Incidents may be called from any goroutine.
type Tracker struct {
	t          *tracker           // tick goroutine
	lastScores map[uint64]float64 // tick goroutine: the scores last handed to the cells

	published atomic.Pointer[[]Incident]

	actMu     sync.Mutex
	actions   []queued // operator actions from the log, waiting for a tick whose mark covers them (actMu)
	actResult sync.Map // action id → error (nil error stored as errOK)
}

// NewTracker returns an empty tracker whose judgements settle lateness ms before the evidence they weigh
// (the engine's allowed lateness).
func NewTracker(lateness int64) *Tracker {
	t := &Tracker{t: newTracker()}
	t.t.lateness = lateness
	t.published.Store(&[]Incident{})
	return t
}

// SetTopology gives the tracker the road network's topology, so that traffic judgements of one queue on
// several links make one incident (call before the first Track).
func (tr *Tracker) SetTopology(tp *Topology) { tr.t.topo = tp }

// Track runs the tracker for one tick whose mark is the log sequence upTo (evidence at once, operator actions
// queued up to upTo at their places among it, time-driven changes up to the watermark wm less the allowed
// lateness) and returns the incidents that changed, and the incident scores by cell when they changed since
// the last call (nil otherwise).
func (tr *Tracker) Track(wm int64, upTo uint64, evidence []Evidence) (changed []Incident, scores map[uint64]float64) {
	t := tr.t
	before := map[string]Incident{}
	for _, in := range t.order {
		if in.Status != "" {
			before[in.ID] = Incident{Status: in.Status, Score: in.Score, EvidenceCount: in.EvidenceCount,
				Severity: in.Severity, Type: in.Type, Lat: in.Lat, Lng: in.Lng}
		}
	}
	var actions []queued
	tr.actMu.Lock()
	rest := tr.actions[:0]
	for _, q := range tr.actions {
		if q.seq <= upTo {
			actions = append(actions, q)
		} else {
			rest = append(rest, q)
		}
	}
	clear(tr.actions[len(rest):])
	tr.actions = rest
	tr.actMu.Unlock()
	slices.SortStableFunc(actions, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	sortEvidence(evidence)
	var changedArea bool
	late := t.lateness
	// An action is carried out as a tick right after its log message would: time-driven changes up to the
	// watermark the batches before it set, less the allowed lateness, then the action.
	act := func(q queued) {
		if to := q.wm - late; t.advancedTo < to {
			changedArea = t.advance(to) || changedArea
		}
		err := t.apply(q.a)
		if err == nil {
			err = errOK
		}
		tr.actResult.Store(q.a.ID, err)
	}
	next := 0
	for _, ev := range evidence {
		for ; next < len(actions) && actions[next].seq < ev.Seq; next++ {
			act(actions[next])
		}
		// Evidence comes in log order (the batch that made it known), as if each batch had its own tick:
		// first the time-driven changes up to the watermark before that batch less the allowed lateness,
		// then up to the evidence's own time less the lateness (by then no on-time evidence can change
		// them). So the outcome is the same however wall-clock ticks group batches.
		if to := max(ev.WmBefore, ev.TS) - late; t.advancedTo < to {
			changedArea = t.advance(to) || changedArea
		}
		t.add(ev)
	}
	for ; next < len(actions); next++ {
		act(actions[next])
	}
	// Then up to the watermark less the allowed lateness: evidence still to come is on time (its time is at
	// least wm, a traffic judgement's bucket end is past wm), so none of it would have come before these
	// changes had it been in this tick. Advancing to wm itself would let the wall-clock grouping of
	// evidence in ticks decide, for evidence between wm−lateness and wm, whether a candidate expired or an
	// incident went quiet before it came: a replay would not show what the live run showed.
	if t.advancedTo < wm-late {
		changedArea = t.advance(wm-late) || changedArea
	}
	if sc := t.scores(); !mapsEqual(sc, tr.lastScores) {
		scores, tr.lastScores = sc, sc
	}
	all := t.snapshot()
	for _, in := range all {
		b, ok := before[in.ID]
		if !ok || b.Status != in.Status || b.Score != in.Score || b.EvidenceCount != in.EvidenceCount ||
			b.Severity != in.Severity || b.Type != in.Type || b.Lat != in.Lat || b.Lng != in.Lng || changedArea {
			changed = append(changed, in)
		}
	}
	if len(changed) > 0 || len(all) != len(*tr.published.Load()) {
		tr.published.Store(&all)
	}
	return changed, scores
}

func mapsEqual(a, b map[uint64]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Incidents returns the visible incidents as of the last tick (copies, oldest first).
func (tr *Tracker) Incidents() []Incident { return *tr.published.Load() }

// errOK marks an action that succeeded in actResult.
var errOK = errors.New("ok")

// queued is an operator action with its place in the log: its sequence and the watermark before it.
type queued struct {
	a   Action
	seq uint64
	wm  int64
}

// Queue queues an operator action read from the log at sequence seq, where the watermark was wm; the first
// Track whose mark covers seq carries it out in log order with the evidence.
func (tr *Tracker) Queue(seq uint64, wm int64, a Action) {
	tr.actMu.Lock()
	tr.actions = append(tr.actions, queued{a: a, seq: seq, wm: wm})
	tr.actMu.Unlock()
}

// Result returns the outcome of the action with id, and false while it has not been carried out.
func (tr *Tracker) Result(id string) (error, bool) {
	v, ok := tr.actResult.Load(id)
	if !ok {
		return nil, false
	}
	if v.(error) == errOK {
		return nil, true
	}
	return v.(error), true
}

// State is the tracker's part of an engine snapshot (state.json): every incident with the tracker's
// internals, the camera records and the event time the time-driven steps have reached.
type State struct {
	Incidents  []IncidentState       `json:"incidents"`
	Cams       map[string]*camRecord `json:"cams"`
	AdvancedTo int64                 `json:"advanced_to"`
	Flow       map[int32]*linkFlow   `json:"flow,omitempty"`   // the judge's last word on each link
	Counts     map[string]*camCounts `json:"counts,omitempty"` // the cameras' recent vehicle counts
}

// IncidentState is an Incident with the tracker's internals, for snapshots.
type IncidentState struct {
	Incident
	Sources map[string]*sourceAcc `json:"sources"`
	Types   map[string]float64    `json:"types"`
	Links   []int32               `json:"links,omitempty"`
	Heads   []int32               `json:"heads,omitempty"`
}

// State returns the tracker's state for a snapshot (tick goroutine; it shares maps with the tracker, so
// encode it before the next Track).
func (tr *Tracker) State() State {
	t := tr.t
	st := State{Cams: t.cams, AdvancedTo: t.advancedTo, Flow: t.flow, Counts: t.counts}
	for _, in := range t.order {
		st.Incidents = append(st.Incidents, IncidentState{Incident: *in, Sources: in.sources, Types: in.types,
			Links: slices.Sorted(maps.Keys(in.links)), Heads: slices.Sorted(maps.Keys(in.heads))})
	}
	return st
}

// Restore loads a snapshot's state into a fresh tracker (tick goroutine).
func (tr *Tracker) Restore(st State) {
	t := tr.t
	t.advancedTo = st.AdvancedTo
	if st.Cams != nil {
		t.cams = st.Cams
	}
	t.flow = st.Flow
	t.counts = st.Counts
	for i := range st.Incidents {
		is := &st.Incidents[i]
		in := is.Incident
		in.sources, in.types = is.Sources, is.Types
		if in.sources == nil {
			in.sources = map[string]*sourceAcc{}
		}
		if in.types == nil {
			in.types = map[string]float64{}
		}
		if len(is.Links) > 0 {
			in.links = linkSet(is.Links)
		}
		if len(is.Heads) > 0 {
			in.heads = linkSet(is.Heads)
		}
		t.byID[in.ID] = &in
		t.order = append(t.order, &in)
	}
}
