package ingest

import (
	"bytes"
	"context"
	"testing"

	"citybrain/engine"
)

// The length a caller gives IngestReader only sizes its buffer: a body shorter or longer than said, or of unknown
// length, is read whole and ingested the same; a length past the decoded limit is not allocated up front.
func TestIngestReaderSizeIsOnlyAHint(t *testing.T) {
	const n = 3000
	body := arrowBody(t, n, false)
	in := New(Config{}, nullSink{})
	for _, size := range []int64{int64(len(body)), -1, 0, int64(len(body)) / 3, int64(len(body)) * 4, 1 << 40} {
		res, err := in.IngestReader(context.Background(), bytes.NewReader(body), size, true, "test", engine.KindUnknown, "")
		if err != nil || res.Accepted != n || res.Rejected != 0 {
			t.Errorf("body of %d bytes said to be %d: accepted %d, rejected %d, err %v", len(body), size, res.Accepted, res.Rejected, err)
		}
	}
	in.budget.mu.Lock()
	used := in.budget.used
	in.budget.mu.Unlock()
	if used != 0 {
		t.Errorf("%d bytes of the in-flight budget still held after the bodies were ingested", used)
	}
}
