// Package traci is a small client of SUMO's TraCI protocol (TCP, big-endian; https://sumo.dlr.de/docs/TraCI/
// Protocol.html): start sumo with --remote-port, step the simulation, read traffic lights, lanes and vehicles,
// and set signal phases, durations and states. Several commands can be batched in one message (Batch), which
// is what makes per-step polling of hundreds of lanes cheap.
package traci

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// Command and variable ids (SUMO 1.x constants).
const (
	cmdGetVersion = 0x00
	cmdSimStep    = 0x02
	cmdClose      = 0x7F

	CmdGetTL    = 0xa2
	CmdSetTL    = 0xc2
	CmdGetLane  = 0xa3
	CmdGetVeh   = 0xa4
	CmdSetVeh   = 0xc4
	CmdGetSim   = 0xab
	CmdGetEdge  = 0xaa
	VarIDList   = 0x00
	VarTLState  = 0x20
	VarTLPhase  = 0x28
	VarTLProg   = 0x29
	VarTLPhDur  = 0x24
	VarTLSetPh  = 0x22
	VarTLSetPrg = 0x23
	VarTLNext   = 0x2d
	VarLaneN    = 0x10
	VarLaneV    = 0x11
	VarLaneHalt = 0x14
	VarLength   = 0x44
	VarSpeed    = 0x40
	VarRoadID   = 0x50
	VarRoute    = 0x57
	VarLanePos  = 0x56
	VarNextTLS  = 0x70
	VarSimTime  = 0x66
	VarMinExp   = 0x7d
	VarArrived  = 0x79
	VarRemove   = 0x81 // set on a vehicle: take it out of the simulation (a byte reason: RemoveArrived, ...)

	typeInt      = 0x09
	typeDouble   = 0x0B
	typeString   = 0x0C
	typeStrList  = 0x0E
	typeCompound = 0x0F
	typeByte     = 0x08
	typeUByte    = 0x07
)

// Client is a TraCI connection. It is not safe for concurrent use.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
	cmds int
}

