package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine/queue"
	"citybrain/geo"
)

// The hub's sessions: websocket clients, their subscriptions, and backpressure (a bounded queue per client;
// a full queue coalesces the client to a fresh snapshot, and a client that keeps needing that is cut off).

// enqueue writes f to c's socket or queues it, without blocking; a full queue coalesces the client to a
// fresh snapshot, and a client that keeps needing that is cut off. Called with h.mu or smu held (the hub's
// encoders deliver each subscription's frame as soon as it is encoded); takes the client's outbox lock.
func (h *Hub) enqueue(c *client, f *frame) {
	o := c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.stale {
		return // a snapshot is coming; it carries this delta's effect
	}
	if f.seq != 0 && f.seq <= c.lastSeq {
		return // the client's snapshot (or catch-up) already holds this delta
	}
	if ok, direct := o.offer(f, c.cork); ok {
		if direct {
			h.sent.Add(1)
			h.direct.Add(1)
		}
		return
	}
	h.coalesced.Add(1)
	now := time.Now()
	if now.Sub(c.coalesceStart) > h.cfg.CoalesceSpan {
		c.coalesceStart, c.coalesces = now, 0
	}
	c.coalesces++
	if c.coalesces > h.cfg.MaxCoalesce {
		h.dropped.Add(1)
		c.kick(CloseTooSlow, fmt.Sprintf("too slow: queue of %d messages full %d times in %s", h.cfg.QueueLen, c.coalesces, h.cfg.CoalesceSpan))
		return
	}
	// Drop what is queued: a snapshot of the latest state replaces it.
	o.drain()
	c.stale = true
	o.queue(nil) // nil asks the writer for a snapshot
}

// client is one websocket connection. sub is guarded by Hub.mu; lastSeq, stale and the coalescing fields by
// the outbox's lock (taken after Hub.mu and smu, never before). Writes to conn belong to the writer goroutine,
// and to the hub's encoders while the outbox is idle (hub_write.go).
type client struct {
	h    *Hub
	conn *websocket.Conn
	cork *corkConn // the connection under conn: batches the writes of a client that is behind
	out  *outbox   // hub → socket, or → writer when the socket does not take a frame at once; full: coalesced
	sub  *subscription
	// group is the hub's group of the clients with c's subscription, gi c's index in it (Hub.mu).
	group *subGroup
	gi    int

	lastSeq       uint64 // the hub delta the client's last snapshot or catch-up holds
	stale         bool
	coalesces     int
	coalesceStart time.Time

	kickOnce sync.Once
	done     chan struct{}
	kickCode int
	kickMsg  string

	limits *clientLimits // rates of what the client sends (wslimit.go)
}

// kick closes the client with a code and reason; the writer sends the close frame.
func (c *client) kick(code int, reason string) {
	c.kickOnce.Do(func() {
		c.kickCode, c.kickMsg = code, reason
		close(c.done)
	})
}

// clientMsg is what a client sends.
type clientMsg struct {
	Op       string    `json:"op"`
	BBox     []float64 `json:"bbox"`
	Res      *int      `json:"res"`
	Window   string    `json:"window"`
	Layers   []string  `json:"layers"`
	Since    *uint64   `json:"since"`
	Geometry bool      `json:"geometry"`
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 16384, EnableCompression: false}

// ServeWS upgrades the connection and serves the client until it leaves, is cut off, or the hub closes.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, checkOrigin func(*http.Request) bool) {
	up := upgrader
	up.CheckOrigin = checkOrigin
	hw := &hijackCork{ResponseWriter: w}
	conn, err := up.Upgrade(hw, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &client{h: h, conn: conn, cork: hw.cork, out: newOutbox(h.cfg.QueueLen),
		done: make(chan struct{}), limits: newClientLimits()}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseShutdown, "server shutting down"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.clientsGauge.Add(1)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.readLoop() }()
	c.writeLoop()
	conn.Close()
	wg.Wait()
	c.stopLimits()
	h.mu.Lock()
	h.leave(c)
	delete(h.clients, c)
	h.mu.Unlock()
	h.clientsGauge.Add(-1)
}

func (c *client) readLoop() {
	h := c.h
	c.conn.SetReadLimit(64 << 10)
	c.conn.SetReadDeadline(time.Now().Add(3 * h.cfg.PingInterval))
	c.conn.SetPongHandler(func(string) error {
		c.conn.SetReadDeadline(time.Now().Add(3 * h.cfg.PingInterval))
		return nil
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.kick(websocket.CloseNormalClosure, "")
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(3 * h.cfg.PingInterval))
		if !c.message() {
			return
		}
		var m clientMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.reply(errorMsg("cannot parse message: " + err.Error()))
			continue
		}
		switch m.Op {
		case "subscribe":
			sub, err := h.parseSub(&m)
			if err != nil {
				c.reply(errorMsg(err.Error()))
				continue
			}
			c.subscribeLimited(sub, m.Since)
		case "ping":
			c.reply([]byte(`{"type":"pong"}`))
		default:
			c.reply(errorMsg(fmt.Sprintf("unknown op %q: use subscribe or ping", m.Op)))
		}
	}
}

