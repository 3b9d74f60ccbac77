package window

import (
	"fmt"
	"math"
	"sort"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/evtime"
	"citybrain/engine/incident"
	"citybrain/engine/queue"
	"citybrain/engine/schema"
	"citybrain/geo"
)

// agg holds the sums of one cell over one event-time bucket.
type agg struct {
	start int64 // bucket start, ms
	schema.WindowStats
	// stopHead (links only): 1 + the most downstream position, as a fraction of the link's length, of a
	// probe standing (under standstillKmh) in the bucket; 0: none. Where a standing queue has its head
	// tells a queue at a stop line from one behind a blockage.
	stopHead float32
}

// addHead merges another bucket's stopHead.
func (a *agg) addHead(h float32) { a.stopHead = max(a.stopHead, h) }

// speedBins is the learned free-flow histogram: 4 km/h bins up to 160 km/h.
const (
	speedBinKmh = 4
	speedBins   = 40
)

// cellState is one cell's state, owned by its shard's goroutine.
type cellState struct {
	aggs     []agg // sorted by start; only buckets that hold events
	hist     [speedBins]uint32
	histN    uint32
	lastTS   int64
	lat, lng float64
	view     *CellView // last published view, nil before the first
	// closed is the view's windows without the open bucket as of the last visit (constant within a bucket
	// but for late events): what the cell adds to its siblings' pools.
	closed   [len(schema.Windows)]Pool
	incident float64 // incident score set by the tracker
	// rawCell is the cell's index in the shard's raw cell table while rawGen is the table's generation + 1
	// (internTable.internKept); dirtyGen is the shard's dirtyGen + 1 while the cell is in s.dirty.
	rawCell, rawGen uint32
	dirtyGen        uint64
}

// cellMemo is one slot of shard.cellMemo.
type cellMemo struct {
	cell uint64
	cs   *cellState
}

// cellMemoBits sizes shard.cellMemo (2^bits slots of 16 bytes).
const cellMemoBits = 10

func (cs *cellState) bucket(start int64) *agg {
	n := len(cs.aggs)
	if n > 0 && cs.aggs[n-1].start == start {
		return &cs.aggs[n-1]
	}
	i := sort.Search(n, func(i int) bool { return cs.aggs[i].start >= start })
	if i < n && cs.aggs[i].start == start {
		return &cs.aggs[i]
	}
	cs.aggs = append(cs.aggs, agg{})
	copy(cs.aggs[i+1:], cs.aggs[i:])
	cs.aggs[i] = agg{start: start}
	return &cs.aggs[i]
}

// learnedFreeFlow is the 85th percentile of observed speeds (bin upper edge), or false with too few samples.
func (cs *cellState) learnedFreeFlow(minSamples uint32) (float64, bool) {
	if cs.histN < minSamples {
		return 0, false
	}
	target := uint32(float64(cs.histN)*0.85 + 0.5)
	var acc uint32
	for i, n := range cs.hist {
		acc += n
		if acc >= target {
			return float64((i + 1) * speedBinKmh), true
		}
	}
	return speedBins * speedBinKmh, true
}

// shardMsg is a unit of work for a shard: rows of a log batch, or a tick.
type shardMsg struct {
	rec     arrow.Record // retained for this shard; the shard releases it
	rows    []int32
	links   []int32   // matched link index per row (-1: none); nil without a road network
	offs    []float32 // position along the matched link per row, fraction of its length
	horizon int64     // events older than this are too late for any window
	now     int64     // the engine's newest event time after this batch
	// sampleTo, when set, is the watermark after this batch, which passed a bucket end: the shard measures
	// its cells at every bucket end up to it once the rows (if any) are applied. The dispatcher sends it to
	// every shard, so that each bucket end is measured on exactly the batches up to the one that passed
	// it, however the tick goroutine's wall-clock ticks fall (a replay judges as the live run did).
	sampleTo int64
	seq      uint64 // the batch's log sequence
	wmBefore int64  // the watermark before the batch
	tick     *tickReq
	dump     *dumpReq
	restore  *restoreReq
	rawReq   *rawReq
}

type tickReq struct {
	now, wm int64
	scores  map[uint64]float64 // incident scores by cell (nil: unchanged since the last tick)
	reply   chan tickResult
}

