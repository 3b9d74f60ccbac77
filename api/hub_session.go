package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine/queue"
	"citybrain/geo"
)

// The hub's sessions: websocket clients, their subscriptions, and backpressure (a bounded queue per client;
// a full queue coalesces the client to a fresh snapshot, and a client that keeps needing that is cut off).

// frame is one message for clients: a websocket frame prepared once and written to every client it goes to.
// seq is the hub delta it carries (0: none, such as alerts and answers).
type frame struct {
	pm  *websocket.PreparedMessage
	seq uint64
}

// newFrame prepares msg as a text frame.
func newFrame(msg []byte, seq uint64) *frame {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		panic("BUG: cannot prepare a websocket text frame: " + err.Error()) // only fails for control types
	}
	return &frame{pm: pm, seq: seq}
}

// enqueue queues f for c without blocking; a full queue coalesces the client to a fresh snapshot, and a
// client that keeps needing that is cut off (h.mu held).
func (h *Hub) enqueue(c *client, f *frame) {
	if c.stale {
		return // a snapshot is coming; it carries this delta's effect
	}
	if f.seq != 0 && f.seq <= c.lastSeq {
		return // the client's snapshot (or catch-up) already holds this delta
	}
	if c.send.TryPush(f) {
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
	c.send.Drain()
	c.stale = true
	c.send.TryPush(nil) // nil asks the writer for a snapshot
}

// client is one websocket connection. sub, lastSeq and the coalescing fields are guarded by Hub.mu; conn
// writes belong to the writer goroutine.
type client struct {
	h    *Hub
	conn *websocket.Conn
	cork *corkConn            // the connection under conn: batches the writes of a client that is behind
	send *queue.Queue[*frame] // hub → writer; full: the client is coalesced (Reject); nil asks for a snapshot
	sub  *subscription

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
	matchPreparedFrames(conn)
	c := &client{h: h, conn: conn, cork: hw.cork, send: queue.New[*frame]("ws-client", h.cfg.QueueLen, queue.Reject),
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
	if !c.send.TryPush(f) {
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
	c.sub = sub
	c.stale = false
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
	c.lastSeq = h.seq
	h.smu.RUnlock()
	if !c.send.TryPush(newFrame(msg, 0)) {
		c.stale = true
		c.send.TryPush(nil)
	}
}

// snapshot encodes a snapshot of sub's viewport (h.mu and smu for reading held).
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
	c.stale = false
	if c.sub == nil {
		return nil
	}
	h.smu.RLock()
	defer h.smu.RUnlock()
	c.lastSeq = h.seq
	return newFrame(h.snapshot(c.sub), 0)
}

func (c *client) writeLoop() {
	h := c.h
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	hello := fmt.Sprintf(`{"type":"hello","instance":%q,"base_res":%d,"windows":["60s","300s","900s"],"layers":["cells","incidents","units","transit","sensors","alerts"],"seq":%d}`,
		h.instance, h.baseRes, h.currentSeq())
	c.conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
		return
	}
	for {
		select {
		case <-c.done:
			if c.kickCode != websocket.CloseNormalClosure {
				c.conn.SetWriteDeadline(time.Now().Add(time.Second))
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(c.kickCode, c.kickMsg))
			}
			return
		case f := <-c.send.C():
			if err := c.writeQueued(f); err != nil {
				h.dropped.Add(1)
				c.kick(CloseTooSlow, "too slow: write timed out")
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				c.kick(websocket.CloseNormalClosure, "")
				return
			}
		}
	}
}

// maxBatch bounds the messages written together to a client that is behind.
const maxBatch = 16

// writeQueued writes f and, when the client is behind, the messages queued after it, in one write to the
// socket (the frames are corked, then flushed together).
func (c *client) writeQueued(f *frame) error {
	h := c.h
	behind := c.send.Len() > 0 && c.cork != nil
	if behind {
		c.cork.corkOn()
	}
	c.conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	n := 0
	for {
		if f == nil {
			f = h.snapshotFor(c) // a coalesced client: the latest state replaces what it missed
		}
		if f != nil {
			if err := c.conn.WritePreparedMessage(f.pm); err != nil {
				return err
			}
			n++
		}
		if !behind || n >= maxBatch {
			break
		}
		select {
		case f = <-c.send.C():
			continue
		default:
		}
		break
	}
	h.sent.Add(uint64(n))
	if behind {
		h.batched.Add(uint64(max(n-1, 0)))
		return c.cork.flush()
	}
	return nil
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
	Fanout                                    time.Duration // the hub's time on the last delta
	Lag                                       time.Duration // from the engine's tick to the last delta queued to its clients
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{Clients: h.clientsGauge.Load(), Sent: h.sent.Load(), Batched: h.batched.Load(),
		Dropped: h.dropped.Load(), Coalesced: h.coalesced.Load(), Deltas: h.deltas.Load(),
		Fanout: time.Duration(h.fanoutNanos.Load()), Lag: time.Duration(h.lagNanos.Load())}
}

// Queues returns the figures of the clients' queues, summed as one family ("ws-client").
func (h *Hub) Queues() []queue.Stat {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := queue.Stat{Name: "ws-client", Policy: queue.Reject}
	for c := range h.clients {
		st.Sum(c.send.Stat())
	}
	return []queue.Stat{h.mailbox.Stat(), st}
}

// matchPreparedFrames makes conn write the frame every prepared message already holds. gorilla keys a
// prepared message's frames by the connection's compression level too, and NewPreparedMessage builds the
// frame of level 0, while a connection starts at level 1: every distinct message was framed a second time on
// its first write (a throw-away connection, a 4 KB buffer and a copy; 8 % of the hub's CPU at 5,000 clients
// over 1,000 viewports). Compression is never negotiated here (upgrader), so the level changes nothing on the
// wire.
func matchPreparedFrames(conn *websocket.Conn) {
	if err := conn.SetCompressionLevel(0); err != nil {
		panic("BUG: compression level 0: " + err.Error())
	}
}

// hijackCork hands the websocket upgrade a connection wrapped in a corkConn.
type hijackCork struct {
	http.ResponseWriter
	cork *corkConn
}

func (w *hijackCork) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.cork = &corkConn{Conn: conn}
	return w.cork, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *hijackCork) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// corkConn is a connection whose writes can be held back and sent together: the writer corks it before it
// writes several queued frames and flushes once, so a client that is behind costs one system call per batch
// instead of one per message. The reading goroutine may write too (gorilla answers pings and closes), hence
// the mutex.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) corkOn() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// flush uncorks and writes what was held back (under the write deadline gorilla set for the last frame).
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 1<<20 {
		c.buf = nil // do not keep a burst's buffer
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
