package cluster

import (
	"errors"
	"fmt"
	"log"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/engine/queue"
	"citybrain/geo"
)

// Merged is the state of every partition as their engines publish it, merged into one view of the city for
// an api node (it implements api.View). Partitions own disjoint cells and incidents, so cells and incidents
// are a union; a road link's shares add up; a unit is the newest report among partitions. It never computes
// a score.
type Merged struct {
	cfg    engine.Config
	nc     *nats.Conn
	n      int
	logger *log.Logger
	sub    *nats.Subscription
	asm    assembler

	mu    sync.RWMutex
	parts []*partState

	// deliver serialises OnDelta calls (frames and full states arrive on different goroutines).
	deliver  sync.Mutex
	onDelta  func(*engine.Delta)
	deltaSeq atomic.Uint64

	linkCells engine.LinkCells

	resMu   sync.Mutex
	results map[string]string
	resFIFO []string

	frames, resyncs, badFrames atomic.Uint64
	stop                       chan struct{}
	wg                         sync.WaitGroup
}

type partState struct {
	node       string
	epoch      uint64
	seq        uint64
	synced     bool
	everSynced bool // synced once: from then on a resync pauses the partition, it does not make the node unready
	requesting bool
	buffered   []*Frame
	lastFrame  time.Time

	cells     map[uint64]*engine.CellView
	incidents map[string]engine.Incident
	units     []engine.Unit
	assets    []engine.Event
	links     []LinkPart
	status    engine.Status
	events    map[engine.Kind]uint64
	late      map[engine.Kind]uint64
}

// NewMerged subscribes to every partition's frames. cfg is the engines' configuration (resolution, network);
// onDelta receives each applied change as an engine delta (the hub), one call at a time.
func NewMerged(nc *nats.Conn, partitions int, cfg engine.Config, onDelta func(*engine.Delta), logger *log.Logger) (*Merged, error) {
	d := engine.DefaultConfig()
	if cfg.Res == 0 {
		cfg.Res = d.Res
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = d.Lateness
	}
	m := &Merged{cfg: cfg, nc: nc, n: partitions, logger: logger, onDelta: onDelta, results: map[string]string{},
		stop: make(chan struct{})}
	for range partitions {
		m.parts = append(m.parts, &partState{cells: map[uint64]*engine.CellView{}, incidents: map[string]engine.Incident{}})
	}
	var err error
	if m.sub, err = nc.Subscribe(OutPrefix+".*", m.onMsg); err != nil {
		return nil, fmt.Errorf("cannot subscribe to partition frames: %w", err)
	}
	m.sub.SetPendingLimits(-1, 512<<20)
	m.wg.Add(1)
	go m.resyncLoop()
	return m, nil
}

// SetOnDelta sets the receiver of deltas (the hub, made after the view).
func (m *Merged) SetOnDelta(fn func(*engine.Delta)) {
	m.deliver.Lock()
	m.onDelta = fn
	m.deliver.Unlock()
}

// Close stops the subscription.
func (m *Merged) Close() {
	close(m.stop)
	m.sub.Unsubscribe()
	m.wg.Wait()
}

func (m *Merged) onMsg(msg *nats.Msg) {
	data, err := m.asm.add(msg)
	if err != nil {
		m.badFrames.Add(1)
		return
	}
	if data == nil {
		return
	}
	f, err := DecodeFrame(data)
	if err != nil || f.Partition < 0 || f.Partition >= m.n {
		m.badFrames.Add(1)
		return
	}
	m.frames.Add(1)
	m.applyFrame(f)
}

// applyFrame applies a delta frame, or buffers it while the partition resynchronises.
func (m *Merged) applyFrame(f *Frame) {
	m.mu.Lock()
	p := m.parts[f.Partition]
	p.lastFrame = time.Now()
	if p.node != f.Node || p.epoch != f.Epoch || (p.synced && f.Seq != p.seq+1) {
		// A new owner, or a frame lost: the partition's state is fetched whole from its owner.
		p.node, p.epoch, p.synced = f.Node, f.Epoch, false
		p.buffered = nil
	}
	if !p.synced {
		m.noteResults(f.Results) // facts whatever the state: a full state does not carry them
		if len(p.buffered) < 4096 {
			p.buffered = append(p.buffered, f)
		}
		m.mu.Unlock()
		return
	}
	d := m.applyLocked(p, f)
	m.mu.Unlock()
	m.emit(d)
}

