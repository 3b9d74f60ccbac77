package demo

import (
	"fmt"
	"math"

	"citybrain/engine"
	"citybrain/geo"
)

// unit is an ambulance (waiting at its station when free) or a police car (patrolling when free). Both drive in
// the traffic: a unit on its way queues like everyone else.
type unit struct {
	id, typ, source string
	vi              int32
	station         int32 // node
	status          string
	inc             int32 // incident it is sent to or at, -1 none
	onRoad          bool
	at              geo.LatLng // position when off the road
}

// setupUnits places police cars (one per 30 nodes, 3 to 20) on patrol and ambulances (one per 50 nodes, 2 to
// 20) at stations.
func (c *City) setupUnits() {
	nPol := min(20, max(3, len(c.nodes)/30))
	nAmb := min(20, max(2, len(c.nodes)/50))
	for i := 0; i < nPol+nAmb; i++ {
		typ, id, src := "police", fmt.Sprintf("pol-%02d", i+1), "police-110"
		if i >= nPol {
			typ, id, src = "ambulance", fmt.Sprintf("amb-%02d", i-nPol+1), "emergency-120"
		}
		st := c.zones[c.rng.IntN(len(c.zones))]
		u := unit{id: id, typ: typ, source: src, station: st, status: "available", inc: -1, at: c.nodes[st].g.LatLng}
		u.vi = c.newVehicle(kindUnit, nil)
		v := &c.veh[u.vi]
		v.ref, v.id, v.vfac = int32(len(c.units)), id, 1.0
		c.units = append(c.units, u)
		if typ == "police" {
			tr := c.shortestFrom(st, -1)
			r := c.pathToNode(&tr, c.zones[c.rng.IntN(len(c.zones))])
			if len(r) == 0 {
				r = c.nodes[st].out[:1]
			}
			v.route = r
			c.parked = append(c.parked, parked{vi: u.vi, link: r[0], pos: 0, until: int64(c.rng.IntN(60))})
		}
	}
}

// unitPos returns where a unit is and how fast it goes (m/s).
func (c *City) unitPos(u *unit) (geo.LatLng, float64) {
	if !u.onRoad {
		return u.at, 0
	}
	v := &c.veh[u.vi]
	p, _ := c.pointOn(v.route[v.ri], v.pos)
	return p, v.speed
}

// dispatch sends the nearest available police car, and for some crashes the nearest available ambulance, to the
// incidents the control room learns about at t.
func (c *City) dispatch(t int64) {
	for ii := range c.incs {
		in := &c.incs[ii]
		if !in.active || in.knownAt != t {
			continue
		}
		c.send(int32(ii), "police", t)
		if in.ambulance {
			c.send(int32(ii), "ambulance", t)
		}
	}
}

// send routes the nearest available unit of type typ to incident ii.
func (c *City) send(ii int32, typ string, t int64) {
	in := &c.incs[ii]
	best, bd := -1, math.Inf(1)
	for ui := range c.units {
		u := &c.units[ui]
		if u.typ != typ || u.status != "available" {
			continue
		}
		p, _ := c.unitPos(u)
		if d := geo.DistanceM(p, in.at); d < bd {
			best, bd = ui, d
		}
	}
	if best < 0 {
		return
	}
	u := &c.units[best]
	v := &c.veh[u.vi]
	var r []int32
	var pk *parked
	for i := range c.parked {
		if c.parked[i].vi == u.vi {
			pk = &c.parked[i]
		}
	}
	switch {
	case u.onRoad || pk != nil:
		cur, pos := int32(-1), 0.0
		if u.onRoad {
			cur, pos = v.route[v.ri], v.pos
		} else {
			cur, pos = pk.link, pk.pos
		}
		if cur == in.link && pos < in.pos {
			r = []int32{cur}
		} else {
			tr := c.shortestFrom(-1, cur)
			if p := tr.pathTo(in.link); p != nil {
				r = append([]int32{cur}, p...)
			}
		}
		if r != nil && pk != nil {
			pk.until = t
		}
	default: // at the station
		tr := c.shortestFrom(u.station, -1)
		r = tr.pathTo(in.link)
		if r != nil {
			c.parked = append(c.parked, parked{vi: u.vi, link: r[0], pos: 0, until: t + 60}) // turnout
		}
	}
	if r == nil {
		return
	}
	v.route, v.ri = r, 0
	u.status, u.inc = "en_route", ii
}

// unitAtScene handles a unit reaching npos on its current link: on the incident's link near the blockage (or
// stuck in its queue) it stops at the scene and leaves the road. It reports whether it did.
func (c *City) unitAtScene(v *vehicle, lk *link, npos float64) bool {
	u := &c.units[v.ref]
	if u.status != "en_route" || u.inc < 0 || int(v.ri) != len(v.route)-1 {
		return false
	}
	in := &c.incs[u.inc]
	if &c.links[in.link] != lk || !(npos >= in.pos-30 || v.speed < 0.5 && in.pos-npos < 300) {
		return false
	}
	u.status, u.onRoad, u.at = "on_scene", false, in.at
	v.speed = 0
	v.pos = math.Min(npos, in.pos)
	c.active--
	return true
}

// unitRouteDone gives a unit at the end of its route (on link lk) its next route: police patrol on to a random
// zone after a stop; ambulances drive home and wait there.
func (c *City) unitRouteDone(ui int32, lk *link, t int64) {
	u := &c.units[ui]
	v := &c.veh[u.vi]
	li := v.route[v.ri]
	u.onRoad = false
	u.at, _ = c.pointOn(li, lk.lengthM)
	if u.status == "en_route" { // the incident cleared before the unit got there
		u.status, u.inc = "available", -1
	}
	tr := c.shortestFrom(-1, li)
	var dest int32
	wait := int64(0)
	if u.typ == "ambulance" {
		if lk.to == u.station {
			u.status = "available"
			return // home
		}
		dest = u.station
	} else {
		dest = c.zones[c.rng.IntN(len(c.zones))]
		wait = 60 + int64(c.rng.IntN(240))
	}
	r := append([]int32{li}, c.pathToNode(&tr, dest)...)
	if len(r) == 1 && u.typ == "ambulance" {
		u.status = "available"
		return
	}
	v.route, v.ri = r, 0
	c.parked = append(c.parked, parked{vi: u.vi, link: li, pos: lk.lengthM - 0.5, until: t + wait})
}

// special runs the bus-stop and incident-scene rules for buses and units; it reports whether the vehicle left
// the road.
func (c *City) special(vi int32, lk *link, npos float64, t int64) bool {
	v := &c.veh[vi]
	switch v.kind {
	case kindBus:
		return c.busAtStop(v, npos, t)
	case kindUnit:
		return c.unitAtScene(v, lk, npos)
	}
	return false
}

// entered records that a parked vehicle is back on the road.
func (c *City) entered(vi int32) {
	v := &c.veh[vi]
	switch v.kind {
	case kindBus:
		c.buses[v.ref].bay = false
	case kindUnit:
		c.units[v.ref].onRoad = true
	}
}

// emitUnits reports every unit's position and status every unitEveryS seconds.
func (c *City) emitUnits(t int64) {
	if t%unitEveryS != 0 {
		return
	}
	for i := range c.units {
		u := &c.units[i]
		p, speed := c.unitPos(u)
		e := c.event(engine.KindUnit, t, u.id, p, u.source)
		e.UnitType, e.Status = u.typ, u.status
		e.SpeedKmh = math.Round(speed*36) / 10
	}
}
