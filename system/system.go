// Package system wires CityBrain's parts into one running process: the NATS server (embedded or external),
// the log, the engine, ingest, the API and the web UI, started in dependency order and stopped in reverse.
// It holds no logic of its own; tests and the command use it alike.
package system

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"citybrain/api"
	"citybrain/api/cap"
	"citybrain/api/webhook"
	"citybrain/engine"
	"citybrain/engine/dispatch"
	"citybrain/engine/queue"
	"citybrain/engine/queues"
	"citybrain/engine/signals"
	"citybrain/engine/zones"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/natsin"
	"citybrain/replay"
)

// Config is everything `citybrain run` can set.
type Config struct {
	HTTPAddr   string // where the API and web UI listen
	DataDir    string // JetStream storage, admin token
	NATSURL    string // an external NATS server; empty starts the embedded one
	NATSListen string // the embedded server's client address ("" : in-process only; port 0: random)
	AuthFile   string
	// AllowedOrigins are extra browser origins allowed to open /ws.
	AllowedOrigins []string
	Version        string
	Web            fs.FS
	Logger         *log.Logger
	// CAPSender is the sender of CAP messages (default citybrain@citybrain.local).
	CAPSender string
	// OpenDataAnonymous lets callers without a token read /api/v1/opendata under an auth configuration;
	// OpenDataPerMinute is each caller's request rate there (default 60).
	OpenDataAnonymous bool
	OpenDataPerMinute int
	// Webhooks receive alerts (api/webhook); empty: none.
	Webhooks []webhook.Target
	// Network is the loaded road network (nil: none). Cells crossed by its links take their free-flow speed
	// from the speed limits, and /api/v1/network serves it to the map.
	Network *geo.Network
	// SignalControl tunes the signal controller (zero: signals.DefaultControl).
	SignalControl signals.Control
	// EventClock runs the engine and the dispatcher (ETAs, green waves, re-routes) on the feeds' event time
	// instead of the wall clock, for feeds simulated faster than real time (the SUMO closed loop,
	// bench/signals): neither ticks on a wall-clock timer; the feeder calls Step after each simulated step,
	// so the same feeds give the same incidents and dispatches however fast they come (step.go).
	EventClock bool

	// MemoryLimit is the process's memory budget in bytes (system/memory.go): 0, half the machine's memory;
	// negative, none.
	MemoryLimit int64

	// HTTP bounds the API server's clients (timeouts, connections).
	HTTP   HTTPLimits
	Engine engine.Config
	Log    eventlog.Config
	Ingest ingest.Config
	Hub    api.HubConfig
	// SnapshotEvery is how often the engine writes a snapshot of its state under DataDir/snapshots (0: 5
	// minutes; negative: never, not even at shutdown). On start the newest valid one is loaded and only the
	// log after it is replayed.
	SnapshotEvery time.Duration
	// NATSWorkers process citybrain.in.* messages.
	NATSWorkers int
	// Cluster sets the role of a cluster node (system/roles.go, StartNode); the zero value is the single
	// process Start runs.
	Cluster ClusterConfig
	// Feeders run in-process sources (the demo city) after everything else has started; each returns when
	// ctx ends.
	Feeders []func(ctx context.Context, in *ingest.Ingestor) error
	// CommandCenter: base map, time zone, history (commandcenter.go).
	CommandCenter CommandCenter
}

