package schema

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// An f32Col makes the array a Float32Builder makes of the same appends, its nulls' values 0, across
// reservations, growth from nothing and several batches, and frees everything it allocated.
func TestF32ColAgreesWithFloat32Builder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(8, 2))
	c := &f32Col{mem: mem}
	defer c.release()
	for batch := 0; batch < 40; batch++ {
		fb := array.NewFloat32Builder(mem)
		rows := []int{0, 1, 7, 8, 9, 63, 64, 65, 1000, rng.IntN(5000)}[batch%10]
		if rng.IntN(2) == 0 {
			c.reserve(rng.IntN(2 * (rows + 1)))
		}
		nullShare := []int{0, 1, 2, 10}[rng.IntN(4)] // one in n rows holds a value (0: every row)
		for i := 0; i < rows; i++ {
			if nullShare == 0 || rng.IntN(nullShare) == 0 {
				x := float32(rng.NormFloat64() * 100)
				c.appendValue(x)
				fb.Append(x)
			} else {
				c.appendNull()
				fb.AppendNull()
			}
		}
		got, want := c.newArray(), fb.NewArray()
		if !array.Equal(got, want) || got.NullN() != want.NullN() || got.Len() != rows {
			t.Fatalf("batch %d (%d rows): f32Col made\n%v (%d nulls), Float32Builder\n%v (%d nulls)", batch, rows, got, got.NullN(), want, want.NullN())
		}
		g := got.(*array.Float32)
		for i := 0; i < rows; i++ {
			if g.IsNull(i) && g.Value(i) != 0 {
				t.Fatalf("batch %d: null row %d holds %v", batch, i, g.Value(i))
			}
		}
		got.Release()
		want.Release()
		fb.Release()
	}
}
