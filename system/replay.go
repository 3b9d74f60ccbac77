package system

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/engine/zones"
	"citybrain/eventlog"
	"citybrain/replay"
)

// ReplayConfig is everything `citybrain replay` can set: one replay session over the log of a data
// directory (or a running installation's NATS) or over an exported file, optionally served on the map page.
type ReplayConfig struct {
	DataDir string // the installation whose log is replayed (and where the admin token is)
	NATSURL string // read the log through this server instead of opening DataDir
	File    string // replay an exported file (.arrow, .parquet, .ndjson) instead of the log
	Spec    replay.Spec
	Engine  engine.Config // as the live run (res, bucket, lateness, free-flow speeds)

	// HTTPAddr serves the session's map page and the replay API ("" : no server).
	HTTPAddr string
	HTTP     HTTPLimits
	AuthFile string
	Version  string
	Web      fs.FS
	Logger   *log.Logger
}

// Replay is a running replay session, with its server when HTTPAddr was set.
type Replay struct {
	Session *replay.Session
	Source  string // "log" or "file:<name>"
	// Reads says how the log or file is read: "the file", "the log through NATS", or "the log's message
	// blocks directly" (an offline replay of a data directory; where the stream has gaps it goes on through
	// the embedded server).
	Reads string

	manager  *replay.Manager
	closeLog func()
	http     *http.Server
	ln       net.Listener
	stopOnce sync.Once
	stopErr  error
}

// StartReplay opens the log or the file, creates the session (paused when cfg.Spec.Paused, else playing)
// and, with HTTPAddr, serves it. On error, what was started is stopped.
func StartReplay(ctx context.Context, cfg ReplayConfig) (_ *Replay, err error) {
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "citybrain: ", log.LstdFlags)
	}
	r := &Replay{Source: "log"}
	defer func() {
		if err != nil {
			r.Stop(context.Background())
		}
	}()
	var auth *api.Auth
	if cfg.HTTPAddr != "" { // before anything starts: it decides whether this may listen where asked
		var tokenPath string
		if auth, tokenPath, err = openAuth(cfg.AuthFile, cfg.HTTPAddr, cfg.DataDir); err != nil {
			return nil, err
		}
		if tokenPath != "" {
			cfg.Logger.Printf("admin token (to pause, seek, change speed) in %s", tokenPath)
		}
	}
	var l *eventlog.Log
	var open replay.Source
	if cfg.File != "" {
		if _, err := replay.FormatOf(cfg.File); err != nil {
			return nil, fmt.Errorf("cannot replay: %w", err)
		}
		if _, err := os.Stat(cfg.File); err != nil {
			return nil, fmt.Errorf("cannot replay: %w", err)
		}
		open, r.Source = replay.FileSource(cfg.File, cfg.Engine.Res), "file:"+filepath.Base(cfg.File)
		r.Reads = "the file"
	} else {
		if l, r.closeLog, err = OpenLogOffline(ctx, cfg.DataDir, cfg.NATSURL, eventlog.DefaultConfig()); err != nil {
			return nil, fmt.Errorf("cannot replay: %w", err)
		}
		if lay := l.Layout(); lay.Res != 0 && lay.Res != cmp.Or(cfg.Engine.Res, engine.DefaultConfig().Res) {
			return nil, fmt.Errorf("cannot replay: the log's cells are at --res %d, this replay has --res %d: give --res %d", lay.Res, cfg.Engine.Res, lay.Res)
		}
		open = replay.LogSource(l, cfg.Spec)
		r.Reads = "the log's message blocks directly"
		if cfg.NATSURL != "" {
			r.Reads = "the log through NATS"
		}
	}
	r.manager = replay.NewManager(replay.ManagerConfig{Log: l, Engine: cfg.Engine, MaxSessions: 4, Idle: 365 * 24 * time.Hour})
	if cfg.HTTPAddr == "" {
		if r.Session, err = r.manager.CreateFrom(cfg.Spec, r.Source, open); err != nil {
			return nil, fmt.Errorf("cannot replay: %w", err)
		}
		return r, nil
	}
	rp := api.NewReplays(r.manager, api.DefaultHubConfig())
	res := cfg.Engine.Res
	if res == 0 {
		res = engine.DefaultConfig().Res
	}
	rp.NewZones = func(onAlert func([]zones.Alert)) *zones.Manager {
		return zones.New(zones.Config{Res: res, Network: cfg.Engine.Network, OnAlert: onAlert})
	}
	spec := cfg.Spec
	spec.Paused = true // the hub exists before the first delta; Play below
	if r.Session, _, err = rp.CreateFrom(spec, r.Source, open); err != nil {
		return nil, fmt.Errorf("cannot replay: %w", err)
	}
	sess := r.Session
	srv := &api.Server{
		Engine: sess.Engine(), Auth: auth, Version: cfg.Version, Web: cfg.Web, Replays: rp,
		Accepted: func() uint64 { return sess.Info().Events }, Rejected: func() uint64 { return 0 },
		Ready: func() bool { return true },
	}
	if r.http, r.ln, err = httpServer(cfg.HTTPAddr, srv.SessionHandler(sess, srv.Handler()), cfg.HTTP, cfg.Logger); err != nil {
		return nil, err
	}
	if !cfg.Spec.Paused {
		if err := sess.Play(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Addr is the server's listen address ("" without one).
func (r *Replay) Addr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// Stop stops the server, the session and the log, in that order, within ctx's deadline. Safe to call twice.
func (r *Replay) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		if r.http != nil {
			if err := r.http.Shutdown(ctx); err != nil {
				r.stopErr = fmt.Errorf("cannot stop http server: %w", err)
				r.http.Close()
			}
		}
		if r.manager != nil {
			r.manager.Stop()
		}
		if r.closeLog != nil {
			r.closeLog()
		}
	})
	return r.stopErr
}
