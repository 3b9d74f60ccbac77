package api

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine/queue"
)

// The hub's writes: frames built once, a client's outbox, and the connection under the websocket.
//
// A frame goes to a client's socket from the hub's own goroutine when nothing of that client's is queued or
// being written and the socket takes the whole frame at once (a non-blocking write: no goroutine switch,
// no timer). Otherwise it waits in the client's outbox for the client's writer goroutine, which writes what
// is queued in one corked write, under a deadline. A frame the socket took only part of is finished before
// anything else is written to the connection (corkConn.rest), so frames never interleave.

// frame is one message for clients: a websocket text frame (header and payload) built once and written as
// it is to every client it goes to. seq is the hub delta it carries (0: none, such as alerts and answers).
//
// The hub frames messages itself rather than with gorilla's PreparedMessage, which copies every message
// into a frame built through a throw-away connection with a 4 KB buffer of its own (11 % of the hub's CPU
// on a city's delta for 1,000 viewports): a message is encoded after frameReserve free bytes and its header
// written in front of it. Server frames are never masked, and compression is never negotiated (upgrader).
type frame struct {
	data []byte // the whole frame
	hdr  int    // the header's length: data[hdr:] is the message
	seq  uint64
}

// frameReserve is room for the longest header of a server's frame (2 + 8 bytes of length).
const frameReserve = 10

// frameOf frames buf[frameReserve:] as a text message in place (buf's first frameReserve bytes are free).
func frameOf(buf []byte, seq uint64) *frame {
	n := len(buf) - frameReserve
	var h [frameReserve]byte
	h[0] = 0x80 | websocket.TextMessage // FIN, text
	hl := 2
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		hl = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		hl = 10
	}
	start := frameReserve - hl
	copy(buf[start:], h[:hl])
	return &frame{data: buf[start:], hdr: hl, seq: seq}
}

// newFrame frames a copy of msg as a text message.
func newFrame(msg []byte, seq uint64) *frame {
	buf := make([]byte, frameReserve, frameReserve+len(msg))
	return frameOf(append(buf, msg...), seq)
}

// message is the frame's payload.
func (f *frame) message() []byte { return f.data[f.hdr:] }

// outbox is a client's bounded queue of frames and who writes them. It is the "ws-client" queue of
// /metrics (policy reject: a full outbox coalesces the client).
type outbox struct {
	mu      sync.Mutex
	q       []*frame // oldest first; nil asks the writer for a snapshot
	limit   int
	writing bool          // the writer goroutine has taken frames and is writing them (or the hello)
	wake    chan struct{} // the writer has something to do
	pushed  uint64
	full    uint64
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: max(limit, 1), writing: true, wake: make(chan struct{}, 1)}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// opened lets the hub write straight to the socket once the writer has written the hello.
func (o *outbox) opened() {
	o.mu.Lock()
	o.writing = false
	if len(o.q) > 0 {
		o.signal()
	}
	o.mu.Unlock()
}

// offer writes f straight to the socket when nothing is queued or being written and the socket takes it
// at once (or part of it: cork finishes it first: direct), else queues it for the writer. Not ok: the
// outbox is full (o.mu held).
func (o *outbox) offer(f *frame, cork *corkConn) (ok, direct bool) {
	if f != nil && !o.writing && len(o.q) == 0 && cork != nil {
		switch cork.tryWrite(f.data) {
		case wroteAll:
			o.pushed++
			return true, true
		case wroteSome: // the writer finishes the frame
			o.pushed++
			o.signal()
			return true, true
		}
	}
	return o.queue(f), false
}

// push queues f for the writer; false when the outbox is full (takes o.mu).
func (o *outbox) push(f *frame) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queue(f)
}

// queue is push with o.mu held.
func (o *outbox) queue(f *frame) bool {
	if len(o.q) >= o.limit {
		o.full++
		return false
	}
	o.q = append(o.q, f)
	o.pushed++
	o.signal()
	return true
}

// take hands the writer up to n queued frames; it writes them, then calls done.
func (o *outbox) take(n int) []*frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.q))
	batch := append([]*frame(nil), o.q[:n]...)
	o.q = append(o.q[:0], o.q[n:]...)
	o.writing = true
	return batch
}

// done ends the writer's turn; what was queued meanwhile wakes it again.
func (o *outbox) done() {
	o.mu.Lock()
	o.writing = false
	if len(o.q) > 0 {
		o.signal()
	}
	o.mu.Unlock()
}

// drain drops what is queued: a snapshot replaces it (o.mu held).
func (o *outbox) drain() {
	clear(o.q)
	o.q = o.q[:0]
}

