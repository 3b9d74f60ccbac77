package httpin_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"citybrain/ingest"
	"citybrain/ingest/httpin"
	"citybrain/ingest/ingesttest"
)

const specExamples = `{"kind":"probe","ts":"2026-11-27T08:00:00.250+08:00","id":"veh-1182","lat":30.2528,"lng":120.1675,"speed_kmh":23.5,"heading_deg":92}
{"kind":"detector","ts":1795737600000,"id":"det-yanan-n-2","lat":30.2581,"lng":120.1662,"flow_vph":1320,"occupancy":0.31,"speed_kmh":18.2,"interval_s":30}
{"kind":"video","ts":"2026-11-27T08:00:05+08:00","id":"cam-0412","lat":30.2504,"lng":120.1699,"type":"stalled_vehicle","confidence":0.83}
{"kind":"report","ts":"2026-11-27T08:00:41+08:00","id":"call-122-88231","lat":30.2506,"lng":120.1702,"type":"crash","severity":3,"source":"hotline-122"}
{"kind":"unit","ts":"2026-11-27T08:00:42+08:00","id":"amb-07","lat":30.2611,"lng":120.1588,"unit_type":"ambulance","status":"available"}
`

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

var ctypes = []string{"application/x-ndjson", "application/json", ingest.ContentTypeArrow, "text/plain"}

// FuzzHTTPEvents drives POST /api/v1/events with any body, content type and encoding: the answer is one
// of the documented statuses with a JSON body, and it is exactly true (what it says was accepted is what
// was stored).
func FuzzHTTPEvents(f *testing.F) {
	f.Add([]byte(specExamples), uint8(0), false)
	f.Add(gz([]byte(specExamples)), uint8(0), true)
	f.Add([]byte("["+strings.ReplaceAll(strings.TrimSpace(specExamples), "\n", ",")+"]"), uint8(1), false)
	f.Add(gz(bytes.Repeat([]byte{0}, 1<<16)), uint8(0), true)
	f.Add([]byte("{\"kind\":\"probe\"}\nnot json\n\n"), uint8(0), false)
	f.Fuzz(func(t *testing.T, body []byte, ct uint8, gzipped bool) {
		sink := &ingesttest.MemSink{}
		defer sink.Release()
		in := ingest.New(ingest.Config{MaxAhead: -1, MaxDecoded: 1 << 20, MaxInFlight: 4 << 20}, sink)
		h := httpin.New(in)
		req := httptest.NewRequest("POST", "/api/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctypes[int(ct)%len(ctypes)])
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		var ans struct {
			Accepted *int   `json:"accepted"`
			Rejected *int   `json:"rejected"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &ans); err != nil {
			t.Fatalf("status %d, answer not JSON: %q", rr.Code, rr.Body.Bytes())
		}
		switch rr.Code {
		case http.StatusOK, http.StatusBadRequest:
			if ans.Accepted == nil {
				if rr.Code == http.StatusOK || ans.Error == "" {
					t.Fatalf("status %d without counts or error: %q", rr.Code, rr.Body.Bytes())
				}
				if sink.Rows() != 0 {
					t.Fatalf("an error answer (%s) with %d events stored", ans.Error, sink.Rows())
				}
				return
			}
			if int64(*ans.Accepted) != sink.Rows() || *ans.Rejected != len(sink.Dead) {
				t.Fatalf("answered %d/%d, stored %d/%d", *ans.Accepted, *ans.Rejected, sink.Rows(), len(sink.Dead))
			}
		case http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusServiceUnavailable:
			if sink.Rows() != 0 {
				t.Fatalf("status %d with %d events stored", rr.Code, sink.Rows())
			}
		default:
			t.Fatalf("status %d: %q", rr.Code, rr.Body.Bytes())
		}
		if in.InFlight() != 0 {
			t.Fatalf("%d bytes left in flight", in.InFlight())
		}
	})
}
