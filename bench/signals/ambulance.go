package signals

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"

	"citybrain/engine"
	"citybrain/engine/dispatch"
	"citybrain/geo"
	"citybrain/ingest/sumo/traci"
)

// ambulance is the emergency vehicle through CityBrain's own eyes (the closed loop with +preempt): a caller
// reports a medical emergency at the end of its route before it sets off; it reports its position as an AVL
// unit; once the engine knows it, a commander dispatches it (POST /api/v1/dispatch), it follows the route the
// dispatch gives, and every decision the gateways apply the dispatch's green wave (GET /api/v1/dispatches/
// {id}: each signal ahead green from its live ETA less the lead and the time to discharge the vehicles the
// estimator counts waiting on its lanes, held past the ETA).
type ambulance struct {
	l        *loopCtl
	unitID   string
	dest     geo.LatLng
	called   float64 // when the call was last posted (sim s), -1 never
	incident string
	dispatch string
	route    string // the dispatch route the vehicle was last given (its links joined)
	seen     bool   // the vehicle is in the simulation
	done     bool
	pos      *engine.Event
	held     map[string]bool
	since    map[string]float64 // when each held signal's hold began
	expired  map[string]bool    // signals whose hold ran past MaxHoldS: not held again for this dispatch
	count    int                // signals preempted
	mismatch int                // green-wave entries whose movement no program controls
	// Where the dispatch's route ends (the scene): its last link and the offset on it (route_end_m). The vehicle
	// stops there: SUMO would otherwise drive it on to the end of that link, which can lie far past the scene
	// (a route ending just past a junction).
	endLink  string
	endFrac  float64 // the route's end as a share of endLink's length (SUMO's lane lengths and the network's geometry differ slightly)
	toRemove bool    // reached the scene this step: the loop takes it out of the simulation
}

// CallLeadS: the emergency call comes this long before the ambulance sets off (the incident opens once the
// engine's watermark, 30 s behind, has passed the call).
const CallLeadS = 120.0

// MaxHoldS bounds how long the green wave holds one signal, as street controllers bound a preemption: an
// ambulance stuck upstream (its live ETA keeps moving) must not starve the cross streets until they block the
// junctions it needs. Past it the signal returns to the controller for the rest of the dispatch.
const MaxHoldS = 60.0

func newAmbulance(l *loopCtl, net *geo.Network) (*ambulance, error) {
	if len(l.sc.EV) == 0 {
		return nil, fmt.Errorf("cannot run the ambulance on %s: the demand has no routes", l.sc.Name)
	}
	last, ok := net.Link(l.sc.EV[len(l.sc.EV)-1])
	if !ok {
		return nil, fmt.Errorf("cannot run the ambulance: its last edge %s is not in the network", l.sc.EV[len(l.sc.EV)-1])
	}
	return &ambulance{l: l, unitID: "amb-ev", dest: last.Geometry[len(last.Geometry)-1], called: -1, held: map[string]bool{},
		since: map[string]float64{}, expired: map[string]bool{}}, nil
}

// evVars are the emergency vehicle's subscribed variables: what its AVL reports, and its lane and position on
// it (to stop it at the scene).
var evVars = []byte{traci.VarPosition, traci.VarSpeed, traci.VarAngle, traci.VarLaneID, traci.VarLanePos}

// observe takes the vehicle's subscribed variables (evVars).
func (a *ambulance) observe(now float64, s traci.Sub) {
	if len(s.Vals) != len(evVars) {
		return
	}
	if !a.toRemove && a.reached(s.Vals[3].String(), s.Vals[4].Float()) {
		a.toRemove = true
		fmt.Fprintf(a.l.digest, "scene %.0f;", now)
	}
	x, y, ok := s.Vals[0].Pos()
	if !ok || !validPos(x, y) {
		return
	}
	l := a.l
	x += l.rng.NormFloat64() * l.o.Feed.NoiseM
	y += l.rng.NormFloat64() * l.o.Feed.NoiseM
	ll := geo.UTMToLatLng(l.zone, x-l.sc.netOffset[0], y-l.sc.netOffset[1])
	ev := engine.NewEvent(engine.KindUnit)
	ev.TS, ev.ID, ev.Lat, ev.Lng, ev.Source = l.ts(now), a.unitID, ll.Lat, ll.Lng, "ambulance-avl"
	ev.UnitType, ev.Status = "ambulance", "available"
	if a.dispatch != "" {
		ev.Status = "en_route"
	}
	ev.SpeedKmh = math.Max(0, s.Vals[1].Float()*3.6)
	a.pos, a.seen = &ev, true
}

