package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"citybrain/bench/signals"
	sig "citybrain/engine/signals"
)

// signalsMain runs the closed-loop signal-control experiment in SUMO (bench/signals, docs/signals.md).
func signalsMain(args []string) error {
	fs := flag.NewFlagSet("signals", flag.ExitOnError)
	cfgs := fs.String("sumocfg", "", "SUMO configurations to run (comma-separated paths): any scenario")
	nets := fs.String("net", "", "built-in scenarios (comma-separated): "+strings.Join(signals.BuiltinNames(), ", "))
	methods := fs.String("method", strings.Join(signals.Methods, ","), "methods (comma-separated): fixed, actuated, delay_based, max_pressure_traci (perfect information: the upper bound), citybrain, citybrain_cyclic; +preempt adds the emergency vehicle's green wave (fixed+preempt, citybrain+preempt)")
	end := fs.Int("end", 0, "simulated seconds per run (0: the built-in's default, or the configuration's end)")
	seeds := fs.Int("seeds", 3, "runs per method, SUMO seeds 1..K")
	scales := fs.String("scale", "1", "demand scales (comma-separated, SUMO --scale), e.g. 1,3,5")
	work := fs.String("work", filepath.Join(os.TempDir(), "citybrain-signals"), "working directory (converted nets, SUMO outputs)")
	cache := fs.String("cache", "", "result cache directory (default WORK/cache; \"off\" to rerun everything)")
	data := fs.String("data-dir", os.Getenv("CITYBRAIN_DATA"), "shared data directory (default $CITYBRAIN_DATA, else ../shared/data)")
	jsonOut := fs.String("json", "", "write every run and the summaries as JSON to this file")
	decide := fs.Float64("decide", 0, "decision period of the TraCI-driven controllers, s (default 2)")
	gate := fs.Float64("gate", -1, "perimeter gate: the fill of the area's inner links (0..1) above which its entries are held back (0: off; default the controller's)")
	control := fs.String("control", "", "controller tuning over the defaults, comma-separated Name=value of engine/signals.Control fields (e.g. GateFill=0.4,GateSpan=0.2)")
	fs.Parse(args)
	if *data == "" {
		*data = filepath.Join("..", "shared", "data")
	}
	if *cfgs == "" && *nets == "" {
		return fmt.Errorf("cannot run signals: give --sumocfg FILE or --net %s", strings.Join(signals.BuiltinNames(), "|"))
	}
	if *cache == "" {
		*cache = filepath.Join(*work, "cache")
	} else if *cache == "off" {
		*cache = ""
	}
	ctl, err := parseControl(*control)
	if err != nil {
		return err
	}
	ms := splitList(*methods)
	for _, m := range ms {
		if !signals.KnownMethod(m) {
			return fmt.Errorf("cannot run signals: unknown method %q", m)
		}
	}
	var xs []float64
	for _, s := range splitList(*scales) {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || x <= 0 {
			return fmt.Errorf("cannot run signals: bad --scale %q", s)
		}
		xs = append(xs, x)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var scs []*signals.Scenario
	for _, n := range splitList(*nets) {
		sc, err := signals.Builtin(n, *data, *work, *end)
		if err != nil {
			return err
		}
		scs = append(scs, sc)
	}
	for _, p := range splitList(*cfgs) {
		sc, err := signals.FromConfig("", p, *work, *end)
		if err != nil {
			return err
		}
		scs = append(scs, sc)
	}
	var all []signals.Result
	for _, sc := range scs {
		for _, x := range xs {
			for _, m := range ms {
				for seed := 1; seed <= *seeds; seed++ {
					o := signals.Defaults()
					o.Seed, o.Scale = seed, x
					o.Control = ctl
					if *decide > 0 {
						o.DecideS = *decide
					}
					if *gate >= 0 {
						o.Control.GateFill = *gate
					}
					r, hit, err := signals.RunCached(ctx, sc, m, o, *cache)
					if err != nil {
						return err
					}
					src := fmt.Sprintf("%.0f s wall", r.WallS)
					if hit {
						src = "cached"
					}
					fmt.Fprintf(os.Stderr, "signals: %s ×%g %s seed %d: time loss %.1f s, travel %.1f s, arrived %d, teleports %d, EV %.0f s (%s)\n",
						r.Scenario, x, m, seed, r.MeanTimeLossS, r.MeanTravelS, r.Arrived, r.Teleports, r.EVTravelS, src)
					all = append(all, r)
				}
			}
		}
	}
	sum := signals.Summarize(all)
	fmt.Print(signals.Table(sum))
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(struct {
			Runs      []signals.Result  `json:"runs"`
			Summaries []signals.Summary `json:"summaries"`
		}{all, sum}, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", *jsonOut, err)
		}
	}
	return nil
}

// parseControl applies "Name=value,..." (fields of engine/signals.Control) over the default tuning.
func parseControl(spec string) (sig.Control, error) {
	c := sig.DefaultControl()
	if strings.TrimSpace(spec) == "" {
		return c, nil
	}
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, kv := range splitList(spec) {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if _, known := m[k]; !ok || !known {
			return c, fmt.Errorf("cannot run signals: bad --control %q (Name=value, names: %s)", kv, strings.Join(controlNames(m), ", "))
		}
		switch strings.TrimSpace(v) {
		case "true":
			m[k] = true
		case "false":
			m[k] = false
		default:
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return c, fmt.Errorf("cannot run signals: bad --control value %q: %w", kv, err)
			}
			m[k] = f
		}
	}
	b, _ = json.Marshal(m)
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("cannot run signals: bad --control %q: %w", spec, err)
	}
	return c, nil
}

func controlNames(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