type tickResult struct {
	changed  []*CellView
	removed  []uint64
	evidence []incident.Evidence
	samples  []incident.TrafficSample
}

// busState tracks one transit vehicle's delay for the sudden-delay rule.
type busState struct {
	ts    int64
	delay float64
}

// shard owns the cells whose coarse parent hashes to it. Every field is owned by the shard's goroutine except
// snap (published views, read by any goroutine) and rawRows (a gauge).
type shard struct {
	w     *Set
	in    *queue.Queue[shardMsg] // from the dispatcher and the tick goroutine; full: the dispatcher waits
	cells map[uint64]*cellState
	dirty map[uint64]struct{}
	raw   map[int64]*rawBucket

	lastTickBucket int64
	lastEvalEnd    int64 // bucket end up to which traffic anomalies were evaluated
	evidence       []incident.Evidence
	samples        []incident.TrafficSample // measured at bucket ends since the last tick
	buses          map[string]busState
	scored         map[uint64]bool // cells with a nonzero incident score
	snap           atomic.Pointer[map[uint64]*CellView]
	rawRows        atomic.Int64        // gauge: raw events retained
	rawSealed      atomic.Int64        // bytes of sealed raw chunks
	rawBytesGauge  atomic.Int64        // gauge: rawBytes as of the last tick
	rawTableGauge  atomic.Int64        // gauge: the id and cell tables' part of it
	rawIDs         internTable[string] // ids of retained events
	rawCells       internTable[uint64] // cells of retained events
	rawSpare       []rawCols           // slices of sealed chunks, for the next open ones
	lastRaw        *rawBucket          // the raw bucket rawAdd used last (nil: none), starting at lastRawStart
	// cellMemo holds the states of the cells apply met lately, so that most rows find theirs without a map
	// lookup; a cell deleted from s.cells leaves it, a restore empties it.
	cellMemo     [1 << cellMemoBits]cellMemo
	lastRawStart int64
	dirtyGen     uint64 // changes whenever s.dirty is cleared (cellState.dirtyGen)

	links      map[int32]*linkState
	dirtyLinks map[int32]struct{}
	linkSnap   atomic.Pointer[map[int32]*LinkView]
}

func newShard(w *Set, i int) *shard {
	s := &shard{
		rawIDs: internTable[string]{size: func(id string) int { return len(id) }},
		w:      w,
		in:     queue.New[shardMsg](fmt.Sprintf("shard-%d", i), w.cfg.QueueLen, queue.Block),
		cells:  make(map[uint64]*cellState),
		dirty:  make(map[uint64]struct{}),
		raw:    make(map[int64]*rawBucket),
		buses:  make(map[string]busState),

		scored: make(map[uint64]bool),
	}
	empty := map[uint64]*CellView{}
	s.snap.Store(&empty)
	s.links, s.dirtyLinks = map[int32]*linkState{}, map[int32]struct{}{}
	noLinks := map[int32]*LinkView{}
	s.linkSnap.Store(&noLinks)
	return s
}

func (s *shard) run() {
	for m := range s.in.C() {
		switch {
		case m.tick != nil:
			m.tick.reply <- s.tick(m.tick.now, m.tick.wm, m.tick.scores)
			continue
		case m.dump != nil:
			m.dump.reply <- s.dump()
			continue
		case m.restore != nil:
			s.restore(m.restore)
			continue
		case m.rawReq != nil:
			m.rawReq.reply <- s.raws(m.rawReq)
			continue
		}
		if m.rec != nil {
			n := len(s.evidence)
			s.apply(m)
			for i := n; i < len(s.evidence); i++ {
				s.evidence[i].Seq, s.evidence[i].WmBefore = m.seq, m.wmBefore
			}
		}
		if m.sampleTo != 0 {
			n := len(s.samples)
			s.samples = append(s.samples, s.sampleBuckets(m.sampleTo)...)
			for i := n; i < len(s.samples); i++ {
				s.samples[i].SetOrder(m.seq, m.wmBefore)
			}
		}
	}
	s.releaseRaw(1 << 62)
}

