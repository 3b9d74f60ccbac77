// Package window is the engine's window room: shards that own the cells and road links of the city, their
// event-time buckets and sliding windows, raw retention, aggregation into cell and link views, and the
// measurements the traffic rule judges. A Set of shards is fed by one goroutine (the engine's dispatcher)
// and ticked by another (the engine's tick goroutine); readers use the published views without locks.
package window

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/detect"
	"citybrain/engine/evtime"
	"citybrain/engine/incident"
	"citybrain/engine/queue"
	"citybrain/engine/schema"
	"citybrain/geo"
)

// Config is what the shards need of the engine's configuration (see engine.Config for each field).
type Config struct {
	Res                int
	ShardRes           int
	Shards             int
	Bucket             time.Duration
	Retention          time.Duration
	QueueLen           int
	DefaultFreeFlowKmh float64
	MinFreeFlowKmh     float64
	MinFreeFlowSamples uint32
	Mem                memory.Allocator
	// RawMem holds sealed raw chunks (nil: Mem). The product leaves it nil: its raw events live on the Go
	// heap (system.Start says why).
	RawMem       memory.Allocator
	Network      *geo.Network
	MatchWorkers int // goroutines map-matching a batch, vehicles split between them by id (0: 1)
	FreeFlow     func(cell uint64) (kmh float64, ok bool)
	// ObserveRows, when set, is given every dispatched batch with the link each row was matched to (-1: none)
	// and its position along it (a fraction of the link), on the dispatcher goroutine; it must not keep rec.
	ObserveRows func(rec arrow.Record, links []int32, offs []float32)
}

// MinTime marks "no event yet".
const MinTime = -1 << 62

// Set is the city's shards. Dispatch is called by one goroutine (the dispatcher); Tick, Snapshot and
// Restore by the tick goroutine; Cells, All, Links, RawRecords, Stats and Queues by any goroutine.
type Set struct {
	cfg      Config
	bucketMs int64
	shards   []*shard
	seed     maphash.Seed
	// shardMemo remembers the shards of the cells Dispatch met lately (dispatchShard).
	shardMemo [1 << shardMemoBits]struct {
		cell  uint64
		shard int32
	}
	stop <-chan struct{} // the engine's: closed when it stops, ends every wait on a shard

	// Dispatcher state: owned by the goroutine that calls Dispatch.
	rowsBuf  [][]int32
	linksBuf [][]int32
	offsBuf  [][]float32
	matchers []*matchWorker // map matching, by vehicle; nil without a road network
	linkIdx  map[string]int32
	topo     *incident.Topology // read-only; nil without a road network
	rowLink  []int32            // per row of the batch being dispatched: matched link (-1 none)
	rowOff   []float32          // and the position along it
	// sampledEnd is the newest bucket end the shards were told to measure (no road network).
	sampledEnd int64
	// traj follows every matched vehicle and link in event time for the blockage detector (dispatcher);
	// the features it measures at each bucket end wait in feats for the next tick.
	traj   *detect.Tracker
	featMu sync.Mutex
	feats  []detect.Features

	linkCells LinkCells

	retentionMs atomic.Int64 // raw retention in force: cfg.Retention, or less when the memory budget needs it

	done chan struct{} // closed when every shard goroutine has returned
}

// New starts cfg.Shards shard goroutines. topo is the traffic rule's view of cfg.Network (nil without one);
// stop ends every wait on a full shard queue. Close stops the shards.
func New(cfg Config, topo *incident.Topology, stop <-chan struct{}) *Set {
	if cfg.RawMem == nil {
		cfg.RawMem = cfg.Mem
	}
	s := &Set{cfg: cfg, bucketMs: cfg.Bucket.Milliseconds(), seed: maphash.MakeSeed(), stop: stop, topo: topo,
		done: make(chan struct{})}
	s.retentionMs.Store(cfg.Retention.Milliseconds())
	s.rowsBuf = make([][]int32, cfg.Shards)
	s.linksBuf = make([][]int32, cfg.Shards)
	s.offsBuf = make([][]float32, cfg.Shards)
	if cfg.Network != nil {
		s.linkIdx = make(map[string]int32, len(cfg.Network.Links()))
		for i, l := range cfg.Network.Links() {
			s.linkIdx[l.ID] = int32(i)
		}
		// A vehicle is always matched by the same worker (its track lives there); together the workers keep
		// the matcher's default bound on vehicles.
		s.traj = detect.NewTracker(detect.LinksOf(cfg.Network), s.bucketMs)
		workers := max(1, min(cfg.MatchWorkers, 64))
		mcfg := geo.MatcherConfig{MaxVehicles: 1_000_000 / workers}
		for i := 0; i < workers; i++ {
			s.matchers = append(s.matchers, &matchWorker{set: s, m: geo.NewMatcher(cfg.Network, mcfg)})
		}
	}
	exited := make(chan struct{}, cfg.Shards)
	for i := 0; i < cfg.Shards; i++ {
		sh := newShard(s, i)
		s.shards = append(s.shards, sh)
		go func() { defer func() { exited <- struct{}{} }(); sh.run() }()
	}
	go func() {
		for range s.shards {
			<-exited
		}
		close(s.done)
	}()
	return s
}

