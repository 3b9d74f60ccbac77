package engine

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/geo"
)

// Config configures an Engine. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Res                int           // base H3 resolution of cells
	ShardRes           int           // the coarse parent resolution whose cells are assigned to shards
	Shards             int           // shard goroutines
	Bucket             time.Duration // event-time bucket
	Lateness           time.Duration // allowed lateness: watermark = newest event time − Lateness
	Retention          time.Duration // how long raw events are kept in memory (0 after DefaultConfig: keep none)
	Tick               time.Duration // how often shards publish changed cells
	QueueLen           int           // capacity of each shard's input queue (messages)
	DefaultFreeFlowKmh float64       // free-flow speed of a cell with too few samples and no network
	MinFreeFlowKmh     float64       // floor of a learned free-flow speed
	MinFreeFlowSamples uint32        // speed samples a cell needs before its free-flow speed is learned
	Mem                memory.Allocator
	// Network, when set, is the road network: probe and transit points are map-matched to its links and
	// detectors snapped to the nearest one, and speeds also aggregate per link (Engine.Links).
	Network *geo.Network
	// FreeFlow, when set, gives a cell's free-flow speed from a road network; it is called from shard
	// goroutines and must be safe for concurrent use.
	FreeFlow func(cell uint64) (kmh float64, ok bool)
	// OnDelta, when set, receives each tick's changes, from the tick goroutine; it must not block for long
	// and may keep the delta (it is never modified after).
	OnDelta func(*Delta)
	// SnapshotParts, when set, adds files to each snapshot: it is called on the tick goroutine right after
	// the tick (and its OnDelta) that covers every applied batch, so what it returns matches the snapshot's
	// log sequence. Names are plain file names other than the engine's own. Engine.LoadedParts returns them
	// after LoadSnapshot. (Consumers of the deltas, such as engine/zones, keep their state this way.)
	SnapshotParts func() (map[string][]byte, error)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Res: geo.DefaultRes, ShardRes: 5, Shards: max(2, 2*runtime.GOMAXPROCS(0)),
		Bucket: 10 * time.Second, Lateness: 30 * time.Second, Retention: 15 * time.Minute,
		Tick: 500 * time.Millisecond, QueueLen: 64,
		DefaultFreeFlowKmh: 50, MinFreeFlowKmh: 20, MinFreeFlowSamples: 50,
		Mem: memory.DefaultAllocator,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Res == 0 {
		c.Res = d.Res
	}
	if c.ShardRes == 0 {
		c.ShardRes = d.ShardRes
	}
	if c.ShardRes > c.Res {
		c.ShardRes = c.Res
	}
	if c.Shards <= 0 {
		c.Shards = d.Shards
	}
	if c.Bucket <= 0 {
		c.Bucket = d.Bucket
	}
	if c.Lateness < 0 {
		c.Lateness = 0
	}
	if c.Tick <= 0 {
		c.Tick = d.Tick
	}
	if c.QueueLen <= 0 {
		c.QueueLen = d.QueueLen
	}
	if c.DefaultFreeFlowKmh <= 0 {
		c.DefaultFreeFlowKmh = d.DefaultFreeFlowKmh
	}
	if c.MinFreeFlowKmh <= 0 {
		c.MinFreeFlowKmh = d.MinFreeFlowKmh
	}
	if c.MinFreeFlowSamples == 0 {
		c.MinFreeFlowSamples = d.MinFreeFlowSamples
	}
	if c.Mem == nil {
		c.Mem = d.Mem
	}
}

// Delta is what one tick changed: views at the base resolution, cells that left every window, and incidents
// that changed (copies).
type Delta struct {
	Seq       uint64
	Watermark int64 // ms
	Now       int64 // newest event time, ms
	Changed   []*CellView
	Removed   []uint64
	Incidents []Incident
	Units     []Unit  // every unit, when any changed since the last delta (nil otherwise)
	Assets    []Event // every asset (Engine.Assets), when any changed since the last delta (nil otherwise)
}