func (s *shard) apply(m shardMsg) {
	rec := m.rec
	defer rec.Release()
	bucketMs := s.w.bucketMs
	ts := rec.Column(schema.ColTS).(*array.Timestamp)
	kind := rec.Column(schema.ColKind).(*array.Uint8)
	cellCol := rec.Column(schema.ColCell).(*array.Uint64)
	speed := rec.Column(schema.ColSpeed).(*array.Float32)
	flow := rec.Column(schema.ColFlow).(*array.Float32)
	occ := rec.Column(schema.ColOccupancy).(*array.Float32)
	interval := rec.Column(schema.ColInterval).(*array.Float32)
	lat := rec.Column(schema.ColLat).(*array.Float64)
	lng := rec.Column(schema.ColLng).(*array.Float64)
	retain := s.w.cfg.Retention > 0
	var ids *array.String
	if retain {
		ids = rec.Column(schema.ColID).(*array.String)
	}
	for i, r32 := range m.rows {
		r := int(r32)
		t := int64(ts.Value(r))
		if t < m.horizon {
			continue
		}
		cell := cellCol.Value(r)
		memo := &s.cellMemo[(cell*0x9E3779B97F4A7C15)>>(64-cellMemoBits)]
		cs := memo.cs
		if memo.cell != cell || cs == nil {
			if cs = s.cells[cell]; cs == nil {
				cs = &cellState{}
				cs.lat, cs.lng = geo.Center(cell)
				s.cells[cell] = cs
			}
			memo.cell, memo.cs = cell, cs
		}
		if cs.dirtyGen != s.dirtyGen+1 {
			cs.dirtyGen = s.dirtyGen + 1
			s.dirty[cell] = struct{}{}
		}
		start := evtime.Floor(t, bucketMs)
		a := cs.bucket(start)
		if t > cs.lastTS {
			cs.lastTS = t
		}
		k := schema.Kind(kind.Value(r))
		var c contribution
		c.kind = k
		switch k {
		case schema.KindProbe:
			if speed.IsValid(r) {
				c.speed, c.weight = float64(speed.Value(r)), 1
				cs.learn(c.speed)
			}
		case schema.KindDetector:
			c.detector, c.flow, c.occ = true, float64(flow.Value(r)), float64(occ.Value(r))
			spot := math.NaN()
			if speed.IsValid(r) && c.flow > 0 {
				spot = float64(speed.Value(r))
				cs.learn(spot)
			}
			if sp, ok := loopSpeed(spot, c.flow, c.occ); ok {
				c.speed, c.weight = sp, loopWeight*float64(interval.Value(r))/30
			}
		case schema.KindTransit:
			if speed.IsValid(r) {
				c.speed, c.weight = float64(speed.Value(r)), 0.5
			}
			s.transitDelay(rec, r, t, cell, cs)
		case schema.KindVideo, schema.KindReport, schema.KindSensor:
			if ev, ok := incident.PointEvidence(rec, r, cell, lat.Value(r), lng.Value(r), k, t); ok {
				s.evidence = append(s.evidence, ev)
			}
		}
		c.addTo(a)
		if m.links != nil {
			if li := m.links[i]; li >= 0 {
				s.linkAdd(li, start, t, &c, m.offs[i])
			}
		}
		if retain {
			li, off := int32(-1), float32(0)
			if m.links != nil {
				li, off = m.links[i], m.offs[i]
			}
			sp := float32(math.NaN())
			if speed.IsValid(r) {
				sp = speed.Value(r)
			}
			s.rawAdd(start, t, cell, cs, uint8(k), sp, ids.Value(r), li, off)
		}
	}
}

// transitDelay emits supporting evidence when a vehicle's delay grows by more than 2 minutes within 5.
func (s *shard) transitDelay(rec arrow.Record, r int, t int64, cell uint64, cs *cellState) {
	delay := rec.Column(schema.ColDelay).(*array.Float32)
	if delay.IsNull(r) {
		return
	}
	id := rec.Column(schema.ColID).(*array.String).Value(r)
	d := float64(delay.Value(r))
	prev, ok := s.buses[id]
	if !ok && len(s.buses) >= 100_000 {
		clear(s.buses) // bounded: a restart of the rule is harmless
	}
	s.buses[schema.CloneStr(id)] = busState{ts: t, delay: d}
	if ok && t > prev.ts && t-prev.ts <= 5*60_000 && d-prev.delay > 120 {
		route := rec.Column(schema.ColRoute).(*array.String)
		src := "route"
		if route.IsValid(r) {
			src = "route:" + route.Value(r)
		}
		s.evidence = append(s.evidence, incident.Evidence{Kind: schema.KindTransit, Source: src, Type: "transit_delay", TS: t,
			Lat: cs.lat, Lng: cs.lng, Cell: cell, Weight: 0.2})
	}
}