func (o *outbox) stat() queue.Stat {
	o.mu.Lock()
	defer o.mu.Unlock()
	return queue.Stat{Name: "ws-client", Policy: queue.Reject, Len: len(o.q), Limit: o.limit, Pushed: o.pushed, Full: o.full}
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
	w.cork = &corkConn{Conn: conn, raw: rawConnOf(conn)}
	return w.cork, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *hijackCork) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// PlainConn is a connection wrapper that writes every byte as it is to the connection it wraps (a listener's
// accounting wrapper): the hub writes frames to the socket under it directly. A wrapper that transforms the
// bytes (TLS) must not implement it.
type PlainConn interface {
	PlainConn() net.Conn
}

// rawConnOf returns the socket under conn for non-blocking writes, or nil (then every frame goes through the
// writer goroutine).
func rawConnOf(conn net.Conn) syscall.RawConn {
	for range 8 {
		switch c := conn.(type) {
		case *net.TCPConn:
			rc, err := c.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case PlainConn:
			conn = c.PlainConn()
		default:
			return nil
		}
	}
	return nil
}

// corkConn is the connection under a client's websocket. Every write to it is a whole frame (gorilla's
// control frames from the reading goroutine, the hello and close, the hub's frames), under its mutex, so
// frames never interleave:
//   - the writer corks it before it writes several queued frames and flushes once, so a client that is behind
//     costs one system call per batch instead of one per message;
//   - the hub tries a frame with one non-blocking write (tryWrite); what the socket did not take (rest) is
//     written before anything else.
type corkConn struct {
	net.Conn
	raw      syscall.RawConn // nil: no non-blocking writes
	mu       sync.Mutex
	corked   bool
	buf      []byte
	rest     []byte    // the part of a frame the socket did not take at once
	deadline time.Time // the write deadline last set

	// tryWrite's call on the socket, made once (a closure per write would be allocated per write): what
	// it sends and what came of it (mu held).
	send    func(fd uintptr) bool
	sending []byte
	sent    int
	sendErr error

	pingDue  bool   // a ping goes out in front of the next frame tryWrite writes
	withPing []byte // the ping and that frame, sent together
	pings    uint64 // pings that went out in front of a frame
}

// pingFrame is an empty websocket ping from the server (unmasked).
var pingFrame = []byte{0x80 | websocket.PingMessage, 0}

// askPing asks tryWrite to send a ping in front of the next frame; false: the connection has no direct
// writes (the writer pings).
func (c *corkConn) askPing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw == nil {
		return false
	}
	c.pingDue = true
	return true
}

// takePing returns whether a ping asked for is still due (no frame carried it) and clears it.
func (c *corkConn) takePing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	due := c.pingDue
	c.pingDue = false
	return due
}

// pingsCarried is the number of pings that went out in front of a frame.
func (c *corkConn) pingsCarried() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pings
}

// tryWrite results.
const (
	wroteNothing = iota // the frame is not written: queue it
	wroteSome           // the socket took part of it: the rest is held, the writer must flush
	wroteAll
)

// tryWrite writes p with one non-blocking system call, when nothing is corked or held back.
func (c *corkConn) tryWrite(p []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw == nil || c.corked || len(c.rest) > 0 {
		return wroteNothing
	}
	if now := time.Now(); !c.deadline.IsZero() && now.After(c.deadline) {
		// The runtime refuses any write past the deadline, even one that would not wait; the writer sets a
		// fresh one before it waits on the socket.
		c.deadline = time.Time{}
		if c.Conn.SetWriteDeadline(time.Time{}) != nil {
			return wroteNothing
		}
	}
	if c.send == nil {
		c.send = func(fd uintptr) bool {
			c.sent, c.sendErr = sendNow(fd, c.sending)
			return true // never wait: the writer goroutine does
		}
	}
	if c.pingDue { // the ping rides in the same system call
		c.withPing = append(append(c.withPing[:0], pingFrame...), p...)
		p = c.withPing
	}
	c.sending = p
	err := c.raw.Write(c.send)
	n, werr := c.sent, c.sendErr
	c.sending, c.sendErr = nil, nil
	if n > 0 && c.pingDue {
		// (withPing is not touched again before rest is written: the next ping is an interval away, and
		// tryWrite writes nothing while rest is held)
		c.pingDue = false
		c.pings++
	}
	switch {
	case err != nil || werr != nil || n <= 0:
		return wroteNothing // EAGAIN, or an error the writer meets again and reports
	case n < len(p):
		c.rest = p[n:]
		return wroteSome
	}
	return wroteAll
}

func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.writeRest(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// writeRest finishes the frame the socket took only part of (mu held).
func (c *corkConn) writeRest() error {
	if len(c.rest) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.rest)
	c.rest = nil
	return err
}

func (c *corkConn) corkOn() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// flush uncorks and writes what was held back: the rest of a frame, then what was corked (under the write
// deadline last set).
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if err := c.writeRest(); err != nil {
		return err
	}
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
