package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
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
		for _, c := range cs {
			h.enqueue(c, msg)
		}
	}
}

func (h *Hub) indexAdd(cell uint64) {
	for res, m := range h.parents {
		p := geo.ParentFast(cell, res)
		if m[p] == nil {
			m[p] = map[uint64]struct{}{}
		}
		m[p][cell] = struct{}{}
	}
}

func (h *Hub) indexRemove(cell uint64) {
	for res, m := range h.parents {
		p := geo.ParentFast(cell, res)
		delete(m[p], cell)
		if len(m[p]) == 0 {
			delete(m, p)
		}
	}
}

// ensureIndex builds the parent index of res (h.mu held).
func (h *Hub) ensureIndex(res int) {
	if res >= h.baseRes || h.parents[res] != nil {
		return
	}
	m := map[uint64]map[uint64]struct{}{}
	for c := range h.state {
		p := geo.ParentFast(c, res)
		if m[p] == nil {
			m[p] = map[uint64]struct{}{}
		}
		m[p][c] = struct{}{}
	}
	h.parents[res] = m
}

// viewsFor returns the current views of sub's viewport for the given base cells (nil: every cell), and the
// cells of the viewport that no longer exist (h.mu held).
func (h *Hub) viewsFor(sub *subscription, cells []uint64, all bool) (views []*engine.CellView, gone []uint64) {
	return h.viewsForIx(sub, cells, all, nil)
}

// viewsForIx is viewsFor with the rollups of one delta shared between subscriptions (ix may be nil).
func (h *Hub) viewsForIx(sub *subscription, cells []uint64, all bool, ix *deltaIndex) (views []*engine.CellView, gone []uint64) {
	if sub.Res >= h.baseRes {
		add := func(c uint64) {
			v := h.state[c]
			if v == nil {
				if lat, lng := geo.Center(c); sub.BBox.Contains(lat, lng) {
					gone = append(gone, c)
				}
				return
			}
			if sub.BBox.Contains(v.Lat, v.Lng) && hasData(v, sub.Window) {
				views = append(views, v)
			}
		}
		if all {
			for c := range h.state {
				add(c)
			}
		} else {
			for _, c := range cells {
				add(c)
			}
		}
		return views, gone
	}
	idx := h.parents[sub.Res]
	parents := map[uint64]struct{}{}
	if all {
		for p := range idx {
			parents[p] = struct{}{}
		}
	} else {
		for _, c := range cells {
			parents[geo.ParentFast(c, sub.Res)] = struct{}{}
		}
	}
	for p := range parents {
		kids := idx[p]
		if len(kids) == 0 {
			if lat, lng := geo.Center(p); sub.BBox.Contains(lat, lng) {
				gone = append(gone, p)
			}
			continue
		}
		var v *engine.CellView
		if ix != nil {
			v = ix.rollups[sub.Res][p]
		}
		if v == nil {
			var base []*engine.CellView
			for c := range kids {
				base = append(base, h.state[c])
			}
			v = engine.Rollup(base, sub.Res)[0]
			if ix != nil {
				if ix.rollups[sub.Res] == nil {
					ix.rollups[sub.Res] = map[uint64]*engine.CellView{}
				}
				ix.rollups[sub.Res][p] = v
			}
		}
		if sub.BBox.Contains(v.Lat, v.Lng) && hasData(v, sub.Window) {
			views = append(views, v)
		}
	}
	return views, gone
}

// deltaIndex spreads one delta's changed and removed cells over lat/lng tiles, so that each subscription
// visits only the tiles its viewport overlaps, and shares rollups between subscriptions.
type deltaIndex struct {
	tiles   map[[2]int32][]uint64
	rollups map[int]map[uint64]*engine.CellView
}

const tileDeg = 0.02

func tileOf(lat, lng float64) [2]int32 {
	return [2]int32{int32(math.Floor(lat / tileDeg)), int32(math.Floor(lng / tileDeg))}
}

// edgeKm is the mean H3 edge length by resolution.
var edgeKm = [16]float64{1281.256, 483.057, 182.513, 68.979, 26.072, 9.854, 3.725, 1.406, 0.531, 0.201, 0.076, 0.029, 0.011, 0.004, 0.002, 0.001}

func (h *Hub) newDeltaIndex(changed, removed []uint64) *deltaIndex {
	ix := &deltaIndex{tiles: map[[2]int32][]uint64{}, rollups: map[int]map[uint64]*engine.CellView{}}
	add := func(c uint64) {
		var lat, lng float64
		if v := h.state[c]; v != nil {
			lat, lng = v.Lat, v.Lng
		} else {
			lat, lng = geo.Center(c)
		}
		k := tileOf(lat, lng)
		ix.tiles[k] = append(ix.tiles[k], c)
	}
	for _, c := range changed {
		add(c)
	}
	for _, c := range removed {
		add(c)
	}
	return ix
}

