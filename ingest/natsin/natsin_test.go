package natsin

import (
	"encoding/json"
	"strings"
	"testing"

	"citybrain/ingest"
	"citybrain/ingest/ingesttest"
)

const probe = `{"kind":"probe","ts":1795737600000,"id":"veh-1","lat":30.2528,"lng":120.1675,"speed_kmh":23.5}`

// FuzzNATSSubjects sends any message on any citybrain.in.* subject to a worker: it answers with the counts
// or an error (JSON), the counts are what was stored, no message panics, and a message that is not a batch
// at all is kept on the dead-letter log.
func FuzzNATSSubjects(f *testing.F) {
	for _, s := range []string{"probe", "batch", "arrow", "detector", "bicycle", "", "probe.extra"} {
		f.Add(s, []byte(probe), "")
	}
	f.Add("batch", []byte("["+probe+","+probe+"]"), "id-1")
	f.Add("arrow", []byte("ARROW1\x00\x00garbage"), "")
	f.Fuzz(func(t *testing.T, suffix string, data []byte, msgID string) {
		sink := &ingesttest.MemSink{}
		defer sink.Release()
		s := &Source{in: ingest.New(ingest.Config{MaxAhead: -1}, sink)}
		out := s.process(SubjectPrefix+suffix, data, msgID)
		var ans struct {
			Accepted *int   `json:"accepted"`
			Rejected *int   `json:"rejected"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(out, &ans); err != nil {
			t.Fatalf("answer is not JSON: %q", out)
		}
		if s.Panics.Load() != 0 {
			t.Fatalf("a message panicked the worker: %s", ans.Error)
		}
		if ans.Accepted == nil {
			if ans.Error == "" {
				t.Fatalf("neither counts nor an error: %q", out)
			}
			if sink.Rows() != 0 {
				t.Fatalf("an error answer (%s) with %d events stored", ans.Error, sink.Rows())
			}
			if !strings.Contains(ans.Error, "no events") && len(sink.Dead) == 0 {
				t.Fatalf("an unreadable message (%s) was not dead-lettered", ans.Error)
			}
			return
		}
		if int64(*ans.Accepted) != sink.Rows() || *ans.Rejected != len(sink.Dead) {
			t.Fatalf("answered %d/%d, stored %d/%d", *ans.Accepted, *ans.Rejected, sink.Rows(), len(sink.Dead))
		}
	})
}