// Config returns the configuration the set was made with.
func (s *Set) Config() Config { return s.cfg }

// Dispatch hands the rows of rec (which has the engine schema, cells at the base resolution) to their
// shards, map-matching probes, transit vehicles and detectors on a road network (on the match workers, each
// vehicle on its own). Rows older than horizon are too late for any window (they are counted, not matched);
// seq is the batch's log sequence, now the engine's newest event time after this batch, wmBefore and wm its
// watermark before and after it (the blockage detector and the shards measure bucket ends up to wm; what the
// batch makes known is tagged with seq and wmBefore, so the incident room can take it in log order). It blocks while a shard's queue is full, and returns false if the engine stopped
// meanwhile. The shards retain rec for as long as they need it.
func (s *Set) Dispatch(rec arrow.Record, seq uint64, horizon, now, wmBefore, wm int64) bool {
	n := int(rec.NumRows())
	cells := rec.Column(schema.ColCell).(*array.Uint64)
	for i := range s.rowsBuf {
		s.rowsBuf[i] = s.rowsBuf[i][:0]
		s.linksBuf[i] = s.linksBuf[i][:0]
		s.offsBuf[i] = s.offsBuf[i][:0]
	}
	matched := s.matchers != nil
	if matched {
		s.match(rec, horizon, now)
	}
	for i := 0; i < n; i++ {
		sh := s.dispatchShard(cells.Value(i))
		s.rowsBuf[sh] = append(s.rowsBuf[sh], int32(i))
		if matched {
			s.linksBuf[sh] = append(s.linksBuf[sh], s.rowLink[i])
			s.offsBuf[sh] = append(s.offsBuf[sh], s.rowOff[i])
		}
	}
	if s.cfg.ObserveRows != nil && matched {
		s.cfg.ObserveRows(rec, s.rowLink, s.rowOff)
	}
	if matched {
		s.track(rec, seq, wmBefore, wm)
	}
	// Without a road network the shards measure their cells for the traffic rule at each bucket end the
	// watermark passes: every shard hears of it right after this batch (a shard with no rows in it too).
	var sampleTo int64
	if s.cfg.Network == nil {
		if end := evtime.Floor(wm, s.bucketMs); end > s.sampledEnd {
			s.sampledEnd, sampleTo = end, wm
		}
	}
	ok := true
	for i, rows := range s.rowsBuf {
		if len(rows) == 0 || !ok {
			if ok && sampleTo != 0 && !s.shards[i].in.Push(shardMsg{sampleTo: sampleTo, seq: seq, wmBefore: wmBefore}, s.stop) {
				ok = false
			}
			continue
		}
		rec.Retain()
		msg := shardMsg{rec: rec, rows: append([]int32(nil), rows...), horizon: horizon, now: now, sampleTo: sampleTo,
			seq: seq, wmBefore: wmBefore}
		if matched {
			msg.links = append([]int32(nil), s.linksBuf[i]...)
			msg.offs = append([]float32(nil), s.offsBuf[i]...)
		}
		if !s.shards[i].in.Push(msg, s.stop) {
			rec.Release()
			ok = false
		}
	}
	return ok
}

// track hands the matched rows of rec to the blockage detector in row order and has it measure every
// bucket end the watermark wm has passed; the features wait for the next tick.
func (s *Set) track(rec arrow.Record, seq uint64, wmBefore, wm int64) {
	ts := rec.Column(schema.ColTS).(*array.Timestamp)
	kind := rec.Column(schema.ColKind).(*array.Uint8)
	ids := rec.Column(schema.ColID).(*array.String)
	speed, flow := rec.Column(schema.ColSpeed).(*array.Float32), rec.Column(schema.ColFlow).(*array.Float32)
	occ, interval := rec.Column(schema.ColOccupancy).(*array.Float32), rec.Column(schema.ColInterval).(*array.Float32)
	for i, li := range s.rowLink {
		if li < 0 {
			continue
		}
		switch schema.Kind(kind.Value(i)) {
		case schema.KindProbe, schema.KindTransit:
			s.traj.AddFix(ids.Value(i), int64(ts.Value(i)), li, s.rowOff[i], f32(speed, i))
		case schema.KindDetector:
			s.traj.AddLoop(int64(ts.Value(i)), li, f32(flow, i), f32(occ, i), f32(speed, i), f32(interval, i))
		}
	}
	s.traj.Advance(wm, func(_ int64, f []detect.Features) {
		for i := range f {
			f[i].Seq, f[i].WmBefore = seq, wmBefore
		}
		s.featMu.Lock()
		s.feats = append(s.feats, f...)
		s.featMu.Unlock()
	})
}

