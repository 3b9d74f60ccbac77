package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/system"
)

// runOpts are the `citybrain run` settings a section changes from the defaults.
type runOpts struct {
	Tick      time.Duration // 0: the default
	Retention time.Duration // 0: the default
	// MemoryLimit is --memory-limit in bytes (0: the default, half the machine).
	MemoryLimit int64
}

// target is one running CityBrain: a child process of bin/citybrain (the normal case) or, when profiling,
// system.Start inside this process.
type target struct {
	httpAddr string
	natsURL  string
	dataDir  string
	pid      int
	started  time.Time

	cmd    *exec.Cmd
	exited chan error
	logBuf *lockedBuffer

	sys *system.System // in-process mode
}

// lockedBuffer keeps the tail of a child's stderr for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 64<<10 {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-32<<10:]...)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startTarget starts CityBrain on dataDir (created when missing) and waits until its status answers.
func (r *runner) startTarget(ctx context.Context, dataDir string, o runOpts) (*target, error) {
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	np, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{
		httpAddr: fmt.Sprintf("127.0.0.1:%d", hp), natsURL: fmt.Sprintf("nats://127.0.0.1:%d", np),
		dataDir: dataDir, started: time.Now(),
	}
	if r.cfg.InProcess {
		ecfg := engine.DefaultConfig()
		if o.Tick > 0 {
			ecfg.Tick = o.Tick
		}
		if o.Retention > 0 {
			ecfg.Retention = o.Retention
		}
		scfg := system.Config{HTTPAddr: t.httpAddr, DataDir: dataDir, NATSListen: fmt.Sprintf("127.0.0.1:%d", np),
			Version: "bench", Engine: ecfg, Logger: log.New(io.Discard, "", 0), MemoryLimit: o.MemoryLimit}
		scfg.Log = eventlog.DefaultConfig()
		sys, err := system.Start(context.Background(), scfg)
		if err != nil {
			return nil, fmt.Errorf("cannot start the system in process (%s): %w", dataDir, err)
		}
		t.sys, t.pid = sys, os.Getpid()
	} else {
		args := []string{"run", "--http", t.httpAddr, "--data", dataDir, "--demo=false",
			"--nats-listen", fmt.Sprintf("127.0.0.1:%d", np)}
		if o.Tick > 0 {
			args = append(args, "--tick", o.Tick.String())
		}
		if o.Retention > 0 {
			args = append(args, "--retention", o.Retention.String())
		}
		if o.MemoryLimit > 0 {
			args = append(args, "--memory-limit", strconv.FormatInt(o.MemoryLimit, 10))
		}
		t.cmd = exec.Command(r.cfg.Bin, args...)
		t.logBuf = &lockedBuffer{}
		t.cmd.Stdout, t.cmd.Stderr = t.logBuf, t.logBuf
		t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := t.cmd.Start(); err != nil {
			return nil, fmt.Errorf("cannot start %s %s: %w", r.cfg.Bin, strings.Join(args, " "), err)
		}
		t.pid = t.cmd.Process.Pid
		t.exited = make(chan error, 1)
		go func() { t.exited <- t.cmd.Wait() }()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := t.status(ctx); err == nil {
			return t, nil
		}
		select {
		case err := <-t.exited:
			return nil, fmt.Errorf("cannot start citybrain (exited: %v): %s", err, tail(t.logBuf.String()))
		case <-ctx.Done():
			t.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("cannot start citybrain: no status after 60s: %s", t.logTail())
		}
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

func (t *target) logTail() string {
	if t.logBuf == nil {
		return ""
	}
	return tail(t.logBuf.String())
}

// stop stops the target with SIGTERM (or system.Stop) and waits up to 60 s, then kills it.
func (t *target) stop() error {
	if t.sys != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return t.sys.Stop(ctx)
	}
	if t.cmd == nil || t.cmd.Process == nil {
		return nil
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-t.exited:
		if err != nil {
			return fmt.Errorf("cannot stop citybrain cleanly (%v): %s", err, t.logTail())
		}
		return nil
	case <-time.After(60 * time.Second):
		t.cmd.Process.Kill()
		<-t.exited
		return errors.New("cannot stop citybrain: no exit 60s after SIGTERM, killed")
	}
}

// status is the part of GET /api/v1/status the harness reads.
type status struct {
	Watermark       *string `json:"watermark"`
	EventsAccepted  uint64  `json:"events_accepted"`
	EventsRejected  uint64  `json:"events_rejected"`
	EventsLate      uint64  `json:"events_late"`
	EventsTooLate   uint64  `json:"events_too_late"`
	EventsReflected uint64  `json:"events_reflected"`
	LogSeq          uint64  `json:"log_seq"`
	Cells           int     `json:"cells"`
	CaughtUp        bool    `json:"caught_up"`
	BaseRes         int     `json:"base_res"`
	Raw             struct {
		Events               int64   `json:"events"`
		Bytes                int64   `json:"bytes"`
		RetentionS           float64 `json:"retention_s"`
		RetentionConfiguredS float64 `json:"retention_configured_s"`
	} `json:"raw"`
	Memory struct {
		SlowDown      bool   `json:"slow_down"`
		Backlog       uint64 `json:"backlog_messages"`
		GoHeapLive    int64  `json:"go_heap_live_bytes"`
		GoHeapObjects int64  `json:"go_heap_objects_bytes"`
		GoHeapFree    int64  `json:"go_heap_free_bytes"`
		GoOther       int64  `json:"go_other_bytes"`
		Settles       uint64 `json:"settles"`
	} `json:"memory"`
}

var statusClient = &http.Client{Timeout: 5 * time.Second}

func (t *target) status(ctx context.Context) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.httpAddr+"/api/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("cannot read status (%s): %w", t.httpAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("cannot read status (%s): HTTP %d", t.httpAddr, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("cannot decode status (%s): %w", t.httpAddr, err)
	}
	return st, nil
}