// Dial connects to a SUMO TraCI server, retrying until timeout (sumo needs a moment to load the network).
func Dial(addr string, timeout time.Duration) (*Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			cl := &Client{conn: c, r: bufio.NewReaderSize(c, 1<<16)}
			if _, err := cl.Version(); err != nil {
				c.Close()
				return nil, err
			}
			return cl, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cannot connect to TraCI at %s (after %v): %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close ends the simulation and the connection.
func (c *Client) Close() error {
	c.begin()
	c.cmd(cmdClose, nil)
	_, err := c.flush()
	c.conn.Close()
	return err
}

// Version returns the TraCI API version and SUMO's version string.
func (c *Client) Version() (string, error) {
	c.begin()
	c.cmd(cmdGetVersion, nil)
	res, err := c.flush()
	if err != nil {
		return "", fmt.Errorf("cannot get TraCI version: %w", err)
	}
	d := &decoder{b: res[0].raw}
	api := d.i32()
	return fmt.Sprintf("api %d, %s", api, d.str()), d.err
}

// Step advances the simulation by one step.
func (c *Client) Step() error {
	_, err := c.StepSubs()
	return err
}

// StepSubs advances the simulation by one step and returns the subscribed values (see Subscribe).
func (c *Client) StepSubs() ([]Sub, error) {
	c.begin()
	var p [8]byte
	c.cmd(cmdSimStep, p[:])
	res, err := c.flush()
	if err != nil {
		return nil, fmt.Errorf("cannot step simulation: %w", err)
	}
	if res[0].Err != nil {
		return nil, fmt.Errorf("cannot step simulation: %w", res[0].Err)
	}
	return res[0].subs, nil
}

// Batch collects get and set commands sent in one message.
type Batch struct {
	c *Client
	n int
}

// NewBatch starts a batch.
func (c *Client) NewBatch() *Batch {
	c.begin()
	return &Batch{c: c}
}

// Get adds a get command (e.g. CmdGetLane, VarLaneHalt, "lane_0").
func (b *Batch) Get(cmd, v byte, id string) {
	b.c.cmd(cmd, append([]byte{v}, encStr(id)...))
	b.n++
}

// SetInt, SetDouble and SetString add set commands.
func (b *Batch) SetInt(cmd, v byte, id string, x int32) {
	p := append([]byte{v}, encStr(id)...)
	p = append(p, typeInt)
	p = binary.BigEndian.AppendUint32(p, uint32(x))
	b.c.cmd(cmd, p)
	b.n++
}

// SetByte adds a set command with a byte value (e.g. CmdSetVeh, VarRemove, RemoveArrived).
func (b *Batch) SetByte(cmd, v byte, id string, x byte) {
	p := append([]byte{v}, encStr(id)...)
	p = append(p, typeByte, x)
	b.c.cmd(cmd, p)
	b.n++
}

// RemoveArrived is VarRemove's reason for a vehicle that reached its destination where it stands: SUMO ends its
// trip there (tripinfo arrival now) rather than recording it as vaporized.
const RemoveArrived = 2

// SetDouble adds a set command with a double value.
func (b *Batch) SetDouble(cmd, v byte, id string, x float64) {
	p := append([]byte{v}, encStr(id)...)
	p = append(p, typeDouble)
	p = binary.BigEndian.AppendUint64(p, math.Float64bits(x))
	b.c.cmd(cmd, p)
	b.n++
}

// SetString adds a set command with a string value.
func (b *Batch) SetString(cmd, v byte, id, x string) {
	p := append([]byte{v}, encStr(id)...)
	p = append(p, typeString)
	p = append(p, encStr(x)...)
	b.c.cmd(cmd, p)
	b.n++
}

// SetStrings adds a set command with a string list value (e.g. a vehicle's route: CmdSetVeh, VarRoute).
func (b *Batch) SetStrings(cmd, v byte, id string, xs []string) {
	p := append([]byte{v}, encStr(id)...)
	p = append(p, typeStrList)
	p = binary.BigEndian.AppendUint32(p, uint32(len(xs)))
	for _, x := range xs {
		p = append(p, encStr(x)...)
	}
	b.c.cmd(cmd, p)
	b.n++
}

// Result is one command's answer.
type Result struct {
	Err  error  // the command failed (e.g. unknown object)
	raw  []byte // the value of a get: type byte and value
	subs []Sub  // subscription results of a step or a subscribe command
}

// Do sends the batch and returns one result per command, in order. An empty batch sends nothing (SUMO closes
// the connection on an empty message).
func (b *Batch) Do() ([]Result, error) {
	if b.n == 0 {
		return nil, nil
	}
	return b.c.flush()
}

// Int, Float, String, Strings decode a get result.
func (r Result) Int() int {
	d := &decoder{b: r.raw}
	if d.u8() != typeInt {
		return 0
	}
	return int(d.i32())
}

// Float decodes a double.
func (r Result) Float() float64 {
	d := &decoder{b: r.raw}
	if d.u8() != typeDouble {
		return math.NaN()
	}
	return d.f64()
}

// String decodes a string.
func (r Result) String() string {
	d := &decoder{b: r.raw}
	if d.u8() != typeString {
		return ""
	}
	return d.str()
}

// Strings decodes a string list.
func (r Result) Strings() []string {
	d := &decoder{b: r.raw}
	if d.u8() != typeStrList {
		return nil
	}
	n := int(d.i32())
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.str())
	}
	return out
}

// NextTLS is an upcoming signal on a vehicle's route.
type NextTLS struct {
	ID        string
	LinkIndex int
	DistM     float64
	State     byte
}

// NextTLS decodes a vehicle's VarNextTLS.
func (r Result) NextTLS() []NextTLS {
	d := &decoder{b: r.raw}
	if d.u8() != typeCompound {
		return nil
	}
	d.i32()
	d.u8()
	n := int(d.i32())
	var out []NextTLS
	for i := 0; i < n && d.err == nil; i++ {
		var t NextTLS
		d.u8()
		t.ID = d.str()
		d.u8()
		t.LinkIndex = int(d.i32())
		d.u8()
		t.DistM = d.f64()
		d.u8()
		t.State = d.u8()
		out = append(out, t)
	}
	return out
}

func (c *Client) begin() { c.buf, c.cmds = append(c.buf[:0], 0, 0, 0, 0), 0 }

func (c *Client) cmd(id byte, payload []byte) {
	n := 2 + len(payload)
	if n <= 255 {
		c.buf = append(c.buf, byte(n), id)
	} else {
		c.buf = append(c.buf, 0)
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(n+4))
		c.buf = append(c.buf, id)
	}
	c.buf = append(c.buf, payload...)
	c.cmds++
}

