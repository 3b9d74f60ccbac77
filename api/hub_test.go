package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
	"citybrain/geo"
)

// A delta the hub has not taken yet is merged with the next: cells and incidents by the newer, removals
// and reappearances resolved, a reset dropping what came before it.
func TestMergeDeltas(t *testing.T) {
	v := func(cell uint64, n uint32) *engine.CellView {
		cv := &engine.CellView{Cell: cell}
		cv.W[0].Events = n
		return cv
	}
	a := &engine.Delta{Seq: 1, Now: 10, Changed: []*engine.CellView{v(1, 1), v(2, 1)}, Removed: []uint64{3},
		Incidents: []engine.Incident{{ID: "i1", Score: 0.5}}, Units: []engine.Unit{{ID: "u1"}}}
	b := &engine.Delta{Seq: 2, Now: 20, Changed: []*engine.CellView{v(2, 2), v(3, 2)}, Removed: []uint64{1},
		Incidents: []engine.Incident{{ID: "i1", Score: 0.9}, {ID: "i2"}}}
	m := mergeDeltas(&pending{d: a}, &pending{d: b}).d
	if m.Seq != 2 || m.Now != 20 || len(m.Units) != 1 {
		t.Errorf("merged header %+v", m)
	}
	got := map[uint64]uint32{}
	for _, c := range m.Changed {
		got[c.Cell] = c.W[0].Events
	}
	if len(got) != 2 || got[2] != 2 || got[3] != 2 || len(m.Removed) != 1 || m.Removed[0] != 1 {
		t.Errorf("merged cells %v removed %v, want 2 and 3 changed (newer), 1 removed", got, m.Removed)
	}
	if len(m.Incidents) != 2 || m.Incidents[0].ID != "i1" || m.Incidents[0].Score != 0.9 {
		t.Errorf("merged incidents %+v", m.Incidents)
	}
	r := &engine.Delta{Seq: 3, Reset: true, Changed: []*engine.CellView{v(9, 1)}}
	if m := mergeDeltas(&pending{d: m}, &pending{d: r}).d; !m.Reset || len(m.Changed) != 1 || len(m.Incidents) != 0 {
		t.Errorf("a reset keeps what came before it: %+v", m)
	}
}

type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(p) }

// Frames written while the connection is corked go out in one write, in order.
func TestCorkedWritesGoOutTogether(t *testing.T) {
	var counter *countConn
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hijackCork{ResponseWriter: w}
		conn, err := upgrader.Upgrade(hw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		counter = &countConn{Conn: hw.cork.Conn}
		hw.cork.Conn = counter
		hw.cork.corkOn()
		for i := 0; i < 5; i++ {
			if _, err := hw.cork.Write(newFrame([]byte(`{"n":`+string(rune('0'+i))+`}`), 0).data); err != nil {
				t.Error(err)
			}
		}
		if err := hw.cork.flush(); err != nil {
			t.Error(err)
		}
		<-done
	}))
	defer srv.Close()
	defer close(done)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 5; i++ {
		_, msg, err := c.ReadMessage()
		if err != nil || string(msg) != `{"n":`+string(rune('0'+i))+`}` {
			t.Fatalf("message %d: %q %v", i, msg, err)
		}
	}
	if n := counter.writes.Load(); n != 1 {
		t.Errorf("5 corked frames took %d writes, want 1", n)
	}
}

// A frame the hub builds is read by a websocket client as the message it holds, at every length the header
// encodes differently (7-bit, 16-bit and 64-bit lengths and their edges), between gorilla's own frames on
// the same connection; framing a message the hub encoded (after frameReserve free bytes) copies nothing.
func TestHubFramesAreReadAsSent(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 300_000}
	msgOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hijackCork{ResponseWriter: w}
		conn, err := upgrader.Upgrade(hw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		for _, n := range sizes {
			buf := append(make([]byte, frameReserve, frameReserve+n), msgOf(n)...)
			f := frameOf(buf, 0)
			if &f.data[len(f.data)-1] != &buf[len(buf)-1] || len(f.data) != len(buf)-frameReserve+f.hdr {
				t.Errorf("a %d-byte message was copied to be framed", n)
			}
			if _, err := hw.cork.Write(f.data); err != nil {
				t.Error(err)
				return
			}
			if err := conn.WriteMessage(websocket.TextMessage, []byte("between")); err != nil {
				t.Error(err)
				return
			}
		}
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, n := range sizes {
		typ, msg, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(msg, msgOf(n)) {
			t.Fatalf("the %d-byte frame was read as type %d, %d bytes, %v", n, typ, len(msg), err)
		}
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "between" {
			t.Fatalf("after the %d-byte frame: %q %v", n, msg, err)
		}
	}
}

