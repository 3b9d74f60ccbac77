// Package demo is CityBrain's built-in demo city: a deterministic traffic simulation on a road network (the
// synthetic West Lake network by default, or a City Brain roadnet with its flow file) that emits every kind of the
// wire format (spec/events.md) as a real city would: probes from a share of vehicles, loop detectors, cameras with
// counts, queues and incident detections, buses, emergency units, hotline calls and city sensors. Lane-blocking
// incidents are injected every 10 to 20 simulated minutes and logged as ground truth, so detection can be scored.
//
// The model is mesoscopic and cheap: vehicles follow routes over links in single file per link (lanes shorten the
// spacing), with a car-following rule (time headway, jam spacing, acceleration limit), a speed that falls with
// link density, stop-line discharge at the saturation flow, fixed-time two-phase signals and spillback when a
// link is full. Demand follows a day with morning and evening peaks, compressed into Config.DayLength.
// See docs/demo.md.
package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// Config sets up a demo city. The zero value gives the West Lake city (seed 0) starting now, as fast as possible.
type Config struct {
	Network  *geo.Network  // nil: geo.GenerateWestLake(Seed)
	Flows    string        // optional path of a City Brain flow file (routes of vehicles), for a Network loaded from the matching roadnet
	Seed     int64         // the same seed, start and network give the same events
	Speedup  float64       // 1 = real time; 0 = as fast as possible (for tests and evaluation)
	Start    time.Time     // simulated start time (zero: now, truncated to the second)
	Vehicles int           // target vehicles in the network at peak (0: a default sized to the network, ~2000 for West Lake)
	Duration time.Duration // simulated time to run; 0 = run until ctx ends

	// DayLength is the simulated time one day of the demand profile takes (0: 2 hours), so that a short demo shows
	// the night, both rush hours and the lull between them. 24h gives a true day.
	DayLength time.Duration
	// IncidentEvery is the mean simulated time between injected incidents (0: 15 minutes; gaps are uniform in
	// 2/3..4/3 of it). A negative value injects none.
	IncidentEvery time.Duration
}

// Incident is one injected lane blockage: the ground truth that detection is scored against.
type Incident struct {
	ID           string    // "inc-<n>"
	Type         string    // "stalled_vehicle" or "crash" (the video and report vocabulary)
	LinkID       string    // the blocked link
	OffsetM      float64   // position of the blockage along the link from its start, metres
	Lat, Lng     float64   // the blockage's position
	Lanes        int       // lanes of the link
	LanesBlocked int       // lanes closed (a one-lane link is squeezed past at a quarter of its capacity)
	Start, End   time.Time // when the blockage appears and when it clears (End is known at Start: it is scheduled)
	Camera       string    // the camera that can see it, "" when none does
	Calls        int       // hotline calls about it emitted so far
}

// City is a running demo city. Run drives it; GroundTruth may be called from any goroutine.
type City struct {
	cfg     Config
	net     *geo.Network
	rng     *rand.Rand
	nodes   []node
	links   []link
	linkIdx map[string]int32

	zones   []int32
	trees   []tree
	odCache map[int][]int32
	flows   []flowRoute
	flowCum []float64

	veh      []vehicle
	free     []int32
	parked   []parked
	trips    int     // trips completed
	reroutes int     // reroutes this step
	tripS    float64 // their total duration, seconds
	active   int
	serial   int64

	t        int64 // current simulated second since Start
	startMS  int64
	hour0    float64 // demand-profile hour at t = 0
	hourRate float64 // demand-profile hours per simulated second
	peakRate float64 // trips started per second at profile 1
	profMax  float64

	dets    []detector
	cams    []camera
	sensors []citySensor
	lines   []busLine
	buses   []bus
	units   []unit
	incs    []incState
	nextInc int64
	calls   int
	alarmID int

	out      []engine.Event
	lastSize int

	mu    sync.Mutex
	truth []Incident
}

// New builds a demo city from cfg: the network (generated when nil), its signals, routes, sensors, bus lines,
// emergency stations and an initial population of vehicles for the start time's demand.
func New(cfg Config) (*City, error) {
	if cfg.Speedup < 0 || math.IsNaN(cfg.Speedup) || math.IsInf(cfg.Speedup, 0) {
		return nil, fmt.Errorf("cannot create demo city (speedup %v): must be a finite number >= 0", cfg.Speedup)
	}
	if cfg.Vehicles < 0 || cfg.Duration < 0 || cfg.DayLength < 0 {
		return nil, fmt.Errorf("cannot create demo city (vehicles %d, duration %v, day length %v): must not be negative",
			cfg.Vehicles, cfg.Duration, cfg.DayLength)
	}
	if cfg.Network == nil {
		cfg.Network = geo.GenerateWestLake(cfg.Seed)
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Truncate(time.Second)
	}
	if cfg.DayLength == 0 {
		cfg.DayLength = 2 * time.Hour
	}
	if cfg.IncidentEvery == 0 {
		cfg.IncidentEvery = 15 * time.Minute
	}
	c := &City{cfg: cfg, net: cfg.Network, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6369747962726169)),
		startMS: cfg.Start.UnixMilli()}
	c.buildGraph()
	c.pickZones(96)
	if len(c.zones) < 2 {
		return nil, fmt.Errorf("cannot create demo city (%d nodes with links in and out): need at least 2", len(c.zones))
	}
	if cfg.Flows != "" {
		routes, skipped, err := c.loadFlows(cfg.Flows)
		if err != nil {
			return nil, fmt.Errorf("cannot create demo city (flows %s): %w", cfg.Flows, err)
		}
		if len(routes) == 0 {
			return nil, fmt.Errorf("cannot create demo city (flows %s): none of its routes (%d skipped) runs on the network",
				cfg.Flows, skipped)
		}
		c.flows = routes
		c.flowCum = make([]float64, len(routes))
		sum := 0.0
		for i, r := range routes {
			sum += r.weight
			c.flowCum[i] = sum
		}
	}
	if c.cfg.Vehicles == 0 {
		c.cfg.Vehicles = c.defaultVehicles()
	}
	// The local clock of the city: the network's nominal time zone from its longitude.
	lng := (c.net.BBox().MinLng + c.net.BBox().MaxLng) / 2
	zone := time.FixedZone("city", int(math.Round(lng/15))*3600)
	st := cfg.Start.In(zone)
	c.hour0 = float64(st.Hour()) + float64(st.Minute())/60 + float64(st.Second())/3600
	c.hourRate = 24 / cfg.DayLength.Seconds()
	for h := 0.0; h < 24; h += 0.05 {
		c.profMax = math.Max(c.profMax, rawProfile(h))
	}
	c.peakRate = float64(c.cfg.Vehicles) / c.meanTripS()
	c.placeDetectors()
	c.placeCameras()
	c.placeSensors()
	c.setupBuses()
	c.setupUnits()
	c.nextInc = c.incidentGap()
	c.populate()
	return c, nil
}

