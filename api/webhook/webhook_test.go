package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"citybrain/engine/zones"
)

const secret = "0123456789abcdef-secret"

// A receiver that fails twice gets the alert on the third attempt, signed, with the same delivery id.
func TestRetryAndSignature(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var ids []string
	got := make(chan zones.Alert, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(secret, r, body); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		calls++
		ids = append(ids, r.Header.Get(HeaderDelivery))
		n := calls
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(503)
			return
		}
		var m struct{ Alert zones.Alert }
		json.Unmarshal(body, &m)
		got <- m.Alert
	}))
	defer srv.Close()
	s, err := New(Config{Targets: []Target{{URL: srv.URL, Secret: secret}}, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Enqueue([]zones.Alert{{ID: "al-1", ZoneID: "z", Severity: 3, Version: 1}})
	select {
	case a := <-got:
		if a.ID != "al-1" {
			t.Fatalf("got %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	for deadline := time.Now().Add(10 * time.Second); s.Sent.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the sender counts once it has read the answer
	}
	mu.Lock()
	defer mu.Unlock()
	if s.Retries.Load() != 2 || s.Sent.Load() != 1 || ids[0] != ids[2] || ids[0] != "al-1/1" {
		t.Fatalf("retries %d sent %d ids %v", s.Retries.Load(), s.Sent.Load(), ids)
	}
}

// The queue is bounded: with the receiver stuck, the oldest deliveries are dropped and counted.
func TestBoundedQueue(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	s, err := New(Config{Targets: []Target{{URL: srv.URL, Secret: secret}}, QueueLen: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var list []zones.Alert
	for i := 0; i < 10; i++ {
		list = append(list, zones.Alert{ID: "al", Version: i, Severity: 1})
	}
	s.Enqueue(list)
	if d := s.Depth(); d > 3 {
		t.Fatalf("depth %d over the bound", d)
	}
	if s.Dropped.Load() < 6 {
		t.Fatalf("dropped %d, want at least 6", s.Dropped.Load())
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tg := range []Target{{URL: "ftp://x/", Secret: secret}, {URL: "http://x/", Secret: "short"}, {URL: "nohost", Secret: secret}} {
		if _, err := New(Config{Targets: []Target{tg}}); err == nil {
			t.Errorf("%+v accepted", tg)
		}
	}
}
