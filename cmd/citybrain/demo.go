package main

import (
	"context"
	"log"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/demo"
)

// demoFeeder runs the built-in demo city in the process, storing each simulated second's events through the
// ingestor like any other source.
func demoFeeder(net *geo.Network, flows string, seed int64, speed float64, logger *log.Logger) func(ctx context.Context, in *ingest.Ingestor) error {
	return func(ctx context.Context, in *ingest.Ingestor) error {
		city, err := demo.New(demo.Config{Network: net, Flows: flows, Seed: seed, Speedup: speed})
		if err != nil {
			return err
		}
		logger.Printf("demo city running (seed %d, speed ×%g)", seed, speed)
		return city.Run(ctx, func(events []engine.Event) error {
			if len(events) == 0 {
				return nil
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := in.IngestEvents(sctx, events, "demo"); err != nil && ctx.Err() == nil {
				logger.Printf("demo city: %v", err)
			}
			return nil
		})
	}
}