// Status is the engine's progress.
type Status struct {
	Watermark  int64  // event time (ms) up to which every applied batch is reflected in published views
	Now        int64  // newest event time (ms) reflected
	AppliedSeq uint64 // log sequence up to which batches are reflected
	Events     uint64 // events reflected
	Late       uint64 // events that arrived behind the watermark
	TooLate    uint64 // late events older than the longest window: counted, kept in the log, not in windows
	Cells      int
	RawRows    int64
	DeltaSeq   uint64
	TickNanos  int64 // duration of the last tick
}

// Engine is the sharded event-time state of the city. Apply is called by one goroutine (the log consumer);
// Cells, Status and Flush by any goroutine.
type Engine struct {
	cfg      Config
	bucketMs int64
	shards   []*shard
	seed     maphash.Seed

	// Dispatcher state: owned by the goroutine that calls Apply.
	now, wm  int64
	lastSeq  uint64
	rowsBuf  [][]int32
	linksBuf [][]int32
	offsBuf  [][]float32
	matcher  *geo.Matcher
	linkIdx  map[string]int32
	// Road network topology for the traffic rule (read-only after New).
	down       [][]int32
	linkPoints []linkPoint
	units      map[string]Unit
	unitsDirty bool
	unitSnap   atomic.Pointer[[]Unit]

	assets          map[assetKey]Event
	assetCount      [numKinds]int
	assetsDirty     bool
	assetsPublished time.Time
	assetSnap       atomic.Pointer[[]Event]

	// Published by the dispatcher after a batch is handed to every shard.
	dispatched atomic.Pointer[mark]
	events     atomic.Uint64
	late       atomic.Uint64
	tooLate    atomic.Uint64
	kindEvents [numKinds]atomic.Uint64
	kindLate   [numKinds]atomic.Uint64

	status    atomic.Pointer[Status]
	incidents atomic.Pointer[[]Incident] // published by the tick goroutine
	// Owned by the tick goroutine.
	tracker         *tracker
	lastScores      map[uint64]float64
	anomalyRuns     map[uint64]int // the traffic rule's persistence counters by cell
	pendingEvidence []Evidence
	lastUnits       *[]Unit
	lastAssets      *[]Event
	sendScores      map[uint64]float64
	// Operator actions from the log, waiting for the next tick; results by action id.
	actMu     sync.Mutex
	actions   []Action
	actResult sync.Map // action id → error (nil error stored as errOK)

	loadedParts map[string][]byte // Config.SnapshotParts files of the loaded snapshot (set before any Apply)

	flushCh chan flushReq
	stopCh  chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup // shard goroutines
	tickWG  sync.WaitGroup // the tick goroutine
	applyMu sync.Mutex     // guards against concurrent Apply and Stop, never contended on the hot path
	closed  bool
}

type mark struct {
	seq     uint64
	now, wm int64
	events  uint64
}

// ErrStopped is returned by Apply after Stop.
var ErrStopped = errors.New("engine stopped")

