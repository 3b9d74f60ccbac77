package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/system"
)

// proc is a process of the cluster under test.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	log  string
}

type clusterHarness struct {
	t       *testing.T
	bin     string
	dir     string
	mu      sync.Mutex
	procs   map[string]*proc
	natsURL string
	http    map[string]string // node name → host:port
	// why the last settled check said no (for the failure message)
	unsettled string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (h *clusterHarness) start(name string, args ...string) *proc {
	h.t.Helper()
	p := &proc{name: name, args: args, log: filepath.Join(h.dir, name+".log")}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	p.cmd = exec.Command(h.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
	h.mu.Lock()
	h.procs[name] = p
	h.mu.Unlock()
	return p
}

func (h *clusterHarness) kill(name string) {
	h.mu.Lock()
	p := h.procs[name]
	delete(h.procs, name)
	h.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// waitOrKill waits for the process to end, and SIGKILLs it after d.
func (p *proc) waitOrKill(d time.Duration) {
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// stopAll stops the CityBrain nodes (SIGTERM: engines store their snapshots), then the NATS nodes.
func (h *clusterHarness) stopAll() {
	h.mu.Lock()
	var app, nats []*proc
	for _, p := range h.procs {
		if strings.HasPrefix(p.name, "nats") {
			nats = append(nats, p)
		} else {
			app = append(app, p)
		}
	}
	h.procs = map[string]*proc{}
	h.mu.Unlock()
	for _, group := range [][]*proc{app, nats} {
		for _, p := range group {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range group {
			p.waitOrKill(15 * time.Second)
		}
	}
}

func (h *clusterHarness) getJSON(node, path string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + h.http[node] + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s on %s: %d %s", path, node, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// settled reports whether every partition is owned by a live engine node other than not, caught up, with
// no lag.
func (h *clusterHarness) settled(not string, engines int) bool {
	var cs system.ClusterStatus
	if err := h.getJSON("api1", "/api/v1/cluster", &cs); err != nil {
		h.unsettled = fmt.Sprintf("GET /api/v1/cluster on api1: %v", err)
		return false
	}
	alive := map[string]bool{}
	for _, n := range cs.Nodes {
		if n.Role == "engine" && n.Alive {
			alive[n.ID] = true
		}
	}
	if engines > 0 && len(alive) != engines {
		h.unsettled = fmt.Sprintf("%d engine nodes alive, want %d: %+v", len(alive), engines, cs.Nodes)
		return false
	}
	for _, r := range cs.Parts {
		if r.Owner == "" || r.Owner == not || !alive[r.Owner] || !r.CaughtUp || r.Lag != 0 {
			h.unsettled = fmt.Sprintf("partition %+v (engines alive %v)", r, alive)
			return false
		}
	}
	return len(cs.Parts) > 0
}

func (h *clusterHarness) waitSettled(not string, engines int, limit time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	for time.Since(t0) < limit {
		if h.settled(not, engines) {
			return time.Since(t0), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0), false
}

// dumpStacks asks every CityBrain node for its goroutines (SIGQUIT: the Go runtime prints them to the node's
// log and exits) and logs those in CityBrain's, the log's and JetStream's code: when a wait fails, where each
// node stands. The nodes are gone afterwards.
func (h *clusterHarness) dumpStacks() {
	h.mu.Lock()
	var app []*proc
	for _, p := range h.procs {
		if !strings.HasPrefix(p.name, "nats") {
			app = append(app, p)
		}
	}
	h.mu.Unlock()
	for _, p := range app {
		p.cmd.Process.Signal(syscall.SIGQUIT)
		p.waitOrKill(10 * time.Second)
		data, _ := os.ReadFile(p.log)
		text := string(data)
		if i := strings.Index(text, "SIGQUIT"); i >= 0 {
			text = text[i:]
		}
		var keep []string
		for _, g := range strings.Split(text, "\n\n") {
			if strings.HasPrefix(g, "goroutine ") && (strings.Contains(g, "citybrain/system") || strings.Contains(g, "citybrain/eventlog") ||
				strings.Contains(g, "jetstream.")) {
				keep = append(keep, g)
			}
		}
		h.t.Logf("--- %s goroutines in CityBrain, eventlog or JetStream code (%d)\n%s", p.name, len(keep), strings.Join(keep, "\n\n"))
	}
}

func (h *clusterHarness) dumpLogs() {
	ents, _ := os.ReadDir(h.dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			data, _ := os.ReadFile(filepath.Join(h.dir, e.Name()))
			text, _, _ := strings.Cut(string(data), "SIGQUIT") // the stacks were logged by dumpStacks
			lines := strings.Split(strings.TrimSpace(text), "\n")
			h.t.Logf("--- %s (last lines)\n%s", e.Name(), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
}

// TestClusterFailover runs a real cluster of processes on loopback (3 NATS nodes from `citybrain nats`, 3
// engine nodes, 1 ingest and 1 api node), loads it over HTTP, SIGKILLs engine nodes (CITYBRAIN_FAILOVER_KILLS,
// default 1; `make cluster-failover` runs 10) and one NATS node under load, and measures the time until
// every partition is owned again and caught up. Then every acknowledged event must be reflected exactly once
// and every cell's samples and events must equal one engine run over the same log; a websocket client on the
// api node must see a pause, not an error.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes: not in -short")
	}
	kills := 1
	if s := os.Getenv("CITYBRAIN_FAILOVER_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	h := &clusterHarness{t: t, dir: dir, procs: map[string]*proc{}, http: map[string]string{}}
	h.bin = citybrainBinary(t)
	t.Cleanup(func() {
		h.stopAll()
		if t.Failed() {
			h.dumpLogs()
		}
	})

	// NATS: three routed nodes.
	var clientPorts, routePorts []int
	for range 3 {
		clientPorts = append(clientPorts, freePort(t))
		routePorts = append(routePorts, freePort(t))
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	natsArgs := func(i int) []string {
		return []string{"nats", "--name", fmt.Sprintf("n%d", i+1), "--listen", fmt.Sprintf("127.0.0.1:%d", clientPorts[i]),
			"--cluster", fmt.Sprintf("127.0.0.1:%d", routePorts[i]), "--routes", strings.Join(routes, ","),
			"--store", filepath.Join(dir, fmt.Sprintf("nats%d", i+1))}
	}
	for i := range 3 {
		h.start(fmt.Sprintf("nats%d", i+1), natsArgs(i)...)
	}
	h.natsURL = strings.Join(urls, ",")
	for _, p := range clientPorts {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("NATS node on port %d did not come up", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const partitions = 6
	nodeArgs := func(name, role string) []string {
		if h.http[name] == "" {
			h.http[name] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		}
		return []string{"run", "--role", role, "--node", name, "--http", h.http[name], "--data", filepath.Join(dir, name),
			"--nats", h.natsURL, "--partitions", strconv.Itoa(partitions), "--district-res", "7", "--replicas", "3",
			"--demo=false", "--snapshot-every", "3s", "--lease-ttl", "3s", "--shards", "2"}
	}
	engines := []string{"engine1", "engine2", "engine3"}
	for _, n := range engines {
		h.start(n, nodeArgs(n, "engine")...)
	}
	h.start("ingest1", nodeArgs("ingest1", "ingest")...)
	h.start("api1", nodeArgs("api1", "api")...)
	if _, ok := h.waitSettled("", 3, 90*time.Second); !ok {
		t.Fatalf("the cluster did not come up: partitions not all owned and caught up within 90 s (last check: %s)", h.unsettled)
	}

	// A viewer on the api node.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+h.http["api1"]+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteJSON(map[string]any{"op": "subscribe", "bbox": []float64{119.9, 30.0, 120.5, 30.5}, "res": 9, "window": "900s"})
	var wsMsgs atomic.Int64
	var wsErr atomic.Value
	wsDone := make(chan struct{})
	go func() {
		defer close(wsDone)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				wsErr.Store(err)
				return
			}
			wsMsgs.Add(1)
		}
	}()

	// Load: batches of probes over ~25 districts, event times within 50 s (every window then holds every
	// event, in each partition as in one engine), each batch retried with its Idempotency-Key until stored.
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixMilli()
	var acked atomic.Uint64
	var batches atomic.Uint64
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		rng := rand.New(rand.NewSource(1))
		c := http.Client{Timeout: 10 * time.Second}
		for b := 0; ; b++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			var body bytes.Buffer
			for i := 0; i < 100; i++ {
				fmt.Fprintf(&body, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%.5f,"lng":%.5f,"speed_kmh":%.1f}`+"\n",
					t0+rng.Int63n(50000), rng.Intn(5000), 30.20+rng.Float64()*0.1, 120.10+rng.Float64()*0.1, 5+rng.Float64()*50)
			}
			key := fmt.Sprintf("load-%d", b)
			for {
				req, _ := http.NewRequest("POST", "http://"+h.http["ingest1"]+"/api/v1/events", bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Idempotency-Key", key)
				resp, err := c.Do(req)
				if err == nil {
					var res struct {
						Accepted int `json:"accepted"`
					}
					json.NewDecoder(resp.Body).Decode(&res)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						acked.Add(uint64(res.Accepted))
						batches.Add(1)
						break
					}
				}
				select {
				case <-stopLoad:
					return // an unacknowledged batch is not counted: the client would retry it
				case <-time.After(100 * time.Millisecond):
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitBatches := func(n uint64) {
		t.Helper()
		start := batches.Load()
		deadline := time.Now().Add(60 * time.Second)
		for batches.Load() < start+n {
			if time.Now().After(deadline) {
				t.Fatalf("ingest stalled: %d batches acknowledged in 60 s", batches.Load()-start)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitBatches(30)

	var failovers []time.Duration
	for i := range kills {
		victim := engines[i%len(engines)]
		h.kill(victim)
		d, ok := h.waitSettled(victim, 2, 60*time.Second)
		if !ok {
			t.Fatalf("kill %d (%s): partitions not owned again and caught up within 60 s (last check: %s)", i+1, victim, h.unsettled)
		}
		failovers = append(failovers, d)
		t.Logf("kill %d: SIGKILL %s → every partition owned again and caught up after %s (%d events acknowledged so far)",
			i+1, victim, d.Round(time.Millisecond), acked.Load())
		waitBatches(10)
		h.start(victim, nodeArgs(victim, "engine")...)
		if _, ok := h.waitSettled("", 3, 60*time.Second); !ok {
			t.Fatalf("kill %d: %s did not rejoin within 60 s (last check: %s)", i+1, victim, h.unsettled)
		}
		waitBatches(10)
	}
	// One NATS node under load: clients move to the others, the R3 streams keep a quorum.
	h.kill("nats2")
	tk := time.Now()
	waitBatches(20)
	tb := time.Since(tk)
	// Two minutes: after a NATS server's death one partition's ordered consumer can sit for ~30 s (applied
	// sequence stuck, lag 1) before it recovers (11–35 s here at load 1–10; over 60 s at load 20); the time
	// is measured and logged below, the 10-s bar is for engine kills.
	// CITYBRAIN_NATS_KILL_WAIT (a duration) shortens it to catch the nodes' goroutines in the act.
	natsWait := 120 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CITYBRAIN_NATS_KILL_WAIT")); err == nil && d > 0 {
		natsWait = d
	}
	if _, ok := h.waitSettled("", 3, natsWait); !ok {
		h.dumpStacks()
		t.Fatalf("after SIGKILL of a NATS node: partitions not all owned and caught up within %s (last check: %s)", natsWait, h.unsettled)
	}
	t.Logf("SIGKILL nats2: 20 more batches acknowledged within %s; every partition owned and caught up %s after the kill",
		tb.Round(time.Millisecond), time.Since(tk).Round(time.Millisecond))
	h.start("nats2", natsArgs(1)...)
	waitBatches(10)
	close(stopLoad)
	<-loadDone

	// Every acknowledged event reflected once on the api node.
	var st struct {
		Events uint64 `json:"events_reflected"`
		Memory struct {
			Limit int64 `json:"limit_bytes"`
			RSS   int64 `json:"rss_bytes"`
		} `json:"memory"`
	}
	want := acked.Load()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := h.getJSON("api1", "/api/v1/status", &st)
		if err == nil && st.Events == want && h.settled("", 3) {
			break
		}
		if time.Now().After(deadline) {
			h.dumpStacks()
			t.Fatalf("api node reflects %d events, %d were acknowledged (err %v; settled: %s)", st.Events, want, err, h.unsettled)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Memory.Limit <= 0 || st.Memory.RSS <= 0 {
		t.Errorf("the api node's status reports no memory governor: %+v", st.Memory)
	}

	// The same log through one engine: the single-process result.
	nc, err := nats.Connect(h.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	lcfg := eventlog.DefaultConfig()
	lcfg.Existing = true
	var lg *eventlog.Log
	for deadline := time.Now().Add(60 * time.Second); ; { // the restarted NATS node may still be catching up
		if lg, err = eventlog.Open(t.Context(), nc, lcfg); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if lg.Partitions() != partitions {
		t.Fatalf("the log says %d partitions, want %d", lg.Partitions(), partitions)
	}
	ls, err := lg.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ls.LastSeq < 50 {
		t.Fatalf("the log holds %d messages: the load did not get through", ls.LastSeq)
	}
	ecfg := engine.DefaultConfig()
	ecfg.Shards = 2
	ref := engine.New(ecfg)
	defer ref.Stop()
	if err := lg.ReadAll(t.Context(), 1, ls.LastSeq, eventlog.Handlers{Batch: func(seq uint64, rec arrow.Record) error {
		return ref.Apply(seq, rec)
	}}); err != nil {
		t.Fatal(err)
	}
	ref.Flush()
	if got := ref.Status().Events; got != want {
		t.Errorf("one engine over the log counts %d events, %d were acknowledged", got, want)
	}
	type cell struct {
		Cell    string `json:"cell"`
		Samples uint64 `json:"samples"`
		Events  uint64 `json:"events"`
	}
	for w, name := range []string{"60s", "300s", "900s"} {
		var got []cell
		if err := h.getJSON("api1", "/api/v1/cells?res=9&window="+name, &got); err != nil {
			t.Fatal(err)
		}
		wantCells := map[string]cell{}
		for _, v := range ref.All() {
			if v.W[w].Events > 0 || v.W[w].Samples > 0 {
				wantCells[geo.CellString(v.Cell)] = cell{Cell: geo.CellString(v.Cell), Samples: uint64(v.W[w].Samples), Events: uint64(v.W[w].Events)}
			}
		}
		diffs := 0
		for _, c := range got {
			if wc, ok := wantCells[c.Cell]; !ok || wc != c {
				if diffs++; diffs <= 5 {
					t.Errorf("window %s cell %s: cluster %+v, one engine %+v", name, c.Cell, c, wc)
				}
			}
			delete(wantCells, c.Cell)
		}
		for _, wc := range wantCells {
			if diffs++; diffs <= 5 {
				t.Errorf("window %s cell %s: missing from the cluster (one engine %+v)", name, wc.Cell, wc)
			}
		}
		if diffs > 0 {
			t.Errorf("window %s: %d cells differ of %d", name, diffs, len(got))
		} else {
			t.Logf("window %s: %d cells equal to one engine over the same log", name, len(got))
		}
	}

	// An operator action on the api node is applied by the partition owning the incident.
	// A camera frame and a call 20 m away that corroborates it: an incident (one frame alone is a candidate).
	video := fmt.Sprintf(`{"kind":"video","ts":%d,"id":"cam-7","lat":30.2601,"lng":120.1502,"type":"crash","confidence":0.95}`+"\n", t0+49000) +
		fmt.Sprintf(`{"kind":"report","ts":%d,"id":"call-7","lat":30.2603,"lng":120.1503,"type":"crash","severity":3}`+"\n", t0+49500)
	resp, err := http.Post("http://"+h.http["ingest1"]+"/api/v1/events", "application/x-ndjson", strings.NewReader(video))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("posting a camera frame: %v %v", err, resp)
	}
	resp.Body.Close()
	var incID string
	deadline = time.Now().Add(30 * time.Second)
	for incID == "" {
		var list []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := h.getJSON("api1", "/api/v1/incidents", &list); err == nil && len(list) > 0 {
			incID = list[0].ID
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no incident on the api node 30 s after a camera frame and a call")
		}
		time.Sleep(100 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "api1", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+h.http["api1"]+"/api/v1/incidents/"+incID, strings.NewReader(`{"status":"confirmed","note":"cluster test"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"confirmed"`) {
		t.Errorf("confirming %s on the api node: %d %s", incID, resp.StatusCode, body)
	}

	// The viewer saw a pause, not an error.
	if err, _ := wsErr.Load().(error); err != nil {
		t.Errorf("the websocket client on the api node got an error: %v", err)
	}
	if wsMsgs.Load() == 0 {
		t.Error("the websocket client got no message")
	}
	ws.Close()
	<-wsDone
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	if len(failovers) > 0 {
		t.Logf("failover over %d engine kills: min %s, median %s, max %s; %d events acknowledged, 0 lost, 0 counted twice",
			len(failovers), failovers[0].Round(time.Millisecond), failovers[len(failovers)/2].Round(time.Millisecond),
			failovers[len(failovers)-1].Round(time.Millisecond), want)
	}
}