// cellsFor returns the delta's cells whose tiles overlap sub's viewport, grown at coarse resolutions by two
// parent edges (a child can lie that far from its parent's centre).
func (ix *deltaIndex) cellsFor(sub *subscription, baseRes int) []uint64 {
	bb := sub.BBox
	var mLat, mLng float64
	if sub.Res < baseRes && sub.Res >= 0 && sub.Res < 16 {
		mLat = 2 * edgeKm[sub.Res] / 111
		mLng = mLat / math.Max(math.Cos((bb.MinLat+bb.MaxLat)/2*math.Pi/180), 0.1)
	}
	lo, hi := tileOf(bb.MinLat-mLat, bb.MinLng-mLng), tileOf(bb.MaxLat+mLat, bb.MaxLng+mLng)
	var out []uint64
	if n := (int64(hi[0]) - int64(lo[0]) + 1) * (int64(hi[1]) - int64(lo[1]) + 1); n > int64(len(ix.tiles)) {
		for k, cs := range ix.tiles {
			if k[0] >= lo[0] && k[0] <= hi[0] && k[1] >= lo[1] && k[1] <= hi[1] {
				out = append(out, cs...)
			}
		}
		return out
	}
	for a := lo[0]; a <= hi[0]; a++ {
		for b := lo[1]; b <= hi[1]; b++ {
			out = append(out, ix.tiles[[2]int32{a, b}]...)
		}
	}
	return out
}

func (h *Hub) encodeDeltaIx(sub *subscription, ix *deltaIndex, incidents []engine.Incident, units []engine.Unit, seq uint64) []byte {
	views, gone := h.viewsForIx(sub, ix.cellsFor(sub, h.baseRes), false, ix)
	msg := h.encode("delta", sub, views, gone, incidents, seq)
	if units != nil && sub.Layers["units"] {
		msg = appendUnits(msg[:len(msg)-1], sub, units)
	}
	return msg
}

