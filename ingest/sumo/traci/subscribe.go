package traci

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Variable subscriptions: SUMO sends the subscribed variables of an object with every step's answer, so a
// controller that reads thousands of loops or lanes each second pays one message instead of one command each.
const (
	CmdGetLoop = 0xa0 // induction loop
	CmdSubLoop = 0xd0
	CmdSubLane = 0xd3
	CmdSubVeh  = 0xd4
	CmdSubSim  = 0xdb

	VarLoopIDs     = 0x12 // vehicles on the loop in the last step (string list)
	VarLoopOcc     = 0x13 // occupancy of the last step, percent
	VarPosition    = 0x42 // x, y (position 2D)
	VarAngle       = 0x43 // degrees, clockwise from north
	VarDepartedIDs = 0x74
	VarArrivedIDs  = 0x7a
	VarTeleported  = 0x76 // vehicles that started teleporting this step
	VarLaneID      = 0x51

	typePos2D = 0x01
	typeColor = 0x11
	typeDList = 0x10
)

// subscribeAll is the begin and end SUMO reads as "the whole simulation" (INVALID_DOUBLE_VALUE).
const subscribeAll = -1073741824.0

// Sub is one object's subscribed values after a step, in the order they were subscribed.
type Sub struct {
	Cmd  byte // the response command: the subscribe command + 0x10
	ID   string
	Vals []Result
}

// Subscribe asks SUMO to report vars of object id (of the domain of the subscribe command cmd, e.g. CmdSubLoop)
// after every step from now on, and returns their current values.
func (c *Client) Subscribe(cmd byte, id string, vars ...byte) (Sub, error) {
	if len(vars) == 0 || len(vars) > 255 {
		return Sub{}, fmt.Errorf("cannot subscribe %s (%d variables)", id, len(vars))
	}
	c.begin()
	p := binary.BigEndian.AppendUint64(nil, math.Float64bits(subscribeAll))
	p = binary.BigEndian.AppendUint64(p, math.Float64bits(subscribeAll))
	p = append(p, encStr(id)...)
	p = append(p, byte(len(vars)))
	p = append(p, vars...)
	c.cmd(cmd, p)
	res, err := c.flush()
	if err != nil {
		return Sub{}, fmt.Errorf("cannot subscribe %s: %w", id, err)
	}
	if res[0].Err != nil {
		return Sub{}, fmt.Errorf("cannot subscribe %s: %w", id, res[0].Err)
	}
	if len(res[0].subs) != 1 {
		return Sub{}, fmt.Errorf("cannot subscribe %s: %d answers", id, len(res[0].subs))
	}
	return res[0].subs[0], nil
}

// Subscribe adds a variable subscription to the batch (its answer comes back as the command's Result.Subs).
func (b *Batch) Subscribe(cmd byte, id string, vars ...byte) {
	p := binary.BigEndian.AppendUint64(nil, math.Float64bits(subscribeAll))
	p = binary.BigEndian.AppendUint64(p, math.Float64bits(subscribeAll))
	p = append(p, encStr(id)...)
	p = append(p, byte(len(vars)))
	p = append(p, vars...)
	b.c.cmd(cmd, p)
	b.n++
}

// Subs returns the subscription answers a subscribe command in a batch received.
func (r Result) Subs() []Sub { return r.subs }

// readSubs reads n subscription answers (step results, or the answer to one subscribe command).
func readSubs(d *decoder, n int) ([]Sub, error) {
	out := make([]Sub, 0, n)
	for i := 0; i < n; i++ {
		body, id := d.cmdBody()
		if d.err != nil {
			return out, fmt.Errorf("cannot parse subscription result: %w", d.err)
		}
		sd := &decoder{b: body}
		s := Sub{Cmd: id, ID: sd.str()}
		if id < 0xe0 || id > 0xef {
			return out, fmt.Errorf("cannot parse subscription result 0x%02x for %q: only variable subscriptions are read", id, s.ID)
		}
		nv := int(sd.u8())
		s.Vals = make([]Result, nv)
		for j := 0; j < nv && sd.err == nil; j++ {
			sd.u8() // variable
			status := sd.u8()
			start := sd.p
			sd.skipValue()
			if status != 0 {
				s.Vals[j].Err = fmt.Errorf("%w (subscription of %q)", ErrCommand, s.ID)
				continue
			}
			s.Vals[j].raw = sd.b[start:sd.p]
		}
		if sd.err != nil {
			return out, fmt.Errorf("cannot parse subscription result for %q: %w", s.ID, sd.err)
		}
		out = append(out, s)
	}
	return out, nil
}

// skipValue steps over one typed value.
func (d *decoder) skipValue() {
	switch t := d.u8(); t {
	case typeUByte, typeByte:
		d.need(1)
		d.p++
	case typeInt, typeColor:
		d.need(4)
		d.p += 4
	case typeDouble:
		d.need(8)
		d.p += 8
	case typePos2D:
		d.need(16)
		d.p += 16
	case typeString:
		d.str()
	case typeStrList:
		n := int(d.i32())
		for i := 0; i < n && d.err == nil; i++ {
			d.str()
		}
	case typeDList:
		n := int(d.i32())
		if n < 0 || !d.need(8*n) {
			d.fail(fmt.Errorf("bad double list of %d", n))
			return
		}
		d.p += 8 * n
	case typeCompound:
		n := int(d.i32())
		for i := 0; i < n && d.err == nil; i++ {
			d.skipValue()
		}
	default:
		d.fail(fmt.Errorf("unknown value type 0x%02x", t))
	}
	if d.p > len(d.b) {
		d.fail(fmt.Errorf("value runs past the message"))
	}
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Pos decodes a 2D position.
func (r Result) Pos() (x, y float64, ok bool) {
	d := &decoder{b: r.raw}
	if d.u8() != typePos2D {
		return 0, 0, false
	}
	x, y = d.f64(), d.f64()
	return x, y, d.err == nil
}
