// Package engine is CityBrain's event-time engine: per H3 cell windows of events from the log, congestion
// scores, incidents and the registry of units and assets. It is split into rooms: engine/schema (the event
// schema every room shares), engine/window (shards, buckets, windows, raw retention, aggregation),
// engine/incident (evidence, the traffic rule's judgement, fusion, lifecycle), engine/registry (units and
// assets) and engine/queue (the bounded hand-off between goroutines); Engine only coordinates them and the
// tick. It knows nothing about HTTP, NATS or JSON.
package engine

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/detect"
	"citybrain/engine/incident"
	"citybrain/engine/queue"
	"citybrain/engine/registry"
	"citybrain/engine/schema"
	"citybrain/engine/window"
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
	RawMem             memory.Allocator // sealed raw chunks (nil: Mem); see window.Config.RawMem
	// Network, when set, is the road network: probe and transit points are map-matched to its links and
	// detectors snapped to the nearest one, and speeds also aggregate per link (Engine.Links).
	Network *geo.Network
	// MatchWorkers is how many goroutines map-match a batch on a road network, each vehicle always on the same
	// one (0: GOMAXPROCS).
	MatchWorkers int
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
	// DetectorModel, when set, replaces the blockage detector's model shipped with the engine
	// (engine/detect/model.json): the evaluation judges each city with a model trained without it.
	DetectorModel *detect.Model
	// MaxClockJump is how far ahead of the event clock an event may be and still move it on its own
	// (clock.go); negative: no bound. Default DefaultMaxClockJump.
	MaxClockJump time.Duration
	// ObserveRows, when set with a Network, is given every applied batch with the link each row was matched
	// to (-1: none) and its position along it (a fraction of the link's length), on the goroutine that calls
	// Apply, before the shards see it; it must not keep rec or the slices. (The signal estimator, engine/
	// queues, is fed this way.)
	ObserveRows func(rec arrow.Record, links []int32, offs []float32)
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
	if c.MaxClockJump == 0 {
		c.MaxClockJump = DefaultMaxClockJump
	}
	if c.MatchWorkers <= 0 {
		c.MatchWorkers = runtime.GOMAXPROCS(0)
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
	// Reset starts a new timeline (a replay's backward seek restarts its engine): clients drop the incidents,
	// units and assets they hold; what is true at the new position follows.
	Reset bool
}

// Status is the engine's progress.
type Status struct {
	Watermark  int64  // event time (ms) up to which every applied batch is reflected in published views
	Now        int64  // newest event time (ms) reflected
	AppliedSeq uint64 // log sequence up to which batches are reflected
	Events     uint64 // events reflected
	Late       uint64 // events that arrived behind the watermark
	TooLate    uint64 // late events older than the longest window: counted, kept in the log, not in windows
	Ahead      uint64 // events too far ahead of the clock on too few sources' word (clock.go): in the log, not in windows
	Cells      int
	RawRows    int64         // raw events retained
	RawBytes   int64         // their memory, dictionaries included
	RawTables  int64         // the dictionaries' part of RawBytes (the id and cell tables)
	Retention  time.Duration // raw retention in force (less than Config.Retention when the memory budget needs it)
	DeltaSeq   uint64
	TickNanos  int64 // duration of the last tick
}

