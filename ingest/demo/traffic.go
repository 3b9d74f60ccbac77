package demo

import (
	"math"
	"sort"
	"strconv"
)

// Vehicle kinds.
const (
	kindCar uint8 = iota
	kindBus
	kindUnit
)

// vehicle is one vehicle of the pool. A vehicle on the road is in the queue of link route[ri]; an off-road one
// (a bus in a bay, a unit on scene or at its station) is in no queue.
type vehicle struct {
	route  []int32 // links of the trip; shared with the route cache, never modified
	ri     int32
	pos    float64 // metres from the start of the link
	speed  float64 // m/s
	vfac   float64 // the driver's desired speed relative to the free speed
	id     string  // wire id, set for probe cars, buses and units
	kind   uint8
	probe  bool
	period int8 // probe interval, seconds
	phase  int8
	ref    int32 // bus or unit index
	moved  int64 // last step the vehicle moved in
	born   int64 // step the trip started
	stuck  int16 // seconds the vehicle has waited at the front for room downstream
	alive  bool
}

// parked is an off-road vehicle waiting to enter link at pos (from step until on).
type parked struct {
	vi    int32
	link  int32
	pos   float64
	until int64
}

// newVehicle takes a vehicle from the pool.
func (c *City) newVehicle(kind uint8, route []int32) int32 {
	var vi int32
	if n := len(c.free); n > 0 {
		vi = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		c.veh = append(c.veh, vehicle{})
		vi = int32(len(c.veh) - 1)
	}
	c.serial++
	v := &c.veh[vi]
	*v = vehicle{route: route, kind: kind, vfac: 0.85 + 0.25*c.rng.Float64(), alive: true, moved: -1, ref: -1, born: c.t}
	if kind == kindCar && c.rng.Float64() < probeShare {
		v.probe = true
		v.period = int8(3 + c.rng.IntN(3))
		v.phase = int8(c.rng.IntN(int(v.period)))
		v.id = "veh-" + strconv.FormatInt(c.serial, 10)
	}
	return vi
}

// release returns a vehicle to the pool.
func (c *City) release(vi int32) {
	c.veh[vi] = vehicle{}
	c.free = append(c.free, vi)
}

// randomRoute returns the route of a new trip: a weighted route of the flow file, or a shortest path between two
// random zones. It returns nil when the draw found no route.
func (c *City) randomRoute() []int32 {
	if c.flows != nil {
		x := c.rng.Float64() * c.flowCum[len(c.flowCum)-1]
		return c.flows[sort.SearchFloat64s(c.flowCum, x)].links
	}
	for try := 0; try < 4; try++ {
		zo, zd := c.rng.IntN(len(c.zones)), c.rng.IntN(len(c.zones))
		if zo == zd {
			continue
		}
		if r := c.odRoute(zo, zd); len(r) >= 2 {
			return r
		}
	}
	return nil
}

// insertAt puts vehicle vi into link li at pos, keeping the queue in order, if there is room: the link is not full
// and the vehicles before and behind are at least the jam spacing away. It reports whether it did.
func (c *City) insertAt(li int32, vi int32, pos float64) bool {
	lk := &c.links[li]
	if len(lk.q) >= lk.storage {
		return false
	}
	sp := jamSpacingM / lk.lanes
	k := len(lk.q)
	for i, o := range lk.q {
		if c.veh[o].pos < pos {
			k = i
			break
		}
	}
	if k > 0 && c.veh[lk.q[k-1]].pos-pos < sp || k < len(lk.q) && pos-c.veh[lk.q[k]].pos < sp {
		return false
	}
	lk.q = append(lk.q, 0)
	copy(lk.q[k+1:], lk.q[k:])
	lk.q[k] = vi
	v := &c.veh[vi]
	v.pos = pos
	c.active++
	return true
}

