package demo

import (
	"fmt"
	"math"

	"citybrain/engine"
	"citybrain/geo"
)

// Emission rates and shares.
const (
	probeShare     = 0.2  // share of cars that report GPS probes
	detIntervalS   = 30   // loop detector aggregation interval
	camIntervalS   = 30   // camera count and queue interval
	transitEveryS  = 10   // bus position reports
	unitEveryS     = 5    // emergency unit AVL reports
	sensorEveryS   = 60   // city sensor readings
	gpsSigmaM      = 4.0  // probe position noise
	falseAlarmPerH = 0.25 // false incident detections per camera per simulated hour
)

// detector is a loop detector across all lanes of a link at pos.
type detector struct {
	link     int32
	pos      float64
	at       geo.LatLng
	id       string
	count    int
	speedSum float64
	occ      float64 // seconds of occupancy summed over vehicles in the interval
}

// observe records a vehicle moving from pos to npos at speed v (m/s) during one second.
func (d *detector) observe(pos, npos, v float64) {
	switch {
	case pos < d.pos && npos >= d.pos:
		d.count++
		d.speedSum += v
		d.occ += math.Min(1, 6.5/math.Max(v, 0.5)) // 4.5 m vehicle over a 2 m loop
	case v < 0.5 && npos >= d.pos-1 && npos-4.5 <= d.pos+1:
		d.occ++ // standing on the loop
	}
}

// camera watches the approaches of one intersection.
type camera struct {
	node  int32
	id    string
	at    geo.LatLng
	count int // vehicles crossing the stop lines of its approaches in the interval
}

// citySensor is a city IoT sensor with a slow daily cycle, noise and occasional excursions over its threshold.
type citySensor struct {
	id, typ, unit, source string
	at                    geo.LatLng
	base, amp, noise      float64
	threshold             float64
	excursion             float64 // current height of an excursion above base, 0 when none
	excursionEnd          int64
	phase                 int64
}

// at places offset metres along link li on its geometry.
func (c *City) pointOn(li int32, pos float64) (geo.LatLng, float64) {
	lk := &c.links[li]
	return lk.g.PointAt(pos * lk.geomK)
}

// event starts an event of kind k at simulated second t at p.
func (c *City) event(k engine.Kind, t int64, id string, p geo.LatLng, source string) *engine.Event {
	e := engine.NewEvent(k)
	e.TS, e.ID, e.Lat, e.Lng, e.Source = c.ts(t), id, p.Lat, p.Lng, source
	c.out = append(c.out, e)
	return &c.out[len(c.out)-1]
}

// jitter moves p by a Gaussian offset of sigma metres in each direction.
func (c *City) jitter(p geo.LatLng, sigma float64) geo.LatLng {
	p.Lat += c.rng.NormFloat64() * sigma / 111320
	p.Lng += c.rng.NormFloat64() * sigma / (111320 * math.Cos(p.Lat*math.Pi/180))
	return p
}

// placeDetectors puts loop detectors on about a fifth of the arterial and collector links long enough to hold
// one, 60 m before the stop line (mid-link on short links).
func (c *City) placeDetectors() {
	for i := range c.links {
		lk := &c.links[i]
		if lk.g.Class > geo.ClassSecondary || lk.lengthM < 80 || c.rng.Float64() >= 0.2 || len(c.dets) >= 400 {
			continue
		}
		pos := math.Max(lk.lengthM/2, lk.lengthM-60)
		p, _ := c.pointOn(int32(i), pos)
		lk.det = int32(len(c.dets))
		c.dets = append(c.dets, detector{link: int32(i), pos: pos, at: p, id: "det-" + lk.g.ID})
	}
}

// placeCameras puts cameras at about a third of the signalised intersections (junctions of three or more roads
// when none is signalised), watching every approach.
func (c *City) placeCameras() {
	for i := range c.nodes {
		nd := &c.nodes[i]
		if !nd.signal || c.rng.Float64() >= 0.33 || len(c.cams) >= 120 {
			continue
		}
		c.addCamera(int32(i))
	}
	if len(c.cams) == 0 {
		for i := range c.nodes {
			if len(c.nodes[i].in) >= 3 && c.rng.Float64() < 0.2 && len(c.cams) < 120 {
				c.addCamera(int32(i))
			}
		}
	}
}

func (c *City) addCamera(n int32) {
	ci := int32(len(c.cams))
	for _, li := range c.nodes[n].in {
		c.links[li].cam = ci
	}
	c.cams = append(c.cams, camera{node: n, id: "cam-" + c.nodes[n].g.ID, at: c.nodes[n].g.LatLng})
}

