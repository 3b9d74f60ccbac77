package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"time"

	"citybrain/engine"
	"citybrain/engine/zones"
	"citybrain/geo"
)

// ZonesBench is the zones section: what 10,000 geofences cost per event and in memory (engine/zones).
type ZonesBench struct {
	Zones         int     `json:"zones"`
	BytesPerZone  float64 `json:"bytes_per_zone"`   // live heap after creating the zones, per zone
	EventsPerSec  float64 `json:"events_per_s"`     // cell views, unit fixes, sensor readings and incidents judged per second
	EventsPerSec0 float64 `json:"events_per_s_100"` // the same stream against 100 zones, same run (the ratio is the index's cost)
	// EventsPerCPUSec divides by the CPU time of the judging thread: steadier than wall time on a shared machine.
	EventsPerCPUSec  float64 `json:"events_per_cpu_s"`
	EventsPerCPUSec0 float64 `json:"events_per_cpu_s_100"`
	AlertsFired      int     `json:"alerts_fired"`
	Note             string  `json:"note"`
}

// zones measures the zone manager in process (it runs on the engine's tick goroutine, not across a socket).
func (r *runner) zones(ctx context.Context) error {
	n := 10_000
	dur := 3 * time.Second
	if r.cfg.Short {
		dur = 500 * time.Millisecond
	}
	res := ZoneLoad(n, dur, r.baseRes)
	small := ZoneLoad(100, dur, r.baseRes)
	res.EventsPerSec0, res.EventsPerCPUSec0 = small.EventsPerSec, small.EventsPerCPUSec
	r.rep.Zones = &res
	return ctx.Err()
}

// ZoneLoad builds n zones (300–600 m squares over a 30 × 30 km city, each with an incident, a unit and a
// sensor rule, a quarter with a congestion rule) and feeds deltas of 1,000 events (600 cell views, 100 unit
// fixes, 280 sensor readings, 20 incidents) for dur.
func ZoneLoad(n int, dur time.Duration, res int) ZonesBench {
	rng := rand.New(rand.NewPCG(1, 2))
	const lat0, lng0 = 30.15, 120.05
	span := 0.3 // degrees: about 30 km
	fired := 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := zones.New(zones.Config{Res: res, MaxAlerts: 10_000, OnAlert: func(a []zones.Alert) { fired += len(a) }})
	for i := 0; i < n; i++ {
		lat, lng := lat0+rng.Float64()*span, lng0+rng.Float64()*span
		d := (300 + rng.Float64()*300) / 111_000
		rules := []zones.Rule{{Type: zones.RuleIncident}, {Type: zones.RuleUnitEnter}, {Type: zones.RuleSensor, SensorTypes: []string{"gas"}}}
		if i%4 == 0 {
			rules = append(rules, zones.Rule{Type: zones.RuleCongestion, Level: "severe", ForS: 300})
		}
		z := zones.Zone{ID: fmt.Sprintf("z%05d", i), Name: "zone", Kind: zones.KindGeneral, Rules: rules,
			Polygon: [][2]float64{{lng, lat}, {lng + d, lat}, {lng + d, lat + d}, {lng, lat + d}}}
		if err := m.ApplyAction(zones.Action{ID: z.ID, Op: "create", Zone: &z}); err != nil {
			panic(fmt.Sprintf("BUG: bench zone: %v", err))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	out := ZonesBench{Zones: n, BytesPerZone: float64(after.HeapAlloc-before.HeapAlloc) / float64(n),
		Note: "in process, one goroutine (the engine's tick goroutine runs the manager); under shared load figures are noisy"}

	// A pool of deltas to cycle through.
	point := func() (float64, float64) { return lat0 + rng.Float64()*span, lng0 + rng.Float64()*span }
	var deltas []*engine.Delta
	ts := int64(1_800_000_000_000)
	for k := 0; k < 20; k++ {
		d := &engine.Delta{}
		for i := 0; i < 600; i++ {
			la, ln := point()
			c, _ := geo.CellOf(la, ln, res)
			v := &engine.CellView{Cell: c, Res: res, Lat: la, Lng: ln, FreeFlowKmh: 50}
			sp := 5 + rng.Float64()*45
			v.W[0] = engine.WindowStats{SpeedSum: sp * 5, SpeedW: 5, Samples: 5}
			d.Changed = append(d.Changed, v)
		}
		for i := 0; i < 100; i++ {
			la, ln := point()
			d.Units = append(d.Units, engine.Unit{ID: fmt.Sprintf("u%d", i), Type: "ambulance", Status: "available", Lat: la, Lng: ln})
		}
		for i := 0; i < 280; i++ {
			la, ln := point()
			e := engine.NewEvent(engine.KindSensor)
			e.ID, e.Type, e.Lat, e.Lng, e.Value, e.Threshold = fmt.Sprintf("s%d", i), "gas_ppm", la, ln, rng.Float64()*2, 1
			d.Assets = append(d.Assets, e)
		}
		for i := 0; i < 20; i++ {
			la, ln := point()
			d.Incidents = append(d.Incidents, engine.Incident{ID: fmt.Sprintf("i%d-%d", k, i), Type: "crash", Lat: la, Lng: ln, Status: "suspected"})
		}
		deltas = append(deltas, d)
	}
	events := 0
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	start := time.Now()
	for i := 0; time.Since(start) < dur; i++ {
		d := deltas[i%len(deltas)]
		ts += 1000
		d.Now = ts
		for j := range d.Units {
			d.Units[j].TS = ts
		}
		for j := range d.Assets {
			d.Assets[j].TS = ts
		}
		for j := range d.Incidents {
			d.Incidents[j].DetectedAt, d.Incidents[j].UpdatedAt = ts, ts
		}
		m.OnDelta(d)
		events += len(d.Changed) + len(d.Units) + len(d.Assets) + len(d.Incidents)
	}
	out.EventsPerSec = math.Round(float64(events) / time.Since(start).Seconds())
	if cpu := threadCPU() - cpu0; cpu > 0 {
		out.EventsPerCPUSec = math.Round(float64(events) / cpu.Seconds())
	}
	out.AlertsFired = fired
	runtime.KeepAlive(m)
	return out
}

// threadCPU is the CPU time of the calling OS thread (the caller locks itself to it).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
