package demo

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// incState is an injected incident while the city runs.
type incState struct {
	truth     int // index into City.truth
	link      int32
	pos       float64
	at        geo.LatLng
	typ       string
	start     int64
	end       int64
	rate      float64 // vehicles per second that get past the blockage
	credit    float64
	cam       int32 // camera that sees it, -1 none
	detectAt  int64 // first camera detection, -1 never
	calls     []int64
	knownAt   int64 // when the control room knows and dispatches
	ambulance bool  // whether an ambulance is sent
	active    bool
}

// urbanIncidentK scales the freeway capacities of capacityLeft down for city streets: merging into the open
// lanes next to parked emergency vehicles, onlookers and short links leave less than on a freeway.
const urbanIncidentK = 0.6

// capacityLeft is the share of a link's capacity left when blocked of its lanes are closed (HCM 2010, exhibit
// 10-17, freeway incidents; a one-lane road squeezed past a blockage keeps a fifth).
func capacityLeft(lanes, blocked int) float64 {
	if blocked >= lanes {
		return 0.2 / float64(max(lanes, 1))
	}
	table := map[[2]int]float64{{2, 1}: 0.35, {3, 1}: 0.49, {3, 2}: 0.17, {4, 1}: 0.58, {4, 2}: 0.25, {4, 3}: 0.13}
	if f, ok := table[[2]int{lanes, blocked}]; ok {
		return f
	}
	return 0.75 * float64(lanes-blocked) / float64(lanes) * (1 - 0.4*float64(blocked)/float64(lanes))
}

// incidentGap draws the simulated seconds until the next incident.
func (c *City) incidentGap() int64 {
	if c.cfg.IncidentEvery < 0 {
		return math.MaxInt64
	}
	m := c.cfg.IncidentEvery.Seconds()
	return c.t + int64(m*(2.0/3+2.0/3*c.rng.Float64()))
}

// incidents starts and clears incidents and emits their camera detections and hotline calls.
func (c *City) incidents(t int64) {
	if t >= c.nextInc {
		c.pickIncident(t)
		c.nextInc = t + (c.incidentGap() - c.t)
	}
	for i := range c.incs {
		in := &c.incs[i]
		if !in.active {
			continue
		}
		if t >= in.end {
			c.clearIncident(int32(i), t)
			continue
		}
		in.credit = math.Min(in.credit+in.rate, math.Max(1, in.rate))
		if in.detectAt >= 0 && t >= in.detectAt {
			c.detection(in, t)
			in.detectAt = t + 20 + int64(c.rng.IntN(40))
		}
		for len(in.calls) > 0 && t >= in.calls[0] {
			c.call(in, t)
			in.calls = in.calls[1:]
		}
	}
}

// pickIncident blocks lanes of a busy link: links of 60 m or more are drawn with weight (recent flow)^2, so
// blockages fall where there is traffic to disturb (crashes happen where vehicles are).
func (c *City) pickIncident(t int64) {
	sum := 0.0
	for i := range c.links {
		if lk := &c.links[i]; lk.lengthM >= 60 && lk.inc < 0 {
			sum += lk.flow*lk.flow + 0.01
		}
	}
	x := c.rng.Float64() * sum
	li := int32(-1)
	for i := range c.links {
		if lk := &c.links[i]; lk.lengthM >= 60 && lk.inc < 0 {
			x -= lk.flow*lk.flow + 0.01
			if x <= 0 {
				li = int32(i)
				break
			}
		}
	}
	if li < 0 {
		return
	}
	typ, dur := "stalled_vehicle", 480+c.rng.IntN(720)
	if c.rng.Float64() < 0.4 {
		typ, dur = "crash", 900+c.rng.IntN(1200)
	}
	c.injectIncident(li, typ, int64(dur), t)
}