// placeSensors installs a handful of city sensors at random nodes.
func (c *City) placeSensors() {
	kinds := []citySensor{
		{id: "wp", typ: "water_pressure", unit: "bar", source: "water-utility", base: 3.2, amp: 0.3, noise: 0.05, threshold: 4.5},
		{id: "wp", typ: "water_pressure", unit: "bar", source: "water-utility", base: 3.0, amp: 0.3, noise: 0.05, threshold: 4.5},
		{id: "wl", typ: "water_level", unit: "m", source: "drainage", base: 0.3, amp: 0.05, noise: 0.02, threshold: 0.8},
		{id: "wl", typ: "water_level", unit: "m", source: "drainage", base: 0.25, amp: 0.05, noise: 0.02, threshold: 0.8},
		{id: "gas", typ: "gas_ch4", unit: "ppm", source: "gas-company", base: 4, amp: 1, noise: 0.5, threshold: 50},
		{id: "aq", typ: "pm25", unit: "ug/m3", source: "environment", base: 35, amp: 15, noise: 3, threshold: 75},
	}
	for i, s := range kinds {
		s.id = fmt.Sprintf("sensor-%s-%02d", s.id, i+1)
		s.at = c.nodes[c.rng.IntN(len(c.nodes))].g.LatLng
		s.phase = int64(c.rng.IntN(sensorEveryS))
		c.sensors = append(c.sensors, s)
	}
}

// emitProbes reports the position, speed and heading of probe cars whose interval is due.
func (c *City) emitProbes(t int64) {
	for li := range c.links {
		for _, vi := range c.links[li].q {
			v := &c.veh[vi]
			if !v.probe || (t+int64(v.phase))%int64(v.period) != 0 {
				continue
			}
			p, brg := c.pointOn(int32(li), v.pos)
			e := c.event(engine.KindProbe, t, v.id, c.jitter(p, gpsSigmaM), "taxi-gps")
			e.SpeedKmh = math.Max(0, v.speed*3.6*(1+0.03*c.rng.NormFloat64()))
			e.HeadingDeg = math.Round(math.Mod(brg+3*c.rng.NormFloat64()+720, 360))
			if e.HeadingDeg >= 360 {
				e.HeadingDeg = 0
			}
		}
	}
}

// emitDetectors closes every detector's interval every detIntervalS seconds.
func (c *City) emitDetectors(t int64) {
	if (t+1)%detIntervalS != 0 {
		return
	}
	for i := range c.dets {
		d := &c.dets[i]
		e := c.event(engine.KindDetector, t, d.id, d.at, "traffic-police")
		e.FlowVph = float64(d.count) * 3600 / detIntervalS
		e.Occupancy = math.Round(math.Min(1, d.occ/(detIntervalS*c.links[d.link].lanes))*1000) / 1000
		e.IntervalS = detIntervalS
		if d.count > 0 {
			e.SpeedKmh = math.Round(d.speedSum/float64(d.count)*36) / 10
		}
		d.count, d.speedSum, d.occ = 0, 0, 0
	}
}

// queueM returns the length of the standing queue at the stop line of link li, metres.
func (c *City) queueM(li int32) float64 {
	lk := &c.links[li]
	q := 0.0
	for _, vi := range lk.q {
		v := &c.veh[vi]
		if v.speed >= 2 {
			break
		}
		q = lk.lengthM - v.pos + jamSpacingM/lk.lanes
	}
	return q
}

// emitCameras reports vehicle counts and the longest approach queue of every camera each camIntervalS, incident
// detections (see incidents.go) and occasional false alarms.
func (c *City) emitCameras(t int64) {
	if len(c.cams) > 0 {
		for n := c.poisson(float64(len(c.cams)) * falseAlarmPerH / 3600); n > 0; n-- {
			cam := &c.cams[c.rng.IntN(len(c.cams))]
			e := c.event(engine.KindVideo, t, cam.id, c.jitter(cam.at, 40), "video-analytics")
			e.Type = [...]string{"stalled_vehicle", "debris", "pedestrian", "wrong_way", "crash"}[c.rng.IntN(5)]
			e.Confidence = math.Round((0.3+0.25*c.rng.Float64())*100) / 100
			c.alarmID++
		}
	}
	if (t+1)%camIntervalS != 0 {
		return
	}
	for i := range c.cams {
		cam := &c.cams[i]
		e := c.event(engine.KindVideo, t, cam.id, cam.at, "video-analytics")
		e.Type, e.Count, e.IntervalS = "vehicle_count", float64(cam.count), camIntervalS
		q := 0.0
		for _, li := range c.nodes[cam.node].in {
			q = math.Max(q, c.queueM(li))
		}
		e = c.event(engine.KindVideo, t, cam.id, cam.at, "video-analytics")
		e.Type, e.QueueM, e.IntervalS = "queue", math.Round(q), camIntervalS
		cam.count = 0
	}
}

// emitSensors reports every city sensor once a minute; excursions push a reading over its threshold now and then
// (about once every four simulated hours per sensor, for 5 to 20 minutes).
func (c *City) emitSensors(t int64) {
	for i := range c.sensors {
		s := &c.sensors[i]
		if (t+s.phase)%sensorEveryS != 0 {
			continue
		}
		if s.excursion == 0 && c.rng.Float64() < 1.0/240 {
			s.excursion = (s.threshold - s.base) * (1.05 + 0.4*c.rng.Float64())
			s.excursionEnd = t + 300 + int64(c.rng.IntN(900))
		} else if s.excursion != 0 && t >= s.excursionEnd {
			s.excursion = 0
		}
		day := math.Sin((c.hourAt(t) - 9) / 24 * 2 * math.Pi)
		e := c.event(engine.KindSensor, t, s.id, s.at, s.source)
		e.Type, e.Unit, e.Threshold = s.typ, s.unit, s.threshold
		e.Value = math.Round((s.base+s.amp*day+s.noise*c.rng.NormFloat64()+s.excursion)*100) / 100
	}
}
