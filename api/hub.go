package api

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
	"citybrain/engine/queue"
)

// HubConfig bounds what the hub holds per client.
type HubConfig struct {
	QueueLen     int           // messages queued per client before its state is coalesced
	WriteTimeout time.Duration // a write that takes longer cuts the client off
	PingInterval time.Duration // server pings; a client that does not answer within 2 intervals is dropped
	MaxCoalesce  int           // coalesces within CoalesceSpan after which a client is cut off as too slow
	CoalesceSpan time.Duration
	History      int // deltas remembered for resuming clients
}

// DefaultHubConfig returns the documented defaults.
func DefaultHubConfig() HubConfig {
	return HubConfig{QueueLen: 32, WriteTimeout: 5 * time.Second, PingInterval: 15 * time.Second,
		MaxCoalesce: 3, CoalesceSpan: 30 * time.Second, History: 600}
}

// Close codes the hub uses (4000-4999 are the application's).
const (
	CloseTooSlow    = 4008
	CloseBadRequest = 4000
	CloseShutdown   = websocket.CloseGoingAway
)

// Hub fans out engine deltas to websocket clients by viewport, off the engine's tick: OnDelta leaves a delta in
// a mailbox (a delta not yet taken is merged with the next: latest state wins), and the hub's goroutine applies
// it to the cell state, encodes each distinct subscription's frame once (in parallel, each cell's JSON once
// for all of them) and, as soon as it is encoded, writes it to every client of that subscription whose
// socket takes it at once, or queues it for the client's writer (hub_write.go). The hub holds the latest
// published state of every cell, a bounded history of deltas for resuming clients, and the clients.
//
// Locks: mu (the clients and their subscriptions) is taken before smu (the cell state), never after; a
// client's outbox lock (its queue and delivery state) after both, never before.
type Hub struct {
	cfg      HubConfig
	baseRes  int
	instance string // a fresh id per hub: a client seeing another one knows seq numbers restarted

	mu      sync.Mutex // guards clients, every client's subscription and queue state, eng and closed
	eng     View
	clients map[*client]struct{}
	groups  map[string]*subGroup // the subscribed clients by subscription key, kept as they (un)subscribe
	closed  bool

	smu       sync.RWMutex // guards the cell state below: written by the hub goroutine, read by encoders
	state     map[uint64]*engine.CellView
	parents   map[int]map[uint64]map[uint64]struct{} // res → parent → children, for subscribed coarse resolutions
	history   []histEntry                            // ring, oldest first
	seq       uint64                                 // the hub's own delta sequence (contiguous for clients)
	watermark int64
	now       int64

	mailbox *queue.Mailbox[*pending] // engine tick → hub goroutine; full: merged
	done    chan struct{}            // closed when the hub goroutine has returned

	clientsGauge atomic.Int64
	sent         atomic.Uint64
	direct       atomic.Uint64 // messages the hub wrote straight to a client's socket (no writer goroutine)
	pingsAlone   atomic.Uint64 // pings written on their own (not in front of a frame)
	batched      atomic.Uint64 // messages written to a client together with the one before (it was behind)
	dropped      atomic.Uint64 // clients cut off as too slow
	coalesced    atomic.Uint64
	deltas       atomic.Uint64
	fanoutNanos  atomic.Int64 // the hub's time on the last delta: state, encoding, queueing
	lagNanos     atomic.Int64 // from OnDelta to the last delta's frames queued
}

type histEntry struct {
	seq     uint64
	changed []uint64
	removed []uint64
}

// NewHub returns a hub; feed it with OnDelta.
func NewHub(cfg HubConfig, eng View) *Hub {
	d := DefaultHubConfig()
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = d.QueueLen
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = d.WriteTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = d.PingInterval
	}
	if cfg.MaxCoalesce <= 0 {
		cfg.MaxCoalesce = d.MaxCoalesce
	}
	if cfg.CoalesceSpan <= 0 {
		cfg.CoalesceSpan = d.CoalesceSpan
	}
	if cfg.History <= 0 {
		cfg.History = d.History
	}
	h := &Hub{cfg: cfg, baseRes: eng.Config().Res, eng: eng, instance: newID()[:12], state: map[uint64]*engine.CellView{},
		parents: map[int]map[uint64]map[uint64]struct{}{}, clients: map[*client]struct{}{}, groups: map[string]*subGroup{},
		done: make(chan struct{})}
	h.mailbox = queue.NewMailbox("hub-mailbox", mergeDeltas)
	// Start from what the engine already published (a hub created after a restart's catch-up).
	for _, v := range eng.All() {
		h.state[v.Cell] = v
	}
	go h.run()
	return h
}