// beforePost adds the call (and repeats it every 3 minutes, as callers do, so the incident stays open) and
// the unit's latest position to the events about to be posted.
func (a *ambulance) beforePost(now float64) {
	l := a.l
	dep := float64(l.sc.BeginS + l.sc.EVDepS)
	if !a.done && now >= dep-CallLeadS && (a.called < 0 || now-a.called >= 180) {
		// Two callers on two lines (one line alone is a candidate until corroborated, engine/incident).
		for _, src := range []string{"hotline-120", "hotline-110"} {
			ev := engine.NewEvent(engine.KindReport)
			ev.TS, ev.ID, ev.Lat, ev.Lng, ev.Source = l.ts(now), fmt.Sprintf("call-%s-%d", src, int(now)), a.dest.Lat, a.dest.Lng, src
			ev.Type, ev.Severity, ev.Text = "medical", 5, "patient collapsed on the street"
			l.append(&ev)
		}
		a.called = now
	}
	if a.pos != nil {
		l.append(a.pos)
		a.pos = nil
	}
}

// step runs after the loop's decisions: open the dispatch when the incident and the unit are known, follow
// its route, and apply its green wave to the gateways.
func (a *ambulance) step(now float64) error {
	if a.done || !a.seen {
		return nil
	}
	l := a.l
	if a.incident == "" {
		var incs []struct {
			ID   string  `json:"id"`
			Lat  float64 `json:"lat"`
			Lng  float64 `json:"lng"`
			Type string  `json:"type"`
		}
		if err := l.call("GET", "/api/v1/incidents?status=active", nil, &incs); err != nil {
			return err
		}
		for _, in := range incs {
			dist := geo.DistanceM(geo.LatLng{Lat: in.Lat, Lng: in.Lng}, a.dest)
			if os.Getenv("CITYBRAIN_EV_TRACE") != "" {
				fmt.Fprintf(os.Stderr, "EVTRACE incident %s at %.6f,%.6f, %.0f m from the callers\n", in.ID, in.Lat, in.Lng, dist)
			}
			if dist < 300 {
				a.incident = in.ID
			}
		}
		if a.incident == "" {
			return nil
		}
	}
	if a.dispatch == "" {
		var d dispatch.Dispatch
		err := l.call("POST", "/api/v1/dispatch", map[string]string{"incident_id": a.incident, "unit_id": a.unitID}, &d)
		if err != nil {

			return nil // the engine does not know the unit yet: next decision
		}
		a.dispatch = d.ID
	}
	var d dispatch.Dispatch
	if err := l.call("GET", "/api/v1/dispatches/"+url.PathEscape(a.dispatch), nil, &d); err != nil {
		return err
	}
	if key := strings.Join(d.RouteLinks, ","); key != a.route {
		a.route = key // the first route, and every re-route the dispatch makes
		a.routeEnds(d.RouteLinks, d.RouteEndM)
		fmt.Fprintf(l.digest, "route %.0f %s;", now, key)
		if err := a.follow(d.RouteLinks); err != nil {
			return err
		}
	}
	// CITYBRAIN_EV_TRACE=1: every decision, the dispatch's progress and green wave on stderr (docs/signals.md).
	if os.Getenv("CITYBRAIN_EV_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "EVTRACE t=%.0f st=%s eta=%.0f prog=%.0f/%.0f upd=%s reroutes=%d route=%d links, ends %.0f m into %s (own route's last edge %s)\n", now, d.Status, d.ETAS, d.ProgressM, d.LengthM, d.UpdatedAt.Format("15:04:05"), d.Reroutes, len(d.RouteLinks), d.RouteEndM, d.RouteLinks[len(d.RouteLinks)-1], l.sc.EV[len(l.sc.EV)-1])
		for _, p := range d.GreenWave {
			fmt.Fprintf(os.Stderr, "   %s %s->%s passed=%t green_in=%.0f hold_in=%.0f q=%.1f\n", p.NodeID, p.Approach, p.Exit, p.Passed, p.GreenAt.Sub(d.UpdatedAt).Seconds(), p.HoldUntil.Sub(d.UpdatedAt).Seconds(), p.QueueVeh)
		}
	}
	// The green wave's entries are timed on the manager's clock; their offsets from its last update are
	// what counts.
	active := map[string][]int{}
	for _, p := range d.GreenWave {
		if p.Passed {
			continue
		}
		startIn := p.GreenAt.Sub(d.UpdatedAt).Seconds()
		holdIn := p.HoldUntil.Sub(d.UpdatedAt).Seconds()
		if startIn > l.o.DecideS || holdIn < 0 {
			continue
		}
		sig, ok := l.net.Signal(p.NodeID)
		if !ok {
			continue
		}
		if a.expired[sig.ID] {
			continue
		}
		// Every link of the movement (approach → exit, any lane): the main green serving most of them.
		tl := l.sc.TLs[sig.ID]
		var lis []int
		if tl != nil {
			for k, in := range tl.In {
				if l.sc.Lanes[in].Edge == p.Approach && l.sc.Lanes[tl.Out[k]].Edge == p.Exit {
					lis = append(lis, k)
				}
			}
		}
		if len(lis) == 0 {
			a.mismatch++
			continue
		}
		if _, ok := active[sig.ID]; !ok {
			// A joined junction's signal can lie under several intersections of the route: the nearest
			// one's movement first (the list runs in route order); the next takes over once it is passed.
			active[sig.ID] = lis
		}
	}
	for _, id := range sortedIDs(active) {
		lis := active[id]
		g := l.gws[id]
		if g == nil {
			continue
		}
		target := servingMovement(g, lis)
		if target < 0 {
			continue
		}
		if !a.held[id] {
			a.held[id] = true
			a.since[id] = now
			a.count++
		} else if now-a.since[id] > MaxHoldS {
			a.expired[id] = true
			delete(active, id)
			continue
		}
		g.held = true
		if os.Getenv("CITYBRAIN_EV_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "  HOLD %s lis=%v target=%d cur=%d trans=%t shown=%s since=%.0f\n", id, lis, target, g.cur, g.inTransition(), g.shown, a.since[id])
		}
		fmt.Fprintf(l.digest, "hold %.0f %s %d;", now, id, target)
		if g.cur != target && !g.inTransition() {
			g.request(target, now)
		}
	}
	for id := range a.held {
		if _, ok := active[id]; !ok {
			delete(a.held, id)
			if g := l.gws[id]; g != nil {
				g.held = false
			}
		}
	}
	if d.Status != dispatch.StatusEnRoute {
		a.release()
	}
	return nil
}

// routeEnds notes where a route of links ends: endM metres of its last link's geometry (route_end_m).
func (a *ambulance) routeEnds(links []string, endM float64) {
	a.endLink, a.endFrac = "", 0
	if len(links) == 0 {
		return
	}
	if link, ok := a.l.net.Link(links[len(links)-1]); ok && link.GeomLengthM() > 0 {
		a.endLink, a.endFrac = link.ID, math.Min(1, endM/link.GeomLengthM())
	}
}

// reached reports whether a vehicle on lane at pos (metres from the lane's start) has reached the end of the
// dispatch's route: on its last link, at least as far along as the route's end (endFrac).
func (a *ambulance) reached(lane string, pos float64) bool {
	if a.endLink == "" {
		return false
	}
	li, ok := a.l.sc.Lanes[lane]
	return ok && li.Edge == a.endLink && li.LengthM > 0 && pos/li.LengthM >= a.endFrac
}

// follow makes the vehicle drive the dispatch's route from the edge it is on (kept when that edge is not on
// the route).
func (a *ambulance) follow(links []string) error {
	b := a.l.c.NewBatch()
	b.Get(traci.CmdGetVeh, traci.VarRoadID, "ev")
	res, err := b.Do()
	if err != nil || len(res) == 0 || res[0].Err != nil {
		return err
	}
	cur := res[0].String()
	for i, id := range links {
		if id == cur {
			s := a.l.c.NewBatch()
			s.SetStrings(traci.CmdSetVeh, traci.VarRoute, "ev", links[i:])
			r, err := s.Do()
			if err != nil {
				return err
			}
			if r[0].Err != nil {
				a.mismatch++
			}
			return nil
		}
	}
	a.mismatch++
	return nil
}

// gone is called when the vehicle left the simulation.
func (a *ambulance) gone() {
	if a.seen {
		a.release()
	}
}

func (a *ambulance) release() {
	for id := range a.held {
		if g := a.l.gws[id]; g != nil {
			g.held = false
		}
	}
	clear(a.held)
	a.done = true
}

// servingMovement is the main green of a gateway serving most of the link indices lis (links with priority
// counting double), -1 when none does. The main green shown (or being moved to) wins a tie: a signal already
// green for the unit stays so (Bologna's 219 serves the unit's lanes in two of its stages; choosing the first
// sent a cyclic program round its whole cycle, red for the unit, while it was already green).
func servingMovement(g *gateway, lis []int) int {
	score := func(i int) int {
		st, n := g.tl.Phases[g.mains[i]].State, 0
		for _, li := range lis {
			if li < len(st) {
				switch st[li] {
				case 'G':
					n += 2
				case 'g':
					n++
				}
			}
		}
		return n
	}
	best, bs := -1, 0
	for i := range g.mains {
		if n := score(i); n > bs {
			best, bs = i, n
		}
	}
	if g.cur >= 0 && g.cur < len(g.mains) && bs > 0 && score(g.cur) == bs {
		return g.cur
	}
	return best
}

// servingMain is the main green of a gateway that serves link index li (green with priority first).
func servingMain(g *gateway, li int) int {
	for _, want := range []byte{'G', 'g'} {
		for i, m := range g.mains {
			if s := g.tl.Phases[m].State; li < len(s) && s[li] == want {
				return i
			}
		}
	}
	return -1
}