// poisson draws a Poisson count with mean m (Knuth; m is small here).
func (c *City) poisson(m float64) int {
	if m <= 0 {
		return 0
	}
	if m > 30 {
		return max(0, int(math.Round(m+math.Sqrt(m)*c.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= c.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// demand starts this second's trips (Little's law: peak rate = target population / mean trip time, shaped by the
// day profile). A trip whose first link has no room is dropped (counted in the city's statistics).
//
// Demand is elastic: above 1.2 times the target population for the hour, trips are increasingly postponed
// (none start at 1.6 times), so a gridlock does not feed itself.
func (c *City) demand(t int64) {
	p := c.profile(t)
	over := float64(c.active) / math.Max(1, float64(c.cfg.Vehicles)*p)
	n := c.poisson(c.peakRate * p * math.Min(1, math.Max(0, (1.6-over)/0.4)))
	for i := 0; i < n; i++ {
		r := c.randomRoute()
		if r == nil {
			continue
		}
		vi := c.newVehicle(kindCar, r)
		v := &c.veh[vi]
		v.speed = c.links[r[0]].vfree * 0.5
		if !c.insertAt(r[0], vi, c.rng.Float64()*0.7*c.links[r[0]].lengthM) {
			c.release(vi)
		}
	}
}

// populate fills the network with the start time's population, spread along their routes, so the first steps
// already show a living city.
func (c *City) populate() {
	n := int(float64(c.cfg.Vehicles) * c.profile(0))
	for i := 0; i < n; i++ {
		r := c.randomRoute()
		if r == nil {
			continue
		}
		vi := c.newVehicle(kindCar, r)
		v := &c.veh[vi]
		v.ri = int32(c.rng.IntN(len(r)))
		lk := &c.links[r[v.ri]]
		v.speed = lk.vfree * 0.6
		if !c.insertAt(r[v.ri], vi, c.rng.Float64()*0.95*lk.lengthM) {
			c.release(vi)
		}
	}
}

// room reports whether link li can take one more vehicle at its start.
func (c *City) room(li int32) bool {
	lk := &c.links[li]
	n := len(lk.q)
	return n < lk.storage && (n == 0 || c.veh[lk.q[n-1]].pos >= jamSpacingM/lk.lanes)
}

// stopLimit is the highest speed this step that still stops within dist metres.
func stopLimit(dist float64) float64 {
	if dist <= 0 {
		return 0
	}
	return math.Min(dist, math.Sqrt(2*brakeMS2*dist))
}

// Rerouting of vehicles stuck behind a full link.
const (
	rerouteAfterS = 45 // seconds stuck at a green stop line before a driver looks for another way
	maxReroutes   = 20 // reroutes per step, to bound the cost in a gridlock
)

// reroute sends a car stuck at the front of link li through another successor with room, then the shortest path
// to its destination. It reports whether it found one.
func (c *City) reroute(v *vehicle, li int32) bool {
	dest := c.links[v.route[len(v.route)-1]].to
	planned := v.route[v.ri+1]
	for _, alt := range c.links[li].succ {
		if alt == planned || !c.room(alt) {
			continue
		}
		r := []int32{li, alt}
		if c.links[alt].to != dest {
			tr := c.shortestFrom(-1, alt)
			p := c.pathToNode(&tr, dest)
			if p == nil {
				continue
			}
			r = append(r, p...)
		}
		v.route, v.ri = r, 0
		return true
	}
	return false
}

// move advances every vehicle on the road by one second, link by link, front to back.
func (c *City) move(t int64) {
	c.reroutes = 0
	if t%300 == 0 {
		for i := range c.links {
			c.links[i].flow /= 2
		}
	}
	for li := range c.links {
		lk := &c.links[li]
		if len(lk.q) == 0 {
			lk.credit = math.Min(lk.credit+lk.lanes*satFlowLane, math.Max(1, lk.lanes*satFlowLane))
			continue
		}
		lk.credit = math.Min(lk.credit+lk.lanes*satFlowLane, math.Max(1, lk.lanes*satFlowLane))
		c.moveLink(int32(li), lk, t)
	}
}

// moveLink advances the vehicles of one link.
func (c *City) moveLink(li int32, lk *link, t int64) {
	sp := jamSpacingM / lk.lanes
	frac := float64(len(lk.q)) * jamSpacingM / (lk.lengthM * lk.lanes)
	densF := math.Max(0.3, 1-0.6*frac)
	var inc *incState
	if lk.inc >= 0 {
		inc = &c.incs[lk.inc]
	}
	green := c.nodes[lk.to].green(lk.group, t)
	w := 0
	for r := 0; r < len(lk.q); r++ {
		vi := lk.q[r]
		v := &c.veh[vi]
		if v.moved == t { // arrived from upstream this step
			lk.q[w] = vi
			w++
			continue
		}
		v.moved = t
		pos := v.pos
		vn := math.Min(lk.vfree*v.vfac*densF, v.speed+accelMS2)
		if inc != nil && pos < inc.pos && inc.pos-pos < 80 {
			vn = math.Min(vn, 5) // squeezing past the blockage
		}
		last := int(v.ri) == len(v.route)-1
		mayLeave := false
		if w > 0 {
			lp := c.veh[lk.q[w-1]].pos
			vn = math.Min(vn, (lp-sp-pos)/(1+reactionS/lk.lanes))
		} else if last {
			mayLeave = true
		} else if green && lk.credit >= 1 && c.room(v.route[v.ri+1]) {
			mayLeave = true
			v.stuck = 0
		} else {
			if green && v.kind == kindCar && v.speed < 0.5 {
				if v.stuck++; v.stuck >= rerouteAfterS && c.reroutes < maxReroutes && c.reroute(v, li) {
					c.reroutes++
					v.stuck = 0
				}
			}
			vn = math.Min(vn, stopLimit(lk.lengthM-0.1-pos))
		}
		if inc != nil && pos <= inc.pos && pos+vn > inc.pos {
			if inc.credit >= 1 {
				inc.credit--
			} else {
				vn = math.Min(vn, stopLimit(inc.pos-pos))
			}
		}
		vn = math.Max(vn, 0)
		npos := pos + vn
		v.speed = vn
		if lk.det >= 0 {
			c.dets[lk.det].observe(pos, npos, vn)
		}
		if v.kind != kindCar && c.special(vi, lk, npos, t) {
			continue // left the road (bus bay, on scene)
		}
		if npos < lk.lengthM || !mayLeave {
			v.pos = math.Min(npos, lk.lengthM)
			lk.q[w] = vi
			w++
			continue
		}
		// Crossing the stop line.
		lk.flow++
		if lk.cam >= 0 {
			c.cams[lk.cam].count++
		}
		if last {
			c.finish(vi, lk, t)
			continue
		}
		lk.credit--
		v.ri++
		nli := v.route[v.ri]
		nl := &c.links[nli]
		np := npos - lk.lengthM
		if n := len(nl.q); n > 0 {
			np = math.Min(np, c.veh[nl.q[n-1]].pos-jamSpacingM/nl.lanes)
		}
		v.pos = math.Max(0, math.Min(np, nl.lengthM*0.9))
		nl.q = append(nl.q, vi)
	}
	clear(lk.q[w:])
	lk.q = lk.q[:w]
}

// finish ends the trip of a vehicle at the end of its route.
func (c *City) finish(vi int32, lk *link, t int64) {
	v := &c.veh[vi]
	c.active--
	switch v.kind {
	case kindBus:
		c.buses[v.ref].done = true
		c.release(vi)
	case kindUnit:
		c.unitRouteDone(v.ref, lk, t)
	default:
		c.trips++
		c.tripS += float64(t - v.born)
		c.release(vi)
	}
}

// reinsert puts parked vehicles whose wait is over back on the road when there is room.
func (c *City) reinsert(t int64) {
	w := 0
	for _, p := range c.parked {
		if p.until <= t && c.insertAt(p.link, p.vi, p.pos) {
			c.veh[p.vi].moved = t
			c.entered(p.vi)
			continue
		}
		c.parked[w] = p
		w++
	}
	c.parked = c.parked[:w]
}

// linkSpeeds returns the mean speed (m/s) of the vehicles on link li and how many there are.
func (c *City) linkSpeeds(li int32) (mean float64, n int) {
	for _, vi := range c.links[li].q {
		mean += c.veh[vi].speed
	}
	if n = len(c.links[li].q); n > 0 {
		mean /= float64(n)
	}
	return mean, n
}