// sampleBuckets measures every cell with recent data at each bucket end up to wm that was not measured yet,
// for the traffic rule. It runs when the dispatcher says a batch moved the watermark past a bucket end
// (shardMsg.sampleTo), never on a tick.
func (s *shard) sampleBuckets(wm int64) []incident.TrafficSample {
	bucketMs := s.w.bucketMs
	end := evtime.Floor(wm, bucketMs)
	if s.lastEvalEnd == 0 || end-s.lastEvalEnd > 30*bucketMs {
		s.lastEvalEnd = end - bucketMs // first tick, or a jump in time: the newest bucket end only
	}
	var out []incident.TrafficSample
	for t := s.lastEvalEnd + bucketMs; t <= end; t += bucketMs {
		if s.w.cfg.Network != nil {
			// With a road network links are judged by the blockage detector on what the dispatcher
			// measures (Set.Dispatch), not on cell samples.
			continue
		}
		for cell, cs := range s.cells {
			if cs.lastTS >= t-60_000 {
				out = append(out, s.measure(cell, cs, t))
			}
		}
	}
	if end > s.lastEvalEnd {
		s.lastEvalEnd = end
	}
	return out
}

// measure returns the traffic rule's sample of cell cs at bucket end t.
func (s *shard) measure(cell uint64, cs *cellState, t int64) incident.TrafficSample {
	x := incident.CellSample(cell, t, s.freeFlow(cell, cs), cs.lat, cs.lng)
	s.addBuckets(&x, cs.aggs)
	return x
}

// addBuckets adds buckets to sample x; the rule picks the ones of the windows it compares.
func (s *shard) addBuckets(x *incident.TrafficSample, aggs []agg) {
	for j := range aggs {
		a := &aggs[j]
		x.AddBucket(a.start+s.w.bucketMs, &a.WindowStats, a.stopHead)
	}
}

func (a *agg) addSpeed(v, w float64) {
	a.SpeedSum += v * w
	a.SpeedW += w
	a.Samples++
}

func (cs *cellState) learn(v float64) {
	i := int(v / speedBinKmh)
	if i >= speedBins {
		i = speedBins - 1
	}
	if i < 0 {
		i = 0
	}
	cs.hist[i]++
	cs.histN++
}