func errorMsg(s string) []byte {
	b, _ := json.Marshal(map[string]string{"type": "error", "error": s})
	return b
}

// reply queues a direct answer; a client too slow to take it is treated like a full queue.
func (c *client) reply(msg []byte) {
	f := newFrame(msg, 0)
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if !c.out.push(f) {
		c.kick(CloseTooSlow, "too slow: queue full")
	}
}

func (h *Hub) parseSub(m *clientMsg) (*subscription, error) {
	sub := &subscription{Layers: map[string]bool{}}
	sub.Res = h.baseRes
	if m.Res != nil {
		if *m.Res < 0 || *m.Res > h.baseRes {
			return nil, fmt.Errorf("res %d must be 0..%d", *m.Res, h.baseRes)
		}
		sub.Res = *m.Res
	}
	sub.BBox = geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}
	if len(m.BBox) != 0 {
		if len(m.BBox) != 4 {
			return nil, fmt.Errorf("bbox must be [minLng, minLat, maxLng, maxLat]")
		}
		sub.BBox = geo.BBox{MinLng: m.BBox[0], MinLat: m.BBox[1], MaxLng: m.BBox[2], MaxLat: m.BBox[3]}
		if !sub.BBox.Valid() {
			return nil, fmt.Errorf("bbox %v is not a rectangle within the globe", m.BBox)
		}
	}
	w, err := parseWindow(m.Window)
	if err != nil {
		return nil, err
	}
	sub.Window = w
	sub.Geometry = m.Geometry
	if len(m.Layers) == 0 {
		m.Layers = []string{"cells"}
	}
	for _, l := range m.Layers {
		switch l {
		case "cells", "incidents", "units", "transit", "sensors", "alerts":
			sub.Layers[l] = true
		default:
			return nil, fmt.Errorf("unknown layer %q: cells, incidents, units, transit, sensors, alerts", l)
		}
	}
	sub.key()
	return sub, nil
}

// subscribe sets c's viewport and queues a snapshot, or, when since is a sequence still in the history, a
// catch-up delta of what changed in the viewport after it.
func (h *Hub) subscribe(c *client, sub *subscription, since *uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.join(c, sub)
	h.smu.Lock()
	h.ensureIndex(sub.Res)
	h.smu.Unlock()
	h.smu.RLock()
	var msg []byte
	if since != nil && *since <= h.seq && len(h.history) > 0 && *since+1 >= h.history[0].seq {
		var cells []uint64
		seen := map[uint64]bool{}
		for _, e := range h.history {
			if e.seq <= *since {
				continue
			}
			for _, list := range [][]uint64{e.changed, e.removed} {
				for _, cell := range list {
					if !seen[cell] {
						seen[cell] = true
						cells = append(cells, cell)
					}
				}
			}
		}
		views, gone := h.viewsFor(sub, cells, false)
		// Incidents: every one the engine holds, so the client also learns of those that ended meanwhile.
		msg = h.encode("delta", sub, views, gone, h.eng.Incidents(), h.seq)
	} else {
		msg = h.snapshot(sub)
	}
	seq := h.seq
	h.smu.RUnlock()
	o := c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	c.stale, c.lastSeq = false, seq
	if !o.queue(frameOf(msg, 0)) {
		c.stale = true
		o.queue(nil)
	}
}

// snapshot encodes a snapshot of sub's viewport after frameReserve free bytes (h.mu and smu for reading held).
func (h *Hub) snapshot(sub *subscription) []byte {
	views, _ := h.viewsFor(sub, nil, true)
	msg := h.encode("snapshot", sub, views, nil, nil, h.seq)
	if sub.Layers["units"] {
		msg = appendUnits(msg[:len(msg)-1], sub, h.eng.Units())
	}
	if sub.Layers["transit"] || sub.Layers["sensors"] {
		msg = appendAssets(msg[:len(msg)-1], sub, h.eng.Assets())
	}
	return msg
}

// snapshotFor builds a fresh snapshot for a coalesced client.
func (h *Hub) snapshotFor(c *client) *frame {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.sub == nil {
		c.out.mu.Lock()
		c.stale = false
		c.out.mu.Unlock()
		return nil
	}
	h.smu.RLock()
	defer h.smu.RUnlock()
	f := frameOf(h.snapshot(c.sub), 0)
	c.out.mu.Lock()
	c.stale, c.lastSeq = false, h.seq
	c.out.mu.Unlock()
	return f
}

