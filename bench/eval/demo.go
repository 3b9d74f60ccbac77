package eval

import (
	"context"
	"fmt"
	"time"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
	"citybrain/ingest/demo"
)

// The demo scenarios run the West Lake city on a true 24-hour day (DayLength 24h) from 07:00 local time, so a
// two-hour run is the morning peak: the hardest realistic case for false alarms (queues building everywhere)
// without the 12× compressed day of `citybrain run`, whose demand ramps faster than any real city's.
var demoStart = time.Date(2026, 11, 27, 7, 0, 0, 0, time.FixedZone("CST", 8*3600))

// BatchSpan is the event time each POST covers: one engine bucket.
const BatchSpan = 10 * time.Second

// videoRangeM is how far from a true incident a video detection counts as evidence of it.
const videoRangeM = 150.0

// runDemo feeds one demo city run (seed) through a fresh system, with all evidence or traffic only, judged
// by model (nil: the shipped one).
func runDemo(ctx context.Context, cfg *Config, seed int64, variant string, model *detect.Model) (*Scenario, error) {
	t0 := time.Now()
	minutes := cfg.DemoMinutes
	sc := &Scenario{Name: fmt.Sprintf("demo/%s/seed%d", variant, seed), Source: "demo", Variant: variant, Seed: seed,
		Start: demoStart.UTC(), End: demoStart.Add(time.Duration(minutes) * time.Minute).UTC(),
		SimulatedS: float64(minutes) * 60}
	fmt.Fprintf(cfg.Log, "eval: %s: %d simulated minutes\n", sc.Name, minutes)
	net := geo.GenerateWestLake(seed)
	dcfg := demo.Config{Network: net, Seed: seed, Speedup: 0, Start: demoStart, DayLength: 24 * time.Hour,
		Duration: time.Duration(minutes) * time.Minute}
	sc.Incidents = "the city's own: every 10–20 min a lane blockage (60% stalled vehicle, one lane, 8–20 min; 40% crash, all lanes but one, 15–35 min)"
	if cfg.Short {
		dcfg.IncidentEvery = 6 * time.Minute
		sc.Incidents = "the city's own, every 4–8 min (short run)"
	}
	city, err := demo.New(dcfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build the demo city (seed %d): %w", seed, err)
	}
	t, err := newTarget(ctx, cfg, net, model)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	b := newFeeder(t, demoStart)
	var videos []engine.Event
	err = city.Run(ctx, func(evs []engine.Event) error {
		for i := range evs {
			e := &evs[i]
			if variant == "traffic" && (e.Kind == engine.KindVideo || e.Kind == engine.KindReport) {
				continue
			}
			if e.Kind == engine.KindVideo && incidentVideo(e.Type) {
				videos = append(videos, *e)
			}
			if err := b.add(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = b.flush(ctx)
	}
	sc.Feed = b.st
	if err != nil {
		return sc, fmt.Errorf("cannot feed %s: %w", sc.Name, err)
	}
	var truths []Truth
	for _, g := range city.GroundTruth() {
		t := Truth{ID: g.ID, Class: g.Type, Type: g.Type, Lat: g.Lat, Lng: g.Lng, Start: g.Start.UTC(), End: g.End.UTC(),
			Lanes: g.Lanes, LanesBlocked: g.LanesBlocked, Where: g.LinkID, Camera: g.Camera}
		if variant != "traffic" {
			t.Reports = g.Calls
		}
		t.VideoEvidence = sawVideo(videos, &t)
		truths = append(truths, t)
	}
	if err := scoreScenario(ctx, t, sc, truths); err != nil {
		return sc, err
	}
	sc.WallS = round3(time.Since(t0).Seconds())
	fmt.Fprintf(cfg.Log, "eval: %s: %d events in %.1f s; %d/%d detected, %d false alarms\n", sc.Name, sc.Feed.Events,
		sc.WallS, sc.Metrics.Detected, sc.Metrics.Truths, sc.Metrics.FalseAlarms)
	return sc, nil
}

// incidentVideo reports whether a video type is an incident detection (not a count or queue).
func incidentVideo(typ string) bool {
	switch typ {
	case "crash", "stalled_vehicle", "debris", "wrong_way", "pedestrian", "fire_smoke":
		return true
	}
	return false
}
