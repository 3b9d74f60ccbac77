package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/replay"
	"citybrain/system"
	"citybrain/web"
)

// replayMain implements `citybrain replay --data DIR --from T1 --to T2 [--speed 60] [--http ADDR]` and
// `citybrain replay --file export.parquet ...`: a replay session over the recorded log (or an exported
// file) through the same engine code as live. With --http it serves the map page of the replay (and the
// replay API to pause, seek and change speed) until interrupted; without, it prints progress and the
// measured speed and exits when the range is played.
func replayMain(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	ed := engine.DefaultConfig()
	dataDir := fs.String("data", "data", "data directory of the installation (its nats/ holds the log)")
	natsURL := fs.String("nats", "", "read the log through this NATS server (a running installation) instead of opening --data")
	file := fs.String("file", "", "replay an exported file (.arrow, .parquet, .ndjson) instead of the log")
	fromS := fs.String("from", "", "start, event time (RFC 3339, 2026-11-27T13:00 UTC, 2026-11-27, or Unix ms); default the beginning")
	toS := fs.String("to", "", "end, event time, exclusive; default the end")
	speed := fs.Float64("speed", 1, "multiple of real time (60: an hour a minute); 0 = as fast as possible")
	warmup := fs.Duration("warmup", 15*time.Minute, "event time before --from fed at full speed so the windows are full at --from (0: none)")
	httpAddr := fs.String("http", "", "serve the replay's map page and API here (e.g. 127.0.0.1:8081); empty: print progress and exit at the end")
	authFile := fs.String("auth", "", "auth config file (as for run); without one the admin token under --data is used and --http must be loopback")
	paused := fs.Bool("paused", false, "with --http: start paused (play from the API)")
	res := fs.Int("res", ed.Res, "base H3 resolution of cells (as the live run)")
	bucket := fs.Duration("bucket", ed.Bucket, "event-time bucket (as the live run)")
	lateness := fs.Duration("lateness", ed.Lateness, "allowed lateness (as the live run)")
	shards := fs.Int("shards", ed.Shards, "engine shard goroutines")
	networkFile := fs.String("network", "", "road network file of the live run (free-flow speeds from speed limits)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("cannot parse replay flags: %w", err)
	}
	from, err := replay.ParseTime(*fromS)
	if err != nil {
		return fmt.Errorf("cannot replay (--from): %w", err)
	}
	to, err := replay.ParseTime(*toS)
	if err != nil {
		return fmt.Errorf("cannot replay (--to): %w", err)
	}
	ecfg := ed
	ecfg.Res, ecfg.Bucket, ecfg.Lateness, ecfg.Shards = *res, *bucket, *lateness, *shards
	if *networkFile != "" {
		nw, err := loadNetwork(*networkFile)
		if err != nil {
			return err
		}
		ff := nw.CellFreeFlowKmh(ecfg.Res)
		ecfg.FreeFlow = func(cell uint64) (float64, bool) { v, ok := ff[cell]; return v, ok && v > 0 }
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stderr, "citybrain: ", log.LstdFlags)

	var l *replay.Log
	if *file == "" {
		var closeLog func()
		if l, closeLog, err = system.OpenLogOffline(ctx, *dataDir, *natsURL, replay.DefaultLogConfig()); err != nil {
			return fmt.Errorf("cannot replay: %w", err)
		}
		defer closeLog()
	}
	m := replay.NewManager(replay.ManagerConfig{Log: l, Engine: ecfg, MaxSessions: 4, Idle: 365 * 24 * time.Hour})
	defer m.Stop()
	spec := replay.Spec{From: from, To: to, Speed: *speed, Warmup: *warmup, Paused: *paused && *httpAddr != ""}
	if *warmup == 0 {
		spec.Warmup = -1
	}
	var open replay.Source
	source := "log"
	if *file != "" {
		if _, err := replay.FormatOf(*file); err != nil {
			return fmt.Errorf("cannot replay: %w", err)
		}
		if _, err := os.Stat(*file); err != nil {
			return fmt.Errorf("cannot replay: %w", err)
		}
		open, source = replay.FileSource(*file, ecfg.Res), "file:"+filepath.Base(*file)
	} else {
		open = replay.LogSource(l, spec)
	}

	if *httpAddr == "" {
		sess, err := m.CreateFrom(spec, source, open)
		if err != nil {
			return fmt.Errorf("cannot replay: %w", err)
		}
		return followReplay(ctx, sess, logger)
	}
	return serveReplay(ctx, m, spec, source, open, *httpAddr, *authFile, *dataDir, logger)
}

