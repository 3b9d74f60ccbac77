package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// A frame the socket takes only part of at once is finished before anything else goes out on the connection:
// a second frame is refused (queued by the hub), and a control frame written meanwhile (gorilla's pong from
// the reading goroutine) follows the rest.
func TestPartialFrameIsFinishedFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("no connection accepted")
	}
	defer server.Close()
	server.(*net.TCPConn).SetWriteBuffer(4096)
	cork := &corkConn{Conn: server, raw: rawConnOf(server)}
	if cork.raw == nil {
		t.Fatal("no raw connection under a TCP connection")
	}
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: more than a 4 KB socket buffer takes at once
	if got := cork.tryWrite(big); got != wroteSome {
		t.Fatalf("a 10 MB frame to a client not reading: tryWrite %d, want wroteSome", got)
	}
	if got := cork.tryWrite([]byte("second")); got != wroteNothing {
		t.Fatalf("a frame while a rest is held: tryWrite %d, want wroteNothing", got)
	}
	read := make(chan []byte, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big)+len("pong"))))
		read <- b
	}()
	cork.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := cork.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if got := <-read; !bytes.Equal(got[:len(big)], big) || string(got[len(big):]) != "pong" {
		t.Fatalf("the connection carried %d bytes, not the whole frame then the control frame", len(got))
	}
	if got := cork.tryWrite([]byte("third")); got != wroteAll {
		t.Fatalf("a small frame to a client reading: tryWrite %d, want wroteAll", got)
	}
}

// The hub writes a client's deltas straight to its socket while it keeps up, through its writer while it is
// behind (frames finished, none split or lost: every message is whole JSON, seqs contiguous unless a
// snapshot replaced what was missed), and straight again once it caught up.
func TestHubWritesStraightWhileTheClientKeepsUp(t *testing.T) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{QueueLen: 8, MaxCoalesce: 1000}, e)
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, func(*http.Request) bool { return true })
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if err := conn.WriteJSON(map[string]any{"op": "subscribe", "layers": []string{"cells"}, "geometry": true}); err != nil {
		t.Fatal(err)
	}
	type msg struct {
		Type  string `json:"type"`
		Seq   uint64 `json:"seq"`
		Cells []struct {
			Events uint32 `json:"events"`
		} `json:"cells"`
	}
	next := func() msg {
		t.Helper()
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("a message that is not whole JSON (%d bytes): %v", len(b), err)
		}
		return m
	}
	if m := next(); m.Type != "hello" {
		t.Fatalf("first message %q, want hello", m.Type)
	}
	if m := next(); m.Type != "snapshot" {
		t.Fatalf("second message %q, want snapshot", m.Type)
	}
	delta := func(i, cells int) *engine.Delta {
		d := &engine.Delta{Seq: uint64(i), Now: 1795737600000 + int64(i)}
		for k := 0; k < cells; k++ {
			lat, lng := 30.2+float64(k%100)*0.002, 120.1+float64(k/100)*0.002
			c, _ := geo.CellOf(lat, lng, 9)
			v := &engine.CellView{Cell: c, Res: 9, Lat: lat, Lng: lng, UpdatedAt: d.Now}
			v.W[0].Events = uint32(1 + i)
			d.Changed = append(d.Changed, v)
		}
		return d
	}
	// Keeping up: one small delta at a time, read before the next.
	for i := 1; i <= 20; i++ {
		h.OnDelta(delta(i, 3))
		if m := next(); m.Type != "delta" || len(m.Cells) != 3 {
			t.Fatalf("delta %d: %q with %d cells", i, m.Type, len(m.Cells))
		}
	}
	if st := h.Stats(); st.Direct == 0 {
		t.Fatalf("a client keeping up got no frame straight from the hub: %+v", st)
	}
	// Behind: big deltas (2,000 cells with their boundaries, ~1 MB each) while it reads nothing.
	for i := 21; i <= 40; i++ {
		h.OnDelta(delta(i, 2000))
	}
	// The hub may merge deltas it had not taken yet (its seqs are its own): read until the last one's state.
	var last uint64
	for caughtUp := false; !caughtUp; {
		m := next()
		switch {
		case m.Type == "snapshot":
		case m.Type != "delta":
			t.Fatalf("message %q while catching up", m.Type)
		case last != 0 && m.Seq != last+1:
			t.Fatalf("delta seq %d after %d: a frame was lost", m.Seq, last)
		}
		last = m.Seq
		caughtUp = len(m.Cells) > 0 && m.Cells[0].Events == 41
	}
	direct1 := h.Stats().Direct
	for i := 41; i <= 45; i++ {
		h.OnDelta(delta(i, 3))
		if m := next(); m.Type != "delta" || m.Seq != last+1 {
			t.Fatalf("after catching up: %q seq %d, want a delta of seq %d", m.Type, m.Seq, last+1)
		}
		last++
	}
	if st := h.Stats(); st.Direct <= direct1 {
		t.Fatalf("after catching up the hub wrote no frame straight to the socket: %+v", st)
	}
}

// Pings go out in front of the frames the hub writes straight to the socket, in the same write; when no
// frame carries one (nothing to send), the writer sends it alone. The client sees every ping and every
// frame whole.
func TestPingsRideOnFrames(t *testing.T) {
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{PingInterval: 40 * time.Millisecond}, e)
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, func(*http.Request) bool { return true })
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pings, deltas atomic.Int64
	conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	if err := conn.WriteJSON(map[string]any{"op": "subscribe", "layers": []string{"cells"}}); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			var m struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				readErr <- fmt.Errorf("a message that is not whole JSON (%d bytes): %w", len(b), err)
				return
			}
			if m.Type == "delta" {
				deltas.Add(1)
			}
		}
	}()
	carried := func() uint64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		var n uint64
		for c := range h.clients {
			n += c.cork.pingsCarried()
		}
		return n
	}
	lat, lng := 30.2, 120.1
	cell, _ := geo.CellOf(lat, lng, 9)
	deadline := time.Now().Add(30 * time.Second)
	// Deltas every 5 ms: the pings ride on them.
	for i := 1; carried() < 3; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings carried by a frame, %d alone, %d seen by the client, %d deltas", carried(), h.Stats().PingsAlone, pings.Load(), deltas.Load())
		}
		v := &engine.CellView{Cell: cell, Res: 9, Lat: lat, Lng: lng, UpdatedAt: 1795737600000 + int64(i)}
		v.W[0].Events = uint32(i)
		h.OnDelta(&engine.Delta{Seq: uint64(i), Now: v.UpdatedAt, Changed: []*engine.CellView{v}})
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing to send: the writer pings alone.
	alone0, seen0 := h.Stats().PingsAlone, pings.Load()
	for h.Stats().PingsAlone < alone0+2 || pings.Load() < seen0+2 {
		if time.Now().After(deadline) {
			t.Fatalf("idle client: %d pings alone, %d seen by the client", h.Stats().PingsAlone-alone0, pings.Load()-seen0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-readErr:
		t.Fatalf("client: %v", err)
	default:
	}
	if pings.Load() < 5 || deltas.Load() == 0 {
		t.Fatalf("the client saw %d pings and %d deltas", pings.Load(), deltas.Load())
	}
}
