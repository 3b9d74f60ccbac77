// Package queues estimates, from the feeds a city has, what a signal controller needs to know about every
// incoming lane of every signal: the vehicles waiting at it, those about to arrive, whether it is still
// discharging, how long it has waited, and how full the links it feeds are.
//
// The inputs are the engine's own: loop detectors near the stop lines (detector events with their lane, at
// the controller's interval), probe vehicles map-matched to links, and the states the signals report when they
// ask for a decision. The model is an input-output count per lane, propagated through the network:
//
//   - vehicles a loop counts through a green leave their lane and enter the links its movements lead to,
//     split by turning ratios learned from probe trajectories (link to link), and reach the next signal's
//     loops after the free-flow (or probe-measured) travel time, through any unsignalised links between;
//   - a lane's waiting vehicles are the arrivals due by now less what its loop has counted, kept apart for
//     the few stored between the loop and the stop line during red;
//   - corrections: a green lane whose loop sees nothing for a gap is empty; a loop occupied during red means
//     the queue has reached it; a standing probe bounds the queue from below, a moving one from above;
//     arrivals the model did not predict (vehicles entering mid-network or from outside) are learned as a
//     rate per link.
//
// Estimator is fed by the engine's dispatcher (Observe, via engine.Config.ObserveRows) and read by the signal
// controller (engine/dispatch), both under one mutex.
package queues

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
	"citybrain/engine/signals"
	"citybrain/geo"
)

// Config tunes the estimator.
type Config struct {
	// SatFlowVph is a lane's saturation flow (veh/h) for discharging vehicles stored past the loop.
	SatFlowVph float64
	// GapS: a green lane whose loop has counted nothing for this long, with an empty loop, is empty.
	GapS float64
	// CrossS is the time from a loop over the junction into the next link.
	CrossS float64
	// HalfLifeS of the learned rates (unpredicted arrivals, lane shares, probe speeds).
	HalfLifeS float64
	// TurnPrior is the pseudo-count each possible movement starts with in the turning ratios.
	TurnPrior float64
}

// DefaultConfig is the tuning docs/signals.md measures with.
func DefaultConfig() Config {
	return Config{SatFlowVph: signals.SatFlowPerLane, GapS: 4, CrossS: 2, HalfLifeS: 300, TurnPrior: 2}
}

// Estimator is the live state of the network's signalised approaches. It is safe for concurrent use.
type Estimator struct {
	cfg   Config
	net   *geo.Network
	links []*geo.Link
	byID  map[string]int32

	mu      sync.Mutex
	now     int64 // newest event time seen, ms
	changed chan struct{}
	lanes   map[string]*lane // approach lanes of signals, by lane id
	ls      map[int32]*link  // links that hold or lead to approaches (and the outgoing links of signals)
	order   []int32          // the keys of ls, ascending: arrivals move in the same order every run
	sigs    map[string]*sigState
	probes  map[string]probeTrack
	turns   map[[2]int32]float64 // probe moves link → next link
	seenAt  int64                // last eviction of stale probes
	upTo    int64                // arrivals are placed up to this time
}

// lane is an incoming lane of a signal.
type lane struct {
	id      string
	link    int32
	lengthM float64
	outs    []int32 // links its movements lead to
	loopM   float64 // the loop's distance before the stop line (NaN until its first reading)

	up       float64 // vehicles arrived upstream of the loop and not yet counted
	stored   float64 // vehicles counted during red, between the loop and the stop line
	lastPass int64   // end of the last interval in which the loop counted a vehicle (ms)
	lastRead int64   // end of the last interval read
	occ      float64
	count    float64 // vehicles counted in the last interval
	share    float64 // this lane's share of its link's counts (EWMA)
	green    bool
	// partial: some of the lane's movements are green and others red. A vehicle waiting at the head for a red
	// movement holds up the lane, so a loop that counts nothing then does not mean the lane is empty.
	partial bool
	greenTo []bool // per movement (outs): green now
	since   int64  // when green last changed (or was first reported)
	known   bool   // its signal has reported a state
	signal  string
}