// New returns a started engine.
func New(cfg Config) *Engine {
	cfg.fill()
	e := &Engine{
		cfg: cfg, bucketMs: cfg.Bucket.Milliseconds(), seed: maphash.MakeSeed(),
		now: minTime, wm: minTime,
		flushCh: make(chan flushReq), stopCh: make(chan struct{}),
		tracker: newTracker(),
	}
	e.tracker.lateness = cfg.Lateness.Milliseconds()
	e.anomalyRuns = map[uint64]int{}
	e.incidents.Store(&[]Incident{})
	e.units = map[string]Unit{}
	e.unitSnap.Store(&[]Unit{})
	e.assets = map[assetKey]Event{}
	e.assetSnap.Store(&[]Event{})
	e.rowsBuf = make([][]int32, cfg.Shards)
	e.linksBuf = make([][]int32, cfg.Shards)
	e.offsBuf = make([][]float32, cfg.Shards)
	if cfg.Network != nil {
		e.matcher = geo.NewMatcher(cfg.Network, geo.MatcherConfig{})
		e.linkIdx = make(map[string]int32, len(cfg.Network.Links()))
		for i, l := range cfg.Network.Links() {
			e.linkIdx[l.ID] = int32(i)
		}
		links := cfg.Network.Links()
		e.down = make([][]int32, len(links))
		e.linkPoints = make([]linkPoint, len(links))
		for i, l := range links {
			if n, ok := cfg.Network.Node(l.To); ok {
				for _, id := range n.Out {
					if j, ok := e.linkIdx[id]; ok && links[j].To != l.From { // not the U-turn back
						e.down[i] = append(e.down[i], j)
					}
				}
			}
			p, _ := l.PointAt(0.7 * l.GeomLengthM())
			c, _ := geo.CellOf(p.Lat, p.Lng, cfg.Res)
			ff := l.SpeedLimitKmh
			if ff <= 0 {
				ff = l.Class.DefaultKmh()
			}
			e.linkPoints[i] = linkPoint{lat: p.Lat, lng: p.Lng, cell: c, ff: ff, lengthM: l.GeomLengthM()}
		}
	}
	e.dispatched.Store(&mark{now: minTime, wm: minTime})
	e.status.Store(&Status{Watermark: minTime, Now: minTime})
	for i := 0; i < cfg.Shards; i++ {
		s := newShard(e)
		e.shards = append(e.shards, s)
		e.wg.Add(1)
		go func() { defer e.wg.Done(); s.run() }()
	}
	e.tickWG.Add(1)
	go func() { defer e.tickWG.Done(); e.tickLoop() }()
	return e
}

// minTime marks "no event yet".
const minTime = -1 << 62

// Config returns the engine's configuration after defaults.
func (e *Engine) Config() Config { return e.cfg }

// Apply hands the rows of rec (which has Schema, cells at the base resolution) to their shards. seq is the
// log sequence of the batch; batches must come in log order. The engine retains rec for as long as it needs
// it; the caller keeps its own reference and releases it as usual. Apply blocks while a shard's queue is full.
func (e *Engine) Apply(seq uint64, rec arrow.Record) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if e.closed {
		return ErrStopped
	}
	if err := CheckSchema(rec.Schema()); err != nil {
		return err
	}
	n := int(rec.NumRows())
	ts := rec.Column(ColTS).(*array.Timestamp)
	kind := rec.Column(ColKind).(*array.Uint8)
	cells := rec.Column(ColCell).(*array.Uint64)
	for i := range e.rowsBuf {
		e.rowsBuf[i] = e.rowsBuf[i][:0]
		e.linksBuf[i] = e.linksBuf[i][:0]
		e.offsBuf[i] = e.offsBuf[i][:0]
	}
	var ids *array.String
	var lat, lng *array.Float64
	var heading *array.Float32
	if e.matcher != nil {
		ids = rec.Column(ColID).(*array.String)
		lat, lng = rec.Column(ColLat).(*array.Float64), rec.Column(ColLng).(*array.Float64)
		heading = rec.Column(ColHeading).(*array.Float32)
	}
	// The watermark used for lateness is the one before this batch, so the order of rows inside a batch does
	// not matter; then the batch moves the clock.
	wmBefore := e.wm
	horizon := e.now - Windows[len(Windows)-1].Milliseconds() - e.bucketMs
	var late, tooLate uint64
	newest := e.now
	for i := 0; i < n; i++ {
		t := int64(ts.Value(i))
		k := Kind(kind.Value(i))
		if k >= numKinds {
			k = KindUnknown
		}
		if t < wmBefore {
			late++
			e.kindLate[k].Add(1)
			if t < horizon {
				tooLate++
			}
		}
		e.kindEvents[k].Add(1)
		if t > newest {
			newest = t
		}
		sh := e.shardOf(cells.Value(i))
		e.rowsBuf[sh] = append(e.rowsBuf[sh], int32(i))
		if e.matcher != nil {
			li, off := int32(-1), float32(0)
			if t >= horizon {
				h := math.NaN()
				if heading.IsValid(i) {
					h = float64(heading.Value(i))
				}
				li, off = e.matchRow(k, ids.Value(i), t, lat.Value(i), lng.Value(i), h)
			}
			e.linksBuf[sh] = append(e.linksBuf[sh], li)
			e.offsBuf[sh] = append(e.offsBuf[sh], off)
		}
	}
	e.trackUnits(rec, kind)
	e.trackAssets(rec, kind)
	e.publishRegistries(false)
	e.now = newest
	if wm := newest - e.cfg.Lateness.Milliseconds(); wm > e.wm {
		e.wm = wm
	}
	for i, rows := range e.rowsBuf {
		if len(rows) == 0 {
			continue
		}
		rec.Retain()
		msg := shardMsg{rec: rec, rows: append([]int32(nil), rows...), horizon: horizon, now: e.now}
		if e.matcher != nil {
			msg.links = append([]int32(nil), e.linksBuf[i]...)
			msg.offs = append([]float32(nil), e.offsBuf[i]...)
		}
		e.shards[i].in <- msg
	}
	if e.matcher != nil {
		e.matcher.Evict(time.UnixMilli(e.now))
	}
	e.lastSeq = seq
	e.late.Add(late)
	e.tooLate.Add(tooLate)
	total := e.events.Add(uint64(n))
	e.dispatched.Store(&mark{seq: seq, now: e.now, wm: e.wm, events: total})
	return nil
}

