package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

// nullSink stores nothing: it isolates decode, validation, cell assignment and batch building.
type nullSink struct{}

func (nullSink) Append(context.Context, arrow.Record, BatchID) (uint64, error) { return 1, nil }
func (nullSink) AppendDead(context.Context, []DeadLetter, BatchID) error       { return nil }

func BenchmarkIngestNDJSON(b *testing.B) {
	var sb strings.Builder
	const n = 5000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%.5f,"lng":%.5f,"speed_kmh":%d,"heading_deg":%d}`+"\n",
			1795737600000+int64(i)*10, i%3000, 30.2+float64(i%97)*0.001, 120.1+float64(i%89)*0.001, i%70, i%360)
	}
	body := []byte(sb.String())
	in := New(Config{}, nullSink{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		res, err := in.Ingest(context.Background(), body, "bench", 0, "")
		if err != nil || res.Accepted != n {
			b.Fatal(err, res.Accepted)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