func (c *client) writeLoop() {
	h := c.h
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	// A ping rides in front of the next frame the hub writes straight to the socket (no system call, no
	// wake-up of its own); when none has carried it within pingGrace, the writer sends it alone.
	unsent := time.NewTimer(time.Hour)
	unsent.Stop()
	defer unsent.Stop()
	pingNow := func() error {
		h.pingsAlone.Add(1)
		return c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout))
	}
	hello := fmt.Sprintf(`{"type":"hello","instance":%q,"base_res":%d,"windows":["60s","300s","900s"],"layers":["cells","incidents","units","transit","sensors","alerts"],"seq":%d}`,
		h.instance, h.baseRes, h.currentSeq())
	c.conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
		return
	}
	c.out.opened()
	for {
		select {
		case <-c.done:
			if c.kickCode != websocket.CloseNormalClosure {
				c.conn.SetWriteDeadline(time.Now().Add(time.Second))
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(c.kickCode, c.kickMsg))
			}
			return
		case <-c.out.wake:
			if err := c.writeQueued(); err != nil {
				h.dropped.Add(1)
				c.kick(CloseTooSlow, "too slow: write timed out")
				return
			}
		case <-ping.C:
			if c.cork != nil && c.cork.askPing() {
				unsent.Reset(min(pingGrace, h.cfg.PingInterval/2))
				continue
			}
			if err := pingNow(); err != nil {
				c.kick(websocket.CloseNormalClosure, "")
				return
			}
		case <-unsent.C:
			if !c.cork.takePing() {
				continue
			}
			if err := pingNow(); err != nil {
				c.kick(websocket.CloseNormalClosure, "")
				return
			}
		}
	}
}

// pingGrace is how long a ping waits for a frame to carry it before the writer sends it alone.
const pingGrace = 2 * time.Second

// maxBatch bounds the messages written together to a client that is behind.
const maxBatch = 16

// writeQueued writes what the client's outbox holds (up to maxBatch frames, corked into one write to the
// socket when there are several) and the rest of a frame the socket took only part of.
func (c *client) writeQueued() error {
	h := c.h
	batch := c.out.take(maxBatch)
	defer c.out.done()
	deadline := time.Now().Add(h.cfg.WriteTimeout)
	if c.cork == nil {
		c.conn.SetWriteDeadline(deadline)
	} else {
		c.cork.SetWriteDeadline(deadline)
		if len(batch) > 1 {
			c.cork.corkOn()
		}
	}
	n := 0
	for _, f := range batch {
		if f == nil {
			f = h.snapshotFor(c) // a coalesced client: the latest state replaces what it missed
		}
		if f != nil {
			if err := c.writeFrame(f); err != nil {
				return err
			}
			n++
		}
	}
	h.sent.Add(uint64(n))
	if c.cork == nil {
		return nil
	}
	if len(batch) > 1 {
		h.batched.Add(uint64(max(n-1, 0)))
	}
	return c.cork.flush()
}

// writeFrame writes f as it was built, straight to the connection under the websocket (every write to it is
// a whole frame, so gorilla's control frames from the reading goroutine never split one).
func (c *client) writeFrame(f *frame) error {
	if c.cork == nil {
		return c.conn.WriteMessage(websocket.TextMessage, f.message())
	}
	_, err := c.cork.Write(f.data)
	return err
}

func (h *Hub) currentSeq() uint64 {
	h.smu.RLock()
	defer h.smu.RUnlock()
	return h.seq
}

// Close stops the hub's goroutine, cuts every client off with a going-away close frame and refuses new ones.
// Safe to call twice.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.kick(CloseShutdown, "server shutting down")
	}
	h.mu.Unlock()
	h.mailbox.Close()
	<-h.done
}

// HubStats are the hub's counters.
type HubStats struct {
	Clients                                   int64
	Sent, Batched, Dropped, Coalesced, Deltas uint64
	Direct                                    uint64        // messages the hub wrote straight to the socket (of Sent)
	PingsAlone                                uint64        // pings the writers sent on their own (the rest went in front of a frame)
	Fanout                                    time.Duration // the hub's time on the last delta
	Lag                                       time.Duration // from the engine's tick to the last delta queued to its clients
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{Clients: h.clientsGauge.Load(), Sent: h.sent.Load(), Batched: h.batched.Load(),
		Direct: h.direct.Load(), PingsAlone: h.pingsAlone.Load(), Dropped: h.dropped.Load(), Coalesced: h.coalesced.Load(), Deltas: h.deltas.Load(),
		Fanout: time.Duration(h.fanoutNanos.Load()), Lag: time.Duration(h.lagNanos.Load())}
}

// Queues returns the figures of the clients' queues, summed as one family ("ws-client").
func (h *Hub) Queues() []queue.Stat {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := queue.Stat{Name: "ws-client", Policy: queue.Reject}
	for c := range h.clients {
		st.Sum(c.out.stat())
	}
	return []queue.Stat{h.mailbox.Stat(), st}
}
