package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"citybrain/bench/signals"
)

// signalsMain runs the closed-loop signal-control experiment in SUMO (bench/signals, docs/signals.md).
func signalsMain(args []string) error {
	fs := flag.NewFlagSet("signals", flag.ExitOnError)
	nets := fs.String("net", "bologna,hangzhou", "scenarios: bologna, hangzhou (comma-separated)")
	methods := fs.String("methods", strings.Join(signals.Methods, ","), "methods: fixed, actuated, webster, max_pressure, fixed+preempt")
	end := fs.Int("end", 1200, "simulated seconds per run")
	work := fs.String("work", filepath.Join(os.TempDir(), "citybrain-signals"), "working directory (converted nets, SUMO outputs)")
	data := fs.String("data-dir", os.Getenv("CITYBRAIN_DATA"), "shared data directory (default $CITYBRAIN_DATA, else ../shared/data)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	replan := fs.Float64("replan", 300, "Webster re-plan period, s")
	seed := fs.Int("seed", 42, "SUMO random seed")
	fs.Parse(args)
	if *data == "" {
		*data = filepath.Join("..", "shared", "data")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var all []signals.Result
	for _, n := range strings.Split(*nets, ",") {
		var sc *signals.Scenario
		var err error
		switch strings.TrimSpace(n) {
		case "bologna":
			sc, err = signals.Bologna(*data, *work, *end)
		case "hangzhou":
			sc, err = signals.Hangzhou(*data, *work, *end)
		default:
			return fmt.Errorf("cannot run signals (scenario %q): use bologna or hangzhou", n)
		}
		if err != nil {
			return err
		}
		for _, m := range strings.Split(*methods, ",") {
			r, err := signals.Run(ctx, sc, strings.TrimSpace(m), signals.Options{ReplanS: *replan, Seed: *seed})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "signals: %s %s: %d trips, mean travel %.1f s, delay %.1f s, EV %.0f s (%.0f s wall)\n",
				r.Scenario, r.Method, r.Vehicles, r.MeanTravelS, r.MeanDelayS, r.EVTravelS, r.WallS)
			all = append(all, r)
		}
	}
	fmt.Print(signals.Table(all))
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", *jsonOut, err)
		}
	}
	return nil
}