// tick seals raw buckets behind the watermark, releases raw buckets past retention, drops aggregates past the
// longest window, and publishes the views that changed.
func (s *shard) tick(now, wm int64, scores map[uint64]float64) tickResult {
	bucketMs := s.w.bucketMs
	samples := s.samples
	s.samples = nil
	if scores != nil {
		for cell := range s.scored {
			if _, ok := scores[cell]; !ok {
				if cs := s.cells[cell]; cs != nil {
					cs.incident = 0
					s.dirty[cell] = struct{}{}
				}
				delete(s.scored, cell)
			}
		}
		for cell, sc := range scores {
			if cs := s.cells[cell]; cs != nil && cs.incident != sc {
				cs.incident = sc
				s.scored[cell] = true
				s.dirty[cell] = struct{}{}
			}
		}
	}
	for start, rb := range s.raw {
		if start+bucketMs <= wm && rb.open != nil {
			s.seal(rb)
		}
	}
	s.releaseRaw(now - s.w.retention().Milliseconds())
	s.rawBytesGauge.Store(s.rawBytes())
	s.rawTableGauge.Store(s.rawIDs.bytes() + s.rawCells.bytes())

	var res tickResult
	// pending: the views to publish at this tick; parents: those whose children's sibling pools are due.
	pending := map[uint64]*CellView{}
	parents := map[uint64]struct{}{}
	nowBucket := evtime.Index(now, bucketMs)
	keepFrom := now - schema.Windows[len(schema.Windows)-1].Milliseconds() - bucketMs
	visit := func(cell uint64, cs *cellState) {
		drop := 0
		for drop < len(cs.aggs) && cs.aggs[drop].start < keepFrom {
			drop++
		}
		if drop > 0 {
			cs.aggs = append(cs.aggs[:0], cs.aggs[drop:]...)
		}
		if len(cs.aggs) == 0 {
			delete(s.cells, cell)
			if memo := &s.cellMemo[(cell*0x9E3779B97F4A7C15)>>(64-cellMemoBits)]; memo.cell == cell {
				*memo = cellMemo{}
			}
			if cs.view != nil {
				res.removed = append(res.removed, cell)
				if s.w.cfg.Res > 0 {
					parents[geo.ParentFast(cell, s.w.cfg.Res-1)] = struct{}{}
				}
			}
			return
		}
		v, closed := s.view(cell, cs, now)
		if cs.view != nil {
			v.Siblings = cs.view.Siblings // recomputed below when a sibling's closed windows changed
		}
		if (cs.view == nil || closed != cs.closed) && s.w.cfg.Res > 0 {
			parents[geo.ParentFast(cell, s.w.cfg.Res-1)] = struct{}{}
		}
		cs.closed = closed
		if cs.view == nil || *cs.view != *v {
			pending[cell] = v
		}
	}
	allLinks := nowBucket != s.lastTickBucket
	defer s.tickLinks(now, allLinks)
	if nowBucket != s.lastTickBucket {
		s.lastTickBucket = nowBucket
		for cell, cs := range s.cells {
			visit(cell, cs)
		}
	} else {
		for cell := range s.dirty {
			if cs := s.cells[cell]; cs != nil {
				visit(cell, cs)
			}
		}
	}
	clear(s.dirty)
	s.dirtyGen++
	for p := range parents {
		s.poolSiblings(p, pending)
	}
	for cell, v := range pending {
		s.cells[cell].view = v
		res.changed = append(res.changed, v)
	}
	res.evidence, s.evidence = s.evidence, nil
	res.samples = samples
	if len(res.changed) > 0 || len(res.removed) > 0 {
		old := *s.snap.Load()
		next := make(map[uint64]*CellView, len(old)+len(res.changed))
		for k, v := range old {
			next[k] = v
		}
		for _, c := range res.removed {
			delete(next, c)
		}
		for _, v := range res.changed {
			next[v.Cell] = v
		}
		s.snap.Store(&next)
	}
	return res
}

// poolSiblings sets the sibling pools (CellView.Siblings) of parent's children in the shard: each child's
// pool is the sum of the other children's closed windows (cellState.closed), added in cell order so that the
// sums do not depend on the order of maps or ticks. pending holds the views to publish at this tick (a
// child's own windows changed); a child whose pool changed joins it. Pools leave out the open bucket, so a
// tick inside a bucket republishes no sibling (only a late event into a closed bucket does): every view after
// a tick is a function of the shard's state and the clock's bucket alone (replays equal the live run).
func (s *shard) poolSiblings(parent uint64, pending map[uint64]*CellView) {
	var kids [7]uint64
	n := 0
	for _, c := range geo.ChildrenFast(parent, s.w.cfg.Res, kids[:0]) {
		if s.cells[c] != nil {
			kids[n] = c
			n++
		}
	}
	for _, c := range kids[:n] {
		cs := s.cells[c]
		var pool [len(schema.Windows)]Pool
		for _, o := range kids[:n] {
			if o != c {
				for w := range pool {
					pool[w].addPool(&s.cells[o].closed[w])
				}
			}
		}
		v := pending[c]
		if v == nil {
			if cs.view == nil || cs.view.Siblings == pool {
				continue
			}
			cp := *cs.view
			v = &cp
		}
		v.Siblings = pool
		if cs.view == nil || *cs.view != *v {
			pending[c] = v
		} else {
			delete(pending, c)
		}
	}
}

