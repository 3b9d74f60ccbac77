package eval

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/sumo"
)

// processor turns SUMO's FCD of every vehicle, second by second, into what the city's sensors would have
// produced (probe fixes of a share of the vehicles, camera counts and stall alarms) and into the speed truth.
type processor struct {
	run     *simRun
	rng     *rand.Rand
	probe   uint64 // the run's salt of which vehicles carry a probe and their phase (drawSeed)
	origin  geo.LatLng
	cosLat  float64
	cams    []Camera
	camPts  []geo.LatLng
	speed   map[obsKey]*SpeedObs
	cells   *geo.CellCache
	stand   map[string]*standing // vehicles standing in a camera's view
	inside  map[string]int       // vehicle → camera whose count circle it is in (+1; 0: none)
	counts  []int                // vehicles entering each camera's count circle since the last report
	countAt float64              // end of the current count interval, simulated s
	zone    int                  // UTM zone of the network (heading correction)
	err     error                // the first fix that did not make a valid event
	types   map[string]bool      // vehicle types seen (loopTypes must list each but the pacers')
}

type obsKey struct {
	w    int32
	unit string
}

type standing struct {
	since, next float64
}

func newProcessor(run *simRun, net *geo.Network, seed int64) *processor {
	bb := net.BBox()
	p := &processor{run: run, rng: rand.New(rand.NewPCG(uint64(seed), nameSeed(run.City)^0x5eed)), probe: drawSeed(run.City, seed, "probes"),
		origin: geo.LatLng{Lat: bb.MinLat, Lng: bb.MinLng}, speed: map[obsKey]*SpeedObs{},
		cells: geo.NewCellCache(geo.DefaultRes), stand: map[string]*standing{}, inside: map[string]int{}, countAt: countEveryS, types: map[string]bool{}}
	p.cosLat = math.Cos(bb.MinLat * math.Pi / 180)
	run.Origin = p.origin
	// Cameras at a fifth of the signalised junctions (at least one), the same ones for every seed of a city.
	var sig []*geo.Node
	for _, n := range net.Nodes() {
		if n.Signalised {
			sig = append(sig, n)
		}
	}
	sort.Slice(sig, func(i, j int) bool { return sig[i].ID < sig[j].ID })
	crng := rand.New(rand.NewPCG(nameSeed(run.City), 5))
	crng.Shuffle(len(sig), func(i, j int) { sig[i], sig[j] = sig[j], sig[i] })
	n := int(math.Round(cameraShare * float64(len(sig))))
	if n == 0 && len(sig) > 0 {
		n = 1
	}
	for _, nd := range sig[:n] {
		p.cams = append(p.cams, Camera{ID: "cam-" + nd.ID, Lat: nd.Lat, Lng: nd.Lng})
		p.camPts = append(p.camPts, nd.LatLng)
	}
	sort.Slice(p.cams, func(i, j int) bool { return p.cams[i].ID < p.cams[j].ID })
	p.camPts = p.camPts[:0]
	for _, c := range p.cams {
		p.camPts = append(p.camPts, geo.LatLng{Lat: c.Lat, Lng: c.Lng})
	}
	p.counts = make([]int, len(p.cams))
	run.Cameras = p.cams
	return p
}

// drawSeed seeds one kind of draw (what) of the run of a city and seed. Every per-event draw of the corpus
// (a blockage's hotline calls, a camera's planted false alarms, which vehicles carry a probe) is made per city
// and seed, so the cities and seeds are independent samples: until c4 the calls and false alarms were drawn
// from the seed alone (blockage k got the same calls in every city) and the probes from the vehicle's id
// alone (Bologna's own demand had the same probe fleet on every seed).
func drawSeed(city string, seed int64, what string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s", city, seed, what)
	return h.Sum64()
}

// drawRand is the random source of one draw (drawSeed).
func drawRand(city string, seed int64, what string) *rand.Rand {
	return rand.New(rand.NewPCG(drawSeed(city, seed, what), 0x9e3779b97f4a7c15))
}

