package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"citybrain/bench/eval"
)

// evalMain implements `citybrain eval`: incident detection measured against labelled ground truth (the demo
// city's logged incidents, SUMO Bologna runs with injected closures), end to end through the HTTP API of a
// system started inside this process (see docs/incidents.md).
func evalMain(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	short := fs.Bool("short", false, "one small scenario per source (about two minutes; the CI run)")
	out := fs.String("out", filepath.Join("bin", "eval-report.json"), "where the JSON report goes (its directory is created; empty: none)")
	table := fs.String("table", "", "also write the markdown table to this file")
	seeds := fs.String("seeds", "", "comma-separated seeds of the demo city and of SUMO (default 1,2,3; --short: 1)")
	minutes := fs.Int("minutes", 0, "simulated minutes per scenario (default: demo 120, Bologna 60; --short: 30 and 20); Bologna at most 60")
	dataRoot := fs.String("citybrain-data", os.Getenv("CITYBRAIN_DATA"), "data directory holding sumo/bologna-acosta (default $CITYBRAIN_DATA, else ../shared/data)")
	sumoBin := fs.String("sumo", "", "the sumo binary (default: sumo on PATH; without one the SUMO part is skipped)")
	noSUMO := fs.Bool("no-sumo", false, "skip the SUMO Bologna scenarios")
	noDemo := fs.Bool("no-demo", false, "skip the demo city scenarios")
	tmpDir := fs.String("tmp", "", "where temporary data directories and SUMO runs go (default the system's temp dir)")
	sumoCache := fs.String("sumo-cache", "", "keep each SUMO run's events here and reuse them on the next run with the same seed, length and blockages (for re-scoring rule changes)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	fs.Parse(args)

	cfg := eval.Config{Short: *short, Minutes: *minutes, DataRoot: *dataRoot, TempDir: *tmpDir, SUMO: *sumoBin,
		NoSUMO: *noSUMO, NoDemo: *noDemo, SUMOCache: *sumoCache}
	if *seeds != "" {
		for _, s := range strings.Split(*seeds, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("cannot parse --seeds %q: %w", *seeds, err)
			}
			cfg.Seeds = append(cfg.Seeds, n)
		}
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = sharedDataDir()
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	limit := 90 * time.Minute
	if *short {
		limit = 10 * time.Minute
	}
	ctx, cancel := boundedRun(limit)
	defer cancel()
	rep, err := eval.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	rep.Version = version
	if werr := printReport(rep, *out); werr != nil {
		return werr
	}
	if *table != "" {
		if werr := os.WriteFile(*table, []byte(rep.Table()), 0o644); werr != nil {
			return fmt.Errorf("cannot write the table (%s): %w", *table, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot finish the evaluation: %w", err)
	}
	return nil
}
