package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/demo"
	"citybrain/ingest/feed"
)

// simMain runs the built-in demo city as a separate feeder: `citybrain sim [--to URL] [--speed N] ...`.
// It is the same generator `run --demo` runs in-process, publishing to a server over HTTP or NATS, with a
// speed multiplier for load tests.
func simMain(args []string) error {
	fs := flag.NewFlagSet("sim", flag.ExitOnError)
	to := fs.String("to", "", "destination: http://HOST:PORT or nats://HOST:PORT (default: NDJSON on stdout)")
	token := fs.String("token", "", "API token (HTTP bearer, NATS token) with the feed role")
	speed := fs.Float64("speed", 1, "simulated seconds per wall second (0: as fast as possible)")
	seed := fs.Int64("seed", 1, "random seed of the city")
	networkFile := fs.String("network", "", "road network (City Brain roadnet.txt, SUMO .net.xml, GeoJSON); default the generated West Lake network")
	flows := fs.String("flows", "", "City Brain flow file for the routes on --network")
	vehicles := fs.Int("vehicles", 0, "vehicles at peak (0: sized to the network)")
	duration := fs.Duration("duration", 0, "simulated time to run (0: until interrupted)")
	startAt := fs.String("start", "", "simulated start time: RFC 3339, 2026-11-27T08:00 (UTC), Unix ms (default: now)")
	batch := fs.Int("batch", 0, "events per request (0: the sender's default)")
	noReply := fs.Bool("nats-no-reply", false, "publish to NATS without waiting for the server's answer")
	fs.Parse(args)
	if *speed < 0 {
		return fmt.Errorf("cannot run sim (speed %g): speed must be >= 0", *speed)
	}
	cfg := demo.Config{Seed: *seed, Speedup: *speed, Vehicles: *vehicles, Duration: *duration, Flows: *flows}
	if *networkFile != "" {
		net, err := loadNetwork(*networkFile)
		if err != nil {
			return err
		}
		cfg.Network = net
	} else {
		cfg.Network = geo.GenerateWestLake(*seed)
	}
	if *startAt != "" {
		t, err := parseTimeFlag("--start", *startAt, time.UTC, true)
		if err != nil {
			return err
		}
		cfg.Start = t
	}
	city, err := demo.New(cfg)
	if err != nil {
		return err
	}
	sinks, err := sinksFor(*to, *token, *noReply, false)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The city paces itself; the sender forwards as fast as it can (rate 0).
	s := feed.NewSender(ctx, 0, sinks...)
	if *batch > 0 {
		s.BatchSize = *batch
	}
	runErr := city.Run(ctx, func(events []engine.Event) error {
		for i := range events {
			if err := s.Emit(events[i]); err != nil {
				return err
			}
		}
		return s.Flush()
	})
	closeErr := s.Close()
	fmt.Fprintf(os.Stderr, "sim: %s; %d incidents injected\n", s.Summary(), len(city.GroundTruth()))
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return closeErr
}