// f32 is row i of a float32 column, NaN when null.
func f32(c *array.Float32, i int) float64 {
	if c.IsNull(i) {
		return math.NaN()
	}
	return float64(c.Value(i))
}

// matchWorker map-matches the rows of the vehicles hashed to it. Owned by the dispatcher, which runs the
// workers of a batch in parallel and waits for them.
type matchWorker struct {
	set  *Set
	m    *geo.Matcher
	rows []int32
}

// match fills rowLink and rowOff for every row of rec: probes and transit vehicles through their vehicle's
// worker's online matcher (position, heading, the vehicle's previous match), detectors to the nearest link
// within 30 m; rows too late for any window get no link.
func (s *Set) match(rec arrow.Record, horizon, now int64) {
	n := int(rec.NumRows())
	ts := rec.Column(schema.ColTS).(*array.Timestamp)
	kind := rec.Column(schema.ColKind).(*array.Uint8)
	ids := rec.Column(schema.ColID).(*array.String)
	if cap(s.rowLink) < n {
		s.rowLink, s.rowOff = make([]int32, n), make([]float32, n)
	}
	s.rowLink, s.rowOff = s.rowLink[:n], s.rowOff[:n]
	for _, w := range s.matchers {
		w.rows = w.rows[:0]
	}
	nw := uint64(len(s.matchers))
	for i := 0; i < n; i++ {
		s.rowLink[i], s.rowOff[i] = -1, 0
		switch schema.Kind(kind.Value(i)) {
		case schema.KindProbe, schema.KindTransit, schema.KindDetector:
			if int64(ts.Value(i)) < horizon {
				continue
			}
			w := s.matchers[0]
			if nw > 1 {
				w = s.matchers[maphash.String(s.seed, ids.Value(i))%nw]
			}
			w.rows = append(w.rows, int32(i))
		}
	}
	if nw == 1 {
		s.matchers[0].run(rec, now)
		return
	}
	var wg sync.WaitGroup
	for _, w := range s.matchers {
		if len(w.rows) == 0 {
			w.m.Evict(time.UnixMilli(now))
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(rec, now) }()
	}
	wg.Wait()
}

// run matches the worker's rows of rec into the set's row arrays (each row is written by one worker).
func (w *matchWorker) run(rec arrow.Record, now int64) {
	s := w.set
	ts := rec.Column(schema.ColTS).(*array.Timestamp)
	kind := rec.Column(schema.ColKind).(*array.Uint8)
	ids := rec.Column(schema.ColID).(*array.String)
	lat, lng := rec.Column(schema.ColLat).(*array.Float64), rec.Column(schema.ColLng).(*array.Float64)
	heading := rec.Column(schema.ColHeading).(*array.Float32)
	for _, r32 := range w.rows {
		i := int(r32)
		h := math.NaN()
		if heading.IsValid(i) {
			h = float64(heading.Value(i))
		}
		s.rowLink[i], s.rowOff[i] = w.matchRow(schema.Kind(kind.Value(i)), ids.Value(i), int64(ts.Value(i)),
			lat.Value(i), lng.Value(i), h)
	}
	w.m.Evict(time.UnixMilli(now))
}

// dispatchShard is shardOf through a small memo of the cells dispatched lately (a batch's rows fall in a few
// hundred or thousand cells, and a cell's shard never changes): Dispatch's goroutine only.
func (s *Set) dispatchShard(cell uint64) int {
	m := &s.shardMemo[(cell*0x9E3779B97F4A7C15)>>(64-shardMemoBits)]
	if m.cell != cell || m.cell == 0 {
		m.cell, m.shard = cell, int32(s.shardOf(cell))
	}
	return int(m.shard)
}

// shardMemoBits sizes Set.shardMemo (2^bits entries, 16 bytes each).
const shardMemoBits = 12

func (s *Set) shardOf(cell uint64) int {
	if len(s.shards) == 1 {
		return 0
	}
	p := geo.ParentFast(cell, s.cfg.ShardRes)
	return int(maphash.Comparable(s.seed, p) % uint64(len(s.shards)))
}

