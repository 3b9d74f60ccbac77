package replay

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
)

// Exports are written for analysts (docs/replay.md "Exports"): the engine schema with `kind` as a
// dictionary-encoded string (a fixed dictionary of the kind names, index = the engine's code), so that DuckDB,
// pandas or Spark show "probe", not 1. The other codes (source, mode, type, unit_type, status, unit) are
// strings already; Parquet stores them dictionary-encoded. They stay plain strings in the Arrow schema because
// an Arrow IPC file allows one dictionary per column for the whole file, and an export is written batch by
// batch. Reading a file back (OpenFile) accepts this schema, the plain engine schema of older exports, and
// dictionary-encoded string columns from other tools.

// codeCols are the string columns written dictionary-encoded besides kind (none: see above).
var codeCols = map[int]bool{}

// kindDictType is the type of the exported kind column; the dictionary holds every kind name.
var kindDictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}

var codeDictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// AnalystSchema is the schema of exported Arrow and Parquet files.
var AnalystSchema = func() *arrow.Schema {
	fs := engine.Schema.Fields()
	out := make([]arrow.Field, len(fs))
	for i, f := range fs {
		out[i] = f
		switch {
		case i == engine.ColKind:
			out[i].Type = kindDictType
		case codeCols[i]:
			out[i].Type = codeDictType
		}
	}
	md := arrow.NewMetadata([]string{"schema", "codes"}, []string{engine.SchemaVersion, "dictionary"})
	return arrow.NewSchema(out, &md)
}()

// kindNames is the fixed dictionary of the kind column: index i is engine.Kind(i).
var kindNames = func() []string {
	n := 0
	for _, k := range engine.Kinds {
		n = max(n, int(k)+1)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = engine.Kind(i).String()
	}
	return out
}()

// kindDict is the kind column's dictionary, shared by every exported batch. It lives in the Go allocator
// (garbage collected): Arrow v17's IPC and Parquet writers keep the dictionaries they wrote without releasing
// them, which a checked allocator would report as leaks.
var kindDict = stringArray(memory.NewGoAllocator(), kindNames)

// ToAnalyst returns rec (engine schema) in AnalystSchema. The caller releases the result.
func ToAnalyst(rec arrow.Record, mem memory.Allocator) (arrow.Record, error) {
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		src := rec.Column(i)
		switch {
		case i == engine.ColKind:
			k := src.(*array.Uint8)
			ib := array.NewInt8Builder(mem)
			for j := 0; j < k.Len(); j++ {
				v := k.Value(j)
				if int(v) >= len(kindNames) {
					ib.Release()
					return nil, fmt.Errorf("cannot export kind code %d (row %d): not a kind", v, j)
				}
				ib.Append(int8(v))
			}
			idx := ib.NewArray()
			ib.Release()
			cols[i] = array.NewDictionaryArray(kindDictType, idx, kindDict)
			idx.Release()
		case codeCols[i]:
			s := src.(*array.String)
			ib := array.NewInt32Builder(mem)
			seen := map[string]int32{}
			var vals []string
			for j := 0; j < s.Len(); j++ {
				if s.IsNull(j) {
					ib.AppendNull()
					continue
				}
				v := s.Value(j)
				x, ok := seen[v]
				if !ok {
					x = int32(len(vals))
					seen[v] = x
					vals = append(vals, v)
				}
				ib.Append(x)
			}
			idx := ib.NewArray()
			ib.Release()
			dict := stringArray(mem, vals)
			cols[i] = array.NewDictionaryArray(codeDictType, idx, dict)
			idx.Release()
			dict.Release()
		default:
			src.Retain()
			cols[i] = src
		}
	}
	return array.NewRecord(AnalystSchema, cols, rec.NumRows()), nil
}

func stringArray(mem memory.Allocator, vals []string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// isAnalyst reports whether s is AnalystSchema (a reader then converts batches with FromAnalyst).
func isAnalyst(s *arrow.Schema) bool {
	if s.NumFields() != AnalystSchema.NumFields() {
		return false
	}
	for i, f := range AnalystSchema.Fields() {
		g := s.Field(i)
		if g.Name != f.Name {
			return false
		}
		if dt, ok := g.Type.(*arrow.DictionaryType); ok && (i == engine.ColKind || arrow.TypeEqual(f.Type, arrow.BinaryTypes.String)) {
			if !arrow.TypeEqual(dt.ValueType, arrow.BinaryTypes.String) {
				return false
			}
			continue
		}
		if !arrow.TypeEqual(g.Type, f.Type) {
			return false
		}
	}
	return true
}

// FromAnalyst returns a batch of AnalystSchema (any dictionary index type) in the engine schema. A kind name
// the engine does not know is an error. The caller releases the result.
func FromAnalyst(rec arrow.Record, mem memory.Allocator) (arrow.Record, error) {
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		src := rec.Column(i)
		d, isDict := src.(*array.Dictionary)
		switch {
		case i == engine.ColKind && isDict:
			dict, ok := d.Dictionary().(*array.String)
			if !ok {
				return nil, fmt.Errorf("cannot read kind column: dictionary of %s, want strings", d.Dictionary().DataType())
			}
			codes := make([]int16, dict.Len()) // 0: not looked up yet; else the kind + 1
			b := array.NewUint8Builder(mem)
			for j := 0; j < d.Len(); j++ {
				if d.IsNull(j) {
					b.Release()
					return nil, fmt.Errorf("cannot read kind of row %d: null", j)
				}
				x := d.GetValueIndex(j)
				if codes[x] == 0 {
					k := engine.ParseKind(dict.Value(x))
					if k == engine.KindUnknown {
						b.Release()
						return nil, fmt.Errorf("cannot read kind %q (row %d): not one of %v", dict.Value(x), j, kindNames[1:])
					}
					codes[x] = int16(k) + 1
				}
				b.Append(uint8(codes[x] - 1))
			}
			cols[i] = b.NewArray()
			b.Release()
		case isDict:
			dict, ok := d.Dictionary().(*array.String)
			if !ok {
				return nil, fmt.Errorf("cannot read column %s: dictionary of %s, want strings", rec.ColumnName(i), d.Dictionary().DataType())
			}
			b := array.NewStringBuilder(mem)
			for j := 0; j < d.Len(); j++ {
				if d.IsNull(j) {
					b.AppendNull()
					continue
				}
				b.Append(dict.Value(d.GetValueIndex(j)))
			}
			cols[i] = b.NewArray()
			b.Release()
		default:
			src.Retain()
			cols[i] = src
		}
	}
	return array.NewRecord(engine.Schema, cols, rec.NumRows()), nil
}