// link is a road link on the way to signals: the arrivals scheduled on it and what was learned of it.
type link struct {
	idx      int32
	lanes    []*lane // its signal lanes (empty for links without a signal at their end)
	pending  []arrival
	unpred   float64 // arrivals at its loops the model did not predict, veh/s (EWMA)
	speedMS  float64 // probe-measured speed (EWMA), 0 unknown
	freeMS   float64
	storage  float64 // vehicles it holds at jam spacing
	lastSeen int64
	// entry: vehicles reach this link from the edge of the network without passing another signal (the
	// perimeter of the controlled area); the others are its inner links.
	entry bool
}

// arrival is a group of vehicles expected at a link's queue (or, on a link without a signal, at its end).
type arrival struct {
	at  int64 // ms
	veh float64
}

type sigState struct {
	state string
	at    int64
}

type probeTrack struct {
	link int32
	at   int64
}

// New returns an estimator for net's signals (none: every query answers nothing).
func New(net *geo.Network, cfg Config) *Estimator {
	d := DefaultConfig()
	if cfg.SatFlowVph <= 0 {
		cfg.SatFlowVph = d.SatFlowVph
	}
	if cfg.GapS <= 0 {
		cfg.GapS = d.GapS
	}
	if cfg.CrossS <= 0 {
		cfg.CrossS = d.CrossS
	}
	if cfg.HalfLifeS <= 0 {
		cfg.HalfLifeS = d.HalfLifeS
	}
	if cfg.TurnPrior <= 0 {
		cfg.TurnPrior = d.TurnPrior
	}
	e := &Estimator{cfg: cfg, net: net, now: math.MinInt64, upTo: math.MinInt64, changed: make(chan struct{}),
		lanes: map[string]*lane{}, ls: map[int32]*link{}, sigs: map[string]*sigState{}, probes: map[string]probeTrack{},
		turns: map[[2]int32]float64{}}
	if net == nil {
		return e
	}
	e.links = net.Links()
	idx := make(map[string]int32, len(e.links))
	for i, l := range e.links {
		idx[l.ID] = int32(i)
	}
	e.byID = idx
	for _, s := range net.Signals() {
		for _, sl := range s.Links {
			if sl.Index < 0 {
				continue
			}
			li, ok := idx[sl.From]
			if !ok {
				continue
			}
			ln := e.lanes[sl.FromLane]
			if ln == nil {
				_, gl, ok := net.Lane(sl.FromLane)
				if !ok {
					continue
				}
				ln = &lane{id: sl.FromLane, link: li, lengthM: gl.LengthM, loopM: math.NaN(), signal: s.ID}
				if ln.lengthM <= 0 {
					ln.lengthM = e.links[li].LengthM
				}
				e.lanes[sl.FromLane] = ln
				lk := e.link(li)
				lk.lanes = append(lk.lanes, ln)
			}
			if to, ok := idx[sl.To]; ok && !containsI(ln.outs, to) {
				ln.outs = append(ln.outs, to)
				e.link(to)
			}
		}
	}
	sigNodes := map[string]bool{}
	for _, s := range net.Signals() {
		for _, n := range s.Nodes {
			sigNodes[n] = true
		}
	}
	for _, lk := range e.ls {
		if len(lk.lanes) > 0 {
			lk.entry = e.entry(lk.idx, sigNodes)
		}
		sort.Slice(lk.lanes, func(i, j int) bool { return lk.lanes[i].id < lk.lanes[j].id })
		for _, ln := range lk.lanes {
			ln.share = 1 / float64(len(lk.lanes))
		}
	}
	return e
}

func containsI(s []int32, x int32) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// entryHops bounds the walk upstream from an approach in search of the network's edge.
const entryHops = 4

// entry reports whether vehicles can reach link li from the edge of the network (a node that only the
// reverse of the link leaving it enters) within entryHops links without passing a signal (a link leaving a
// signalised node is inner).
func (e *Estimator) entry(li int32, sigNodes map[string]bool) bool {
	type at struct{ node, from string } // a node reached, and the node of the link we walked up from
	front := []at{{e.links[li].From, e.links[li].To}}
	seen := map[string]bool{}
	for hop := 0; hop < entryHops && len(front) > 0; hop++ {
		var next []at
		for _, a := range front {
			if seen[a.node] || sigNodes[a.node] {
				continue
			}
			seen[a.node] = true
			nd, ok := e.net.Node(a.node)
			if !ok {
				continue
			}
			ins := 0
			for _, id := range nd.In {
				l, ok := e.net.Link(id)
				if !ok || l.From == a.from { // the reverse of the way down
					continue
				}
				ins++
				next = append(next, at{l.From, a.node})
			}
			if ins == 0 {
				return true
			}
		}
		front = next
	}
	return false
}

