package api

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
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