// defaultVehicles sizes the peak population to the network: 4 vehicles per lane-kilometre on average (busy
// arterials hold many more), about 2000 for West Lake.
func (c *City) defaultVehicles() int {
	laneKm := 0.0
	for i := range c.links {
		laneKm += c.links[i].lengthM * c.links[i].lanes / 1000
	}
	return max(50, int(math.Round(laneKm*4/50))*50)
}

// meanTripS estimates the mean trip time from a sample of routes: their routing cost (free-flow time plus a
// mean red wait per signal) plus 10% for interactions. With Little's law it turns the target population into a trip rate.
func (c *City) meanTripS() float64 {
	sum, n := 0.0, 0
	for i := 0; i < 200; i++ {
		if r := c.randomRoute(); r != nil {
			sum += c.routeCost(r)
			n++
		}
	}
	if n == 0 {
		return 300
	}
	return math.Max(60, 1.1*sum/float64(n))
}

// rawProfile is the unnormalised travel demand at hour h of the day: a night floor, a daytime plateau and the
// morning (08:00) and evening (18:00) peaks.
func rawProfile(h float64) float64 {
	day := 1 / (1 + math.Exp(-(h-6.5)*2)) / (1 + math.Exp((h-22)*1.5))
	return 0.08 + 0.45*day + 0.9*math.Exp(-sq(h-8)/(2*sq(1.1))) + 0.8*math.Exp(-sq(h-18)/(2*sq(1.3)))
}

func sq(x float64) float64 { return x * x }

// hourAt returns the demand-profile hour of day at simulated second t.
func (c *City) hourAt(t int64) float64 { return math.Mod(c.hour0+float64(t)*c.hourRate, 24) }

// profile returns the demand at simulated second t relative to the peak (0..1).
func (c *City) profile(t int64) float64 { return rawProfile(c.hourAt(t)) / c.profMax }

// ts returns the event time of simulated second t, Unix milliseconds.
func (c *City) ts(t int64) int64 { return c.startMS + t*1000 }

// Run advances the simulation in steps of 1 simulated second, calling emit with each step's events (the callee
// owns the slice), paced against the wall clock by Speedup. It returns nil when ctx ends or Duration is reached,
// or emit's error. A later Run continues where the last one stopped.
func (c *City) Run(ctx context.Context, emit func([]engine.Event) error) error {
	end := int64(math.MaxInt64)
	if c.cfg.Duration > 0 {
		end = int64(c.cfg.Duration / time.Second)
	}
	var timer *time.Timer
	wall0, sim0 := time.Now(), c.t
	for c.t < end {
		if ctx.Err() != nil {
			return nil
		}
		evs := c.step()
		if err := emit(evs); err != nil {
			return fmt.Errorf("cannot emit demo events (simulated second %d): %w", c.t-1, err)
		}
		if c.cfg.Speedup == 0 {
			continue
		}
		due := wall0.Add(time.Duration(float64(c.t-sim0) / c.cfg.Speedup * float64(time.Second)))
		wait := time.Until(due)
		if wait < -5*time.Second { // far behind (a slow consumer): do not burst to catch up
			wall0, sim0 = time.Now(), c.t
			continue
		}
		if wait <= 0 {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
	return nil
}

// GroundTruth returns the incidents the city injected so far, oldest first.
func (c *City) GroundTruth() []Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Incident(nil), c.truth...)
}

// Vehicles returns the number of vehicles in the network now (cars, buses and units on the road).
func (c *City) Vehicles() int { return c.active }

// Now returns the simulated time of the next step.
func (c *City) Now() time.Time { return c.cfg.Start.Add(time.Duration(c.t) * time.Second) }

// step advances the city by one simulated second and returns the events of that second.
func (c *City) step() []engine.Event {
	c.out = make([]engine.Event, 0, c.lastSize+c.lastSize/4+8)
	t := c.t
	c.incidents(t)
	c.demand(t)
	c.busDepartures(t)
	c.reinsert(t)
	c.dispatch(t)
	c.move(t)
	c.emitProbes(t)
	c.emitDetectors(t)
	c.emitCameras(t)
	c.emitTransit(t)
	c.emitUnits(t)
	c.emitSensors(t)
	c.t++
	c.lastSize = len(c.out)
	return c.out
}
