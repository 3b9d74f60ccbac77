package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/demo"
)

// pool is a set of events with the demo city's mix of kinds; the harness re-stamps their times when it sends.
type pool struct {
	Name   string
	Events []engine.Event
	BBox   geo.BBox
	Kinds  map[string]int
}

// demoPool runs the demo city (West Lake, as fast as it goes) until it has emitted n events.
func demoPool(ctx context.Context, n int, seed int64) (*pool, error) {
	city, err := demo.New(demo.Config{Seed: seed, Speedup: 0, Duration: 6 * time.Hour, IncidentEvery: 5 * time.Minute})
	if err != nil {
		return nil, fmt.Errorf("cannot create demo city: %w", err)
	}
	p := &pool{Name: "west-lake demo city", Kinds: map[string]int{}}
	errFull := errors.New("full")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = city.Run(ctx, func(evs []engine.Event) error {
		for i := range evs {
			if len(p.Events) >= n {
				return errFull
			}
			p.Events = append(p.Events, evs[i])
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, fmt.Errorf("cannot run demo city: %w", err)
	}
	if len(p.Events) == 0 {
		return nil, errors.New("cannot build event pool: the demo city emitted no events")
	}
	p.finish()
	return p, nil
}

func (p *pool) finish() {
	p.BBox = geo.BBox{MinLng: 180, MinLat: 90, MaxLng: -180, MaxLat: -90}
	for i := range p.Events {
		e := &p.Events[i]
		p.Kinds[e.Kind.String()]++
		p.BBox.MinLat, p.BBox.MaxLat = min(p.BBox.MinLat, e.Lat), max(p.BBox.MaxLat, e.Lat)
		p.BBox.MinLng, p.BBox.MaxLng = min(p.BBox.MinLng, e.Lng), max(p.BBox.MaxLng, e.Lng)
	}
}

// remap returns a copy of p whose events sit at random points along the links of net (Nanchang-sized load:
// the same mix of kinds over a whole city's road network).
func (p *pool) remap(name string, net *geo.Network, seed int64) *pool {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	links := net.Links()
	q := &pool{Name: name, Events: append([]engine.Event(nil), p.Events...), Kinds: map[string]int{}}
	for i := range q.Events {
		l := links[rng.IntN(len(links))]
		pt, _ := l.PointAt(rng.Float64() * l.GeomLengthM())
		q.Events[i].Lat, q.Events[i].Lng = pt.Lat, pt.Lng
	}
	q.finish()
	return q
}

// spread returns a copy of p whose events sit at uniform random points of a square of side deg degrees
// centred on p's bounding box (one cell per event, nearly).
func (p *pool) spread(deg float64, seed int64) *pool {
	rng := rand.New(rand.NewPCG(uint64(seed), 19))
	lat0, lng0 := (p.BBox.MinLat+p.BBox.MaxLat)/2-deg/2, (p.BBox.MinLng+p.BBox.MaxLng)/2-deg/2
	q := &pool{Name: p.Name + fmt.Sprintf(" (spread over %g°)", deg), Events: append([]engine.Event(nil), p.Events...), Kinds: map[string]int{}}
	for i := range q.Events {
		q.Events[i].Lat, q.Events[i].Lng = lat0+rng.Float64()*deg, lng0+rng.Float64()*deg
	}
	q.finish()
	return q
}

// concentrate returns a copy of p whose events sit at only k distinct positions (few cells).
func (p *pool) concentrate(k int) *pool {
	q := &pool{Name: p.Name + fmt.Sprintf(" (%d positions)", k), Events: append([]engine.Event(nil), p.Events...), Kinds: map[string]int{}}
	for i := range q.Events {
		src := &p.Events[i%k]
		q.Events[i].Lat, q.Events[i].Lng = src.Lat, src.Lng
	}
	q.finish()
	return q
}

// batch is an encoded batch whose event times are rewritten in place before each send: JSON batches hold
// 13-digit Unix-millisecond ts values at tsOff, Arrow batches a contiguous int64 ts column at tsOff.
type batch struct {
	Data   []byte
	Arrow  bool
	N      int
	tsOff  []int32 // JSON: offset of each event's ts digits; Arrow: one offset, the first value
	jitter []int32 // ms subtracted from the base time, per event
}

// clone returns a copy that can be stamped independently.
func (b *batch) clone() *batch {
	c := *b
	c.Data = append([]byte(nil), b.Data...)
	return &c
}

// stamp sets event i's time to base − jitter[i] (ms).
func (b *batch) stamp(base int64) {
	if b.Arrow {
		off := int(b.tsOff[0])
		for i, j := range b.jitter {
			binary.LittleEndian.PutUint64(b.Data[off+8*i:], uint64(base-int64(j)))
		}
		return
	}
	for i, j := range b.jitter {
		v := base - int64(j)
		d := b.Data[b.tsOff[i] : b.tsOff[i]+13]
		for k := 12; k >= 0; k-- {
			d[k] = byte('0' + v%10)
			v /= 10
		}
	}
}

// jsonBatches encodes k NDJSON batches of size events each from the pool, with per-event jitter in
// [0, jitterMs).
func jsonBatches(p *pool, k, size int, jitterMs int, seed int64) []*batch {
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	var out []*batch
	const placeholder = int64(1_700_000_000_000)
	for b := 0; b < k; b++ {
		bt := &batch{N: size}
		for i := 0; i < size; i++ {
			ev := p.Events[rng.IntN(len(p.Events))]
			ev.TS = placeholder
			start := len(bt.Data)
			bt.Data = ingest.AppendJSON(bt.Data, &ev)
			bt.Data = append(bt.Data, '\n')
			off := bytes.Index(bt.Data[start:], []byte(`"ts":1700000000000`))
			bt.tsOff = append(bt.tsOff, int32(start+off+5))
			bt.jitter = append(bt.jitter, int32(rng.IntN(max(jitterMs, 1))))
		}
		out = append(out, bt)
	}
	return out
}

// arrowBatches encodes k Arrow IPC streams (engine schema, cells at res) of size events each.
func arrowBatches(p *pool, k, size, res int, jitterMs int, seed int64) ([]*batch, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 13))
	var out []*batch
	const marker = int64(1_000_000_777_777)
	for b := 0; b < k; b++ {
		bb := engine.NewBatchBuilder(memory.DefaultAllocator)
		bt := &batch{N: size, Arrow: true}
		for i := 0; i < size; i++ {
			ev := p.Events[rng.IntN(len(p.Events))]
			ev.TS = marker + int64(i)
			cell, err := geo.CellOf(ev.Lat, ev.Lng, res)
			if err != nil {
				bb.Release()
				return nil, err
			}
			bb.Append(&ev, cell)
			bt.jitter = append(bt.jitter, int32(rng.IntN(max(jitterMs, 1))))
		}
		rec := bb.NewRecord()
		data, err := eventlog.EncodeRecord(rec, memory.DefaultAllocator)
		rec.Release()
		bb.Release()
		if err != nil {
			return nil, err
		}
		var pat [16]byte
		binary.LittleEndian.PutUint64(pat[:], uint64(marker))
		binary.LittleEndian.PutUint64(pat[8:], uint64(marker+1))
		off := bytes.Index(data, pat[:])
		if off < 0 || bytes.Contains(data[off+1:], pat[:]) {
			return nil, errors.New("cannot locate the ts column in an encoded Arrow batch")
		}
		bt.Data, bt.tsOff = data, []int32{int32(off)}
		out = append(out, bt)
	}
	return out, nil
}