// injectIncident blocks link li from t for dur seconds: a stalled vehicle closes one lane, a crash all but one.
func (c *City) injectIncident(li int32, typ string, dur int64, t int64) int {
	lk := &c.links[li]
	lanes := int(lk.lanes)
	blocked := 1
	if typ == "crash" && lanes > 1 {
		blocked = lanes - 1
	}
	pos := lk.lengthM * (0.4 + 0.4*c.rng.Float64())
	at, _ := c.pointOn(li, pos)
	in := incState{truth: len(c.truth), link: li, pos: pos, at: at, typ: typ, start: t, end: t + dur,
		rate: lk.lanes * satFlowLane * capacityLeft(lanes, blocked) * urbanIncidentK, cam: -1, detectAt: -1, active: true}
	// A camera sees the last 200 m of the approaches of its intersection.
	if lk.cam >= 0 && lk.lengthM-pos <= 200 {
		in.cam = lk.cam
		if c.rng.Float64() < 0.85 {
			in.detectAt = t + 20 + int64(math.Min(280, c.rng.ExpFloat64()*60))
		}
	}
	nCalls := 0
	if typ == "crash" {
		if c.rng.Float64() < 0.85 {
			nCalls++
			if c.rng.Float64() < 0.4 {
				nCalls++
			}
		}
		in.ambulance = c.rng.Float64() < 0.6
	} else if c.rng.Float64() < 0.35 {
		nCalls++
	}
	in.knownAt = t + 240 // the speed collapse alone is noticed by the control room
	if in.detectAt >= 0 {
		in.knownAt = min(in.knownAt, in.detectAt)
	}
	for k := 0; k < nCalls; k++ {
		ct := t + 60 + int64(math.Min(840, c.rng.ExpFloat64()*150))
		if ct < in.end {
			in.calls = append(in.calls, ct)
			in.knownAt = min(in.knownAt, ct)
		}
	}
	if len(in.calls) == 2 && in.calls[1] < in.calls[0] {
		in.calls[0], in.calls[1] = in.calls[1], in.calls[0]
	}
	gt := Incident{ID: "inc-" + strconv.Itoa(len(c.truth)+1), Type: typ, LinkID: lk.g.ID, OffsetM: math.Round(pos*10) / 10,
		Lat: at.Lat, Lng: at.Lng, Lanes: lanes, LanesBlocked: blocked,
		Start: c.cfg.Start.Add(time.Duration(t) * time.Second), End: c.cfg.Start.Add(time.Duration(in.end) * time.Second)}
	if in.cam >= 0 {
		gt.Camera = c.cams[in.cam].id
	}
	c.mu.Lock()
	c.truth = append(c.truth, gt)
	c.mu.Unlock()
	lk.inc = int32(len(c.incs))
	c.incs = append(c.incs, in)
	return len(c.incs) - 1
}

// clearIncident reopens the link and releases the units at the scene.
func (c *City) clearIncident(ii int32, t int64) {
	in := &c.incs[ii]
	in.active = false
	c.links[in.link].inc = -1
	for ui := range c.units {
		u := &c.units[ui]
		if u.inc != ii {
			continue
		}
		u.inc = -1
		v := &c.veh[u.vi]
		if u.status == "on_scene" {
			if u.typ == "ambulance" {
				u.status = "busy" // taking the patient away, then home
			} else {
				u.status = "available"
			}
			v.route, v.ri = []int32{in.link}, 0
			c.parked = append(c.parked, parked{vi: u.vi, link: in.link, pos: in.pos, until: t})
		} else {
			u.status = "available"
		}
	}
}

// detection emits a camera's incident detection: usually the right type, at a confidence of 0.6 to 0.95, at the
// object's position as the analytics projects it.
func (c *City) detection(in *incState, t int64) {
	cam := &c.cams[in.cam]
	e := c.event(engine.KindVideo, t, cam.id, c.jitter(in.at, 5), "video-analytics")
	e.Type = in.typ
	if c.rng.Float64() < 0.15 {
		e.Type = map[string]string{"crash": "stalled_vehicle", "stalled_vehicle": "crash"}[in.typ]
	}
	lo := 0.6
	if in.typ == "crash" {
		lo = 0.7
	}
	e.Confidence = math.Round((lo+(0.95-lo)*c.rng.Float64())*100) / 100
}

// call emits a hotline call about an incident, 30 to 150 m off (callers guess), and counts it in the truth.
func (c *City) call(in *incState, t int64) {
	c.calls++
	r, a := 30+120*c.rng.Float64(), 2*math.Pi*c.rng.Float64()
	p := geo.LatLng{Lat: in.at.Lat + r*math.Cos(a)/111320, Lng: in.at.Lng + r*math.Sin(a)/(111320*math.Cos(in.at.Lat*math.Pi/180))}
	e := c.event(engine.KindReport, t, fmt.Sprintf("call-122-%d", 80000+c.calls), p, "hotline-122")
	name := c.links[in.link].g.Name
	if name == "" {
		name = "the road"
	}
	if in.typ == "crash" {
		e.Type, e.Severity = "crash", int8(2+c.rng.IntN(3))
		e.Text = "collision on " + name + ", lanes blocked"
	} else {
		e.Type, e.Severity = "hazard", int8(1+c.rng.IntN(2))
		e.Text = "broken-down car blocking a lane on " + name
	}
	c.mu.Lock()
	c.truth[in.truth].Calls++
	c.mu.Unlock()
}
