package schema

import (
	"math"

	"github.com/apache/arrow/go/v17/arrow"
)

// RowView is one row of Schema as a decoder sees it before it is appended: numbers by column, strings as
// byte views into the decoder's input (no Go string per field). Set marks the columns given (bit c for
// column c); a column not set, a string set to no bytes and a NaN number are absent (null). A decoder keeps
// one RowView and reuses it for every row.
type RowView struct {
	Set      uint32
	Kind     Kind
	TS       int64
	Severity int8
	Num      [NumCols]float64 // ColLat, ColLng and every float32 and float64 column
	Str      [NumCols][]byte  // ColID and every string column
}

// Has reports whether column c was given (a null or an empty string counts as given, and absent).
func (r *RowView) Has(c int) bool { return r.Set&(1<<c) != 0 }

// NumOf is the number of column c, NaN when not given.
func (r *RowView) NumOf(c int) float64 {
	if !r.Has(c) {
		return math.NaN()
	}
	return r.Num[c]
}

// StrOf is the string bytes of column c, nil when not given.
func (r *RowView) StrOf(c int) []byte {
	if !r.Has(c) {
		return nil
	}
	return r.Str[c]
}

// AppendView adds the row r with its base-resolution cell: the same row Append makes of the Event holding
// the same values (float32 columns narrowed the same way), with no Event and no string in between.
func (bb *BatchBuilder) AppendView(r *RowView, cell uint64) {
	bb.rows++
	bb.ts.Append(arrow.Timestamp(r.TS))
	bb.kind.Append(uint8(r.Kind))
	bb.id.BinaryBuilder.Append(r.StrOf(ColID))
	bb.lat.Append(r.Num[ColLat])
	bb.lng.Append(r.Num[ColLng])
	bb.cell.Append(cell)
	for c := ColSource; c < NumCols; c++ {
		switch {
		case bb.f32[c] != nil:
			bb.appendF32(c, r.NumOf(c))
		case bb.f64[c] != nil:
			bb.appendF64(c, r.NumOf(c))
		case bb.str[c] != nil:
			if s := r.StrOf(c); len(s) == 0 {
				bb.str[c].appendNull()
			} else {
				bb.str[c].appendBytes(s)
			}
		case c == ColSeverity:
			if r.Severity == 0 {
				bb.severity.AppendNull()
			} else {
				bb.severity.Append(r.Severity)
			}
		}
	}
}