func (e *Engine) shardOf(cell uint64) int {
	if len(e.shards) == 1 {
		return 0
	}
	p := geo.ParentFast(cell, e.cfg.ShardRes)
	return int(maphash.Comparable(e.seed, p) % uint64(len(e.shards)))
}

// Flush runs a tick now and returns when its changes are published: after Flush, Cells and Status reflect
// every batch Apply returned from before the call.
func (e *Engine) Flush() {
	e.inTick(nil)
}

// flushReq asks the tick loop for a tick now, then to run after (if set) on its goroutine.
type flushReq struct {
	done  chan struct{}
	after func()
}

func (e *Engine) tickLoop() {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	var seq uint64
	for {
		var req flushReq
		select {
		case <-e.stopCh:
			return
		case <-t.C:
		case req = <-e.flushCh:
		}
		seq = e.tick(seq)
		if req.after != nil {
			req.after()
		}
		if req.done != nil {
			close(req.done)
		}
	}
}

func (e *Engine) tick(seq uint64) uint64 {
	start := time.Now()
	m := e.dispatched.Load()
	if m.now == minTime {
		return seq
	}
	reply := make(chan tickResult, len(e.shards))
	if !e.askShards(m, reply) {
		return seq
	}
	d := &Delta{Watermark: m.wm, Now: m.now}
	evidence := e.pendingEvidence
	e.pendingEvidence = nil
	var samples []trafficSample
	for range e.shards {
		select {
		case r := <-reply:
			d.Changed = append(d.Changed, r.changed...)
			d.Removed = append(d.Removed, r.removed...)
			evidence = append(evidence, r.evidence...)
			samples = append(samples, r.samples...)
		case <-e.stopCh:
			return seq
		}
	}
	evidence = append(evidence, e.judgeSamples(samples)...)
	d.Incidents = e.track(m.wm, evidence)
	if e.sendScores != nil {
		// The incident scores changed: a second round gives them to the cells now, so the views published by
		// this tick (and a Flush) already carry them. Evidence from batches that slipped in between waits for
		// the next tick.
		if !e.askShards(m, reply) {
			return seq
		}
		changed := map[uint64]int{}
		for i, v := range d.Changed {
			changed[v.Cell] = i
		}
		for range e.shards {
			select {
			case r := <-reply:
				for _, v := range r.changed {
					if i, ok := changed[v.Cell]; ok {
						d.Changed[i] = v
					} else {
						d.Changed = append(d.Changed, v)
					}
				}
				d.Removed = append(d.Removed, r.removed...)
				e.pendingEvidence = append(e.pendingEvidence, r.evidence...)
				e.pendingEvidence = append(e.pendingEvidence, e.judgeSamples(r.samples)...)
			case <-e.stopCh:
				return seq
			}
		}
	}
	// Units and assets changed by the last batches of a burst are published here (TryLock: never wait for
	// Apply, and never deadlock with WriteSnapshot, which holds the lock while it waits for this goroutine).
	if e.applyMu.TryLock() {
		e.publishRegistries(true)
		e.applyMu.Unlock()
	}
	if u := e.unitSnap.Load(); u != e.lastUnits {
		e.lastUnits = u
		d.Units = *u
	}
	if a := e.assetSnap.Load(); a != e.lastAssets {
		e.lastAssets = a
		d.Assets = *a
	}
	if len(d.Changed) > 0 || len(d.Removed) > 0 || len(d.Incidents) > 0 || d.Units != nil || d.Assets != nil {
		seq++
		d.Seq = seq
	}
	cells := 0
	var raw int64
	for _, s := range e.shards {
		cells += len(*s.snap.Load())
		raw += s.rawRows.Load()
	}
	e.status.Store(&Status{
		Watermark: m.wm, Now: m.now, AppliedSeq: m.seq, Events: m.events,
		Late: e.late.Load(), TooLate: e.tooLate.Load(), Cells: cells, RawRows: raw, DeltaSeq: seq,
		TickNanos: time.Since(start).Nanoseconds(),
	})
	if d.Seq != 0 && e.cfg.OnDelta != nil {
		e.cfg.OnDelta(d)
	}
	return seq
}