// AreaFill is how full the inner links of the controlled area are (vehicles on them over their storage at
// jam spacing; 0 when it has none): what a perimeter gate watches.
func (e *Estimator) AreaFill() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, cap := 0.0, 0.0
	for _, li := range e.order {
		lk := e.ls[li]
		if len(lk.lanes) == 0 || lk.entry {
			continue
		}
		for _, a := range lk.pending {
			n += a.veh
		}
		for _, ln := range lk.lanes {
			n += ln.up + ln.stored
		}
		cap += lk.storage
	}
	if cap == 0 {
		return 0
	}
	return math.Min(1, n/cap)
}

// link returns the state of link li, creating it.
func (e *Estimator) link(li int32) *link {
	if lk := e.ls[li]; lk != nil {
		return lk
	}
	l := e.links[li]
	ff, _ := e.net.FreeFlowKmh(l.ID)
	lanes := max(1, l.Lanes)
	lk := &link{idx: li, freeMS: math.Max(3, ff/3.6), storage: math.Max(1, l.LengthM*float64(lanes)/signals.JamSpacingM)}
	e.ls[li] = lk
	k := sort.Search(len(e.order), func(i int) bool { return e.order[i] >= li })
	e.order = append(e.order, 0)
	copy(e.order[k+1:], e.order[k:])
	e.order[k] = li
	return lk
}

// Observe takes one applied batch with each row's matched link and position along it (engine.Config.
// ObserveRows). It must not keep rec.
func (e *Estimator) Observe(rec arrow.Record, links []int32, offs []float32) {
	if e.net == nil || len(e.lanes) == 0 {
		return
	}
	n := int(rec.NumRows())
	if len(links) < n || len(offs) < n {
		return
	}
	ts := rec.Column(schema.ColTS).(*array.Timestamp)
	kind := rec.Column(schema.ColKind).(*array.Uint8)
	ids := rec.Column(schema.ColID).(*array.String)
	speed := rec.Column(schema.ColSpeed).(*array.Float32)
	flow := rec.Column(schema.ColFlow).(*array.Float32)
	occ := rec.Column(schema.ColOccupancy).(*array.Float32)
	interval := rec.Column(schema.ColInterval).(*array.Float32)
	laneCol := rec.Column(schema.ColLane).(*array.String)
	e.mu.Lock()
	defer e.mu.Unlock()
	newest := e.now
	type det struct {
		ln                *lane
		t                 int64
		count, occ, intvS float64
		off               float32
	}
	var dets []det
	for i := 0; i < n; i++ {
		t := int64(ts.Value(i))
		newest = max(newest, t)
		switch schema.Kind(kind.Value(i)) {
		case schema.KindProbe:
			if links[i] >= 0 && speed.IsValid(i) {
				e.probe(ids.Value(i), links[i], float64(offs[i]), float64(speed.Value(i)), t)
			}
		case schema.KindDetector:
			var ln *lane
			if laneCol.IsValid(i) {
				ln = e.lanes[laneCol.Value(i)]
			}
			if ln == nil || !flow.IsValid(i) || !interval.IsValid(i) {
				continue
			}
			iv := float64(interval.Value(i))
			o := 0.0
			if occ.IsValid(i) {
				o = float64(occ.Value(i))
			}
			off := float32(math.NaN())
			if links[i] == ln.link {
				off = offs[i]
			}
			dets = append(dets, det{ln, t, math.Round(float64(flow.Value(i)) * iv / 3600), o, iv, off})
		}
	}
	// Arrivals due before the readings are placed first, then the readings in time order.
	sort.Slice(dets, func(a, b int) bool { return dets[a].t < dets[b].t })
	for _, d := range dets {
		e.advance(d.t)
		if d.ln.lastRead >= d.t {
			continue // a repeated reading
		}
		if !math.IsNaN(float64(d.off)) {
			d.ln.loopM = math.Max(0, (1-float64(d.off))*e.links[d.ln.link].LengthM)
		}
		e.reading(d.ln, d.t, d.count, d.occ, d.intvS)
	}
	e.advance(newest)
	if newest > e.now {
		e.now = newest
		close(e.changed)
		e.changed = make(chan struct{})
	}
	if e.now-e.seenAt > 60_000 {
		e.seenAt = e.now
		for id, p := range e.probes {
			if e.now-p.at > 600_000 {
				delete(e.probes, id)
			}
		}
	}
}