// Clients are grouped by their whole subscription, layers included: two clients of one viewport, one of
// them with the incidents layer, get different frames; a client that subscribes again moves to its new
// viewport's group, and a client that goes leaves none behind.
func TestHubGroupsFollowSubscriptions(t *testing.T) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{}, e)
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, func(*http.Request) bool { return true })
	}))
	defer srv.Close()
	type msg struct {
		Type      string            `json:"type"`
		Cells     []json.RawMessage `json:"cells"`
		Incidents *[]struct {
			ID string `json:"id"`
		} `json:"incidents"`
	}
	dial := func(sub map[string]any) (*websocket.Conn, func() msg) {
		t.Helper()
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		next := func() msg {
			t.Helper()
			for {
				_, b, err := conn.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				var m msg
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if m.Type == "delta" || m.Type == "snapshot" {
					return m
				}
			}
		}
		if err := conn.WriteJSON(sub); err != nil {
			t.Fatal(err)
		}
		if m := next(); m.Type != "snapshot" {
			t.Fatalf("first frame %q, want a snapshot", m.Type)
		}
		return conn, next
	}
	west := []float64{120.0, 30.0, 120.2, 30.4}
	east := []float64{120.3, 30.0, 120.5, 30.4}
	plain, nextPlain := dial(map[string]any{"op": "subscribe", "bbox": west, "layers": []string{"cells"}})
	defer plain.Close()
	withInc, nextInc := dial(map[string]any{"op": "subscribe", "bbox": west, "layers": []string{"cells", "incidents"}})
	defer withInc.Close()
	groups := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, g := range h.groups {
			n += len(g.clients)
			for i, c := range g.clients {
				if c.group != g || c.gi != i || c.sub.key() != g.sub.key() {
					t.Errorf("client %d of group %q is not where the group says", i, g.sub.key())
				}
			}
		}
		if n != len(h.clients) {
			t.Errorf("%d clients in groups, %d connected", n, len(h.clients))
		}
		return len(h.groups)
	}
	if n := groups(); n != 2 {
		t.Fatalf("%d groups for two subscriptions that differ only by layers, want 2", n)
	}
	cell := func(lat, lng float64) *engine.CellView {
		c, _ := geo.CellOf(lat, lng, 9)
		v := &engine.CellView{Cell: c, Res: 9, Lat: lat, Lng: lng, UpdatedAt: 1795737600000}
		v.W[0].Events = 1
		return v
	}
	h.OnDelta(&engine.Delta{Seq: 1, Now: 1795737600000, Changed: []*engine.CellView{cell(30.2, 120.1), cell(30.2, 120.4)},
		Incidents: []engine.Incident{{ID: "inc-1", Lat: 30.2, Lng: 120.1}}})
	if m := nextPlain(); m.Type != "delta" || len(m.Cells) != 1 || m.Incidents != nil {
		t.Errorf("cells-only client: %q with %d cells, incidents %v; want 1 cell and no incidents", m.Type, len(m.Cells), m.Incidents)
	}
	if m := nextInc(); m.Type != "delta" || len(m.Cells) != 1 || m.Incidents == nil || len(*m.Incidents) != 1 {
		t.Errorf("client with incidents: %q with %d cells, incidents %v; want 1 cell and inc-1", m.Type, len(m.Cells), m.Incidents)
	}
	// The cells-only client moves east: it gets the east cell, the other still the west one.
	if err := plain.WriteJSON(map[string]any{"op": "subscribe", "bbox": east, "layers": []string{"cells"}}); err != nil {
		t.Fatal(err)
	}
	if m := nextPlain(); m.Type != "snapshot" {
		t.Fatalf("after subscribing again: %q, want a snapshot", m.Type)
	}
	if n := groups(); n != 2 {
		t.Fatalf("%d groups after moving, want 2", n)
	}
	h.OnDelta(&engine.Delta{Seq: 2, Now: 1795737601000, Changed: []*engine.CellView{cell(30.21, 120.41)}})
	if m := nextPlain(); m.Type != "delta" || len(m.Cells) != 1 {
		t.Errorf("moved client: %q with %d cells, want the east cell", m.Type, len(m.Cells))
	}
	if m := nextInc(); m.Type != "delta" || len(m.Cells) != 0 {
		t.Errorf("west client: %q with %d cells, want a delta without the east cell", m.Type, len(m.Cells))
	}
	h.OnDelta(&engine.Delta{Seq: 3, Now: 1795737602000, Changed: []*engine.CellView{cell(30.21, 120.11)}})
	if m := nextInc(); m.Type != "delta" || len(m.Cells) != 1 {
		t.Errorf("west client: %q with %d cells, want the west cell", m.Type, len(m.Cells))
	}
	plain.Close()
	withInc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for groups() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d groups left after every client went", groups())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
