package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"citybrain/eventlog"
	"citybrain/replay"
	"citybrain/system"
)

// exportMain implements `citybrain export --data DIR --from T1 --to T2 --format arrow|parquet|ndjson --out FILE`:
// the events of the log with event time in [T1, T2), in the engine schema (docs/replay.md). It works on a
// data directory while no server runs on it, or through a running server's NATS with --nats.
func exportMain(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	dataDir := fs.String("data", "data", "data directory of the installation (its nats/ holds the log)")
	natsURL := fs.String("nats", "", "read the log through this NATS server (a running installation) instead of opening --data")
	fromS := fs.String("from", "", "start of the range, event time (RFC 3339, 2026-11-27T13:00 UTC, 2026-11-27, or Unix ms)")
	toS := fs.String("to", "", "end of the range, exclusive")
	format := fs.String("format", "", "arrow, parquet or ndjson (default: from --out's extension)")
	out := fs.String("out", "", "output file (- for standard output)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("cannot parse export flags: %w", err)
	}
	from, err := replay.ParseTime(*fromS)
	if err != nil {
		return fmt.Errorf("cannot export (--from): %w", err)
	}
	to, err := replay.ParseTime(*toS)
	if err != nil {
		return fmt.Errorf("cannot export (--to): %w", err)
	}
	if *out == "" {
		return fmt.Errorf("cannot export: --out FILE is required")
	}
	var f replay.Format
	if *format != "" {
		f, err = replay.ParseFormat(*format)
	} else {
		f, err = replay.FormatOf(*out)
	}
	if err != nil {
		return fmt.Errorf("cannot export: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, closeLog, err := system.OpenLogOffline(ctx, *dataDir, *natsURL, eventlog.DefaultConfig())
	if err != nil {
		return fmt.Errorf("cannot export: %w", err)
	}
	defer closeLog()
	w := os.Stdout
	tmp := ""
	if *out != "-" {
		tmp = *out + ".partial"
		if w, err = os.Create(tmp); err != nil {
			return fmt.Errorf("cannot export (create %s): %w", tmp, err)
		}
	}
	start := time.Now()
	st, err := replay.Export(ctx, l, w, replay.ExportOptions{From: from, To: to, Format: f})
	if tmp != "" {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cannot close %s: %w", tmp, cerr)
		}
		if err == nil {
			err = os.Rename(tmp, *out)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot export: %w", err)
	}
	fmt.Fprintf(os.Stderr, "citybrain: exported %d events in %d batches (log messages %d..%d) as %s to %s in %.1fs\n",
		st.Events, st.Batches, st.FirstSeq, st.LastSeq, f, *out, time.Since(start).Seconds())
	return nil
}
