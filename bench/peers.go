package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

//go:embed peers/centrifugo.json
var centrifugoConfig []byte

// centrifugoVersion is the release the comparison is made with (scripts/install-centrifugo.sh).
const centrifugoVersion = "v6.9.1"

// PeerFanout is the fan-out load shape run against another server in the same harness run.
type PeerFanout struct {
	Server       string       `json:"server"`
	Version      string       `json:"version"`
	Channels     int          `json:"channels"`
	PayloadBytes int          `json:"payload_bytes"`
	Steps        []FanoutStep `json:"steps"`
	MaxClients   int          `json:"max_clients_p99_under_200ms"`
	Skipped      string       `json:"skipped,omitempty"`
	Lag          string       `json:"lag_definition"`
}

// findCentrifugo returns the Centrifugo binary: Config.Centrifugo, else bin/centrifugo, else on PATH.
func (r *runner) findCentrifugo() string {
	for _, p := range []string{r.cfg.Centrifugo, "bin/centrifugo"} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			if abs, err := filepath.Abs(p); err == nil {
				return abs // the process runs in a directory of its own
			}
			return p
		}
	}
	if p, err := exec.LookPath("centrifugo"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	return ""
}

// peerFanout runs the fan-out section's load shape against Centrifugo: the same client counts, one channel
// per viewport (vp-<n>), one publication per channel per second (the size of CityBrain's average delta in this run).
func (r *runner) peerFanout(ctx context.Context) error {
	pf := &PeerFanout{Server: "centrifugo", Version: centrifugoVersion, Lag: "receipt − the publication's wall-clock stamp"}
	r.rep.Peer = pf
	bin := r.findCentrifugo()
	if bin == "" {
		pf.Skipped = "no centrifugo binary: run `make centrifugo` (scripts/install-centrifugo.sh) or pass --centrifugo"
		r.logf("peer fan-out: skipped: %s", pf.Skipped)
		return nil
	}
	cs, dur, warm, nch := r.fanoutSteps()
	pf.Channels = nch
	pf.PayloadBytes = 600
	if fo := r.rep.Fanout; fo != nil && fo.AvgMessageBytes > 0 {
		pf.PayloadBytes = int(fo.AvgMessageBytes)
	}

	srv, err := startCentrifugo(ctx, bin, r.tmp)
	if err != nil {
		return err
	}
	defer srv.stop()
	pctx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- srv.publishLoop(pctx, nch, pf.PayloadBytes) }()
	defer func() { stopPub(); <-pubDone }()

	var clients []*peerClient
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for _, n := range cs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.logf("peer fan-out: %d clients", n)
		more, err := srv.dial(ctx, len(clients), n-len(clients), nch, 64)
		clients = append(clients, more...)
		if err != nil {
			return err
		}
		time.Sleep(warm)
		msgs := func() uint64 {
			var m uint64
			for _, c := range clients {
				m += c.msgs.Load()
			}
			return m
		}
		cpu0, msgs0 := procCPU(srv.cmd.Process.Pid), msgs()
		lags, el := recordLags(clients, dur)
		st := FanoutStep{Clients: n, Seconds: el, Delivered: msgs() - msgs0, RSSBytes: procRSS(srv.cmd.Process.Pid)}
		cpu := (procCPU(srv.cmd.Process.Pid) - cpu0).Seconds()
		st.ServerCores = cpu / el
		if st.Delivered > 0 {
			st.CPUPerMsgUs = cpu / float64(st.Delivered) * 1e6
		}
		st.P50LagMs, st.P99LagMs, st.MaxLagMs = percentile(lags, 0.5), percentile(lags, 0.99), percentile(lags, 1)
		for _, c := range clients {
			if c.closeErr.Load() != nil {
				st.Disconnected++
			}
		}
		st.Connected = len(clients) - st.Disconnected
		st.PerClientHz = float64(st.Delivered) / el / float64(max(st.Connected, 1))
		st.OK = len(lags) > 0 && st.P99LagMs < 200 && st.Disconnected == 0 && st.PerClientHz > 0.8
		pf.Steps = append(pf.Steps, st)
		r.logf("peer fan-out: %d clients: %.2f Hz each, p99 lag %.0f ms, %.1f µs CPU/msg, disconnected %d", n,
			st.PerClientHz, st.P99LagMs, st.CPUPerMsgUs, st.Disconnected)
		if allOK(pf.Steps) {
			pf.MaxClients = n
		}
		if st.P99LagMs > 1000 || st.Disconnected > 0 || len(lags) == 0 {
			break
		}
	}
	select {
	case err := <-pubDone:
		pubDone <- err
		if err != nil {
			return err
		}
	default:
	}
	return nil
}

// centrifugo is a Centrifugo process the harness started.
type centrifugo struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error
}