// metric reads one unlabelled gauge or counter from /metrics.
func (t *target) metric(ctx context.Context, name string) (float64, error) {
	m, err := t.metrics(ctx, name)
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("cannot find metric %s at %s", name, t.httpAddr)
	}
	return v, nil
}

// metrics reads several samples from /metrics at once, each named as its line starts (labels included:
// `citybrain_tick_seconds{part="hub"}`); the first sample of each name counts, a name not found is left out.
func (t *target) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read metrics (%s): %w", t.httpAddr, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			if _, seen := out[name]; !seen && strings.HasPrefix(line, name+" ") {
				if v, err := strconv.ParseFloat(strings.TrimSpace(line[len(name)+1:]), 64); err == nil {
					out[name] = v
				}
			}
		}
	}
	return out, sc.Err()
}

// waitReflected polls the status until events_reflected reaches n, and returns when it did; it gives up
// after timeout.
func (t *target) waitReflected(ctx context.Context, n uint64, timeout time.Duration) (status, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := t.status(ctx)
		if err == nil && st.EventsReflected >= n {
			return st, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return st, time.Now(), fmt.Errorf("cannot see %d events reflected within %s (reflected %d, status err %v)", n, timeout, st.EventsReflected, err)
		}
		select {
		case <-ctx.Done():
			return st, time.Now(), ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// rss returns the resident set size of the target process in bytes.
func (t *target) rss() uint64 { return procRSS(t.pid) }

// procRSS is the resident set size of process pid (0 when unknown).
func procRSS(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmRSS:")) {
			f := strings.Fields(string(line[6:]))
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// cpu returns the user+system CPU time the target process used so far.
func (t *target) cpu() time.Duration { return procCPU(t.pid) }

// procCPU reads utime+stime of pid from /proc/pid/stat (clock ticks of 10 ms on Linux).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	// Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