// applyLocked applies a delta frame to p and returns the delta to pass on (mu held).
func (m *Merged) applyLocked(p *partState, f *Frame) *engine.Delta {
	p.seq = f.Seq
	p.status, p.events, p.late = f.Status, f.Events, f.Late
	for _, v := range f.Changed {
		p.cells[v.Cell] = v
	}
	for _, c := range f.Removed {
		delete(p.cells, c)
	}
	for _, in := range f.Incidents {
		p.incidents[in.ID] = in
	}
	if f.HasVisible {
		for id := range p.incidents {
			if _, ok := f.Visible[id]; !ok {
				delete(p.incidents, id)
			}
		}
	}
	if f.Units != nil {
		p.units = f.Units
	}
	if f.Assets != nil {
		p.assets = f.Assets
	}
	if f.Links != nil {
		p.links = f.Links
	}
	m.noteResults(f.Results)
	if len(f.Changed) == 0 && len(f.Removed) == 0 && len(f.Incidents) == 0 && f.Units == nil && f.Assets == nil {
		return nil
	}
	d := &engine.Delta{Changed: f.Changed, Removed: f.Removed, Incidents: f.Incidents}
	if f.Units != nil {
		d.Units = m.unitsLocked()
	}
	if f.Assets != nil {
		d.Assets = m.assetsLocked()
	}
	return d
}

// applyFull replaces partition k's state with a full frame, then applies the frames buffered after it.
func (m *Merged) applyFull(f *Frame) {
	m.mu.Lock()
	p := m.parts[f.Partition]
	if p.node != f.Node || p.epoch != f.Epoch {
		// The owner changed again while we asked: the next frame starts over.
		p.requesting = false
		m.mu.Unlock()
		return
	}
	old := p.cells
	p.cells = make(map[uint64]*engine.CellView, len(f.Changed))
	d := &engine.Delta{Changed: f.Changed}
	for _, v := range f.Changed {
		p.cells[v.Cell] = v
	}
	for c := range old {
		if _, ok := p.cells[c]; !ok {
			d.Removed = append(d.Removed, c)
		}
	}
	p.incidents = make(map[string]engine.Incident, len(f.Incidents))
	for _, in := range f.Incidents {
		p.incidents[in.ID] = in
	}
	d.Incidents = f.Incidents
	p.units, p.assets, p.links = f.Units, f.Assets, f.Links
	p.status, p.events, p.late = f.Status, f.Events, f.Late
	p.seq, p.synced, p.requesting, p.everSynced = f.Seq, true, false, true
	d.Units, d.Assets = m.unitsLocked(), m.assetsLocked()
	deltas := []*engine.Delta{d}
	for _, b := range p.buffered {
		if b.Seq <= f.Seq {
			continue
		}
		if b.Seq != p.seq+1 {
			p.synced = false // a gap: ask again
			break
		}
		if bd := m.applyLocked(p, b); bd != nil {
			deltas = append(deltas, bd)
		}
	}
	p.buffered = nil
	m.mu.Unlock()
	for _, d := range deltas {
		m.emit(d)
	}
	m.resyncs.Add(1)
}

func (m *Merged) emit(d *engine.Delta) {
	if d == nil {
		return
	}
	m.deliver.Lock()
	defer m.deliver.Unlock()
	st := m.Status()
	d.Seq, d.Watermark, d.Now = m.deltaSeq.Add(1), st.Watermark, st.Now
	if m.onDelta != nil {
		m.onDelta(d)
	}
}

// resyncLoop asks the owners of partitions that are not in sync for their full state.
func (m *Merged) resyncLoop() {
	defer m.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		for k := range m.n {
			m.mu.Lock()
			p := m.parts[k]
			ask := !p.synced && !p.requesting && p.node != ""
			if ask {
				p.requesting = true
			}
			m.mu.Unlock()
			if !ask {
				continue
			}
			f, err := m.requestFull(k)
			if err != nil {
				m.mu.Lock()
				p.requesting = false
				m.mu.Unlock()
				continue
			}
			m.applyFull(f)
		}
	}
}