// view computes the cell's view at now (Siblings left zero) and its closed windows: the windows' speed sums
// without the open bucket (the one holding now), what its siblings' pools add.
func (s *shard) view(cell uint64, cs *cellState, now int64) (*CellView, [len(schema.Windows)]Pool) {
	v := &CellView{Cell: cell, Res: s.w.cfg.Res, Lat: cs.lat, Lng: cs.lng, UpdatedAt: cs.lastTS, IncidentScore: cs.incident}
	var closed [len(schema.Windows)]Pool
	bucketMs := s.w.bucketMs
	open := evtime.Floor(now, bucketMs)
	for i, w := range schema.Windows {
		from := now - w.Milliseconds()
		for j := range cs.aggs {
			a := &cs.aggs[j]
			if a.start+bucketMs > from {
				v.W[i].Add(&a.WindowStats)
				if a.start < open {
					closed[i].add(&a.WindowStats)
				}
			}
		}
	}
	v.FreeFlowKmh, v.FreeFlowSource = s.freeFlowSource(cell, cs)
	return v, closed
}

// freeFlowSource is the cell's free-flow speed: the road network's, else learned, else the default.
func (s *shard) freeFlowSource(cell uint64, cs *cellState) (float64, uint8) {
	if s.w.cfg.FreeFlow != nil {
		if ff, ok := s.w.cfg.FreeFlow(cell); ok {
			return ff, FreeFlowNetwork
		}
	}
	if ff, ok := cs.learnedFreeFlow(s.w.cfg.MinFreeFlowSamples); ok {
		return max(ff, s.w.cfg.MinFreeFlowKmh), FreeFlowLearned
	}
	return s.w.cfg.DefaultFreeFlowKmh, FreeFlowDefault
}

func (s *shard) freeFlow(cell uint64, cs *cellState) float64 {
	ff, _ := s.freeFlowSource(cell, cs)
	return ff
}

// A loop reports the spot speed of the vehicles that passed it, which never sees a standing vehicle, and
// reads one point of its link. As a speed of the place (what a driver lives there) it is the space-mean
// speed at the loop, flow / density, density from occupancy over the effective vehicle length: at most the
// spot speed, zero under a standing queue. Measured on the SUMO corpus (docs/incidents.md), a loop is a poor
// proxy for its whole link: weighted like the vehicles it counted it made link speeds 1.6× worse than probes
// alone. So each reading counts as loopWeight of a probe fix per 30 s: it speaks where no probe does.
const (
	loopWeight   = 0.1
	loopLengthM  = 5.5 // effective length: a vehicle plus the loop
	loopMinOcc   = 0.005
	loopStandOcc = 0.5 // no vehicle passed and the loop covered this long: a standing queue
	// loopSpotShare: the space-mean estimate under this share of the spot speed means vehicles stood over
	// the loop (effective lengths of 4 to 8 m put a 5.5-m estimate at 1.4 to 0.69 times the true speed: the
	// spread of the vehicle mix, not a queue).
	loopSpotShare = 0.7
)

// loopSpeed is a loop reading's space-mean speed (km/h) from its spot speed (NaN: no vehicle passed), flow
// (veh/h) and occupancy (0..1). The density from occupancy assumes an effective vehicle length that varies
// from 4 to 8 m with the traffic's mix, so a space-mean estimate within loopSpotShare of the spot speed says
// only that traffic moved over the loop: the spot speed stands. Well under it, vehicles stood over the loop
// for part of the interval (a queue the spot speed never sees): the space-mean speed is taken.
func loopSpeed(spot, flowVph, occ float64) (float64, bool) {
	switch {
	case flowVph > 0 && occ >= loopMinOcc:
		sm := flowVph * loopLengthM / 1000 / occ
		if !math.IsNaN(spot) && sm >= loopSpotShare*spot {
			return spot, true
		}
		return sm, true
	case flowVph > 0 && !math.IsNaN(spot):
		return spot, true
	case occ >= loopStandOcc:
		return 0, true
	}
	return 0, false
}

// contribution is what one event adds to a bucket.
type contribution struct {
	kind          schema.Kind
	speed, weight float64 // weight 0: no speed observation
	detector      bool
	flow, occ     float64
}

func (c *contribution) addTo(a *agg) {
	a.Events++
	a.Kinds[c.kind]++
	if c.detector {
		a.FlowSum += c.flow
		a.OccSum += c.occ
		a.FlowN++
	}
	if c.weight > 0 {
		a.addSpeed(c.speed, c.weight)
	}
}
