// Package bench is CityBrain's measurement harness: it starts the real system (a fresh `citybrain run`
// process with embedded NATS on a temporary data directory), drives it with the demo city's event mix over
// 127.0.0.1 only, and reports ingest rates, freshness, websocket fan-out, memory, catch-up speed and reference
// floors measured in the same run, as JSON and as a readable table. Every loop is bounded in count and time.
// The product must not import this package.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// Config sets up a run of the harness.
type Config struct {
	Bin      string        // the citybrain binary to start (`run` subcommand)
	Short    bool          // a few seconds per section: the CI crash check, not a speed judgement
	Duration time.Duration // length of one load step (0: 4 s, short: 1 s)
	Clients  int           // most websocket clients of the fan-out section (0: 10,000, short: 100)
	DataRoot string        // CITYBRAIN_DATA (for the Nanchang road network); "" skips Nanchang
	TempDir  string        // where data directories go ("" : os.TempDir())
	Sections []string      // sections to run (nil: all): floors, ingest, freshness, fanout, peer, memory, overload, replay, zones
	// Centrifugo is the Centrifugo binary of the peer section ("" : bin/centrifugo, else PATH; none: skipped).
	Centrifugo string
	InProcess  bool // run the system inside this process (needed for ProfileDir)
	// ProfileDir, when set, receives a CPU profile (pprof) of every section; it implies InProcess.
	ProfileDir string
	// KeepLog, when set, receives a copy of the memory section's data directory (3 M events in its log) before
	// it is removed: the log `citybrain replay --data KEEPLOG --cpuprofile F` profiles.
	KeepLog string
	// IngestPaths, when set, are the only ingest paths measured (names as in the report, any case:
	// "NATS JSON"), e.g. to profile one path.
	IngestPaths []string
	// OverloadFor is how long the overload section drives the process (0: 60 s, short: 6 s); event time
	// advances over max(15 minutes, this).
	OverloadFor time.Duration
	// ReplayRuns is how many times each replay measure runs (0: 3, short: 1); the report keeps the median
	// run and lists every run's rate (one run swings up to threefold on this machine).
	ReplayRuns int
	Log        io.Writer // progress lines (nil: none)
}

// runner holds the state of one harness run.
type runner struct {
	cfg     Config
	rep     *Report
	demo    *pool // the demo city's events at their own positions
	city    *pool // the same mix over the load network (Nanchang when available)
	baseRes int
	tick    time.Duration // the engine tick of the targets (default config)
	tmp     string
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
	}
}

func (r *runner) want(section string) bool {
	if len(r.cfg.Sections) == 0 {
		return true
	}
	for _, s := range r.cfg.Sections {
		if s == section {
			return true
		}
	}
	return false
}

// Run runs the harness and returns the report; a section that fails is recorded in Report.Errors and the
// others still run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.ProfileDir != "" {
		cfg.InProcess = true
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create profile dir %s: %w", cfg.ProfileDir, err)
		}
	}
	if !cfg.InProcess {
		if cfg.Bin == "" {
			return nil, errors.New("cannot run benchmarks: no citybrain binary given")
		}
		if _, err := os.Stat(cfg.Bin); err != nil {
			return nil, fmt.Errorf("cannot run benchmarks (binary %s): %w", cfg.Bin, err)
		}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 4 * time.Second
		if cfg.Short {
			cfg.Duration = time.Second
		}
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 10000
		if cfg.Short {
			cfg.Clients = 100
		}
	}
	tmp, err := os.MkdirTemp(cfg.TempDir, "citybrain-bench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	r := &runner{cfg: cfg, tmp: tmp, baseRes: geo.DefaultRes, tick: engine.DefaultConfig().Tick, rep: newReport(cfg)}
	started := time.Now()

	n := 200_000
	if cfg.Short {
		n = 20_000
	}
	r.logf("building the event pool from the demo city (%d events)", n)
	if r.demo, err = demoPool(ctx, n, 1); err != nil {
		return nil, err
	}
	r.city = r.demo
	if cfg.DataRoot != "" {
		path := filepath.Join(cfg.DataRoot, "citybrain", "nanchang", "roadnet.txt")
		if net, err := geo.LoadCityBrainFile(path); err != nil {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("Nanchang road network not loaded (%v): load runs use the demo city's positions", err))
		} else {
			r.city = r.demo.remap("demo mix over the Nanchang road network", net, 2)
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("load runs use the demo mix at random points of the %d Nanchang links (%s)", len(net.Links()), path))
		}
	} else {
		r.rep.Notes = append(r.rep.Notes, "no CITYBRAIN_DATA: Nanchang-sized load skipped, load runs use the demo city's positions")
	}
	if cfg.InProcess {
		r.rep.Notes = append(r.rep.Notes, "in-process run (profiling): RSS and CPU figures include the harness itself; use them only for profiles")
	}
	r.rep.Pool = poolInfo{Demo: r.demo.Name, Load: r.city.Name, Events: len(r.demo.Events), Kinds: r.demo.Kinds}

	sections := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"floors", r.floors},
		{"ingest", r.ingest},
		{"freshness", r.freshness},
		{"fanout", r.fanout},
		{"peer", r.peerFanout},
		{"memory", r.memory},
		{"overload", r.overload},
		{"zones", r.zones},
	}
	for _, s := range sections {
		if !r.want(s.name) && !(s.name == "memory" && r.want("replay")) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r.logf("section %s", s.name)
		t0 := time.Now()
		stopProf := r.profile(s.name)
		err := s.fn(ctx)
		stopProf()
		r.rep.SectionSeconds[s.name] = time.Since(t0).Seconds()
		if err != nil {
			r.logf("section %s failed: %v", s.name, err)
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", s.name, err))
		}
	}
	r.rep.computeRatios()
	r.rep.TotalSeconds = time.Since(started).Seconds()
	return r.rep, ctx.Err()
}

// profile starts a CPU profile of section when profiling; the returned func stops it.
func (r *runner) profile(section string) func() {
	if r.cfg.ProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, section+".pprof"))
	if err != nil {
		r.logf("cannot create profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		r.logf("cannot start profile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if hf, err := os.Create(filepath.Join(r.cfg.ProfileDir, section+".heap.pprof")); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(hf)
			hf.Close()
		}
	}
}

// heapProfile writes a heap profile named name when profiling (the in-process system's live heap).
func (r *runner) heapProfile(name string) {
	if r.cfg.ProfileDir == "" {
		return
	}
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, name+".heap.pprof"))
	if err != nil {
		r.logf("cannot create heap profile: %v", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		r.logf("cannot write heap profile: %v", err)
	}
}

// newTarget starts a fresh system on a new data directory under the run's temp dir.
func (r *runner) newTarget(ctx context.Context, name string, o runOpts) (*target, error) {
	dir := filepath.Join(r.tmp, name)
	os.RemoveAll(dir)
	t, err := r.startTarget(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	if st, err := t.status(ctx); err == nil && st.BaseRes > 0 {
		r.baseRes = st.BaseRes
	}
	return t, nil
}

// dispose stops t and removes its data directory.
func (r *runner) dispose(t *target) {
	if t == nil {
		return
	}
	if err := t.stop(); err != nil {
		r.rep.Errors = append(r.rep.Errors, err.Error())
	}
	os.RemoveAll(t.dataDir)
}

// WriteJSON writes the report as indented JSON to path.
func (rep *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write report (%s): %w", path, err)
	}
	return nil
}

// machine describes the host.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					m.CPUModel = strings.TrimSpace(line[i+1:])
				}
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvgStart = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				m.MemTotal = strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:"))
			}
		}
	}
	return m
}
