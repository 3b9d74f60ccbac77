// Package feed sends events from any adapter to a CityBrain ingest endpoint as NDJSON batches: HTTP POST to
// /api/v1/events, a NATS publish (or request/reply) on citybrain.in.batch, or a writer (stdout). A Sender replays
// events at their own timestamps scaled by a rate, or as fast as possible.
package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/ingest"
)

// Result is the ingest answer to one batch (spec/events.md "Bad input").
type Result struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
}

// LineError is one rejected line of a batch.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Sink delivers one NDJSON batch of n events. The batch is owned by the caller: a Sink must not keep it after
// Send returns. Sinks are used by one goroutine at a time.
type Sink interface {
	Send(ctx context.Context, batch []byte, n int) (Result, error)
	Close() error
}

// ErrFatal marks a Sink error that retrying cannot fix (authentication, a malformed endpoint).
var ErrFatal = errors.New("fatal")

// HTTPSink posts batches to URL (http://HOST:PORT/api/v1/events) as application/x-ndjson.
type HTTPSink struct {
	URL        string
	Token      string        // sent as "Authorization: Bearer <token>" when set
	Client     *http.Client  // nil: a client with a 30 s timeout
	MaxRetries int           // retries of a batch after a network error, 429 or 5xx; default 5
	Backoff    time.Duration // first retry delay, doubled each time up to 5 s; default 200 ms
}

// Send posts one batch, retrying network errors, 429 and 5xx answers with bounded exponential backoff.
func (h *HTTPSink) Send(ctx context.Context, batch []byte, n int) (Result, error) {
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	retries, backoff := h.MaxRetries, h.Backoff
	if retries <= 0 {
		retries = 5
	}
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	var last error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		res, retry, err := h.post(ctx, batch, n)
		if err == nil || !retry {
			return res, err
		}
		last = err
	}
	return Result{}, fmt.Errorf("cannot send batch of %d events to %s (gave up after %d retries): %w", n, h.URL, retries, last)
}

func (h *HTTPSink) post(ctx context.Context, batch []byte, n int) (res Result, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(batch))
	if err != nil {
		return res, false, fmt.Errorf("cannot build request to %s: %w: %w", h.URL, err, ErrFatal)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := (h.clientOrDefault()).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return res, false, ctx.Err()
		}
		return res, true, fmt.Errorf("cannot post batch to %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, true, fmt.Errorf("cannot read answer from %s: %w", h.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return res, true, fmt.Errorf("cannot post batch to %s: HTTP %s: %s", h.URL, resp.Status, snippet(body))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return res, false, fmt.Errorf("cannot post batch to %s: HTTP %s (check --token): %w", h.URL, resp.Status, ErrFatal)
	}
	if err := json.Unmarshal(body, &res); err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest) {
		return res, false, fmt.Errorf("cannot use answer from %s (HTTP %s): %s: %w", h.URL, resp.Status, snippet(body), ErrFatal)
	}
	if res.Accepted+res.Rejected != n {
		return res, false, fmt.Errorf("cannot trust answer from %s: accepted %d + rejected %d != %d sent: %w", h.URL, res.Accepted, res.Rejected, n, ErrFatal)
	}
	return res, false, nil
}

func (h *HTTPSink) clientOrDefault() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	h.Client = &http.Client{Timeout: 30 * time.Second}
	return h.Client
}

// Close does nothing.
func (h *HTTPSink) Close() error { return nil }

// NATSSink publishes batches on Subject (default citybrain.in.batch). With Reply it sends a request and reads the
// JSON answer; without, it publishes and flushes, and counts every event as accepted by the transport.
type NATSSink struct {
	Conn    *nats.Conn
	Subject string
	Reply   bool
	Timeout time.Duration // request timeout; default 10 s
	Own     bool          // Close closes Conn
}

// DialNATS connects to url (nats://HOST:PORT) with an optional token.
func DialNATS(url, token string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("citybrain feed"), nats.MaxReconnects(10), nats.ReconnectWait(500 * time.Millisecond)}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS (%s): %w", url, err)
	}
	return nc, nil
}

// Send publishes one batch. A request that times out or finds no responder is retried with a bounded backoff.
func (s *NATSSink) Send(ctx context.Context, batch []byte, n int) (Result, error) {
	subj := s.Subject
	if subj == "" {
		subj = "citybrain.in.batch"
	}
	if !s.Reply {
		if err := s.Conn.Publish(subj, batch); err != nil {
			return Result{}, fmt.Errorf("cannot publish batch of %d events on %s: %w", n, subj, err)
		}
		if err := s.Conn.FlushWithContext(ctx); err != nil {
			return Result{}, fmt.Errorf("cannot flush batch of %d events on %s: %w", n, subj, err)
		}
		return Result{Accepted: n}, nil
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	backoff := 200 * time.Millisecond
	var last error
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		msg, err := s.Conn.RequestWithContext(rctx, subj, batch)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			last = err
			continue
		}
		var res Result
		if err := json.Unmarshal(msg.Data, &res); err != nil {
			return Result{}, fmt.Errorf("cannot use answer on %s: %s: %w", subj, snippet(msg.Data), ErrFatal)
		}
		if res.Accepted+res.Rejected != n {
			return res, fmt.Errorf("cannot trust answer on %s: accepted %d + rejected %d != %d sent: %w", subj, res.Accepted, res.Rejected, n, ErrFatal)
		}
		return res, nil
	}
	return Result{}, fmt.Errorf("cannot send batch of %d events on %s (gave up after retries): %w", n, subj, last)
}

// Close closes the connection when the sink owns it (after draining what was published).
func (s *NATSSink) Close() error {
	if s.Own && s.Conn != nil {
		return s.Conn.Drain()
	}
	return nil
}

// WriterSink writes batches to W (NDJSON, e.g. stdout) and counts every event as accepted.
type WriterSink struct{ W io.Writer }

// Send writes the batch.
func (w WriterSink) Send(_ context.Context, batch []byte, n int) (Result, error) {
	if _, err := w.W.Write(batch); err != nil {
		return Result{}, fmt.Errorf("cannot write batch of %d events: %w", n, err)
	}
	return Result{Accepted: n}, nil
}

// Close does nothing.
func (WriterSink) Close() error { return nil }

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// appendLine appends e as one NDJSON line.
func appendLine(buf []byte, e *engine.Event) []byte {
	return append(ingest.AppendJSON(buf, e), '\n')
}