// Status returns the progress as of the last tick.
func (e *Engine) Status() Status { return *e.status.Load() }

// KindCounts returns, per kind, the events applied and the late ones among them.
func (e *Engine) KindCounts() (events, late map[Kind]uint64) {
	events, late = map[Kind]uint64{}, map[Kind]uint64{}
	for _, k := range Kinds {
		events[k] = e.kindEvents[k].Load()
		late[k] = e.kindLate[k].Load()
	}
	return events, late
}

// QueueDepths returns the number of messages waiting in each shard's queue.
func (e *Engine) QueueDepths() []int {
	out := make([]int, len(e.shards))
	for i, s := range e.shards {
		out[i] = len(s.in)
	}
	return out
}

// Cells returns the published views in bbox (by cell centre) at resolution res (the base resolution or a
// coarser one), in no particular order. Views are shared and must not be modified.
func (e *Engine) Cells(res int, bbox geo.BBox) ([]*CellView, error) {
	if res < 0 || res > e.cfg.Res {
		return nil, fmt.Errorf("cannot roll up to resolution %d: must be 0..%d (the base resolution)", res, e.cfg.Res)
	}
	var base []*CellView
	for _, s := range e.shards {
		for _, v := range *s.snap.Load() {
			if bbox.Contains(v.Lat, v.Lng) {
				base = append(base, v)
			}
		}
	}
	if res == e.cfg.Res {
		return base, nil
	}
	return Rollup(base, res), nil
}

// All returns every published base view.
func (e *Engine) All() []*CellView {
	var out []*CellView
	for _, s := range e.shards {
		for _, v := range *s.snap.Load() {
			out = append(out, v)
		}
	}
	return out
}

// Stop stops the shards and the tick loop and releases every record the engine holds. Safe to call twice.
func (e *Engine) Stop() {
	e.stopped.Do(func() {
		e.applyMu.Lock()
		e.closed = true
		e.applyMu.Unlock()
		close(e.stopCh)
		e.tickWG.Wait() // the tick loop sends to shard queues: it must be gone before they close
		for _, s := range e.shards {
			close(s.in)
		}
		e.wg.Wait()
	})
}

// askShards sends every shard a tick request (with the incident scores waiting to be delivered) that
// answers on reply; false when the engine stops first.
func (e *Engine) askShards(m *mark, reply chan tickResult) bool {
	for _, s := range e.shards {
		select {
		case s.in <- shardMsg{tick: &tickReq{now: m.now, wm: m.wm, scores: e.sendScores, reply: reply}}:
		case <-e.stopCh:
			return false
		}
	}
	e.sendScores = nil
	return true
}

