package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"citybrain/bench"
)

// benchMain implements `citybrain bench`: it starts this same binary as `citybrain run` on temporary data
// directories, drives it over 127.0.0.1 and prints the report (see docs/performance.md).
func benchMain(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	short := fs.Bool("short", false, "a few seconds per section (the CI crash check; not a speed judgement)")
	out := fs.String("out", filepath.Join("bin", "bench-report.json"), "where the JSON report goes (its directory is created; empty: none)")
	dur := fs.Duration("duration", 0, "length of one ingest load step (default 4s, 1s with --short)")
	clients := fs.Int("clients", 0, "most websocket clients in the fan-out section (default 10000, 100 with --short)")
	bin := fs.String("bin", "", "the citybrain binary to measure (default: this one)")
	sections := fs.String("sections", "", "comma-separated sections to run: floors, ingest, freshness, fanout, peer, memory, overload, replay, zones (default all)")
	profile := fs.String("profile", "", "directory for CPU and heap profiles (pprof) of every section; runs the system inside this process")
	dataRoot := fs.String("citybrain-data", os.Getenv("CITYBRAIN_DATA"), "data directory with citybrain/nanchang/roadnet.txt (default $CITYBRAIN_DATA, else ../shared/data)")
	tmpDir := fs.String("tmp", "", "where the temporary data directories go (default the system's temp dir)")
	keepLog := fs.String("keep-log", "", "copy the memory section's data directory (3 M events in its log) here, to profile a replay on it")
	ingestPaths := fs.String("ingest-paths", "", "comma-separated ingest paths to measure (HTTP NDJSON, NATS JSON, HTTP Arrow, NATS Arrow; default all)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	overloadFor := fs.Duration("overload-for", 0, "how long the overload section drives the process (default 60s, 6s with --short; 15m: the sustained run of docs/performance.md)")
	replayRuns := fs.Int("replay-runs", 0, "how many times each replay measure runs; the report keeps the median run (default 3, 1 with --short)")
	centrifugo := fs.String("centrifugo", "", "the Centrifugo binary of the peer fan-out section (default bin/centrifugo, else PATH; `make centrifugo` installs it)")
	fs.Parse(args)

	cfg := bench.Config{Bin: *bin, Short: *short, Duration: *dur, Clients: *clients, DataRoot: *dataRoot, TempDir: *tmpDir,
		ProfileDir: *profile, Centrifugo: *centrifugo, KeepLog: *keepLog, OverloadFor: *overloadFor,
		ReplayRuns: *replayRuns}
	if *ingestPaths != "" {
		cfg.IngestPaths = strings.Split(*ingestPaths, ",")
	}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cannot find this binary: %w", err)
		}
		cfg.Bin = exe
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = sharedDataDir()
	}
	if *sections != "" {
		cfg.Sections = strings.Split(*sections, ",")
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	// Bound the whole run whatever happens inside.
	limit := 30 * time.Minute
	if *short {
		limit = 5 * time.Minute
	}
	ctx, cancel := boundedRun(limit)
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	rep.Version = version
	if werr := printReport(rep, *out); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("cannot finish benchmarks: %w", err)
	}
	return nil
}
