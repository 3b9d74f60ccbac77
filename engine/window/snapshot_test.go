package window

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// A snapshot table is read when its schema is one of those accepted (aggs.arrow from before stop_head
// still loads), and refused with the schema named otherwise.
func TestReadIPCFileAcceptsListedSchemas(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	file := func(schema *arrow.Schema) []byte {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		rec := b.NewRecord() // no rows: the schema is what is checked
		defer rec.Release()
		data, err := ipcFile(schema, []arrow.Record{rec}, mem)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	accepted := []*arrow.Schema{aggSchema, aggSchemaV1}
	for _, s := range accepted {
		batches := 0
		if err := readIPCFile(file(s), accepted, mem, func(arrow.Record) error { batches++; return nil }); err != nil || batches != 1 {
			t.Errorf("schema with %d fields: err %v, %d batches", s.NumFields(), err, batches)
		}
	}
	err := readIPCFile(file(cellSchema), accepted, mem, func(arrow.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "stop_head") {
		t.Errorf("cells table read as aggs: %v", err)
	}
}
