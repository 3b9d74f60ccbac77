package api

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
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

// Hub fans out engine deltas to websocket clients by viewport. It holds the latest published state of every
// cell (from deltas), a bounded history of deltas for resuming clients, and the clients.
type Hub struct {
	cfg      HubConfig
	baseRes  int
	eng      *engine.Engine
	instance string // a fresh id per hub: a client seeing another one knows seq numbers restarted

	mu        sync.Mutex // guards every field below
	state     map[uint64]*engine.CellView
	parents   map[int]map[uint64]map[uint64]struct{} // res → parent → children, for subscribed coarse resolutions
	history   []histEntry                            // ring, oldest first
	seq       uint64
	watermark int64
	now       int64
	clients   map[*client]struct{}
	closed    bool

	clientsGauge atomic.Int64
	sent         atomic.Uint64
	dropped      atomic.Uint64 // clients cut off as too slow
	coalesced    atomic.Uint64
	deltas       atomic.Uint64
}

type histEntry struct {
	seq     uint64
	changed []uint64
	removed []uint64
}

// NewHub returns a hub; feed it with OnDelta.
func NewHub(cfg HubConfig, eng *engine.Engine) *Hub {
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
		parents: map[int]map[uint64]map[uint64]struct{}{}, clients: map[*client]struct{}{}}
	// Start from what the engine already published (a hub created after a restart's catch-up).
	for _, v := range eng.All() {
		h.state[v.Cell] = v
	}
	return h
}

// subscription is a client's viewport. Clients with equal subscriptions share one encoding of each delta.
type subscription struct {
	CellQuery
	Layers map[string]bool
}

func (s *subscription) key() string {
	return fmt.Sprintf("%g,%g,%g,%g/%d/%d/%t", s.BBox.MinLng, s.BBox.MinLat, s.BBox.MaxLng, s.BBox.MaxLat, s.Res, s.Window, s.Geometry)
}

// OnDelta applies an engine delta and fans it out. Called from the engine's tick goroutine.
func (h *Hub) OnDelta(d *engine.Delta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.deltas.Add(1)
	h.seq = d.Seq
	if d.Reset {
		h.history = h.history[:0] // a new timeline: a resuming client gets a snapshot of it
	}
	h.watermark, h.now = d.Watermark, d.Now
	e := histEntry{seq: d.Seq, removed: d.Removed}
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

	groups := map[string][]*client{}
	for c := range h.clients {
		if c.sub == nil {
			continue
		}
		k := c.sub.key()
		groups[k] = append(groups[k], c)
	}
	ix := h.newDeltaIndex(e.changed, e.removed)
	for _, cs := range groups {
		msg := h.encodeDeltaIx(cs[0].sub, ix, d.Incidents, d.Units, d.Seq)
		if d.Assets != nil && (cs[0].sub.Layers["transit"] || cs[0].sub.Layers["sensors"]) {
			msg = appendAssets(msg[:len(msg)-1], cs[0].sub, d.Assets)
		}
		if d.Reset {
			msg = append([]byte(`{"reset":true,`), msg[1:]...)
		}
		for _, c := range cs {
			h.enqueue(c, msg)
		}
	}
}

// SetEngine points the hub at another engine (a replay session's, after a backward seek restarted it): the
// snapshots, units and incidents it sends from now on are that engine's.
func (h *Hub) SetEngine(e *engine.Engine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eng = e
}