// TickResult is what one tick of every shard changed and measured.
type TickResult struct {
	Changed  []*CellView
	Removed  []uint64
	Evidence []incident.Evidence
	Samples  []incident.TrafficSample
	// Features the blockage detector measured since the last tick (road networks only).
	Features []detect.Features
}

// Tick has every shard seal and release raw buckets, drop old aggregates and publish the views that changed,
// with the incident scores by cell when they changed (nil: unchanged). Each shard answers after the work
// queued before the tick; false if the engine stopped first. Tick goroutine.
func (s *Set) Tick(now, wm int64, scores map[uint64]float64) (TickResult, bool) {
	reply := make(chan tickResult, len(s.shards))
	for _, sh := range s.shards {
		if !sh.in.Push(shardMsg{tick: &tickReq{now: now, wm: wm, scores: scores, reply: reply}}, s.stop) {
			return TickResult{}, false
		}
	}
	var res TickResult
	s.featMu.Lock()
	res.Features, s.feats = s.feats, nil
	s.featMu.Unlock()
	for range s.shards {
		select {
		case r := <-reply:
			res.Changed = append(res.Changed, r.changed...)
			res.Removed = append(res.Removed, r.removed...)
			res.Evidence = append(res.Evidence, r.evidence...)
			res.Samples = append(res.Samples, r.samples...)
		case <-s.stop:
			return TickResult{}, false
		}
	}
	return res, true
}

// Stats are the shards' gauges: cells with data, raw events retained and their bytes (as of the last tick).
func (s *Set) Stats() (cells int, raw, rawBytes int64) {
	for _, sh := range s.shards {
		cells += len(*sh.snap.Load())
		raw += sh.rawRows.Load()
		rawBytes += sh.rawBytesGauge.Load()
	}
	return cells, raw, rawBytes
}

// RawTableBytes is the part of the raw retention's bytes (Stats) held by the shards' id and cell tables, as
// of each shard's last tick.
func (s *Set) RawTableBytes() (n int64) {
	for _, sh := range s.shards {
		n += sh.rawTableGauge.Load()
	}
	return n
}

// Retention is the raw retention in force.
func (s *Set) Retention() time.Duration {
	return time.Duration(s.retentionMs.Load()) * time.Millisecond
}

// SetRetention changes the raw retention in force (at most the configured one); the shards release what
// lies beyond it at their next tick.
func (s *Set) SetRetention(d time.Duration) {
	s.retentionMs.Store(min(d, s.cfg.Retention).Milliseconds())
}

func (s *Set) retention() time.Duration { return s.Retention() }

// Queues returns the figures of every shard's input queue.
func (s *Set) Queues() []queue.Stat {
	out := make([]queue.Stat, len(s.shards))
	for i, sh := range s.shards {
		out[i] = sh.in.Stat()
	}
	return out
}

// Cells returns the published views in bbox (by cell centre) at resolution res (the base resolution or a
// coarser one), in no particular order. Views are shared and must not be modified.
func (s *Set) Cells(res int, bbox geo.BBox) ([]*CellView, error) {
	if res < 0 || res > s.cfg.Res {
		return nil, fmt.Errorf("cannot roll up to resolution %d: must be 0..%d (the base resolution)", res, s.cfg.Res)
	}
	var base []*CellView
	for _, sh := range s.shards {
		for _, v := range *sh.snap.Load() {
			if bbox.Contains(v.Lat, v.Lng) {
				base = append(base, v)
			}
		}
	}
	if res == s.cfg.Res {
		return base, nil
	}
	return Rollup(base, res), nil
}

// All returns every published base view.
func (s *Set) All() []*CellView {
	var out []*CellView
	for _, sh := range s.shards {
		for _, v := range *sh.snap.Load() {
			out = append(out, v)
		}
	}
	return out
}

// Close closes the shards' queues and waits for the shards, which release every record they hold. The
// dispatcher and the tick goroutine must be done with the set.
func (s *Set) Close() {
	for _, sh := range s.shards {
		sh.in.Close()
	}
	<-s.done
}

// DetectorState encodes the blockage detector's state for a snapshot (nil without a road network).
// Dispatcher goroutine, between batches.
func (s *Set) DetectorState() ([]byte, error) {
	if s.traj == nil {
		return nil, nil
	}
	return s.traj.MarshalState()
}

// RestoreDetector loads the detector's state from a snapshot, before any Dispatch.
func (s *Set) RestoreDetector(data []byte) error {
	if s.traj == nil {
		return nil
	}
	return s.traj.RestoreState(data)
}
