package schema

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// f32Col builds one nullable float32 column of Schema straight into its two buffers (validity bitmap,
// values), allocated from the builder's allocator, as strCol does the string columns: a row leaves most of
// the ten measurement columns null, and arrow's Float32Builder spent a capacity check and a bitmap update
// through two calls on each. A null's value is stored as 0 (the bytes the log keeps do not depend on what the
// allocator left there). The array is the one a Float32Builder makes of the same appends
// (TestF32ColAgreesWithFloat32Builder). Owned by one goroutine.
type f32Col struct {
	mem           memory.Allocator
	valid, values *memory.Buffer // nil until the first row after a newArray
	bits          []byte         // valid's bytes up to its capacity
	vals          []float32      // values up to its capacity
	rows, set     int            // rows, rows not null
	capRows       int            // rows both buffers hold
}

// reserve makes room for rows more rows without growing.
func (c *f32Col) reserve(rows int) {
	if c.valid != nil && c.rows+rows <= c.capRows {
		return
	}
	want := c.rows + rows
	if c.valid == nil {
		c.valid, c.values = memory.NewResizableBuffer(c.mem), memory.NewResizableBuffer(c.mem)
	} else {
		want = max(want, 2*c.rows)
	}
	old := len(c.bits)
	c.valid.Reserve(int(bitutil.BytesForBits(int64(want))))
	c.bits = c.valid.Buf()
	clear(c.bits[old:])
	c.values.Reserve(arrow.Float32Traits.BytesRequired(want))
	c.vals = arrow.Float32Traits.CastFromBytes(c.values.Buf())
	c.capRows = min(len(c.vals), 8*len(c.bits))
}

// appendNull adds a null row.
func (c *f32Col) appendNull() {
	if c.rows >= c.capRows {
		c.reserve(1)
	}
	c.vals[c.rows] = 0
	c.rows++
}

// appendValue adds x.
func (c *f32Col) appendValue(x float32) {
	if c.rows >= c.capRows {
		c.reserve(1)
	}
	c.vals[c.rows] = x
	c.bits[c.rows>>3] |= 1 << (c.rows & 7)
	c.rows++
	c.set++
}

// newArray returns the rows appended so far as a Float32 array (the caller owns it) and starts afresh.
func (c *f32Col) newArray() arrow.Array {
	if c.valid == nil {
		c.reserve(0)
	}
	c.valid.ResizeNoShrink(int(bitutil.BytesForBits(int64(c.rows))))
	c.values.ResizeNoShrink(arrow.Float32Traits.BytesRequired(c.rows))
	d := array.NewData(arrow.PrimitiveTypes.Float32, c.rows, []*memory.Buffer{c.valid, c.values}, nil, c.rows-c.set, 0)
	a := array.NewFloat32Data(d)
	d.Release()
	c.release()
	return a
}

// release lets go of the buffers (an array made of them keeps its own references).
func (c *f32Col) release() {
	for _, b := range []*memory.Buffer{c.valid, c.values} {
		if b != nil {
			b.Release()
		}
	}
	*c = f32Col{mem: c.mem}
}