// appendUnits adds the "units" member (every unit in the viewport) and closes the message object.
func appendUnits(buf []byte, sub *subscription, units []engine.Unit) []byte {
	buf = append(buf, `,"units":[`...)
	n := 0
	for i := range units {
		u := &units[i]
		if !sub.BBox.Contains(u.Lat, u.Lng) {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = AppendUnit(buf, u)
	}
	return append(buf, "]}"...)
}

// AppendUnit appends a unit object: id, unit_type, status, lat, lng, speed_kmh, ts, source.
func AppendUnit(buf []byte, u *engine.Unit) []byte {
	buf = append(buf, `{"id":`...)
	buf = ingest.AppendQuoted(buf, u.ID)
	buf = append(buf, `,"unit_type":`...)
	buf = ingest.AppendQuoted(buf, u.Type)
	buf = append(buf, `,"status":`...)
	buf = ingest.AppendQuoted(buf, u.Status)
	buf = append(buf, `,"lat":`...)
	buf = trimFloat(buf, u.Lat, 6)
	buf = append(buf, `,"lng":`...)
	buf = trimFloat(buf, u.Lng, 6)
	buf = append(buf, `,"speed_kmh":`...)
	buf = trimFloat(buf, u.SpeedKmh, 1)
	buf = append(buf, `,"ts":`...)
	buf = appendTime(buf, u.TS)
	if u.Source != "" {
		buf = append(buf, `,"source":`...)
		buf = ingest.AppendQuoted(buf, u.Source)
	}
	return append(buf, '}')
}

// incidentsFor keeps the incidents of list inside sub's viewport, when it asked for the layer.
func incidentsFor(sub *subscription, list []engine.Incident, activeOnly bool) []engine.Incident {
	if !sub.Layers["incidents"] {
		return nil
	}
	var out []engine.Incident
	for _, in := range list {
		if (!activeOnly || in.Active()) && sub.BBox.Contains(in.Lat, in.Lng) {
			out = append(out, in)
		}
	}
	return out
}

func (h *Hub) encode(typ string, sub *subscription, views []*engine.CellView, gone []uint64, incidents []engine.Incident, seq uint64) []byte {
	buf := make([]byte, 0, 128+len(views)*420)
	buf = append(buf, `{"type":"`...)
	buf = append(buf, typ...)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `,"res":`...)
	buf = strconv.AppendInt(buf, int64(sub.Res), 10)
	buf = append(buf, `,"window":"`...)
	buf = append(buf, windowName(sub.Window)...)
	buf = append(buf, `","watermark":`...)
	buf = appendTime(buf, h.watermark)
	buf = append(buf, `,"now":`...)
	buf = appendTime(buf, h.now)
	buf = append(buf, `,"cells":[`...)
	for i, v := range views {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCell(buf, v, sub.Window, sub.Geometry)
	}
	buf = append(buf, `],"removed":[`...)
	for i, c := range gone {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, geo.CellString(c)...)
		buf = append(buf, '"')
	}
	buf = append(buf, ']')
	if sub.Layers["incidents"] {
		if typ == "snapshot" {
			incidents = incidentsFor(sub, h.eng.Incidents(), true)
		} else {
			incidents = incidentsFor(sub, incidents, false)
		}
		buf = append(buf, `,"incidents":[`...)
		for i := range incidents {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendIncident(buf, &incidents[i])
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

// enqueue queues msg for c without blocking; a full queue coalesces the client to a fresh snapshot, and a
// client that keeps needing that is cut off (h.mu held).
func (h *Hub) enqueue(c *client, msg []byte) {
	if c.stale {
		return // a snapshot is coming; it carries this delta's effect
	}
	select {
	case c.send <- msg:
		return
	default:
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
	for {
		select {
		case <-c.send:
			continue
		default:
		}
		break
	}
	c.stale = true
	select {
	case c.send <- nil: // nil asks the writer for a snapshot
	default:
	}
}

// client is one websocket connection. send and the coalescing fields are guarded by Hub.mu; conn writes
// belong to the writer goroutine.
type client struct {
	h    *Hub
	conn *websocket.Conn
	send chan []byte
	sub  *subscription

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
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &client{h: h, conn: conn, send: make(chan []byte, h.cfg.QueueLen), done: make(chan struct{}), limits: newClientLimits()}
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
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	select {
	case c.send <- msg:
	default:
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
	return sub, nil
}

// subscribe sets c's viewport and queues a snapshot, or, when since is a sequence still in the history, a
// catch-up delta of what changed in the viewport after it.
func (h *Hub) subscribe(c *client, sub *subscription, since *uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ensureIndex(sub.Res)
	c.sub = sub
	c.stale = false
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
		views, _ := h.viewsFor(sub, nil, true)
		msg = h.encode("snapshot", sub, views, nil, nil, h.seq)
	}
	if sub.Layers["units"] {
		msg = appendUnits(msg[:len(msg)-1], sub, h.eng.Units())
	}
	if sub.Layers["transit"] || sub.Layers["sensors"] {
		msg = appendAssets(msg[:len(msg)-1], sub, h.eng.Assets())
	}
	select {
	case c.send <- msg:
	default:
		c.stale = true
		select {
		case c.send <- nil:
		default:
		}
	}
}

// snapshotFor builds a fresh snapshot for a coalesced client.
func (h *Hub) snapshotFor(c *client) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.stale = false
	if c.sub == nil {
		return nil
	}
	views, _ := h.viewsFor(c.sub, nil, true)
	msg := h.encode("snapshot", c.sub, views, nil, nil, h.seq)
	if c.sub.Layers["units"] {
		msg = appendUnits(msg[:len(msg)-1], c.sub, h.eng.Units())
	}
	if c.sub.Layers["transit"] || c.sub.Layers["sensors"] {
		msg = appendAssets(msg[:len(msg)-1], c.sub, h.eng.Assets())
	}
	return msg
}

func (c *client) writeLoop() {
	h := c.h
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	hello := fmt.Sprintf(`{"type":"hello","instance":%q,"base_res":%d,"windows":["60s","300s","900s"],"layers":["cells","incidents","units","transit","sensors","alerts"],"seq":%d}`,
		h.instance, h.baseRes, h.currentSeq())
	if err := c.write(websocket.TextMessage, []byte(hello)); err != nil {
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
		case msg := <-c.send:
			if msg == nil {
				if msg = h.snapshotFor(c); msg == nil {
					continue
				}
			}
			if err := c.write(websocket.TextMessage, msg); err != nil {
				h.dropped.Add(1)
				c.kick(CloseTooSlow, "too slow: write timed out")
				return
			}
			h.sent.Add(1)
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				c.kick(websocket.CloseNormalClosure, "")
				return
			}
		}
	}
}

func (c *client) write(typ int, msg []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
	return c.conn.WriteMessage(typ, msg)
}

func (h *Hub) currentSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// Close cuts every client off with a going-away close frame and refuses new ones. Safe to call twice.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		c.kick(CloseShutdown, "server shutting down")
	}
}

// HubStats are the hub's counters.
type HubStats struct {
	Clients                          int64
	Sent, Dropped, Coalesced, Deltas uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{Clients: h.clientsGauge.Load(), Sent: h.sent.Load(), Dropped: h.dropped.Load(),
		Coalesced: h.coalesced.Load(), Deltas: h.deltas.Load()}
}
