package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/geo"
)

// viewport is a websocket subscription.
type viewport struct {
	BBox [4]float64 `json:"bbox"`
	Res  int        `json:"res"`
}

// viewports returns n different viewports inside bb: map-like zooms (a few hundred metres to a few
// kilometres across), mostly at the base resolution, some rolled up.
func viewports(n int, bb geo.BBox, baseRes int, seed int64) []viewport {
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	out := make([]viewport, n)
	for i := range out {
		w := 0.004 + rng.Float64()*0.04
		h := w * 0.6
		lng := bb.MinLng + rng.Float64()*max(bb.MaxLng-bb.MinLng-w, 0)
		lat := bb.MinLat + rng.Float64()*max(bb.MaxLat-bb.MinLat-h, 0)
		res := baseRes
		if r := rng.IntN(10); r == 0 {
			res = baseRes - 2
		} else if r == 1 {
			res = baseRes - 1
		}
		out[i] = viewport{BBox: [4]float64{lng, lat, lng + w, lat + h}, Res: res}
	}
	return out
}

// wsClient is one websocket connection that counts what it receives. A client with parse set decodes the
// cells of every delta and reports (cell, updated_at) pairs to onCell; every client records the delivery lag
// of each delta (receipt − the delta's `now`) when lags is set.
type wsClient struct {
	conn     *websocket.Conn
	msgs     atomic.Uint64
	bytes    atomic.Uint64
	gaps     atomic.Uint64
	closed   atomic.Bool
	closeErr atomic.Pointer[string]

	mu     sync.Mutex
	lags   []float64 // ms
	record atomic.Bool
	lastSq uint64
}

var wsDialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}

// dialClients opens n clients with the given viewports (cycled), parallelism conc, and starts their readers.
func dialClients(ctx context.Context, t *target, vps []viewport, n, conc int, onCell func(cell string, updatedAt int64, recv time.Time)) ([]*wsClient, error) {
	return dialAll(n, conc, func(i int) (*wsClient, error) {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		conn, _, err := wsDialer.DialContext(dctx, "ws://"+t.httpAddr+"/ws", http.Header{})
		if err != nil {
			return nil, fmt.Errorf("cannot open websocket %d: %w", i, err)
		}
		vp := vps[i%len(vps)]
		sub := map[string]any{"op": "subscribe", "bbox": vp.BBox, "res": vp.Res, "window": "60s", "layers": []string{"cells"}}
		if err := conn.WriteJSON(sub); err != nil {
			conn.Close()
			return nil, fmt.Errorf("cannot subscribe websocket %d: %w", i, err)
		}
		c := &wsClient{conn: conn}
		go c.read(onCell)
		return c, nil
	}, func(c *wsClient) { closeClients([]*wsClient{c}) })
}

// lagClient is a fan-out client (CityBrain's or the peer's) that keeps the lags of what it receives while
// recording.
type lagClient interface {
	takeLags() []float64
	recording() *atomic.Bool
}

func (c *wsClient) recording() *atomic.Bool    { return &c.record }
func (pc *peerClient) recording() *atomic.Bool { return &pc.record }

// recordLags drops what the clients kept so far, records their lags for dur and returns them with the
// seconds actually measured.
func recordLags[C lagClient](clients []C, dur time.Duration) (lags []float64, seconds float64) {
	for _, c := range clients {
		c.takeLags()
		c.recording().Store(true)
	}
	start := time.Now()
	time.Sleep(dur)
	for _, c := range clients {
		c.recording().Store(false)
		lags = append(lags, c.takeLags()...)
	}
	return lags, time.Since(start).Seconds()
}

// dialAll opens n clients with open, conc at a time. On an error it closes the clients it opened (shut) and
// returns the first error.
func dialAll[C any](n, conc int, open func(i int) (C, error), shut func(C)) ([]C, error) {
	out := make([]C, n)
	opened := make([]bool, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := open(i)
			if err != nil {
				errs <- err
				return
			}
			out[i], opened[i] = c, true
		}()
	}
	wg.Wait()
	close(errs)
	var clients []C
	for i, c := range out {
		if opened[i] {
			clients = append(clients, c)
		}
	}
	if err := <-errs; err != nil {
		for _, c := range clients {
			shut(c)
		}
		return nil, err
	}
	return clients, nil
}

func closeClients(cs []*wsClient) {
	for _, c := range cs {
		c.closed.Store(true)
		c.conn.Close()
	}
}

var (
	keyNow  = []byte(`"now":"`)
	keySeq  = []byte(`"seq":`)
	keyType = []byte(`"type":"delta"`)
)

// read loops until the connection closes.
func (c *wsClient) read(onCell func(cell string, updatedAt int64, recv time.Time)) {
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			if !c.closed.Load() {
				s := err.Error()
				c.closeErr.Store(&s)
			}
			return
		}
		recv := time.Now()
		c.msgs.Add(1)
		c.bytes.Add(uint64(len(msg)))
		head := msg[:min(len(msg), 200)]
		if !bytes.HasPrefix(head, []byte(`{`)) || !bytes.Contains(head, keyType) {
			continue
		}
		if i := bytes.Index(head, keySeq); i >= 0 {
			j := i + len(keySeq)
			k := j
			for k < len(head) && head[k] >= '0' && head[k] <= '9' {
				k++
			}
			if sq, err := strconv.ParseUint(string(head[j:k]), 10, 64); err == nil {
				if c.lastSq != 0 && sq > c.lastSq+1 {
					c.gaps.Add(1)
				}
				c.lastSq = sq
			}
		}
		if c.record.Load() {
			if i := bytes.Index(head, keyNow); i >= 0 && i+len(keyNow)+24 <= len(head) {
				if ts, err := time.Parse("2006-01-02T15:04:05.000Z", string(head[i+len(keyNow):i+len(keyNow)+24])); err == nil {
					c.mu.Lock()
					c.lags = append(c.lags, float64(recv.Sub(ts).Microseconds())/1000)
					c.mu.Unlock()
				}
			}
		}
		if onCell != nil {
			var d struct {
				Cells []struct {
					Cell      string `json:"cell"`
					UpdatedAt string `json:"updated_at"`
				} `json:"cells"`
			}
			if json.Unmarshal(msg, &d) == nil {
				for _, cl := range d.Cells {
					if ts, err := time.Parse(time.RFC3339Nano, cl.UpdatedAt); err == nil {
						onCell(cl.Cell, ts.UnixMilli(), recv)
					}
				}
			}
		}
	}
}

// takeLags returns and clears the recorded lags.
func (c *wsClient) takeLags() []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lags
	c.lags = nil
	return l
}
