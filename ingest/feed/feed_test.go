package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/ingest"
)

func events(n int) []engine.Event {
	evs := make([]engine.Event, n)
	for i := range evs {
		e := engine.NewEvent(engine.KindProbe)
		e.TS = 1_795_737_600_000 + int64(i)*1000
		e.ID = "veh-" + string(rune('a'+i%26))
		e.Lat, e.Lng, e.SpeedKmh = 30.25, 120.16, float64(i)
		evs[i] = e
	}
	return evs
}

// answer decodes a batch like the ingest server and builds its JSON answer; speed 13 is rejected on purpose.
func answer(body []byte) (Result, []engine.Event) {
	var res Result
	var got []engine.Event
	_ = ingest.DecodeBatch(body, func(e engine.Event) {
		if e.SpeedKmh == 13 {
			res.Rejected++
			res.Errors = append(res.Errors, LineError{Line: len(got) + res.Rejected, Error: "test rejects speed 13"})
			return
		}
		res.Accepted++
		got = append(got, e)
	}, func(le ingest.LineError) { res.Rejected++ })
	return res, got
}

func TestHTTPSinkRetriesAndDeliversIntact(t *testing.T) {
	var mu sync.Mutex
	var got []engine.Event
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Content-Type") != "application/x-ndjson" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		if calls == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		res, evs := answer(body)
		got = append(got, evs...)
		_ = json.NewEncoder(w).Encode(res)
	}))
	defer srv.Close()
	s := NewSender(context.Background(), 0, &HTTPSink{URL: srv.URL + "/api/v1/events", Token: "tok", Backoff: time.Millisecond})
	s.BatchSize = 7
	in := events(30)
	for _, e := range in {
		if err := s.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Sent != 30 || s.Batches != 5 || s.Accepted != 29 || s.Rejected != 1 || len(s.Errors) != 1 || s.Errors[0].Line != 14 {
		t.Fatalf("%s; errors %+v", s.Summary(), s.Errors)
	}
	if len(got) != 29 || calls != 6 {
		t.Fatalf("server got %d events in %d calls, want 29 in 6 (one 503 retried)", len(got), calls)
	}
	for i, j := 0, 0; i < len(in); i++ {
		if in[i].SpeedKmh == 13 {
			continue
		}
		if a, b := ingest.AppendJSON(nil, &in[i]), ingest.AppendJSON(nil, &got[j]); !bytes.Equal(a, b) {
			t.Fatalf("event %d arrived as %s, sent %s", i, b, a)
		}
		j++
	}
}

func TestHTTPSinkGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	h := &HTTPSink{URL: srv.URL, MaxRetries: 2, Backoff: time.Millisecond}
	if _, err := h.Send(context.Background(), []byte("{}\n"), 1); err == nil {
		t.Fatal("no error after retries")
	}
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer auth.Close()
	if _, err := (&HTTPSink{URL: auth.URL}).Send(context.Background(), []byte("{}\n"), 1); !IsFatal(err) {
		t.Fatalf("401 gave %v, want a fatal error", err)
	}
}

func TestNATSRequestReply(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	srvConn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer srvConn.Close()
	var mu sync.Mutex
	var got []engine.Event
	if _, err := srvConn.Subscribe("citybrain.in.batch", func(m *nats.Msg) {
		res, evs := answer(m.Data)
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		b, _ := json.Marshal(res)
		_ = m.Respond(b)
	}); err != nil {
		t.Fatal(err)
	}
	_ = srvConn.Flush()
	nc, err := DialNATS(ns.ClientURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := NewSender(context.Background(), 0, &NATSSink{Conn: nc, Reply: true, Own: true}, WriterSink{W: &out})
	s.BatchSize = 10
	in := events(25)
	for _, e := range in {
		if err := s.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 24 || s.Rejected != 1 || s.Batches != 3 {
		t.Fatalf("server got %d events; %s", len(got), s.Summary())
	}
	if got[23].SpeedKmh != 24 || got[0].ID != in[0].ID {
		t.Fatalf("events arrived out of order or altered: first %+v last %+v", got[0], got[23])
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 25 {
		t.Fatalf("stdout sink got %d lines, want 25", n)
	}
}

// TestRatePacing checks that with --rate 10 events 1 s apart in event time are sent 100 ms apart, batch by batch.
func TestRatePacing(t *testing.T) {
	now := time.Unix(0, 0)
	var slept time.Duration
	var out bytes.Buffer
	s := NewSender(context.Background(), 10, WriterSink{W: &out})
	s.Now = func() time.Time { return now }
	s.Sleep = func(_ context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil }
	for _, e := range events(11) {
		if err := s.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	if slept != time.Second || s.Batches != 11 {
		t.Fatalf("slept %v in %d batches, want 1s (10 s of event time at rate 10) and 11 batches", slept, s.Batches)
	}
}