// isProbe: the vehicle carries a probe in this run; lowProbe: it is one of the ProbeShareLow subset;
// probePhase: the second of its ProbeIntervalS at which it reports.
func (p *processor) isProbe(id string) bool { return unitHash(id, p.probe^1) < ProbeShare }
func (p *processor) lowProbe(id string) bool {
	return unitHash(id, p.probe^3) < ProbeShareLow/ProbeShare
}
func (p *processor) probePhase(id string) int {
	return int(unitHash(id, p.probe^2) * ProbeIntervalS)
}

// unitHash is a uniform number in [0, 1) from s and a salt: which vehicles are probes, and their phase.
func unitHash(s string, salt uint64) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64() ^ salt
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// point handles one FCD point (every vehicle, every second).
func (p *processor) point(pt *fcdPoint) {
	t := pt.t
	for t >= p.countAt {
		p.flushCounts()
	}
	p.types[pt.typ] = true
	if strings.HasPrefix(pt.id, pacerPrefix) {
		return // a partial closure's squeeze (writeBlockers), not a vehicle anyone sees
	}
	blocker := strings.HasPrefix(pt.id, blockerPrefix)
	ll := geo.LatLng{Lat: pt.lat, Lng: pt.lng}
	if !blocker {
		p.truth(t, ll, pt.lane, pt.kmh, pt.id)
	}
	p.camera(t, pt.id, pt.kmh, ll)
	if blocker {
		return
	}
	// Probes and buses report every ProbeIntervalS at their own phase.
	phase := p.probePhase(pt.id)
	if int(math.Round(t))%ProbeIntervalS != phase {
		return
	}
	transit := sumo.TransitMode(nil, pt.typ) != ""
	if !transit && !p.isProbe(pt.id) {
		return
	}
	e, err := fixEvent(pt, p.zone)
	if err != nil {
		if p.err == nil {
			p.err = fmt.Errorf("cannot make a probe of vehicle %s at %.0f s: %w", pt.id, t, err)
		}
		return
	}
	if transit {
		p.run.Transit = append(p.run.Transit, p.noisy(e))
		return
	}
	p.run.Probes = append(p.run.Probes, p.noisy(e))
	p.run.Low = append(p.run.Low, p.lowProbe(pt.id))
}

// noisy adds GPS error: Gaussian position (GPSNoiseM per axis) and heading noise; speed (Doppler) is kept.
func (p *processor) noisy(e engine.Event) engine.Event {
	e.Lat += p.rng.NormFloat64() * GPSNoiseM / 111_320
	e.Lng += p.rng.NormFloat64() * GPSNoiseM / (111_320 * math.Cos(e.Lat*math.Pi/180))
	e.Lat, e.Lng = math.Round(e.Lat*1e7)/1e7, math.Round(e.Lng*1e7)/1e7
	if engine.Has(e.HeadingDeg) {
		e.HeadingDeg = math.Mod(e.HeadingDeg+p.rng.NormFloat64()*HeadingNoise+360, 360)
		e.HeadingDeg = math.Round(e.HeadingDeg*10) / 10
	}
	return e
}

// truth adds one vehicle-second to its link, square and cell in its window. A probe vehicle's second is also
// added to its link's probe-sample units (P: the 15 % sample, Q: the 5 %): every second of the probes, the
// best any estimator using them alone could know, so the report can say how far sampling alone is from the
// truth.
func (p *processor) truth(t float64, ll geo.LatLng, lane string, kmh float64, id string) {
	w := int32(t / SpeedWindowS)
	add := func(unit string) {
		k := obsKey{w, unit}
		o := p.speed[k]
		if o == nil {
			o = &SpeedObs{Window: w, Unit: unit}
			p.speed[k] = o
		}
		o.SumKmh += kmh
		o.VehS++
	}
	if lane != "" && lane[0] != ':' {
		if i := strings.LastIndexByte(lane, '_'); i > 0 {
			add("L:" + lane[:i])
			if p.isProbe(id) {
				add("P:" + lane[:i])
				if p.lowProbe(id) {
					add("Q:" + lane[:i])
				}
			}
		}
	}
	x, y := p.local(ll)
	add(fmt.Sprintf("S:%d,%d", int(math.Floor(x/SquareM)), int(math.Floor(y/SquareM))))
	if c, err := p.cells.Cell(ll.Lat, ll.Lng); err == nil {
		add("C:" + geo.CellString(c))
	}
}