func encStr(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

// ErrCommand wraps a command SUMO refused.
var ErrCommand = errors.New("TraCI command failed")

// flush sends the message and reads one status (and, for gets, one response) per command.
func (c *Client) flush() ([]Result, error) {
	binary.BigEndian.PutUint32(c.buf, uint32(len(c.buf)))
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, fmt.Errorf("cannot send TraCI message: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("cannot read TraCI response: %w", err)
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
	if _, err := io.ReadFull(c.r, msg); err != nil {
		return nil, fmt.Errorf("cannot read TraCI response: %w", err)
	}
	d := &decoder{b: msg}
	// Walk the commands we sent to know which expect a value.
	sent := &decoder{b: c.buf[4:]}
	out := make([]Result, 0, c.cmds)
	for i := 0; i < c.cmds; i++ {
		_, sid := sent.cmdHeader()
		_ = sent
		body, id := d.cmdBody()
		if d.err != nil {
			return out, fmt.Errorf("cannot parse TraCI response: %w", d.err)
		}
		sd := &decoder{b: body}
		status := sd.u8()
		desc := sd.str()
		var res Result
		if id != sid {
			return out, fmt.Errorf("cannot parse TraCI response: status for command 0x%02x, sent 0x%02x", id, sid)
		}
		if status != 0 {
			res.Err = fmt.Errorf("%w (0x%02x): %s", ErrCommand, id, desc)
		}
		switch {
		case sid == cmdSimStep && status == 0:
			n := int(d.i32())
			if n < 0 || n > len(d.b) {
				return out, fmt.Errorf("cannot parse TraCI step: %d subscription results", n)
			}
			subs, err := readSubs(d, n)
			if err != nil {
				return out, err
			}
			res.subs = subs
		case sid >= 0xd0 && sid <= 0xdf && status == 0:
			subs, err := readSubs(d, 1)
			if err != nil {
				return out, err
			}
			res.subs = subs
		case sid == cmdGetVersion && status == 0:
			b, _ := d.cmdBody()
			res.raw = b
		case sid >= 0xa0 && sid <= 0xaf && status == 0:
			b, _ := d.cmdBody()
			rd := &decoder{b: b}
			rd.u8()  // variable
			rd.str() // object id
			res.raw = rd.b[rd.p:]
		}
		out = append(out, res)
	}
	return out, d.err
}

type decoder struct {
	b   []byte
	p   int
	err error
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if d.p+n > len(d.b) {
		d.err = io.ErrUnexpectedEOF
		return false
	}
	return true
}

func (d *decoder) u8() byte {
	if !d.need(1) {
		return 0
	}
	d.p++
	return d.b[d.p-1]
}

func (d *decoder) i32() int32 {
	if !d.need(4) {
		return 0
	}
	d.p += 4
	return int32(binary.BigEndian.Uint32(d.b[d.p-4:]))
}

func (d *decoder) f64() float64 {
	if !d.need(8) {
		return 0
	}
	d.p += 8
	return math.Float64frombits(binary.BigEndian.Uint64(d.b[d.p-8:]))
}

func (d *decoder) str() string {
	n := int(d.i32())
	if n < 0 || !d.need(n) {
		return ""
	}
	d.p += n
	return string(d.b[d.p-n : d.p])
}

// cmdBody reads one command (length, id, body) and returns body and id.
func (d *decoder) cmdBody() ([]byte, byte) {
	n := int(d.u8())
	hdr := 1
	if n == 0 {
		n = int(d.i32())
		hdr = 5
	}
	if n < hdr+1 || !d.need(n-hdr) {
		if d.err == nil {
			d.err = fmt.Errorf("bad command length %d", n)
		}
		return nil, 0
	}
	id := d.b[d.p]
	body := d.b[d.p+1 : d.p+n-hdr]
	d.p += n - hdr
	return body, id
}

// cmdHeader skips one sent command and returns its body and id.
func (d *decoder) cmdHeader() ([]byte, byte) { return d.cmdBody() }

// Len is the number of commands in the batch.
func (b *Batch) Len() int { return b.n }

// Discard drops an unsent batch.
func (b *Batch) Discard() { b.c.begin() }
