package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"citybrain/engine"
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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the whole replay to this file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("cannot parse replay flags: %w", err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cannot create CPU profile (%s): %w", *cpuProfile, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cannot start CPU profile (%s): %w", *cpuProfile, err)
		}
		defer pprof.StopCPUProfile()
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
	spec := replay.Spec{From: from, To: to, Speed: *speed, Warmup: *warmup, Paused: *paused && *httpAddr != ""}
	if *warmup == 0 {
		spec.Warmup = -1
	}
	r, err := system.StartReplay(ctx, system.ReplayConfig{
		DataDir: *dataDir, NATSURL: *natsURL, File: *file, Spec: spec, Engine: ecfg,
		HTTPAddr: *httpAddr, AuthFile: *authFile, Version: version, Web: web.Files(), Logger: logger,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(sctx)
	}()
	sess := r.Session
	logger.Printf("replay reads %s", r.Reads)
	if *httpAddr == "" {
		return followReplay(ctx, sess, logger)
	}
	logger.Printf("replay %s (%s) at %g× on http://%s/ (session API /api/v1/replays/%s)", sess.ID(), r.Source, spec.Speed, r.Addr(), sess.ID())
	if err := followReplay(ctx, sess, logger); err != nil {
		logger.Printf("%v", err)
	}
	if ctx.Err() == nil {
		logger.Printf("replay finished; the map stays up until interrupted (Ctrl-C)")
		<-ctx.Done()
	}
	return nil
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
