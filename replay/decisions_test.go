package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/ingest"
)

// Operator decisions in the log go with a Parquet export of their range, as its key-value metadata.
func TestParquetExportCarriesTheDecisions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l := openTestLog(t, mem)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli()
	recs := buildBatches(t, mem, testEvents(40, t0), []int{20, 20})
	if _, err := l.Append(ctx, recs[0], ingest.BatchID{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAction(ctx, engine.Action{ID: "a1", IncidentID: "i1", Status: "confirmed", By: "kim", Role: "commander"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendTyped(ctx, eventlog.TypeDispatch, "d1", []byte(`{"id":"d1","kind":"dispatch","by":"kim"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, recs[1], ingest.BatchID{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	var buf bytes.Buffer
	if _, err := Export(ctx, l, &buf, ExportOptions{Format: FormatParquet, Mem: mem}); err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	v := pf.MetaData().KeyValueMetadata().FindValue(MetaDecisions)
	if v == nil {
		t.Fatal("no decisions in the export's metadata")
	}
	var list []Decision
	if err := json.Unmarshal([]byte(*v), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Type != eventlog.TypeAction || list[0].Seq != 2 || list[1].Type != eventlog.TypeDispatch || list[1].Seq != 3 {
		t.Errorf("decisions %+v, want the incident action at 2 and the dispatch at 3", list)
	}
}