// System is a running CityBrain.
type System struct {
	cfg    Config
	logger *log.Logger

	ns     *server.Server
	nc     *nats.Conn
	Log    *eventlog.Log
	Engine *engine.Engine
	// Queues estimates the lanes of the network's signals (nil without signal programs).
	Queues  *queues.Estimator
	Ingest  *ingest.Ingestor
	natsSrc *natsin.Source
	Hub     *api.Hub
	// Zones holds the zones and their alerts (engine/zones), fed by the engine's deltas and the log's zone
	// actions; its state goes into the engine's snapshots.
	Zones *zones.Manager
	// CAP publishes confirmed incidents and zone alerts as CAP 1.2 (api/cap): /api/v1/cap.atom and NATS
	// citybrain.out.cap.
	CAP   *cap.Feed
	hooks *webhook.Sender // nil without webhooks
	// Dispatch holds dispatches and signal-plan decisions (nil without a road network); every decision is
	// an action in the log (system/dispatch.go).
	Dispatch *dispatch.Manager
	// Replays holds planners' replay sessions (replay/session.go), each with its own engine.
	Replays *replay.Manager
	unlock  func() // releases the data directory's lock (lock.go)
	http    *http.Server
	ln      net.Listener

	consumeCancel context.CancelFunc
	consumeDone   chan error
	feedCancel    context.CancelFunc
	mem           *governor // the memory budget (memory.go)
	feedWG        sync.WaitGroup

	startSeq     uint64 // last log sequence when the process started
	snapDir      string
	lastSnap     time.Time     // consumer goroutine
	lastSnapSeq  uint64        // consumer goroutine
	appliedSeq   uint64        // consumer goroutine
	replayed     atomic.Uint64 // events of messages up to startSeq, applied during catch-up
	deadAtStart  uint64
	adminToken   string
	dispatchStop chan struct{}
	dispatchDone chan struct{}
	stopOnce     sync.Once
	stopErr      error
	hubReady     atomic.Pointer[api.Hub]
	badMessages  atomic.Uint64
	consumed     progress // the last log message the consumer has handled (step.go)
	cc           ccState
}