// requestFull asks partition k's owner for its whole state.
func (m *Merged) requestFull(k int) (*Frame, error) {
	inbox := m.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := m.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := m.nc.PublishRequest(StateSubject(k), inbox, nil); err != nil {
		return nil, err
	}
	var asm assembler
	deadline := time.After(10 * time.Second)
	for {
		select {
		case msg := <-ch:
			data, err := asm.add(msg)
			if err != nil {
				return nil, err
			}
			if data == nil {
				continue
			}
			f, err := DecodeFrame(data)
			if err != nil {
				return nil, err
			}
			if f.Partition != k || !f.Full {
				return nil, fmt.Errorf("partition %d: answer is not its full state", k)
			}
			return f, nil
		case <-deadline:
			return nil, errors.New("no answer")
		case <-m.stop:
			return nil, errors.New("stopped")
		}
	}
}

func (m *Merged) noteResults(r map[string]string) {
	if len(r) == 0 {
		return
	}
	m.resMu.Lock()
	defer m.resMu.Unlock()
	for id, e := range r {
		if _, ok := m.results[id]; !ok {
			m.resFIFO = append(m.resFIFO, id)
		}
		m.results[id] = e
	}
	for len(m.resFIFO) > 4096 {
		delete(m.results, m.resFIFO[0])
		m.resFIFO = m.resFIFO[1:]
	}
}

// PartitionSync is what the api node knows of one partition.
type PartitionSync struct {
	Partition int       `json:"partition"`
	Owner     string    `json:"owner"`
	Synced    bool      `json:"synced"`
	Ready     bool      `json:"ready"` // synced at least once since the node started
	Stale     bool      `json:"stale"` // no frame for 5 s: the owner is gone (the view pauses on its last state)
	LastFrame time.Time `json:"last_frame"`
	Cells     int       `json:"cells"`
}

// Sync lists the partitions' synchronisation.
func (m *Merged) Sync() []PartitionSync {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]PartitionSync, m.n)
	for k, p := range m.parts {
		out[k] = PartitionSync{Partition: k, Owner: p.node, Synced: p.synced, Ready: p.everSynced, LastFrame: p.lastFrame, Cells: len(p.cells),
			Stale: !p.lastFrame.IsZero() && time.Since(p.lastFrame) > 5*time.Second}
	}
	return out
}

// Counters returns frames applied, full-state resyncs and frames refused.
func (m *Merged) Counters() (frames, resyncs, bad uint64) {
	return m.frames.Load(), m.resyncs.Load(), m.badFrames.Load()
}

// The api.View methods.

// Config returns the engines' configuration.
func (m *Merged) Config() engine.Config { return m.cfg }

// Status sums the partitions' progress: events and cells add; the watermark is the lowest of the partitions
// that have one (the merged view is complete up to it), Now the newest.
func (m *Merged) Status() engine.Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var st engine.Status
	for _, p := range m.parts {
		s := p.status
		st.Events += s.Events
		st.Late += s.Late
		st.TooLate += s.TooLate
		st.Cells += len(p.cells)
		st.RawRows += s.RawRows
		st.AppliedSeq = max(st.AppliedSeq, s.AppliedSeq)
		st.Now = max(st.Now, s.Now)
		if s.Watermark != 0 && (st.Watermark == 0 || s.Watermark < st.Watermark) {
			st.Watermark = s.Watermark
		}
		st.TickNanos = max(st.TickNanos, s.TickNanos)
	}
	st.DeltaSeq = m.deltaSeq.Load()
	return st
}

// KindCounts sums the partitions' counts.
func (m *Merged) KindCounts() (events, late map[engine.Kind]uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	events, late = map[engine.Kind]uint64{}, map[engine.Kind]uint64{}
	for _, p := range m.parts {
		for k, v := range p.events {
			events[k] += v
		}
		for k, v := range p.late {
			late[k] += v
		}
	}
	return events, late
}

// Queues: an api node has no engine queues.
func (m *Merged) Queues() []queue.Stat { return nil }

// All returns every cell of every partition.
func (m *Merged) All() []*engine.CellView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*engine.CellView
	for _, p := range m.parts {
		for _, v := range p.cells {
			out = append(out, v)
		}
	}
	return out
}

