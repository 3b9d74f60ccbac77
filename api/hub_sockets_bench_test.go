package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"citybrain/engine"
	"citybrain/geo"
)

// BenchmarkFanOutSockets is the fan-out over real sockets: 2,000 websocket clients on loopback over 200
// viewports (10 clients each, one changed cell per viewport per delta, ~500-byte frames), one delta per
// iteration, timed until every client has read it. It reports the process's CPU per delivered message
// (server and clients: the clients' part is the same whatever the hub does, so compare binaries, not
// absolute figures) and the wall time per delta (the last client's wait).
func BenchmarkFanOutSockets(b *testing.B) {
	const clients, viewports = 2000, 200
	e := engine.New(engine.Config{Tick: time.Hour})
	defer e.Stop()
	h := NewHub(HubConfig{QueueLen: 32}, e)
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, func(*http.Request) bool { return true })
	}))
	defer srv.Close()
	var cells []uint64
	var lats, lngs []float64
	for i := 0; i < viewports; i++ {
		lat, lng := 30.20+float64(i%20)*0.01, 120.10+float64(i/20)*0.01
		c, _ := geo.CellOf(lat, lng, 9)
		cells, lats, lngs = append(cells, c), append(lats, lat), append(lngs, lng)
	}
	var got, snapshots atomic.Int64
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialer := &websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 1024}
	for i := 0; i < clients; i++ {
		conn, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, conn)
		k := i % viewports
		sub := map[string]any{"op": "subscribe", "bbox": []float64{lngs[k] - 0.002, lats[k] - 0.002, lngs[k] + 0.002, lats[k] + 0.002}}
		if err := conn.WriteJSON(sub); err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				switch head := string(msg[:min(len(msg), 20)]); {
				case strings.HasPrefix(head, `{"type":"delta"`):
					got.Add(1)
				case strings.HasPrefix(head, `{"type":"snapshot"`):
					snapshots.Add(1)
				}
			}
		}()
	}
	delta := func(i int) *engine.Delta {
		d := &engine.Delta{Seq: uint64(i), Now: 1795737600000 + int64(i)*1000}
		for k, c := range cells {
			v := &engine.CellView{Cell: c, Res: 9, Lat: lats[k], Lng: lngs[k], FreeFlowKmh: 50, UpdatedAt: d.Now}
			v.W[0].Events, v.W[0].SpeedSum, v.W[0].SpeedW, v.W[0].Samples = 3, 90, 3, 3
			d.Changed = append(d.Changed, v)
		}
		return d
	}
	wait := func(n *atomic.Int64, want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for n.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("clients read %d messages of %d", n.Load(), want)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	wait(&snapshots, clients) // every client subscribed
	h.OnDelta(delta(0))
	wait(&got, clients)
	got.Store(0)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		h.OnDelta(delta(i + 1))
		wait(&got, int64(i+1)*clients)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/delta")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*clients), "cpu-ns/message")
}