// Start starts everything and returns when the API is listening. On error, what was started is stopped.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	s := &System{cfg: cfg, logger: cfg.Logger}
	if s.logger == nil {
		s.logger = log.New(os.Stderr, "citybrain: ", log.LstdFlags)
	}
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()
	if cfg.DataDir == "" {
		return nil, errors.New("cannot start: --data is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	if cfg.NATSURL == "" { // the embedded server's store must have one writer: see lock.go
		if s.unlock, err = LockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}

	// Auth first: it decides whether this configuration may listen where asked.
	auth, tokenPath, err := openAuth(cfg.AuthFile, cfg.HTTPAddr, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if tokenPath != "" {
		s.adminToken = tokenPath
		s.logger.Printf("no auth config: admin token in %s (reading and ingest are open on loopback only)", s.adminToken)
	}

	// 1. NATS.
	if err := s.startNATS(auth); err != nil {
		return nil, err
	}
	// 2. The log.
	lcfg := cfg.Log
	lcfg.Layout = logLayout(cfg.Engine)
	if s.Log, err = eventlog.Open(ctx, s.nc, lcfg); err != nil {
		return nil, err
	}
	if cfg.NATSURL == "" {
		// The embedded server's store is this process's (the data directory is locked): planners' replays and
		// exports read its message blocks directly, through the server past what is on disk.
		s.Log.SetOfflineStore(filepath.Join(cfg.DataDir, "nats"))
	}
	if got := s.Log.MaxBytes(); got > 0 && lcfg.MaxBytes > got {
		s.logger.Printf("the log is limited to %d MiB: the %d MiB configured do not fit the disk (JetStream reserves at most 3/4 of its free space)",
			got>>20, lcfg.MaxBytes>>20)
	}
	st, err := s.Log.State(ctx)
	if err != nil {
		return nil, err
	}
	s.startSeq = st.LastSeq
	if s.deadAtStart, err = s.Log.DeadCount(ctx); err != nil {
		return nil, err
	}
	// 3. The engine and its consumer of the log.
	ecfg := cfg.Engine
	if cfg.EventClock {
		ecfg.Tick = eventClockTick // the feeder ticks it (Step)
	}
	// Retained raw events live where the engine's RawMem (else Mem) puts them: on the Go heap in the product
	// (engine.DefaultConfig's Mem). The C allocator was meant to hold them but was never installed, as
	// engine.DefaultConfig sets Mem; installed, it measured no better: settled RSS of 3 M raw events over 47
	// cells 138.7–143.0 MiB against 130.4–149.3 on the Go heap, over many cells 486–527 against 444–478 MiB
	// (glibc keeps freed chunks), bench --sections memory, docs/performance.md "Session 8".
	if cfg.Network != nil {
		res := ecfg.Res
		if res == 0 {
			res = engine.DefaultConfig().Res
		}
		ecfg.Network = cfg.Network
		ff := cfg.Network.CellFreeFlowKmh(res)
		ecfg.FreeFlow = func(cell uint64) (float64, bool) { v, ok := ff[cell]; return v, ok && v > 0 }
		if len(cfg.Network.Signals()) > 0 {
			// The signal controller's lane estimates, fed with every applied batch (engine/queues).
			s.Queues = queues.New(cfg.Network, queues.DefaultConfig())
			ecfg.ObserveRows = s.Queues.Observe
		}
	}
	zres := ecfg.Res
	if zres == 0 {
		zres = engine.DefaultConfig().Res
	}
	s.Zones = zones.New(zones.Config{Res: zres, Network: cfg.Network, OnAlert: s.onAlert})
	if len(cfg.Webhooks) > 0 {
		if s.hooks, err = webhook.New(webhook.Config{Targets: cfg.Webhooks, Logger: s.logger}); err != nil {
			return nil, err
		}
	}
	s.CAP = cap.NewFeed(cap.Config{Sender: cfg.CAPSender, ZoneRing: s.zoneRing, OnMessage: s.publishCAP})
	ecfg.OnDelta = func(d *engine.Delta) {
		s.CAP.OnIncidents(d.Incidents)
		s.Zones.OnDelta(d)
		if h := s.hubReady.Load(); h != nil {
			h.OnDelta(d)
		}
	}
	ecfg.SnapshotParts = func() (map[string][]byte, error) {
		zs, err := s.Zones.MarshalState()
		if err != nil {
			return nil, err
		}
		cs, err := s.CAP.MarshalState()
		if err != nil {
			return nil, err
		}
		parts := map[string][]byte{"zones.json": zs, "cap.json": cs}
		if s.Dispatch != nil {
			if parts["dispatch.json"], err = s.Dispatch.MarshalState(); err != nil {
				return nil, err
			}
		}
		return parts, nil
	}
	s.Engine = engine.New(ecfg)
	// Dispatch before the consumer: the log's dispatch and plan decisions go to it (system/dispatch.go).
	if cfg.Network != nil {
		if s.Dispatch, err = dispatch.New(s.Engine, dispatch.Config{Network: cfg.Network, Closed: s.Zones.Closures,
			Queues: s.Queues, Control: cfg.SignalControl, Journal: s.journalDispatch, Ready: s.Ready, Now: s.dispatchClock(cfg.EventClock)}); err != nil {
			return nil, fmt.Errorf("cannot start dispatch: %w", err)
		}
	}
	from := uint64(1)
	s.snapDir = filepath.Join(cfg.DataDir, "snapshots")
	if cfg.SnapshotEvery >= 0 {
		t0 := time.Now()
		seq, err := s.Engine.LoadSnapshot(s.snapDir, s.startSeq, func(p string, err error) {
			s.logger.Printf("skipping snapshot %s: %v", p, err)
		})
		switch {
		case err == nil:
			if data := s.Engine.LoadedParts()["zones.json"]; data != nil {
				if err := s.Zones.RestoreState(data, s.Engine.All(), s.Engine.Incidents()); err != nil {
					return nil, fmt.Errorf("cannot restore zones from snapshot %d: %w", seq, err)
				}
			}
			if data := s.Engine.LoadedParts()["cap.json"]; data != nil {
				if err := s.CAP.RestoreState(data); err != nil {
					return nil, fmt.Errorf("cannot restore the CAP feed from snapshot %d: %w", seq, err)
				}
			}
			if data := s.Engine.LoadedParts()["dispatch.json"]; data != nil && s.Dispatch != nil {
				if err := s.Dispatch.RestoreState(data); err != nil {
					return nil, fmt.Errorf("cannot restore dispatches from snapshot %d: %w", seq, err)
				}
			}
			from = seq + 1
			s.replayed.Store(s.Engine.Status().Events)
			s.lastSnapSeq, s.appliedSeq = seq, seq
			s.logger.Printf("loaded snapshot at log sequence %d in %s; replaying %d log messages after it", seq, time.Since(t0).Round(time.Millisecond), s.startSeq-seq)
		case errors.Is(err, engine.ErrNoSnapshot):
		default:
			return nil, err
		}
	}
	s.lastSnap = time.Now()
	s.Hub = api.NewHub(cfg.Hub, s.Engine)
	s.hubReady.Store(s.Hub)
	cctx, cancel := context.WithCancel(context.Background())
	s.consumeCancel = cancel
	s.consumeDone = make(chan error, 1)
	s.consumed.advance(from - 1) // what a snapshot already holds counts as handled
	go func() {
		s.consumeDone <- s.Log.ConsumeAll(cctx, from, eventlog.Handlers{
			Batch:  s.apply,
			Action: func(seq uint64, a engine.Action) error { s.Engine.ApplyAction(seq, a); return nil },
			Typed:  s.applyTyped,
			Progress: func(seq, _ uint64) {
				s.consumed.advance(seq)
			},
			Bad: func(seq uint64, err error) {
				// No message stops the consumer or a restart: it is counted, kept aside and skipped.
				s.badMessages.Add(1)
				s.logger.Printf("skipping log message %d: %v", seq, err)
				ctx, cancel := context.WithTimeout(cctx, 10*time.Second)
				defer cancel()
				if err := s.Log.PutAside(ctx, seq, err); err != nil {
					s.logger.Printf("cannot keep log message %d aside: %v", seq, err)
				}
			},
		})
	}()
	// 4. Ingest: HTTP handler and NATS subjects.
	icfg := cfg.Ingest
	icfg.Res = s.Engine.Config().Res
	limit := cfg.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit()
	}
	s.mem = newGovernor(max(limit, 0), s.Engine.Config().Retention, func() []*engine.Engine { return []*engine.Engine{s.Engine} }, s.logger.Printf)
	if icfg.Admit == nil {
		icfg.Admit = s.mem.admit
	}
	s.Ingest = ingest.New(icfg, s.Log)
	s.mem.start(func() uint64 {
		last, applied := s.Ingest.Stats().LastSeq.Load(), s.Engine.Status().AppliedSeq
		if last > applied {
			return last - applied
		}
		return 0
	})
	if s.natsSrc, err = natsin.Serve(s.Ingest, s.nc, cfg.NATSWorkers); err != nil {
		return nil, err
	}
	// 5. API and web UI.
	srv := &api.Server{
		Engine: s.Engine, Ingest: s.Ingest, Log: s.Log, Hub: s.Hub, Auth: auth, Version: cfg.Version, Web: cfg.Web,
		Accepted: s.accepted, Rejected: s.rejected, Ready: s.Ready, Network: cfg.Network, Zones: s.Zones, CAP: s.CAP,
		OpenData: s.openData(zres), OpenDataAnonymous: cfg.OpenDataAnonymous, OpenDataPerMinute: cfg.OpenDataPerMinute,
		AllowedOrigins: cfg.AllowedOrigins,
		Memory:         s.mem.status,
		Queues: func() []queue.Stat {
			q := []queue.Stat{s.natsSrc.Queue()}
			if s.hooks != nil {
				q = append(q, s.hooks.Queue())
			}
			return q
		},
		Unreadable: func() map[string]uint64 {
			return map[string]uint64{"log": s.badMessages.Load(), "nats": s.natsSrc.Panics.Load()}
		},
	}
	// Replays: sessions run their own engines with the live configuration (replay/manager.go).
	rcfg := ecfg
	rcfg.OnDelta, rcfg.Mem, rcfg.ObserveRows = nil, nil, nil
	s.Replays = replay.NewManager(replay.ManagerConfig{Log: s.Log, Engine: rcfg, FileDir: filepath.Join(cfg.DataDir, "imports")})
	srv.Replays = api.NewReplays(s.Replays, cfg.Hub)
	srv.Replays.NewZones = s.replayZones(zres)
	if s.Dispatch != nil {
		srv.Dispatch = s.Dispatch
	}
	if dm := s.Dispatch; dm != nil && !cfg.EventClock { // on event time the feeder ticks it (Step)
		s.dispatchStop = make(chan struct{})
		s.dispatchDone = make(chan struct{})
		go func() { defer close(s.dispatchDone); dm.Run(s.dispatchStop, 2*time.Second) }()
	}
	if err := s.startCommandCenter(srv, rcfg); err != nil {
		return nil, err
	}
	if s.http, s.ln, err = httpServer(cfg.HTTPAddr, srv.Handler(), cfg.HTTP, s.logger); err != nil {
		return nil, err
	}
	// 6. In-process feeders.
	fctx, fcancel := context.WithCancel(context.Background())
	s.feedCancel = fcancel
	for _, f := range cfg.Feeders {
		s.feedWG.Add(1)
		go func() {
			defer s.feedWG.Done()
			if err := f(fctx, s.Ingest); err != nil && fctx.Err() == nil {
				s.logger.Printf("feeder stopped: %v", err)
			}
		}()
	}
	return s, nil
}