// followReplay prints the session's progress every 2 s and its measured speed at the end.
func followReplay(ctx context.Context, sess *replay.Session, logger *log.Logger) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		in, err := sess.WaitFinished(wctx)
		cancel()
		if err == nil {
			st := sess.Engine().Status()
			logger.Printf("replay finished: %d events in %d batches, position %s, %d cells; %.0f events/s, %.1f× real time over %.1fs",
				in.Events, in.Batches, in.Position, st.Cells, in.EventsPerSecond, in.RealTimeMultiple, in.PlayedSeconds)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("cannot replay: %w", err)
		}
		logger.Printf("replay at %s: %d events, %.0f events/s, %.1f× real time", in.Position, in.Events, in.EventsPerSecond, in.RealTimeMultiple)
	}
}

// serveReplay serves the ordinary map page over the replay session.
func serveReplay(ctx context.Context, m *replay.Manager, spec replay.Spec, source string, open replay.Source, addr, authFile, dataDir string, logger *log.Logger) error {
	var auth *api.Auth
	var err error
	if authFile != "" {
		if auth, err = api.LoadAuth(authFile); err != nil {
			return err
		}
	} else {
		if !api.IsLoopback(addr) {
			return fmt.Errorf("cannot listen on %s without an auth config: give --auth FILE or listen on 127.0.0.1", addr)
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", dataDir, err)
		}
		var path string
		if auth, path, err = api.DefaultAuth(dataDir); err != nil {
			return err
		}
		logger.Printf("admin token (to pause, seek, change speed) in %s", path)
	}
	rp := api.NewReplays(m, api.DefaultHubConfig())
	paused := spec.Paused
	spec.Paused = true
	sess, _, err := rp.CreateFrom(spec, source, open)
	if err != nil {
		return fmt.Errorf("cannot replay: %w", err)
	}
	srv := &api.Server{
		Engine: sess.Engine(), Ingest: ingest.New(ingest.Config{Res: sess.Engine().Config().Res}, readOnlySink{}),
		Auth: auth, Version: version, Web: web.Files(), Replays: rp,
		Accepted: func() uint64 { return sess.Info().Events }, Rejected: func() uint64 { return 0 },
		Ready: func() bool { return true },
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.SessionHandler(sess, srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	if !paused {
		if err := sess.Play(); err != nil {
			return err
		}
	}
	logger.Printf("replay %s (%s) at %g× on http://%s/ (session API /api/v1/replays/%s)", sess.ID(), source, spec.Speed, ln.Addr(), sess.ID())
	done := make(chan error, 1)
	go func() { done <- followReplay(ctx, sess, logger) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		if err != nil {
			logger.Printf("%v", err)
		}
		logger.Printf("replay finished; the map stays up until interrupted (Ctrl-C)")
		<-ctx.Done()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// readOnlySink refuses events: a replay server does not ingest.
type readOnlySink struct{}

func (readOnlySink) Append(context.Context, arrow.Record, string) (uint64, error) {
	return 0, errors.New("this is a replay: it takes no events (send them to the live server)")
}

func (readOnlySink) AppendDead(context.Context, []ingest.DeadLetter) error {
	return errors.New("this is a replay: it takes no events")
}
