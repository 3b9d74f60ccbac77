package demo

import (
	"fmt"
	"math"

	"citybrain/engine"
	"citybrain/geo"
)

// Bus operation.
const (
	busStopEveryM = 450 // stop spacing along a line
	busPeakHwS    = 360 // headway when demand is above half of the peak
	busOffHwS     = 720 // headway otherwise
	busSchedK     = 1.3 // scheduled running time over free-flow time
	busDwellS     = 25  // scheduled dwell per stop
)

// busStop is a stop of a line: the route index of its link, its position on the link and the scheduled time from
// departure.
type busStop struct {
	ri    int32
	pos   float64
	sched float64
}

// busLine is one direction of a bus line.
type busLine struct {
	name    string
	route   []int32
	stops   []busStop
	nextDep int64
	serial  int
}

// bus is a bus on a trip.
type bus struct {
	line  int
	id    string
	vi    int32
	dep   int64 // departure second (negative for buses already under way at t = 0)
	next  int   // index of the next stop
	delay float64
	load  float64
	done  bool
	bay   bool // at a stop, off the road
	at    geo.LatLng
}

// setupBuses lays out a few bus lines between distant zones (both directions), their stops and schedules, and puts
// the buses that would be under way at the start on their lines.
func (c *City) setupBuses() {
	nLines := min(12, max(3, len(c.nodes)/40))
	diag := geo.DistanceM(geo.LatLng{Lat: c.net.BBox().MinLat, Lng: c.net.BBox().MinLng},
		geo.LatLng{Lat: c.net.BBox().MaxLat, Lng: c.net.BBox().MaxLng})
	used := map[string]bool{}
	for tries := 0; len(c.lines) < 2*nLines && tries < 50*nLines; tries++ {
		a, b := c.zones[c.rng.IntN(len(c.zones))], c.zones[c.rng.IntN(len(c.zones))]
		if a == b || geo.DistanceM(c.nodes[a].g.LatLng, c.nodes[b].g.LatLng) < 0.4*diag {
			continue
		}
		name := fmt.Sprintf("%d", 1+c.rng.IntN(399))
		if c.rng.IntN(3) == 0 {
			name = "K" + name
		}
		if used[name] {
			continue
		}
		ta, tb := c.shortestFrom(a, -1), c.shortestFrom(b, -1)
		ra, rb := c.pathToNode(&ta, b), c.pathToNode(&tb, a)
		if len(ra) < 4 || len(rb) < 4 {
			continue
		}
		used[name] = true
		for _, r := range [][]int32{ra, rb} {
			c.lines = append(c.lines, c.newLine(name, r))
		}
	}
	for li := range c.lines {
		ln := &c.lines[li]
		hw := int64(busPeakHwS)
		if c.profile(0) < 0.5 {
			hw = busOffHwS
		}
		ln.nextDep = int64(c.rng.IntN(int(hw)))
		// Buses already under way: one per headway back to a trip's length, waiting at their latest stop.
		for back := hw - ln.nextDep; back < int64(ln.stops[len(ln.stops)-1].sched); back += hw {
			k := 0
			for k+1 < len(ln.stops) && ln.stops[k+1].sched <= float64(back) {
				k++
			}
			bi := c.newBus(li, -back)
			b := &c.buses[bi]
			v := &c.veh[b.vi]
			v.ri = ln.stops[k].ri
			b.next = k + 1
			b.bay = true
			b.at, _ = c.pointOn(ln.route[v.ri], ln.stops[k].pos)
			c.parked = append(c.parked, parked{vi: b.vi, link: ln.route[v.ri], pos: ln.stops[k].pos, until: int64(c.rng.IntN(30))})
		}
	}
}

// newLine builds a line direction on route r with stops every busStopEveryM.
func (c *City) newLine(name string, r []int32) busLine {
	ln := busLine{name: name, route: r}
	cum, t := 0.0, 0.0
	nextAt := 0.0
	for i, li := range r {
		lk := &c.links[li]
		if cum+lk.lengthM*0.8 >= nextAt && lk.lengthM > 20 {
			pos := math.Max(10, math.Max(0.3*lk.lengthM, math.Min(0.8*lk.lengthM, nextAt-cum)))
			ln.stops = append(ln.stops, busStop{ri: int32(i), pos: pos,
				sched: busSchedK*(t+pos/lk.vfree) + busDwellS*float64(len(ln.stops))})
			nextAt = cum + pos + busStopEveryM
		}
		cum += lk.lengthM
		t += lk.cost
	}
	if len(ln.stops) == 0 {
		lk := &c.links[r[0]]
		ln.stops = []busStop{{ri: 0, pos: lk.lengthM / 2}}
	}
	return ln
}

