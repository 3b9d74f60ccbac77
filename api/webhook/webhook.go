// Package webhook delivers zone alerts to other departments' systems: each alert that fired or changed is
// POSTed as JSON to every subscribed URL, signed with HMAC-SHA256, retried with exponential backoff, through a
// bounded queue (when it is full the oldest delivery is dropped and counted). docs/zones.md describes the
// receiver's side.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/engine/queue"
	"citybrain/engine/zones"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-CityBrain-Signature" // "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))
	HeaderTimestamp = "X-CityBrain-Timestamp" // Unix seconds of this attempt
	HeaderDelivery  = "X-CityBrain-Delivery"  // alert id and version: the same on every retry
)

// Target is one subscriber.
type Target struct {
	URL         string   `json:"url"`
	Secret      string   `json:"secret"`
	MinSeverity int      `json:"min_severity,omitempty"` // alerts below are not sent
	Zones       []string `json:"zones,omitempty"`        // only these zones (empty: all)
}

// Config configures a Sender.
type Config struct {
	Targets     []Target
	QueueLen    int           // deliveries waiting (default 1,000)
	MaxAttempts int           // per delivery (default 6)
	Backoff     time.Duration // first retry delay, doubled each time (default 1 s, at most 5 min)
	Timeout     time.Duration // per request (default 10 s)
	Logger      *log.Logger
	Client      *http.Client
}

// Validate checks the targets.
func (c *Config) Validate() error {
	for i, t := range c.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook %d: url %q must be an http or https URL with a host", i+1, t.URL)
		}
		if len(t.Secret) < 16 {
			return fmt.Errorf("webhook %d: secret must be at least 16 bytes", i+1)
		}
	}
	return nil
}

type delivery struct {
	target  int
	id      string
	body    []byte
	attempt int
	due     time.Time
}

// Sender owns one goroutine that delivers in order of due time. Stop ends it.
type Sender struct {
	cfg     Config
	mu      sync.Mutex
	queue   []delivery // bounded by cfg.QueueLen
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	Sent    atomic.Uint64
	Failed  atomic.Uint64 // deliveries given up after MaxAttempts
	Dropped atomic.Uint64 // deliveries dropped because the queue was full
	Retries atomic.Uint64
}

// New starts a sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1000
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(io.Discard, "", 0)
	}
	s := &Sender{cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

// Queue returns the figures of the delivery queue (when full, the oldest delivery is dropped).
func (s *Sender) Queue() queue.Stat {
	return queue.Stat{Name: "webhooks", Policy: queue.DropOldest, Len: s.Depth(), Limit: s.cfg.QueueLen, Full: s.Dropped.Load()}
}

// Depth is the number of deliveries waiting.
func (s *Sender) Depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Enqueue queues each alert for every target that wants it; it never blocks.
func (s *Sender) Enqueue(alerts []zones.Alert) {
	now := time.Now()
	s.mu.Lock()
	for _, a := range alerts {
		body, err := json.Marshal(map[string]any{"type": "alert", "alert": a})
		if err != nil {
			continue
		}
		for ti, t := range s.cfg.Targets {
			if a.Severity < t.MinSeverity || len(t.Zones) > 0 && !contains(t.Zones, a.ZoneID) {
				continue
			}
			if len(s.queue) >= s.cfg.QueueLen {
				s.queue = s.queue[1:] // the oldest goes: newer state supersedes it
				s.Dropped.Add(1)
			}
			s.queue = append(s.queue, delivery{target: ti, id: a.ID + "/" + strconv.Itoa(a.Version), body: body, due: now})
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Sender) run() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d, wait, ok := s.next()
		if ok {
			s.deliver(d)
			continue
		}
		timer.Reset(wait)
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// next takes the first due delivery, or says how long until one is due.
func (s *Sender) next() (delivery, time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	wait := time.Hour
	for i, d := range s.queue {
		if !d.due.After(now) {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return d, 0, true
		}
		wait = min(wait, d.due.Sub(now))
	}
	return delivery{}, wait, false
}

// Sign returns the signature header value for body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature (for receivers, and the tests).
func Verify(secret string, r *http.Request, body []byte) error {
	ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(r.Header.Get(HeaderSignature))) {
		return errors.New("bad signature")
	}
	return nil
}

func (s *Sender) deliver(d delivery) {
	t := s.cfg.Targets[d.target]
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	go func() { // stopping cuts an attempt short
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ts := time.Now().Unix()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(d.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "CityBrain-Webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(t.Secret, ts, d.body))
	req.Header.Set(HeaderDelivery, d.id)
	resp, err := s.cfg.Client.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			s.Sent.Add(1)
			return
		}
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	d.attempt++
	if d.attempt >= s.cfg.MaxAttempts {
		s.Failed.Add(1)
		s.cfg.Logger.Printf("webhook %s: giving up on %s after %d attempts: %v", t.URL, d.id, d.attempt, err)
		return
	}
	s.Retries.Add(1)
	d.due = time.Now().Add(min(s.cfg.Backoff<<(d.attempt-1), 5*time.Minute))
	s.mu.Lock()
	if len(s.queue) < s.cfg.QueueLen {
		s.queue = append(s.queue, d)
	} else {
		s.Dropped.Add(1)
	}
	s.mu.Unlock()
}

// Stop ends the sender; deliveries still queued are dropped (the alerts stay at /api/v1/alerts). Safe to
// call twice.
func (s *Sender) Stop() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
	})
}