// Cells is engine.Engine.Cells over the union.
func (m *Merged) Cells(res int, bbox geo.BBox) ([]*engine.CellView, error) {
	if res < 0 || res > m.cfg.Res {
		return nil, fmt.Errorf("cannot roll up to resolution %d: must be 0..%d (the base resolution)", res, m.cfg.Res)
	}
	var base []*engine.CellView
	for _, v := range m.All() {
		if bbox.Contains(v.Lat, v.Lng) {
			base = append(base, v)
		}
	}
	if res == m.cfg.Res {
		return base, nil
	}
	return engine.Rollup(base, res), nil
}

// Links adds up the partitions' shares of each link.
func (m *Merged) Links(bbox geo.BBox) []engine.LinkStats {
	if m.cfg.Network == nil {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	by := map[string]*engine.LinkStats{}
	var order []string
	for _, p := range m.parts {
		for _, lp := range p.links {
			ls := by[lp.ID]
			if ls == nil {
				l, ok := m.cfg.Network.Link(lp.ID)
				if !ok || !touches(l, bbox) {
					continue
				}
				ls = &engine.LinkStats{Link: l}
				by[lp.ID] = ls
				order = append(order, lp.ID)
			}
			for i := range lp.W {
				ls.W[i].Add(&lp.W[i])
			}
			ls.UpdatedAt = max(ls.UpdatedAt, lp.UpdatedAt)
		}
	}
	out := make([]engine.LinkStats, 0, len(order))
	for _, id := range order {
		out = append(out, *by[id])
	}
	cells := m.linkCells.Of(m.cfg.Network, m.cfg.Res)
	engine.AttachCells(out, func(i int) uint64 { return cells[out[i].Link.Index()] }, func(c uint64) *engine.CellView {
		for _, p := range m.parts {
			if v := p.cells[c]; v != nil {
				return v
			}
		}
		return nil
	})
	return out
}

func touches(l *geo.Link, b geo.BBox) bool {
	for _, p := range l.Geometry {
		if b.Contains(p.Lat, p.Lng) {
			return true
		}
	}
	return false
}

// Incidents returns every partition's visible incidents, oldest first.
func (m *Merged) Incidents() []engine.Incident {
	m.mu.RLock()
	var out []engine.Incident
	for _, p := range m.parts {
		for _, in := range p.incidents {
			out = append(out, in)
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DetectedAt != out[j].DetectedAt {
			return out[i].DetectedAt < out[j].DetectedAt
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Units returns every unit once: the newest report among partitions (a unit moving across a boundary is
// reported by both until the old partition forgets it).
func (m *Merged) Units() []engine.Unit {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.unitsLocked()
}

func (m *Merged) unitsLocked() []engine.Unit {
	by := map[string]engine.Unit{}
	for _, p := range m.parts {
		for _, u := range p.units {
			if cur, ok := by[u.ID]; !ok || u.TS > cur.TS {
				by[u.ID] = u
			}
		}
	}
	out := make([]engine.Unit, 0, len(by))
	for _, id := range slices.Sorted(maps.Keys(by)) {
		out = append(out, by[id])
	}
	return out
}

// Assets returns every partition's assets, one per kind and id (the newest).
func (m *Merged) Assets() []engine.Event {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.assetsLocked()
}

func (m *Merged) assetsLocked() []engine.Event {
	type key struct {
		k  engine.Kind
		id string
	}
	by := map[key]int{}
	var out []engine.Event
	for _, p := range m.parts {
		for _, a := range p.assets {
			kk := key{a.Kind, a.ID}
			if i, ok := by[kk]; ok {
				if a.TS > out[i].TS {
					out[i] = a
				}
				continue
			}
			by[kk] = len(out)
			out = append(out, a)
		}
	}
	return out
}

// ActionResult returns the outcome of an operator action reported by the partition that applied it.
func (m *Merged) ActionResult(id string) (error, bool) {
	m.resMu.Lock()
	defer m.resMu.Unlock()
	e, ok := m.results[id]
	if !ok {
		return nil, false
	}
	if e == "" {
		return nil, true
	}
	return errors.New(e), true
}
