package schema

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// A strCol makes the array a StringBuilder makes of the same appends (an empty string a null), across
// reservations, growth from nothing, long values and several batches, and frees everything it allocated.
func TestStrColAgreesWithStringBuilder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(8, 1))
	c := &strCol{mem: mem}
	defer c.release()
	for batch := 0; batch < 40; batch++ {
		sb := array.NewStringBuilder(mem)
		rows := []int{0, 1, 7, 8, 9, 63, 64, 65, 1000, rng.IntN(5000)}[batch%10]
		if rng.IntN(2) == 0 {
			c.reserve(rng.IntN(2 * (rows + 1)))
		}
		nullShare := []int{0, 1, 2, 10}[rng.IntN(4)] // one in n rows holds a value (0: every row)
		for i := 0; i < rows; i++ {
			s := ""
			if nullShare == 0 || rng.IntN(nullShare) == 0 {
				s = strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(40)) + "é"
				if rng.IntN(50) == 0 {
					s = strings.Repeat("x", 5000)
				}
			}
			if rng.IntN(2) == 0 {
				c.appendString(s)
			} else {
				c.appendBytes([]byte(s))
			}
			if s == "" {
				sb.AppendNull()
			} else {
				sb.Append(s)
			}
		}
		got, want := c.newArray(), sb.NewArray()
		if !array.Equal(got, want) || got.NullN() != want.NullN() || got.Len() != rows {
			t.Fatalf("batch %d (%d rows): strCol made\n%v (%d nulls), StringBuilder\n%v (%d nulls)", batch, rows, got, got.NullN(), want, want.NullN())
		}
		if g, w := got.(*array.String).ValueOffsets(), want.(*array.String).ValueOffsets(); rows > 0 && !slices.Equal(g, w) {
			t.Fatalf("batch %d: offsets %v, StringBuilder's %v", batch, g, w)
		}
		got.Release()
		want.Release()
		sb.Release()
	}
}