// subscription is a client's viewport. Clients with equal subscriptions share one encoding of each delta.
type subscription struct {
	CellQuery
	Layers map[string]bool
	k      string // key(), set by parseSub before the subscription is shared
}

// key identifies equal subscriptions (computed once: the hub groups every client by it on every delta).
func (s *subscription) key() string {
	if s.k == "" {
		s.k = s.makeKey()
	}
	return s.k
}

func (s *subscription) makeKey() string {
	layers := make([]string, 0, len(s.Layers))
	for l, on := range s.Layers {
		if on {
			layers = append(layers, l)
		}
	}
	slices.Sort(layers)
	return fmt.Sprintf("%g,%g,%g,%g/%d/%d/%t/%s", s.BBox.MinLng, s.BBox.MinLat, s.BBox.MaxLng, s.BBox.MaxLat, s.Res,
		s.Window, s.Geometry, strings.Join(layers, ","))
}

// subGroup is the clients of one distinct subscription (Hub.mu): a client joins when it subscribes and
// leaves when it subscribes again or goes, so a delta's fan-out reads the groups instead of grouping every
// client again.
type subGroup struct {
	sub     *subscription
	clients []*client // in no order; client.gi is each one's index
}

// join sets c's subscription and moves c to sub's group (mu held).
func (h *Hub) join(c *client, sub *subscription) {
	h.leave(c)
	c.sub = sub
	g := h.groups[sub.key()]
	if g == nil {
		g = &subGroup{sub: sub}
		h.groups[sub.key()] = g
	}
	c.group, c.gi = g, len(g.clients)
	g.clients = append(g.clients, c)
}

// leave takes c out of its group, if any (mu held).
func (h *Hub) leave(c *client) {
	g := c.group
	if g == nil {
		return
	}
	last := len(g.clients) - 1
	g.clients[c.gi] = g.clients[last]
	g.clients[c.gi].gi = c.gi
	g.clients[last] = nil
	g.clients = g.clients[:last]
	if last == 0 {
		delete(h.groups, g.sub.key())
	}
	c.group, c.gi = nil, 0
}

// OnDelta hands an engine delta to the hub's goroutine and returns at once. Called from the engine's tick
// goroutine; the delta is not modified.
func (h *Hub) OnDelta(d *engine.Delta) {
	h.mailbox.Put(&pending{d: d, at: time.Now()})
}

// run is the hub's goroutine: it fans out each delta the mailbox holds until Close.
func (h *Hub) run() {
	defer close(h.done)
	for {
		p, ok := h.mailbox.Take()
		if !ok {
			return
		}
		t0 := time.Now()
		h.fanOut(p.d)
		now := time.Now()
		h.fanoutNanos.Store(int64(now.Sub(t0)))
		h.lagNanos.Store(int64(now.Sub(p.at)))
	}
}

// fanOut applies d to the cell state and queues each subscription's frame to its clients.
func (h *Hub) fanOut(d *engine.Delta) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.deltas.Add(1)
	h.smu.Lock()
	e := h.apply(d)
	h.smu.Unlock()
	// The groups are taken under mu with the state already applied: a client that subscribes from now on gets
	// a snapshot that holds this delta (and skips it, see client.lastSeq); one that subscribed before is in a
	// group.
	groups := make([]fanGroup, 0, len(h.groups))
	all := make([]*client, 0, len(h.clients))
	for _, g := range h.groups {
		n := len(all)
		all = append(all, g.clients...)
		groups = append(groups, fanGroup{sub: g.sub, clients: all[n:len(all):len(all)]})
	}
	h.mu.Unlock()
	if len(groups) == 0 {
		return
	}

	h.smu.RLock()
	defer h.smu.RUnlock()
	resolutions := make([]int, 0, 4)
	for i := range groups {
		if r := groups[i].sub.Res; r < h.baseRes && !slices.Contains(resolutions, r) {
			resolutions = append(resolutions, r)
		}
	}
	ix := h.newDeltaIndex(e.changed, e.removed, resolutions)
	// Each subscription's frame goes to its clients as soon as it is encoded: a client's wait is its own
	// group's, not every group's.
	encodeGroups(groups, func(g *fanGroup) {
		msg := h.encodeDeltaIx(g.sub, ix, d.Incidents, d.Units, e.seq)
		if d.Assets != nil && (g.sub.Layers["transit"] || g.sub.Layers["sensors"]) {
			msg = appendAssets(msg[:len(msg)-1], g.sub, d.Assets)
		}
		var f *frame
		if d.Reset {
			f = newFrame(append([]byte(`{"reset":true,`), msg[frameReserve+1:]...), e.seq)
		} else {
			f = frameOf(msg, e.seq)
		}
		for _, c := range g.clients {
			h.enqueue(c, f)
		}
	})
}