// local is p's position in metres east and north of the grid's origin.
func (p *processor) local(ll geo.LatLng) (float64, float64) {
	return (ll.Lng - p.origin.Lng) * 111_320 * p.cosLat, (ll.Lat - p.origin.Lat) * 110_574
}

// squareCentre is the centre of square "x,y".
func squareCentre(origin geo.LatLng, x, y int) geo.LatLng {
	cosLat := math.Cos(origin.Lat * math.Pi / 180)
	return geo.LatLng{Lat: origin.Lat + (float64(y)+0.5)*SquareM/110_574, Lng: origin.Lng + (float64(x)+0.5)*SquareM/(111_320*cosLat)}
}

// camera runs the cameras on one point: counts of vehicles entering the junction, and stall alarms for a
// vehicle standing in view for stallS (then every stallRepeatS while it stands).
func (p *processor) camera(t float64, id string, kmh float64, ll geo.LatLng) {
	ci, d := -1, math.Inf(1)
	for i, c := range p.camPts {
		if math.Abs(c.Lat-ll.Lat) > 0.0015 || math.Abs(c.Lng-ll.Lng) > 0.002 {
			continue
		}
		if dd := geo.DistanceM(c, ll); dd < d {
			ci, d = i, dd
		}
	}
	if ci < 0 || d > cameraRangeM {
		delete(p.stand, id)
		delete(p.inside, id)
		return
	}
	if d <= countRangeM {
		if p.inside[id] != ci+1 {
			p.inside[id] = ci + 1
			p.counts[ci]++
		}
	} else {
		delete(p.inside, id)
	}
	if kmh/3.6 >= standMps {
		delete(p.stand, id)
		return
	}
	s := p.stand[id]
	if s == nil {
		p.stand[id] = &standing{since: t, next: t + stallS}
		return
	}
	if t >= s.next {
		s.next = t + stallRepeatS
		cam := p.cams[ci]
		a := engine.NewEvent(engine.KindVideo)
		a.TS, a.ID, a.Source, a.Type = simTime(t).UnixMilli(), cam.ID, "video-analytics", "stalled_vehicle"
		a.Lat = ll.Lat + p.rng.NormFloat64()*2/111_320
		a.Lng = ll.Lng + p.rng.NormFloat64()*2/(111_320*p.cosLat)
		a.Confidence = math.Round((0.6+0.35*p.rng.Float64())*100) / 100
		p.run.Video = append(p.run.Video, a)
	}
}

// flushCounts reports every camera's count for the interval ending at countAt.
func (p *processor) flushCounts() {
	for i, cam := range p.cams {
		c := engine.NewEvent(engine.KindVideo)
		c.TS, c.ID, c.Source, c.Type = simTime(p.countAt).UnixMilli(), cam.ID, "video-analytics", "vehicle_count"
		c.Lat, c.Lng, c.Count, c.IntervalS, c.Confidence = cam.Lat, cam.Lng, float64(p.counts[i]), countEveryS, 0.9
		p.run.Video = append(p.run.Video, c)
		p.counts[i] = 0
	}
	p.countAt += countEveryS
}

// finish flattens the speed truth.
func (p *processor) finish() {
	for p.countAt <= p.run.EndS {
		p.flushCounts()
	}
	keys := make([]obsKey, 0, len(p.speed))
	for k := range p.speed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].w != keys[j].w {
			return keys[i].w < keys[j].w
		}
		return keys[i].unit < keys[j].unit
	})
	for _, k := range keys {
		o := p.speed[k]
		o.SumKmh = math.Round(o.SumKmh*100) / 100
		p.run.Speed = append(p.run.Speed, *o)
	}
}

