package schema

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// strCol builds one nullable string column of Schema straight into its three buffers (validity bitmap,
// int32 offsets, bytes), allocated from the builder's allocator. A row of an event batch leaves most of
// the nine optional string columns null, and arrow's StringBuilder spends a capacity check, an offset
// append through a closure and a bitmap update on each null (~10 % of the NATS JSON ingest worker's CPU);
// here a null is one offset store, its validity bit left zero. The array it makes is the one a
// StringBuilder makes of the same appends (TestStrColAgreesWithStringBuilder). Owned by one goroutine.
type strCol struct {
	mem                  memory.Allocator
	valid, offsets, data *memory.Buffer // nil until the first row after a newArray
	bits                 []byte         // valid's bytes up to its capacity
	offs                 []int32        // offsets' values up to its capacity
	bytes                []byte         // data's bytes up to its capacity
	rows, values, n      int            // rows, rows not null, bytes of data used
	capRows              int            // rows the validity and offsets buffers hold
}

// reserve makes room for rows more rows (their offsets and validity bits) without growing.
func (c *strCol) reserve(rows int) {
	if c.valid != nil && c.rows+rows <= c.capRows {
		return
	}
	want := c.rows + rows
	if c.valid == nil {
		c.valid, c.offsets, c.data = memory.NewResizableBuffer(c.mem), memory.NewResizableBuffer(c.mem), memory.NewResizableBuffer(c.mem)
	} else {
		want = max(want, 2*c.rows) // doubling: appends one by one grow in amortised constant time
	}
	old := len(c.bits)
	c.valid.Reserve(int(bitutil.BytesForBits(int64(want))))
	c.bits = c.valid.Buf()
	clear(c.bits[old:]) // a null's bit is left as it is: zero
	c.offsets.Reserve(arrow.Int32Traits.BytesRequired(want + 1))
	c.offs = arrow.Int32Traits.CastFromBytes(c.offsets.Buf())
	c.offs[0] = 0
	c.capRows = min(len(c.offs)-1, 8*len(c.bits))
}

// appendNull adds a null row.
func (c *strCol) appendNull() {
	if c.rows >= c.capRows {
		c.reserve(1)
	}
	c.rows++
	c.offs[c.rows] = int32(c.n)
}

// appendBytes adds s, or a null row when s is empty (the schema's absent string).
func (c *strCol) appendBytes(s []byte) { appendStr(c, s) }

// appendString is appendBytes of a string.
func (c *strCol) appendString(s string) { appendStr(c, s) }

// appendStr is appendBytes and appendString: one instantiation each, so neither converts its argument.
func appendStr[T string | []byte](c *strCol, s T) {
	if len(s) == 0 {
		c.appendNull()
		return
	}
	c.room(len(s))
	copy(c.bytes[c.n:], s)
	c.valued(len(s))
}

// room makes room for one more row holding n bytes.
func (c *strCol) room(n int) {
	if c.rows >= c.capRows {
		c.reserve(1)
	}
	if c.n+n > len(c.bytes) {
		c.data.Reserve(max(c.n+n, 2*len(c.bytes), 256))
		c.bytes = c.data.Buf()
	}
}

// valued ends a row whose n bytes were copied in.
func (c *strCol) valued(n int) {
	c.n += n
	c.bits[c.rows>>3] |= 1 << (c.rows & 7)
	c.rows++
	c.values++
	c.offs[c.rows] = int32(c.n)
}

// newArray returns the rows appended so far as a String array (the caller owns it) and starts afresh: the
// buffers now belong to the array.
func (c *strCol) newArray() arrow.Array {
	if c.valid == nil {
		c.reserve(0)
	}
	c.valid.ResizeNoShrink(int(bitutil.BytesForBits(int64(c.rows))))
	c.offsets.ResizeNoShrink(arrow.Int32Traits.BytesRequired(c.rows + 1))
	c.data.ResizeNoShrink(c.n)
	d := array.NewData(arrow.BinaryTypes.String, c.rows, []*memory.Buffer{c.valid, c.offsets, c.data}, nil, c.rows-c.values, 0)
	a := array.NewStringData(d)
	d.Release()
	c.release()
	return a
}

// release lets go of the buffers (an array made of them keeps its own references).
func (c *strCol) release() {
	for _, b := range []*memory.Buffer{c.valid, c.offsets, c.data} {
		if b != nil {
			b.Release()
		}
	}
	*c = strCol{mem: c.mem}
}