// fanGroup is the clients of one distinct subscription and the frame they all get.
type fanGroup struct {
	sub     *subscription
	clients []*client
}

// encodeGroups runs encode on every group, on up to GOMAXPROCS goroutines.
func encodeGroups(groups []fanGroup, encode func(*fanGroup)) {
	workers := min(runtime.GOMAXPROCS(0), (len(groups)+7)/8)
	if workers <= 1 {
		for i := range groups {
			encode(&groups[i])
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(groups) {
					return
				}
				encode(&groups[i])
			}
		}()
	}
	wg.Wait()
}

// apply applies d to the cell state and the history, and returns the history entry (smu held).
func (h *Hub) apply(d *engine.Delta) histEntry {
	h.seq++
	if d.Reset {
		h.history = h.history[:0] // a new timeline: a resuming client gets a snapshot of it
	}
	h.watermark, h.now = d.Watermark, d.Now
	e := histEntry{seq: h.seq, removed: d.Removed}
	for _, v := range d.Changed {
		if _, ok := h.state[v.Cell]; !ok {
			h.indexAdd(v.Cell)
		}
		h.state[v.Cell] = v
		e.changed = append(e.changed, v.Cell)
	}
	for _, c := range d.Removed {
		delete(h.state, c)
		h.indexRemove(c)
	}
	if len(h.history) >= h.cfg.History {
		h.history = append(h.history[:0], h.history[1:]...)
	}
	h.history = append(h.history, e)
	return e
}

// pending is a delta in the mailbox, with when it arrived (for the lag gauge).
type pending struct {
	d  *engine.Delta
	at time.Time
}

// mergeDeltas merges a delta the hub has not taken yet with the next one: the state after both, as one delta
// (cells and incidents: the newer wins; a reset drops what came before it).
func mergeDeltas(old, nu *pending) *pending {
	a, b := old.d, nu.d
	if b.Reset {
		return &pending{d: b, at: old.at}
	}
	m := &engine.Delta{Seq: b.Seq, Watermark: b.Watermark, Now: b.Now, Reset: a.Reset, Units: a.Units, Assets: a.Assets}
	if b.Units != nil {
		m.Units = b.Units
	}
	if b.Assets != nil {
		m.Assets = b.Assets
	}
	changed := make(map[uint64]*engine.CellView, len(a.Changed)+len(b.Changed))
	for _, v := range a.Changed {
		changed[v.Cell] = v
	}
	removed := map[uint64]bool{}
	for _, c := range a.Removed {
		removed[c] = true
	}
	for _, v := range b.Changed {
		changed[v.Cell] = v
		delete(removed, v.Cell)
	}
	for _, c := range b.Removed {
		removed[c] = true
		delete(changed, c)
	}
	for _, v := range a.Changed {
		if w := changed[v.Cell]; w != nil {
			m.Changed = append(m.Changed, w)
			delete(changed, v.Cell)
		}
	}
	for _, v := range b.Changed {
		if w := changed[v.Cell]; w != nil {
			m.Changed = append(m.Changed, w)
			delete(changed, v.Cell)
		}
	}
	for _, list := range [][]uint64{a.Removed, b.Removed} {
		for _, c := range list {
			if removed[c] {
				m.Removed = append(m.Removed, c)
				delete(removed, c)
			}
		}
	}
	at := map[string]int{}
	for _, in := range a.Incidents {
		at[in.ID] = len(m.Incidents)
		m.Incidents = append(m.Incidents, in)
	}
	for _, in := range b.Incidents {
		if i, ok := at[in.ID]; ok {
			m.Incidents[i] = in
		} else {
			m.Incidents = append(m.Incidents, in)
		}
	}
	return &pending{d: m, at: old.at}
}

// SetEngine points the hub at another engine (a replay session's, after a backward seek restarted it): the
// snapshots, units and incidents it sends from now on are that engine's.
func (h *Hub) SetEngine(e *engine.Engine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eng = e
}