// track runs the incident tracker for one tick (evidence at once, time-driven changes up to the watermark
// wm) and returns the incidents that changed.
func (e *Engine) track(wm int64, evidence []Evidence) []Incident {
	t := e.tracker
	before := map[string]Incident{}
	for _, in := range t.order {
		if in.Status != "" {
			before[in.ID] = Incident{Status: in.Status, Score: in.Score, EvidenceCount: in.EvidenceCount,
				Severity: in.Severity, Type: in.Type, Lat: in.Lat, Lng: in.Lng}
		}
	}
	e.actMu.Lock()
	actions := e.actions
	e.actions = nil
	e.actMu.Unlock()
	sortEvidence(evidence)
	var changedArea bool
	late := e.cfg.Lateness.Milliseconds()
	for _, ev := range evidence {
		// Time-driven changes up to the evidence's own time less the allowed lateness come first: by then no
		// on-time evidence can change them, so the outcome is the same however evidence is grouped in ticks.
		if t.advancedTo < ev.TS-late {
			changedArea = t.advance(ev.TS-late) || changedArea
		}
		t.add(ev)
	}
	for _, a := range actions {
		err := t.apply(a)
		if err == nil {
			err = errOK
		}
		e.actResult.Store(a.ID, err)
	}
	if t.advancedTo < wm {
		changedArea = t.advance(wm) || changedArea
	}
	scores := t.scores()
	if !mapsEqual(scores, e.lastScores) {
		e.sendScores, e.lastScores = scores, scores
	}
	all := t.snapshot()
	var changed []Incident
	for _, in := range all {
		b, ok := before[in.ID]
		if !ok || b.Status != in.Status || b.Score != in.Score || b.EvidenceCount != in.EvidenceCount ||
			b.Severity != in.Severity || b.Type != in.Type || b.Lat != in.Lat || b.Lng != in.Lng || changedArea {
			changed = append(changed, in)
		}
	}
	if len(changed) > 0 || len(all) != len(*e.incidents.Load()) {
		e.incidents.Store(&all)
	}
	return changed
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
func (e *Engine) Incidents() []Incident { return *e.incidents.Load() }

// errOK marks an action that succeeded in actResult.
var errOK = errors.New("ok")

// ApplyAction queues an operator action read from the log; the next tick carries it out. Called by the
// log consumer in log order with Apply.
func (e *Engine) ApplyAction(a Action) {
	e.actMu.Lock()
	e.actions = append(e.actions, a)
	e.actMu.Unlock()
}

// ActionResult returns the outcome of the action with id, and false while it has not been carried out.
func (e *Engine) ActionResult(id string) (error, bool) {
	v, ok := e.actResult.Load(id)
	if !ok {
		return nil, false
	}
	if v.(error) == errOK {
		return nil, true
	}
	return v.(error), true
}

// judgeSamples runs the traffic rule bucket end by bucket end (tick goroutine).
func (e *Engine) judgeSamples(samples []trafficSample) []Evidence {
	if len(samples) == 0 {
		return nil
	}
	sort.Slice(samples, func(i, j int) bool {
		if samples[i].t != samples[j].t {
			return samples[i].t < samples[j].t
		}
		if samples[i].link != samples[j].link {
			return samples[i].link < samples[j].link
		}
		return samples[i].cell < samples[j].cell
	})
	// A link that crosses shard boundaries is measured by each shard that holds some of its data: one
	// sample of the link per bucket end, the sum of its parts.
	merged := samples[:0]
	for _, x := range samples {
		if n := len(merged); n > 0 && x.link >= 0 && merged[n-1].t == x.t && merged[n-1].link == x.link {
			merged[n-1].now1.add(&x.now1)
			merged[n-1].early.add(&x.early)
			merged[n-1].now30.add(&x.now30)
			merged[n-1].stopHead = max(merged[n-1].stopHead, x.stopHead)
			continue
		}
		merged = append(merged, x)
	}
	samples = merged
	var out []Evidence
	for i := 0; i < len(samples); {
		j := i
		for j < len(samples) && samples[j].t == samples[i].t {
			j++
		}
		if e.cfg.Network != nil {
			out = append(out, judgeLinks(samples[i:j], e.anomalyRuns, e.down, e.linkPoints)...)
		} else {
			out = append(out, judgeTraffic(samples[i:j], e.anomalyRuns)...)
		}
		i = j
	}
	return out
}