func startCentrifugo(ctx context.Context, bin, tmp string) (*centrifugo, error) {
	dir, err := os.MkdirTemp(tmp, "centrifugo-")
	if err != nil {
		return nil, fmt.Errorf("cannot create centrifugo dir: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, centrifugoConfig, 0o644); err != nil {
		return nil, fmt.Errorf("cannot write centrifugo config: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &centrifugo{addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan error, 1)}
	c.cmd = exec.Command(bin, "-c", cfgPath, "--http_server.address", "127.0.0.1", "--http_server.port", strconv.Itoa(port))
	c.cmd.Dir = dir
	var stderr bytes.Buffer
	c.cmd.Stderr = &stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case err := <-c.exited:
			return nil, fmt.Errorf("centrifugo exited at start: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("centrifugo not healthy on %s after 30 s: %s", c.addr, strings.TrimSpace(stderr.String()))
		}
	}
}

func (c *centrifugo) stop() {
	if c.cmd.Process != nil {
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
}

// publishLoop publishes one message to each of n channels every second (one /api/batch call) until ctx ends.
func (c *centrifugo) publishLoop(ctx context.Context, n, size int) error {
	pad := strings.Repeat("x", max(0, size-40))
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		var b bytes.Buffer
		b.WriteString(`{"commands":[`)
		now := time.Now().UnixMilli()
		for k := 0; k < n; k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"publish":{"channel":"vp-%d","data":{"now":%d,"pad":%q}}}`, k, now, pad)
		}
		b.WriteString(`]}`)
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.addr+"/api/batch", &b)
		req.Header.Set("X-API-Key", "citybrain-bench")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot publish to centrifugo: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("cannot publish to centrifugo: %s", resp.Status)
		}
	}
	return nil
}

// peerClient is one Centrifugo client (JSON protocol) subscribed to one channel.
type peerClient struct {
	conn     *websocket.Conn
	wmu      sync.Mutex
	msgs     atomic.Uint64
	record   atomic.Bool
	closed   atomic.Bool
	closeErr atomic.Pointer[string]
	mu       sync.Mutex
	lags     []float64
}

// dial opens n clients numbered from first, client k on channel vp-(k mod channels), conc at a time.
func (c *centrifugo) dial(ctx context.Context, first, n, channels, conc int) ([]*peerClient, error) {
	return dialAll(n, conc, func(i int) (*peerClient, error) {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		conn, _, err := wsDialer.DialContext(dctx, "ws://"+c.addr+"/connection/websocket", nil)
		if err != nil {
			return nil, fmt.Errorf("cannot open centrifugo websocket %d: %w", first+i, err)
		}
		ch := (first + i) % channels
		cmds := fmt.Sprintf("{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"vp-%d\"}}", ch)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(cmds)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("cannot subscribe centrifugo websocket %d: %w", first+i, err)
		}
		pc := &peerClient{conn: conn}
		go pc.read()
		return pc, nil
	}, (*peerClient).close)
}

var keyPubNow = []byte(`"now":`)

// read counts publications and their lags, and answers the server's pings, until the connection closes.
func (pc *peerClient) read() {
	for {
		_, msg, err := pc.conn.ReadMessage()
		if err != nil {
			if !pc.closed.Load() {
				s := err.Error()
				pc.closeErr.Store(&s)
			}
			return
		}
		recv := time.Now()
		// A frame may hold several newline-separated replies and pushes.
		for _, line := range bytes.Split(msg, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if bytes.Equal(line, []byte("{}")) { // ping: answer pong
				pc.wmu.Lock()
				pc.conn.WriteMessage(websocket.TextMessage, []byte("{}"))
				pc.wmu.Unlock()
				continue
			}
			if !bytes.Contains(line, []byte(`"pub"`)) {
				if bytes.Contains(line, []byte(`"error"`)) {
					s := "centrifugo: " + string(line)
					pc.closeErr.Store(&s)
				}
				continue
			}
			pc.msgs.Add(1)
			if !pc.record.Load() {
				continue
			}
			if i := bytes.Index(line, keyPubNow); i >= 0 {
				j := i + len(keyPubNow)
				k := j
				for k < len(line) && line[k] >= '0' && line[k] <= '9' {
					k++
				}
				if ms, err := strconv.ParseInt(string(line[j:k]), 10, 64); err == nil {
					pc.mu.Lock()
					pc.lags = append(pc.lags, float64(recv.UnixMicro()-ms*1000)/1000)
					pc.mu.Unlock()
				}
			}
		}
	}
}

func (pc *peerClient) takeLags() []float64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	l := pc.lags
	pc.lags = nil
	return l
}

func (pc *peerClient) close() {
	pc.closed.Store(true)
	pc.conn.Close()
}
