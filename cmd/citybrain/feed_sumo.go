package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/skipped"
	"citybrain/ingest/sumo"
)

func init() {
	feedFormats["sumo-fcd"] = feedFormat{
		"sumo-fcd FCD.xml[.gz] --start 2026-11-27T08:00:00+01:00 [--penetration 0.1 --interval 10s --routes a.rou.xml --net x.net.xml]",
		sumoFCDFlags,
	}
	feedFormats["sumo-e1"] = feedFormat{
		"sumo-e1 E1.xml[.gz] --detectors det.add.xml --net x.net.xml --start 2026-11-27T08:00:00+01:00",
		sumoE1Flags,
	}
}

// parseSimStart parses --start: RFC 3339 (or a date and time without a zone: UTC), Unix ms, or now.
func parseSimStart(s string) (time.Time, error) { return parseTimeFlag("--start", s, time.UTC, true) }

// openSUMO opens a SUMO file ("-" is stdin), gzip or plain, and calls fn with it.
func openSUMO(path string, fn func(io.Reader) error) error {
	if path == "-" {
		return fn(os.Stdin)
	}
	f, err := sumo.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(f)
}

func loadSUMONet(path string) (*geo.Network, error) {
	var net *geo.Network
	err := openSUMO(path, func(r io.Reader) error {
		var err error
		net, err = geo.LoadSUMONet(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load SUMO network (%s): %w", path, err)
	}
	return net, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sumoFCDFlags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	start := fs.String("start", "now", "wall-clock time of simulation second 0 (RFC 3339, 2026-11-27T08:00 UTC, Unix ms, or now)")
	pen := fs.Float64("penetration", 1, "share of ordinary vehicles that report as probes (0..1]; buses always report")
	interval := fs.Duration("interval", 0, "each vehicle reports at most once per interval of simulated time (0: every timestep)")
	busTypes := fs.String("bus-types", "", "comma-separated vType ids that are buses (besides types containing \"bus\")")
	probeTypes := fs.String("probe-types", "", "comma-separated vType ids that are ordinary probes even if their name contains bus/tram")
	routes := fs.String("routes", "", "comma-separated SUMO route files: transit lines from their line attributes")
	netPath := fs.String("net", "", "SUMO .net.xml: UTM zone for headings; positions from lane+pos when --xy")
	xy := fs.Bool("xy", false, "the FCD has x/y in metres (no --fcd-output.geo): place points by lane+pos on --net")
	prefix := fs.String("id-prefix", "", "prefix for vehicle ids")
	source := fs.String("source", "sumo", "wire source")
	v := fs.Bool("v", false, "print every skipped point on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		t0, err := parseSimStart(*start)
		if err != nil {
			return nil, err
		}
		var log skipped.Log
		if *v {
			verboseLog(&log)
		}
		opt := sumo.FCDOptions{Start: t0, Penetration: *pen, Interval: interval.Seconds(), IDPrefix: *prefix,
			Source: *source, TransitTypes: map[string]string{}, OnSkip: log.Add}
		for _, t := range splitList(*busTypes) {
			opt.TransitTypes[t] = "bus"
		}
		for _, t := range splitList(*probeTypes) {
			opt.TransitTypes[t] = ""
		}
		if *netPath != "" {
			net, err := loadSUMONet(*netPath)
			if err != nil {
				return nil, err
			}
			opt.UTMZone = sumo.UTMZoneOf(net.Projection)
			if *xy {
				opt.Net = net
			}
		} else if *xy {
			return nil, errors.New("cannot run feed sumo-fcd: --xy needs --net")
		}
		if *routes != "" {
			opt.Lines = map[string]string{}
			for _, p := range splitList(*routes) {
				if err := openSUMO(p, func(r io.Reader) error {
					lines, err := sumo.ReadVehicleLines(r)
					for id, l := range lines {
						opt.Lines[id] = l
					}
					return err
				}); err != nil {
					return &log, fmt.Errorf("cannot read transit lines (%s): %w", p, err)
				}
			}
		}
		for _, in := range inputs {
			var st sumo.FCDStats
			err := openSUMO(in, func(r io.Reader) error {
				var err error
				st, err = sumo.ReadFCD(r, opt, emit)
				return err
			})
			fmt.Fprintf(os.Stderr, "feed sumo-fcd: %s: %d timesteps (last %gs), %d points: %d probes, %d transit, %d sampled out, %d unplaced\n",
				in, st.Timesteps, st.LastTime, st.Points, st.Probes, st.Transit, st.SampledOut, st.Unplaced)
			if err != nil {
				return &log, err
			}
			if ctx.Err() != nil {
				return &log, ctx.Err()
			}
		}
		return &log, nil
	}
}

func sumoE1Flags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	start := fs.String("start", "now", "wall-clock time of simulation second 0 (RFC 3339, 2026-11-27T08:00 UTC, Unix ms, or now)")
	detectors := fs.String("detectors", "", "comma-separated SUMO additional files with the <e1Detector>s; required")
	netPath := fs.String("net", "", "SUMO .net.xml that the detectors' lanes belong to; required")
	stampBegin := fs.Bool("stamp-begin", false, "stamp each interval at its begin (default: its end, when a real loop reports)")
	prefix := fs.String("id-prefix", "", "prefix for detector ids")
	source := fs.String("source", "sumo", "wire source")
	v := fs.Bool("v", false, "print every skipped interval on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		if *detectors == "" || *netPath == "" {
			return nil, errors.New("cannot run feed sumo-e1: --detectors and --net are required (detector positions)")
		}
		t0, err := parseSimStart(*start)
		if err != nil {
			return nil, err
		}
		net, err := loadSUMONet(*netPath)
		if err != nil {
			return nil, err
		}
		var defs []sumo.Detector
		for _, p := range splitList(*detectors) {
			if err := openSUMO(p, func(r io.Reader) error {
				d, err := sumo.ReadDetectors(r)
				defs = append(defs, d...)
				return err
			}); err != nil {
				return nil, err
			}
		}
		sites, err := sumo.PlaceDetectors(defs, net)
		if err != nil {
			return nil, err
		}
		var log skipped.Log
		if *v {
			verboseLog(&log)
		}
		opt := sumo.E1Options{Start: t0, Sites: sites, StampAtBegin: *stampBegin, IDPrefix: *prefix, Source: *source, OnSkip: log.Add}
		for _, in := range inputs {
			var st sumo.E1Stats
			err := openSUMO(in, func(r io.Reader) error {
				var err error
				st, err = sumo.ReadE1(r, opt, emit)
				return err
			})
			fmt.Fprintf(os.Stderr, "feed sumo-e1: %s: %d intervals of %d detectors: %d events, %d unplaced, %d zero-length\n",
				in, st.Intervals, len(sites), st.Detectors, st.Unplaced, st.ZeroLength)
			if err != nil {
				return &log, err
			}
			if ctx.Err() != nil {
				return &log, ctx.Err()
			}
		}
		return &log, nil
	}
}