// Engine coordinates the rooms of the engine: it keeps the event-time clock (newest event, watermark,
// lateness), hands each log batch to the window room (shards) and the registry (units, assets), and runs the
// tick, which collects what the shards changed and measured, has the incident room judge and fuse it, hands
// the incident scores back to the cells, and publishes the status and a delta. Apply is called by one
// goroutine (the log consumer); Cells, Status and Flush by any goroutine.
type Engine struct {
	cfg      Config
	bucketMs int64

	win *window.Set        // the window room
	reg *registry.Registry // units and assets (dispatcher)
	inc *incident.Tracker  // the incident room (tick goroutine, actions from any)
	jdg *incident.Judge    // the traffic rule (tick goroutine)

	// Dispatcher state: owned by the goroutine that calls Apply.
	now, wm int64
	lastSeq uint64
	guard   clockGuard

	// Published by the dispatcher after a batch is handed to every shard.
	dispatched atomic.Pointer[mark]
	events     atomic.Uint64
	late       atomic.Uint64
	tooLate    atomic.Uint64
	ahead      atomic.Uint64
	kindEvents [schema.NumKinds]atomic.Uint64
	kindLate   [schema.NumKinds]atomic.Uint64

	status atomic.Pointer[Status]
	// Owned by the tick goroutine.
	// What batches after the tick's mark made known (dispatched while the tick ran): evidence, and
	// measurements at bucket ends their watermark passed. It waits for the tick whose mark covers its
	// batch, so that every bucket end is judged once with all its measurements and evidence is fused in log
	// order, whichever wall-clock tick collects it.
	pendingEvidence []incident.Evidence
	pendingSamples  []incident.TrafficSample
	pendingFeatures []detect.Features
	lastUnits       *[]Unit
	lastAssets      *[]Event

	loadedParts map[string][]byte // Config.SnapshotParts files of the loaded snapshot (set before any Apply)

	flushCh chan flushReq
	stopCh  chan struct{}
	stopped sync.Once
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
var ErrStopped = window.ErrStopped

// New returns a started engine.
func New(cfg Config) *Engine {
	cfg.fill()
	e := &Engine{
		cfg: cfg, bucketMs: cfg.Bucket.Milliseconds(),
		now: minTime, wm: minTime,
		flushCh: make(chan flushReq), stopCh: make(chan struct{}),
		reg: registry.New(), inc: incident.NewTracker(cfg.Lateness.Milliseconds()),
		guard: clockGuard{maxJump: cfg.MaxClockJump.Milliseconds(), ahead: map[string]int64{}},
	}
	var topo *incident.Topology
	if cfg.Network != nil {
		topo = incident.NewTopology(cfg.Network, cfg.Res)
	}
	e.inc.SetTopology(topo)
	jdg, err := incident.NewJudge(topo, cfg.DetectorModel)
	if err != nil {
		panic(fmt.Sprintf("cannot start the engine: %v", err)) // the model shipped with the code: a broken build
	}
	e.jdg = jdg
	e.win = window.New(window.Config{
		Res: cfg.Res, ShardRes: cfg.ShardRes, Shards: cfg.Shards, Bucket: cfg.Bucket, Retention: cfg.Retention,
		QueueLen: cfg.QueueLen, DefaultFreeFlowKmh: cfg.DefaultFreeFlowKmh, MinFreeFlowKmh: cfg.MinFreeFlowKmh,
		MinFreeFlowSamples: cfg.MinFreeFlowSamples, Mem: cfg.Mem, RawMem: cfg.RawMem, Network: cfg.Network,
		MatchWorkers: cfg.MatchWorkers, FreeFlow: cfg.FreeFlow, ObserveRows: cfg.ObserveRows,
	}, topo, e.stopCh)
	e.dispatched.Store(&mark{now: minTime, wm: minTime})
	e.status.Store(&Status{Watermark: minTime, Now: minTime})
	e.tickWG.Add(1)
	go func() { defer e.tickWG.Done(); e.tickLoop() }()
	return e
}

// minTime marks "no event yet".
const minTime = window.MinTime

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
	if keep := e.guard.judge(rec, e.now); keep != nil {
		e.ahead.Add(uint64(int(rec.NumRows()) - len(keep)))
		rec = e.takeRows(rec, keep)
		defer rec.Release()
	}
	n := int(rec.NumRows())
	ts := rec.Column(ColTS).(*array.Timestamp)
	kind := rec.Column(ColKind).(*array.Uint8)
	// The watermark used for lateness is the one before this batch, so the order of rows inside a batch does
	// not matter; then the batch moves the clock.
	wmBefore := e.wm
	horizon := e.now - Windows[len(Windows)-1].Milliseconds() - e.bucketMs
	var late, tooLate uint64
	newest := e.now
	for i := 0; i < n; i++ {
		t := int64(ts.Value(i))
		k := Kind(kind.Value(i))
		if k >= schema.NumKinds {
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
	}
	e.reg.Track(rec)
	e.reg.Publish(false)
	e.now = newest
	if wm := newest - e.cfg.Lateness.Milliseconds(); wm > e.wm {
		e.wm = wm
	}
	e.win.Dispatch(rec, seq, horizon, e.now, wmBefore, e.wm)
	e.lastSeq = seq
	e.late.Add(late)
	e.tooLate.Add(tooLate)
	total := e.events.Add(uint64(n))
	e.dispatched.Store(&mark{seq: seq, now: e.now, wm: e.wm, events: total})
	return nil
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

// inTick runs fn on the tick goroutine right after a tick, so fn sees a tracker and shards that have
// consumed every batch Apply returned from before the call.
func (e *Engine) inTick(fn func()) error {
	done := make(chan struct{})
	req := flushReq{done: done, after: fn}
	select {
	case e.flushCh <- req:
		<-done
		return nil
	case <-e.stopCh:
		return ErrStopped
	}
}

func (e *Engine) tick(seq uint64) uint64 {
	start := time.Now()
	m := e.dispatched.Load()
	if m.now == minTime {
		return seq
	}
	r, ok := e.win.Tick(m.now, m.wm, nil)
	if !ok {
		return seq
	}
	d := &Delta{Watermark: m.wm, Now: m.now, Changed: r.Changed, Removed: r.Removed}
	// What the batches up to the mark made known is judged and fused now, in log order; what later batches
	// (dispatched while the tick ran) made known waits for the next tick.
	e.pendingEvidence = append(e.pendingEvidence, r.Evidence...)
	e.pendingSamples = append(e.pendingSamples, r.Samples...)
	e.pendingFeatures = append(e.pendingFeatures, r.Features...)
	evidence := e.readyUpTo(m.seq)
	var scores map[uint64]float64
	d.Incidents, scores = e.inc.Track(m.wm, m.seq, evidence)
	if scores != nil {
		// The incident scores changed: a second round gives them to the cells now, so the views published by
		// this tick (and a Flush) already carry them. Evidence from batches that slipped in between waits for
		// the next tick.
		r2, ok := e.win.Tick(m.now, m.wm, scores)
		if !ok {
			return seq
		}
		changed := map[uint64]int{}
		for i, v := range d.Changed {
			changed[v.Cell] = i
		}
		for _, v := range r2.Changed {
			if i, ok := changed[v.Cell]; ok {
				d.Changed[i] = v
			} else {
				d.Changed = append(d.Changed, v)
			}
		}
		d.Removed = append(d.Removed, r2.Removed...)
		e.pendingEvidence = append(e.pendingEvidence, r2.Evidence...)
		e.pendingSamples = append(e.pendingSamples, r2.Samples...)
		e.pendingFeatures = append(e.pendingFeatures, r2.Features...)
	}
	// Units and assets changed by the last batches of a burst are published here (TryLock: never wait for
	// Apply, and never deadlock with WriteSnapshot, which holds the lock while it waits for this goroutine).
	if e.applyMu.TryLock() {
		e.reg.Publish(true)
		e.applyMu.Unlock()
	}
	if u := e.reg.UnitList(); u != e.lastUnits {
		e.lastUnits = u
		d.Units = *u
	}
	if a := e.reg.AssetList(); a != e.lastAssets {
		e.lastAssets = a
		d.Assets = *a
	}
	if len(d.Changed) > 0 || len(d.Removed) > 0 || len(d.Incidents) > 0 || d.Units != nil || d.Assets != nil {
		seq++
		d.Seq = seq
	}
	cells, raw, rawBytes := e.win.Stats()
	e.status.Store(&Status{
		Watermark: m.wm, Now: m.now, AppliedSeq: m.seq, Events: m.events,
		Late: e.late.Load(), TooLate: e.tooLate.Load(), Ahead: e.ahead.Load(), Cells: cells, RawRows: raw, RawBytes: rawBytes,
		RawTables: e.win.RawTableBytes(),
		Retention: e.win.Retention(), DeltaSeq: seq,
		TickNanos: time.Since(start).Nanoseconds(),
	})
	if d.Seq != 0 && e.cfg.OnDelta != nil {
		e.cfg.OnDelta(d)
	}
	return seq
}

// readyUpTo returns the evidence of batches up to seq with the traffic judge's judgements of the bucket ends
// those batches passed, and keeps the rest pending.
func (e *Engine) readyUpTo(seq uint64) []incident.Evidence {
	var samples []incident.TrafficSample
	samples, e.pendingSamples = splitBySeq(e.pendingSamples, seq, func(x *incident.TrafficSample) uint64 { return x.Seq() })
	var feats []detect.Features
	feats, e.pendingFeatures = splitBySeq(e.pendingFeatures, seq, func(f *detect.Features) uint64 { return f.Seq })
	var evidence []incident.Evidence
	evidence, e.pendingEvidence = splitBySeq(e.pendingEvidence, seq, func(ev *incident.Evidence) uint64 { return ev.Seq })
	return append(evidence, e.jdg.Judge(samples, feats)...)
}

// splitBySeq returns the items of batches up to seq (a new slice) and the rest (in place of items).
func splitBySeq[T any](items []T, seq uint64, seqOf func(*T) uint64) (ready, rest []T) {
	rest = items[:0]
	for i := range items {
		if seqOf(&items[i]) <= seq {
			ready = append(ready, items[i])
		} else {
			rest = append(rest, items[i])
		}
	}
	clear(items[len(rest):])
	return ready, rest
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

// Queues returns the figures of the engine's queues (one per shard).
func (e *Engine) Queues() []queue.Stat { return e.win.Queues() }

// Cells returns the published views in bbox (by cell centre) at resolution res (the base resolution or a
// coarser one), in no particular order. Views are shared and must not be modified.
func (e *Engine) Cells(res int, bbox geo.BBox) ([]*CellView, error) { return e.win.Cells(res, bbox) }

// SetRetention changes the raw retention in force (at most Config.Retention); the shards release what lies
// beyond it at their next tick. The memory governor shortens it when the budget needs it.
func (e *Engine) SetRetention(d time.Duration) { e.win.SetRetention(d) }

// Retention is the raw retention in force now (Status has it as of the last tick).
func (e *Engine) Retention() time.Duration { return e.win.Retention() }

// All returns every published base view.
func (e *Engine) All() []*CellView { return e.win.All() }

// Links returns the state of every link with data whose geometry touches bbox.
func (e *Engine) Links(bbox geo.BBox) []LinkStats { return e.win.Links(bbox) }

// RawRecords returns copies of the sealed raw records of every shard whose bucket starts in [from, to),
// retained for the caller, who must Release each. Open buckets (not yet behind the watermark) are not
// included.
func (e *Engine) RawRecords(from, to int64) []arrow.Record { return e.win.RawRecords(from, to) }

// Units returns the latest state of every unit, by id (a shared slice: do not modify).
func (e *Engine) Units() []Unit { return e.reg.Units() }

// Assets returns the latest event of every transit vehicle, camera, detector and sensor, by kind then id
// (a shared slice: do not modify). It lags the log by at most a second.
func (e *Engine) Assets() []Event { return e.reg.Assets() }

// Incidents returns the visible incidents as of the last tick (copies, oldest first).
func (e *Engine) Incidents() []Incident { return e.inc.Incidents() }

// ApplyAction hands the incident room an operator action read from the log at sequence seq. Called by the
// log consumer in log order with Apply. The action is carried out at its place in the log: after the
// evidence of the batches before it and the time-driven changes up to the watermark they set, before the
// evidence of later batches, however wall-clock ticks group them (a replay decides what the live run did).
func (e *Engine) ApplyAction(seq uint64, a Action) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if e.closed {
		return
	}
	e.inc.Queue(seq, e.wm, a)
	if seq > e.lastSeq {
		// The next tick's mark covers the action even when no batch follows it.
		e.lastSeq = seq
		m := *e.dispatched.Load()
		m.seq = seq
		e.dispatched.Store(&m)
	}
}

// ActionResult returns the outcome of the action with id, and false while it has not been carried out.
func (e *Engine) ActionResult(id string) (error, bool) { return e.inc.Result(id) }

// Stop stops the shards and the tick loop and releases every record the engine holds. Safe to call twice.
func (e *Engine) Stop() {
	e.stopped.Do(func() {
		e.applyMu.Lock()
		e.closed = true
		e.applyMu.Unlock()
		close(e.stopCh)
		e.tickWG.Wait() // the tick loop sends to shard queues: it must be gone before they close
		e.win.Close()
	})
}