// plantedFalseAlarms are the cameras' own mistakes: camFalsePerH per camera-hour, a classifier's frame (one,
// sometimes two within a minute) of a stalled vehicle, debris, a pedestrian or a wrong-way driver that is not
// there, at 0.5–0.9 confidence, within 60 m of the junction. Each camera's are drawn per city and seed.
func plantedFalseAlarms(city string, seed int64, cams []Camera, spanS float64) []engine.Event {
	var out []engine.Event
	types := []string{"stalled_vehicle", "debris", "pedestrian", "wrong_way"}
	for _, c := range cams {
		rng := drawRand(city, seed, "false-alarms/"+c.ID)
		n := poisson(rng, camFalsePerH*spanS/3600)
		for k := 0; k < n; k++ {
			t := rng.Float64() * spanS
			typ := types[rng.IntN(len(types))]
			p := offset(geo.LatLng{Lat: c.Lat, Lng: c.Lng}, 60*rng.Float64(), 360*rng.Float64())
			frames := 1
			if rng.Float64() < 0.4 {
				frames = 2
			}
			for f := 0; f < frames; f++ {
				e := engine.NewEvent(engine.KindVideo)
				e.TS, e.ID, e.Source, e.Type = simTime(t).UnixMilli(), c.ID, "video-analytics", typ
				e.Lat, e.Lng = p.Lat, p.Lng
				e.Confidence = math.Round((0.5+0.4*rng.Float64())*100) / 100
				out = append(out, e)
				t += 20 + 40*rng.Float64()
			}
		}
	}
	return out
}

// offset moves p by d metres at bearing deg.
func offset(p geo.LatLng, d, deg float64) geo.LatLng {
	r := deg * math.Pi / 180
	return geo.LatLng{Lat: p.Lat + d*math.Cos(r)/111_320, Lng: p.Lng + d*math.Sin(r)/(111_320*math.Cos(p.Lat*math.Pi/180))}
}

func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for k < 1000 {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
	return k
}

// hotlineCalls: most incidents get a call (full closures 90 %, partial 70 %; a second caller for a third of
// them), 2–6 min after the start, from 30–150 m away, naming a crash or a hazard. Each blockage's calls are
// drawn per city and seed (drawSeed).
func hotlineCalls(city string, seed int64, truths []Truth, endS float64) []engine.Event {
	var out []engine.Event
	n := 0
	for i := range truths {
		t := &truths[i]
		rng := drawRand(city, seed, "calls/"+t.ID)
		full := t.Class == ClassFull
		p := 0.7
		if full {
			p = 0.9
		}
		calls := 0
		if rng.Float64() < p {
			calls = 1
			if rng.Float64() < 1.0/3 {
				calls = 2
			}
		}
		for c := 0; c < calls; c++ {
			ts := t.Start.Add(secs(120 + 240*rng.Float64()))
			pos := offset(geo.LatLng{Lat: t.Lat, Lng: t.Lng}, 30+120*rng.Float64(), 360*rng.Float64())
			if ts.After(t.End.Add(secs(60))) || ts.After(simTime(endS)) {
				continue
			}
			n++
			e := engine.NewEvent(engine.KindReport)
			e.TS, e.ID, e.Source, e.Lat, e.Lng = ts.UnixMilli(), fmt.Sprintf("call-112-%d", n), "hotline-112", pos.Lat, pos.Lng
			if full {
				e.Type, e.Severity, e.Text = "crash", int8(3+rng.IntN(2)), "road blocked, "+t.Where
			} else {
				e.Type, e.Severity, e.Text = "hazard", int8(1+rng.IntN(2)), "car stopped in a lane, "+t.Where
			}
			out = append(out, e)
			t.Reports++
			if s := ts.Sub(t.Start).Seconds(); t.FirstCallS == nil || s < *t.FirstCallS {
				t.FirstCallS = &s
			}
		}
	}
	return out
}