// answer is the JSON answer of HTTP and NATS ingest.
type answer struct {
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	Error    string `json:"error"`
}

// sender delivers one batch and returns the events accepted. Every send carries an idempotency key of its
// own (Idempotency-Key over HTTP, Nats-Msg-Id over NATS), as a producer that retries would: the harness
// sends the same few templates again and again, and without a key the log deduplicates by the hash of the
// body, so two senders stamping the same template in the same millisecond would be one stored batch
// answered as accepted twice (a retry), and the drain would wait for events that are never reflected.
type sender interface {
	send(ctx context.Context, b *batch) (int, error)
	close()
}

type httpSender struct {
	c    *http.Client
	url  string
	keys *batchKeys
}

// batchKeys names every batch a sender sends: a prefix unique to the sender and a counter.
type batchKeys struct {
	prefix string
	n      atomic.Uint64
}

var senderSeq atomic.Uint64

func newBatchKeys() *batchKeys {
	return &batchKeys{prefix: fmt.Sprintf("bench-%d-%d-%d-", os.Getpid(), time.Now().UnixNano(), senderSeq.Add(1))}
}

func (k *batchKeys) next() string { return k.prefix + strconv.FormatUint(k.n.Add(1), 10) }

func newHTTPSender(t *target, conns int) *httpSender {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		DisableCompression:  true,
	}
	return &httpSender{c: &http.Client{Transport: tr, Timeout: 60 * time.Second}, url: "http://" + t.httpAddr + "/api/v1/events", keys: newBatchKeys()}
}

func (s *httpSender) send(ctx context.Context, b *batch) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(b.Data))
	if err != nil {
		return 0, err
	}
	if b.Arrow {
		req.Header.Set("Content-Type", ingest.ContentTypeArrow)
	} else {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	req.Header.Set("Idempotency-Key", s.keys.next())
	resp, err := s.c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot post batch: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("cannot decode answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if a.Error != "" {
		return 0, fmt.Errorf("batch refused (HTTP %d): %s", resp.StatusCode, a.Error)
	}
	return a.Accepted, nil
}

func (s *httpSender) close() { s.c.CloseIdleConnections() }

type natsSender struct {
	nc      *nats.Conn
	subject string
	keys    *batchKeys
}

func newNATSSender(t *target, subject string) (*natsSender, error) {
	nc, err := nats.Connect(t.natsURL, nats.Name("citybrain-bench"), nats.MaxReconnects(0))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", t.natsURL, err)
	}
	return &natsSender{nc: nc, subject: subject, keys: newBatchKeys()}, nil
}

func (s *natsSender) send(ctx context.Context, b *batch) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	msg := nats.NewMsg(s.subject)
	msg.Data = b.Data
	msg.Header.Set(nats.MsgIdHdr, s.keys.next())
	m, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("cannot publish batch on %s: %w", s.subject, err)
	}
	var a answer
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return 0, fmt.Errorf("cannot decode answer on %s: %w", s.subject, err)
	}
	if a.Error != "" {
		return 0, fmt.Errorf("batch refused on %s: %s", s.subject, a.Error)
	}
	return a.Accepted, nil
}

func (s *natsSender) close() { s.nc.Close() }