// newBus starts a bus of line li departing at dep, reusing a finished bus slot.
func (c *City) newBus(li int, dep int64) int {
	ln := &c.lines[li]
	ln.serial++
	vi := c.newVehicle(kindBus, ln.route)
	bi := len(c.buses)
	for i := range c.buses {
		if c.buses[i].done {
			bi = i
			break
		}
	}
	b := bus{line: li, id: fmt.Sprintf("bus-%s-%d-%d", ln.name, li%2, ln.serial), vi: vi, dep: dep,
		load: 0.2 + 0.5*c.profile(0)*c.rng.Float64()}
	if bi == len(c.buses) {
		c.buses = append(c.buses, b)
	} else {
		c.buses[bi] = b
	}
	v := &c.veh[vi]
	v.ref, v.id, v.vfac = int32(bi), b.id, 0.85
	return bi
}

// busDepartures sends buses off their first stop on schedule.
func (c *City) busDepartures(t int64) {
	for li := range c.lines {
		ln := &c.lines[li]
		if t < ln.nextDep {
			continue
		}
		hw := int64(busPeakHwS)
		if c.profile(t) < 0.5 {
			hw = busOffHwS
		}
		ln.nextDep = t + hw
		bi := c.newBus(li, t-int64(ln.stops[0].sched))
		b := &c.buses[bi]
		v := &c.veh[b.vi]
		v.ri = ln.stops[0].ri
		b.next = 1
		b.bay = true
		b.at, _ = c.pointOn(ln.route[v.ri], ln.stops[0].pos)
		c.parked = append(c.parked, parked{vi: b.vi, link: ln.route[v.ri], pos: ln.stops[0].pos, until: t + busDwellS})
	}
}

// busAtStop handles a bus reaching npos on its current link: at its next stop it pulls into the bay (leaves the
// road) for its dwell. It reports whether the bus left the road.
func (c *City) busAtStop(v *vehicle, npos float64, t int64) bool {
	b := &c.buses[v.ref]
	ln := &c.lines[b.line]
	if b.next >= len(ln.stops) || ln.stops[b.next].ri != v.ri || npos < ln.stops[b.next].pos {
		return false
	}
	st := ln.stops[b.next]
	b.delay = float64(t-b.dep) - st.sched
	b.next++
	b.bay = true
	li := ln.route[v.ri]
	b.at, _ = c.pointOn(li, st.pos)
	b.load = math.Min(1, math.Max(0, b.load+0.15*(c.profile(t)-0.4)+0.08*c.rng.NormFloat64()))
	v.speed = 0
	c.active--
	dwell := int64(10 + c.rng.IntN(20) + int(25*c.profile(t)))
	c.parked = append(c.parked, parked{vi: b.vi, link: li, pos: st.pos, until: t + dwell})
	return true
}

// emitTransit reports every bus every transitEveryS seconds (staggered by bus).
func (c *City) emitTransit(t int64) {
	for i := range c.buses {
		b := &c.buses[i]
		if b.done || (t+int64(i))%transitEveryS != 0 {
			continue
		}
		v := &c.veh[b.vi]
		ln := &c.lines[b.line]
		p, speed := b.at, 0.0
		if !b.bay {
			p, _ = c.pointOn(ln.route[v.ri], v.pos)
			speed = v.speed
		}
		delay := b.delay
		if b.next < len(ln.stops) {
			delay = math.Max(delay, float64(t-b.dep)-ln.stops[b.next].sched)
		}
		e := c.event(engine.KindTransit, t, b.id, p, "bus-company")
		e.Route, e.Mode = ln.name, "bus"
		e.SpeedKmh = math.Round(speed*36) / 10
		e.DelayS = math.Round(delay)
		e.Load = math.Round(b.load*100) / 100
	}
}