func (s *System) startNATS(auth *api.Auth) error {
	if s.cfg.NATSURL != "" {
		// Credentials come in the URL (nats://user:pass@host, nats://token@host); the server's account
		// layout is the one of docs/security.md.
		nc, err := nats.Connect(s.cfg.NATSURL, nats.Name("citybrain"), nats.MaxReconnects(-1), nats.CustomInboxPrefix(InternalInbox))
		if err != nil {
			return fmt.Errorf("cannot connect to NATS at %s: %w", redactURL(s.cfg.NATSURL), err)
		}
		s.nc = nc
		return nil
	}
	na, err := newNATSAuth(auth)
	if err != nil {
		return err
	}
	opts := &server.Options{DontListen: s.cfg.NATSListen == "", CustomClientAuthentication: na, MaxConn: 4096}
	if s.cfg.NATSListen != "" {
		host, port, err := net.SplitHostPort(s.cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("cannot parse --nats-listen %q: %w", s.cfg.NATSListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("cannot parse --nats-listen port %q", port)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		if !auth.Configured() && !api.IsLoopback(s.cfg.NATSListen) {
			return fmt.Errorf("cannot listen for NATS on %s without an auth config: anyone on the network could publish; give --auth FILE (feed tokens publish, admin tokens read the log) or listen on 127.0.0.1", s.cfg.NATSListen)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := embeddedNATS(s.cfg.DataDir, "citybrain", opts)
	if err != nil {
		return err
	}
	s.ns = ns
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("citybrain"), nats.Token(na.secret), nats.CustomInboxPrefix(InternalInbox))
	if err != nil {
		return fmt.Errorf("cannot connect to the embedded NATS server: %w", err)
	}
	s.nc = nc
	return nil
}

// logLayout is the layout the log records and checks: the engine's resolution and bucket after defaults.
func logLayout(ecfg engine.Config) eventlog.Layout {
	d := engine.DefaultConfig()
	return eventlog.Layout{Res: cmp.Or(ecfg.Res, d.Res), Bucket: cmp.Or(ecfg.Bucket, d.Bucket)}
}

// apply is the log consumer's callback.
func (s *System) apply(seq uint64, rec arrow.Record) error {
	if seq <= s.startSeq {
		s.replayed.Add(uint64(rec.NumRows()))
	}
	if err := s.Engine.Apply(seq, rec); err != nil {
		return err
	}
	s.appliedSeq = seq
	every := s.cfg.SnapshotEvery
	if every == 0 {
		every = 5 * time.Minute
	}
	if every > 0 && time.Since(s.lastSnap) >= every {
		s.snapshot()
	}
	return nil
}

// snapshot writes an engine snapshot if anything was applied since the last (consumer goroutine, or after it
// has stopped).
func (s *System) snapshot() {
	if s.cfg.SnapshotEvery < 0 || s.appliedSeq == s.lastSnapSeq {
		return
	}
	t0 := time.Now()
	path, err := s.Engine.WriteSnapshot(s.snapDir)
	s.lastSnap = time.Now()
	if err != nil {
		s.logger.Printf("cannot write snapshot: %v", err)
		return
	}
	s.lastSnapSeq = s.appliedSeq
	engine.PruneSnapshots(s.snapDir, 3)
	s.logger.Printf("snapshot %s written in %s", filepath.Base(path), time.Since(t0).Round(time.Millisecond))
}

func (s *System) accepted() uint64 {
	var ingested uint64
	st := s.Ingest.Stats()
	for i := 0; i < len(st.Accepted); i++ {
		ingested += st.Accepted[i].Load()
	}
	return max(s.Engine.Status().Events, s.replayed.Load()+ingested)
}

func (s *System) rejected() uint64 { return s.deadAtStart + s.Ingest.Stats().Rejected.Load() }

// Ready reports whether the published state covers the whole log present at start.
func (s *System) Ready() bool { return s.Engine.Status().AppliedSeq >= s.startSeq }

// Addr is the API's listen address.
func (s *System) Addr() string { return s.ln.Addr().String() }

// NATSURL is the client URL of the embedded server ("" when in-process only or external).
func (s *System) NATSURL() string {
	if s.ns == nil || s.cfg.NATSListen == "" {
		return s.cfg.NATSURL
	}
	return s.ns.ClientURL()
}

// AdminTokenPath is where the admin token was written ("" with an auth config).
func (s *System) AdminTokenPath() string { return s.adminToken }

// Stop stops everything in reverse order of start, within ctx's deadline. Safe to call twice.
func (s *System) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.feedCancel != nil {
			s.feedCancel()
			s.feedWG.Wait()
		}
		if s.Hub != nil {
			s.Hub.Close()
		}
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("cannot stop http server: %w", err))
				s.http.Close()
			}
		}
		if s.dispatchStop != nil {
			close(s.dispatchStop)
			<-s.dispatchDone
		}
		if s.natsSrc != nil {
			s.natsSrc.Stop()
		}
		if s.mem != nil {
			s.mem.close()
		}
		if s.consumeCancel != nil {
			s.consumeCancel()
			select {
			case err := <-s.consumeDone:
				if err != nil {
					errs = append(errs, err)
				}
			case <-ctx.Done():
				errs = append(errs, errors.New("cannot stop log consumer: deadline"))
			}
		}
		if s.Replays != nil {
			s.Replays.Stop()
		}
		s.stopCommandCenter()
		if s.hooks != nil {
			s.hooks.Stop()
		}
		if s.Engine != nil {
			if s.consumeCancel != nil {
				s.snapshot() // the consumer has stopped: its fields are ours now
			}
			s.Engine.Stop()
		}
		if s.nc != nil {
			s.nc.Drain()
			s.nc.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		if s.unlock != nil {
			s.unlock()
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// dispatchClock is the dispatcher's clock: the wall clock, or with event the newest event time applied (the
// wall clock until the first event).
func (s *System) dispatchClock(event bool) func() time.Time {
	if !event {
		return time.Now
	}
	return func() time.Time {
		if now := s.Engine.Status().Now; now > 0 {
			return time.UnixMilli(now).UTC()
		}
		return time.Now()
	}
}