// WaitFor waits until the estimator has seen an event at or after ts (ms), or ctx ends. It reports whether
// it has.
func (e *Estimator) WaitFor(ctx context.Context, ts int64) bool {
	for {
		e.mu.Lock()
		now, ch := e.now, e.changed
		e.mu.Unlock()
		if now >= ts && now != math.MinInt64 {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Now is the newest event time the estimator has seen (ms; math.MinInt64 before any).
func (e *Estimator) Now() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// decay is the EWMA weight of a new observation dt ms after the last.
func (e *Estimator) decay(dtMs int64) float64 {
	if dtMs <= 0 {
		return 0
	}
	return 1 - math.Exp2(-float64(dtMs)/1000/e.cfg.HalfLifeS)
}

// reading applies one loop interval: counts through green leave the lane and travel on; counts during red are
// stored before the stop line; the corrections of the package comment apply.
func (e *Estimator) reading(ln *lane, t int64, count, occ, intvS float64) {
	lk := e.ls[ln.link]
	ln.lastRead, ln.count, ln.occ = t, count, occ
	if count > 0 {
		ln.lastPass = t
	}
	// Lane shares of the link's counts.
	if tot := e.linkCount(lk); tot > 0 {
		w := e.decay(int64(intvS * 1000))
		for _, o := range lk.lanes {
			o.share += w * (o.count/tot - o.share)
		}
	}
	capStore := 1.0
	if !math.IsNaN(ln.loopM) {
		capStore = math.Max(1, ln.loopM/signals.JamSpacingM)
	}
	out := 0.0
	if ln.green {
		// On a partial green only the vehicles bound for the green movements go; the others stop between
		// the loop and the stop line.
		goes := e.greenShare(ln)
		discharge := 0.0
		if !ln.partial || count > 0 { // on a partial green a loop that counts nothing: the head is held up
			discharge = math.Min(ln.stored, goes*e.cfg.SatFlowVph/3600*intvS)
		}
		ln.stored -= discharge
		out = discharge + count*goes
		if stay := count * (1 - goes); stay > 0 {
			room := math.Max(0, capStore-ln.stored)
			ln.stored += math.Min(stay, room)
		}
	} else {
		room := math.Max(0, capStore-ln.stored)
		ln.stored += math.Min(count, room)
		out = math.Max(0, count-room) // a loop past the stop line, or right-on-red movements
	}
	if count > ln.up {
		excess := count - ln.up
		lk.unpred += e.decay(int64(intvS*1000)) * (excess/intvS - lk.unpred)
		ln.up = 0
	} else {
		ln.up -= count
		lk.unpred += e.decay(int64(intvS*1000)) * (0 - lk.unpred)
	}
	switch {
	case ln.green && !ln.partial && count == 0 && occ < 0.1 && float64(t-ln.lastPass)/1000 >= e.cfg.GapS && float64(t-ln.since)/1000 >= e.cfg.GapS:
		ln.up, ln.stored = 0, 0 // nothing comes through a green: the lane is empty
	case !ln.green && occ >= 0.5:
		ln.stored = capStore
		ln.up = math.Max(ln.up, 1) // the queue reaches the loop
	}
	if out > 0 {
		e.send(ln, t, out)
	}
}

func (e *Estimator) linkCount(lk *link) float64 {
	t := 0.0
	for _, o := range lk.lanes {
		t += o.count
	}
	return t
}

// greenShare is the share of lane ln's vehicles bound for its movements that are green now (1 when all are).
func (e *Estimator) greenShare(ln *lane) float64 {
	if !ln.partial || len(ln.greenTo) != len(ln.outs) {
		return 1
	}
	g := 0.0
	for i, r := range e.ratios(ln.link, ln.outs) {
		if ln.greenTo[i] {
			g += r
		}
	}
	return g
}

// send moves n vehicles that crossed lane ln's stop line at t into the links its movements lead to (on a
// partial green, only the green ones).
func (e *Estimator) send(ln *lane, t int64, n float64) {
	from := ln.link
	ratios := e.ratios(from, ln.outs)
	if ln.partial && len(ln.greenTo) == len(ln.outs) {
		sum := 0.0
		for i := range ratios {
			if !ln.greenTo[i] {
				ratios[i] = 0
			}
			sum += ratios[i]
		}
		for i := range ratios {
			if sum > 0 {
				ratios[i] /= sum
			}
		}
	}
	cross := e.cfg.CrossS
	if !math.IsNaN(ln.loopM) {
		cross += ln.loopM / e.ls[from].freeMS
	}
	for i, to := range ln.outs {
		if ratios[i] > 0 {
			e.enter(to, t+int64(cross*1000), n*ratios[i])
		}
	}
}

// enter schedules n vehicles entering link li at t: at its queue when it has signal lanes, else at its end,
// from where they continue.
func (e *Estimator) enter(li int32, t int64, n float64) {
	lk := e.link(li)
	l := e.links[li]
	v := lk.freeMS
	if lk.speedMS > 0 {
		v = math.Min(v, math.Max(2, lk.speedMS))
	}
	travel := l.LengthM / v
	if len(lk.lanes) > 0 {
		// The loops sit a little before the stop line: arrivals are due there.
		loop := 0.0
		for _, ln := range lk.lanes {
			if !math.IsNaN(ln.loopM) {
				loop = math.Max(loop, ln.loopM)
			}
		}
		travel = math.Max(0, l.LengthM-loop) / v
	}
	at := t + int64(travel*1000)
	if len(lk.pending) > 0 {
		if last := &lk.pending[len(lk.pending)-1]; at-last.at < 1000 && at >= last.at {
			last.veh += n
			return
		}
	}
	if len(lk.pending) >= maxPending {
		lk.pending[len(lk.pending)-1].veh += n // bounded: merge into the latest group
		return
	}
	lk.pending = append(lk.pending, arrival{at: at, veh: n})
	if len(lk.pending) > 1 && lk.pending[len(lk.pending)-2].at > at {
		sort.Slice(lk.pending, func(a, b int) bool { return lk.pending[a].at < lk.pending[b].at })
	}
}

// maxPending bounds the arrival groups scheduled on one link.
const maxPending = 512

// advance brings every link's due arrivals to their queues (or onward) up to time t.
func (e *Estimator) advance(t int64) {
	if t <= e.upTo {
		return
	}
	e.upTo = t
	for moved := true; moved; {
		moved = false
		for _, li := range append([]int32(nil), e.order...) { // enter may add links
			lk := e.ls[li]
			k := 0
			for k < len(lk.pending) && lk.pending[k].at <= t {
				k++
			}
			if k == 0 {
				continue
			}
			due := append([]arrival(nil), lk.pending[:k]...)
			lk.pending = append(lk.pending[:0], lk.pending[k:]...)
			for _, a := range due {
				if len(lk.lanes) > 0 {
					for _, ln := range lk.lanes {
						ln.up += a.veh * ln.share
					}
					continue
				}
				e.onward(lk.idx, a)
				moved = true
			}
		}
	}
}

// onward moves vehicles at the end of an unsignalised link into its successors by turning ratios.
func (e *Estimator) onward(li int32, a arrival) {
	nd, ok := e.net.Node(e.links[li].To)
	if !ok || a.veh < 1e-3 {
		return
	}
	var next []int32
	for _, id := range nd.Out {
		l, ok := e.net.Link(id)
		if !ok || l.To == e.links[li].From { // not the U-turn back
			continue
		}
		if j, ok := e.idx(id); ok {
			next = append(next, j)
		}
	}
	if len(next) == 0 {
		return
	}
	r := e.ratios(li, next)
	for i, j := range next {
		if r[i] > 0 {
			e.enter(j, a.at, a.veh*r[i])
		}
	}
}

func (e *Estimator) idx(id string) (int32, bool) {
	i, ok := e.byID[id]
	return i, ok
}

// ratios are the shares of vehicles leaving link from that go to each of tos: probe moves plus a prior.
func (e *Estimator) ratios(from int32, tos []int32) []float64 {
	out := make([]float64, len(tos))
	sum := 0.0
	for i, to := range tos {
		out[i] = e.turns[[2]int32{from, to}] + e.cfg.TurnPrior
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// probe takes one probe report: its move from its previous link (turning ratios), the link's speed, and the
// queue bounds a standing or moving probe gives on an approach.
func (e *Estimator) probe(id string, li int32, off, speedKmh float64, t int64) {
	if p, ok := e.probes[id]; ok && p.link != li && t >= p.at {
		e.countMove(p.link, li)
	}
	e.probes[id] = probeTrack{link: li, at: t}
	lk := e.ls[li]
	if lk == nil {
		return
	}
	w := e.decay(max(1000, t-lk.lastSeen))
	lk.lastSeen = t
	if lk.speedMS == 0 {
		lk.speedMS = speedKmh / 3.6
	} else {
		lk.speedMS += w * (speedKmh/3.6 - lk.speedMS)
	}
	if len(lk.lanes) == 0 {
		return
	}
	l := e.links[li]
	dist := math.Max(0, (1-off)*l.LengthM)
	lanes := float64(len(lk.lanes))
	switch {
	case speedKmh < 5: // standing: the queue reaches at least this far back
		q := dist / signals.JamSpacingM
		for _, ln := range lk.lanes {
			if !ln.green {
				ln.up = math.Max(ln.up, q*ln.share*lanes*0.7-ln.stored)
			}
		}
	case speedKmh > 20 && dist < l.LengthM: // moving freely: no queue reaches back this far
		q := dist / signals.JamSpacingM
		for _, ln := range lk.lanes {
			ln.up = math.Min(ln.up, q*ln.share*lanes+2)
		}
	}
}

// countMove records a probe's move between links (through up to two short links it skipped between reports).
func (e *Estimator) countMove(from, to int32) {
	if path := e.path(from, to, 3); path != nil {
		for k := 0; k+1 < len(path); k++ {
			e.turns[[2]int32{path[k], path[k+1]}]++
		}
	}
}

// path finds the shortest chain of links from → to of at most hops moves.
func (e *Estimator) path(from, to int32, hops int) []int32 {
	type item struct {
		l    int32
		prev int
	}
	q := []item{{from, -1}}
	seen := map[int32]bool{from: true}
	for head, depth := 0, 0; head < len(q) && depth <= hops; depth++ {
		end := len(q)
		for ; head < end; head++ {
			it := q[head]
			if it.l == to && it.prev >= 0 {
				var out []int32
				for k := head; k >= 0; k = q[k].prev {
					out = append(out, q[k].l)
				}
				for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
					out[a], out[b] = out[b], out[a]
				}
				return out
			}
			nd, ok := e.net.Node(e.links[it.l].To)
			if !ok {
				continue
			}
			for _, id := range nd.Out {
				j, ok := e.idx(id)
				if !ok || seen[j] {
					continue
				}
				seen[j] = true
				q = append(q, item{j, head})
			}
		}
	}
	return nil
}

// Report records the state a signal shows at t (SUMO-style characters per link index), so that the lanes it
// serves are known to be green or red.
func (e *Estimator) Report(signalID, state string, t int64) {
	s, ok := e.net.Signal(signalID)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sigs[s.ID] = &sigState{state: state, at: t}
	green, moves := map[string]int{}, map[string]int{}
	for _, sl := range s.Links {
		if sl.Index >= 0 {
			moves[sl.FromLane]++
			if sl.Index < len(state) && geo.Green(state[sl.Index]) {
				green[sl.FromLane]++
			}
		}
	}
	for _, sl := range s.Links {
		ln := e.lanes[sl.FromLane]
		if ln == nil || sl.Index < 0 {
			continue
		}
		if len(ln.greenTo) != len(ln.outs) {
			ln.greenTo = make([]bool, len(ln.outs))
		}
		if to, ok := e.byID[sl.To]; ok {
			for k, o := range ln.outs {
				if o == to {
					ln.greenTo[k] = sl.Index < len(state) && geo.Green(state[sl.Index])
				}
			}
		}
	}
	for _, sl := range s.Links {
		if ln := e.lanes[sl.FromLane]; ln != nil && sl.Index >= 0 {
			g := green[sl.FromLane] > 0
			ln.partial = g && green[sl.FromLane] < moves[sl.FromLane]
			if g != ln.green || !ln.known {
				ln.green, ln.since, ln.known = g, t, true
			}
		}
	}
}

// LaneView is what the estimator knows of one incoming lane now.
type LaneView struct {
	Lane       string             `json:"lane"`
	Link       string             `json:"link"`
	Green      bool               `json:"green"`
	QueueVeh   float64            `json:"queue_veh"`    // waiting: arrived and not yet through
	ArriveVeh  float64            `json:"arrivals_veh"` // expected within the horizon
	GapS       float64            `json:"gap_s"`        // since the loop last counted a vehicle
	WaitS      float64            `json:"wait_s"`       // since the lane lost green, when vehicles wait
	OutFill    float64            `json:"out_fill"`     // how full the links it feeds are (0..1)
	Storage    float64            `json:"storage_veh"`
	LoopM      float64            `json:"loop_m"` // the loop's distance before the stop line (-1 unknown)
	TurnShares map[string]float64 `json:"turns,omitempty"`
	HasLoop    bool               `json:"has_loop"`
	Entry      bool               `json:"entry"` // on the perimeter of the controlled area (reached from its edge)
}

// Lanes returns the state of lanes (ids) for a decision now, looking horizonS ahead for arrivals.
func (e *Estimator) Lanes(ids []string, horizonS float64) []LaneView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]LaneView, len(ids))
	now := e.now
	for i, id := range ids {
		v := LaneView{Lane: id, GapS: math.Inf(1), LoopM: -1}
		ln := e.lanes[id]
		if ln == nil {
			out[i] = v
			continue
		}
		lk := e.ls[ln.link]
		l := e.links[ln.link]
		v.Link, v.Green, v.HasLoop, v.Entry = l.ID, ln.green, ln.lastRead > 0, lk.entry
		v.QueueVeh = ln.up + ln.stored
		v.Storage = math.Max(1, ln.lengthM/signals.JamSpacingM)
		if !math.IsNaN(ln.loopM) {
			v.LoopM = ln.loopM
		}
		horizon := now + int64(horizonS*1000)
		for _, a := range lk.pending {
			if a.at > horizon {
				break
			}
			v.ArriveVeh += a.veh * ln.share
		}
		v.ArriveVeh += lk.unpred * horizonS * ln.share
		if ln.lastPass > 0 {
			v.GapS = float64(now-ln.lastPass) / 1000
		}
		switch {
		case ln.known && !ln.green && v.QueueVeh >= 0.5:
			v.WaitS = float64(now-ln.since) / 1000
		case ln.known && ln.partial && v.QueueVeh >= 0.5 && v.GapS >= e.cfg.GapS:
			// Green for some movements, yet nothing crosses: the head vehicle waits for a red one.
			v.WaitS = float64(now-max(ln.since, ln.lastPass)) / 1000
		}
		if len(ln.outs) > 0 {
			r := e.ratios(ln.link, ln.outs)
			v.TurnShares = map[string]float64{}
			for k, o := range ln.outs {
				v.OutFill += r[k] * e.fill(o)
				v.TurnShares[e.links[o].ID] = r[k]
			}
		}
		out[i] = v
	}
	return out
}

// fill is how full link li is: the vehicles on it (waiting at its lanes and on their way) over its storage.
func (e *Estimator) fill(li int32) float64 {
	lk := e.ls[li]
	if lk == nil {
		return 0
	}
	n := 0.0
	for _, a := range lk.pending {
		n += a.veh
	}
	for _, ln := range lk.lanes {
		n += ln.up + ln.stored
	}
	return math.Min(1, n/lk.storage)
}

// Signal returns the last state signal id reported, and when (zero time when it has not).
func (e *Estimator) Signal(id string) (state string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sigs[id]; s != nil {
		return s.state, time.UnixMilli(s.at).UTC()
	}
	return "", time.Time{}
}
