package dispatch

import (
	"fmt"
	"math"
	"time"

	"citybrain/engine"
	"citybrain/engine/signals"
	"citybrain/geo"
)

// greenWaveLocked plans signal priority for the signalised intersections still ahead of a dispatched unit:
// each turns green for the unit's approach at its live ETA less the lead and the time to discharge the queue
// in front of it (the signal estimator's waiting vehicles on the lanes of the unit's movement where the
// network carries signal programs, else the link's loop occupancy or probe speed), and holds until HoldS
// after the ETA. Passed intersections stay in the list, marked passed.
func (m *Manager) greenWaveLocked(d *Dispatch, now time.Time, speed geo.SpeedFunc) []Preempt {
	if d.Route == nil {
		return nil
	}
	nodes := d.Route.Nodes(m.cfg.Network)
	var stats map[string]*engine.LinkStats
	var out []Preempt
	for _, rn := range nodes {
		if !rn.Node.Signalised {
			continue
		}
		p := Preempt{Order: len(out) + 1, NodeID: rn.Node.ID, Lat: rn.Node.Lat, Lng: rn.Node.Lng,
			Approach: rn.InLink.ID, Exit: rn.OutLink.ID, DistM: rn.DistM - d.ProgressM}
		if rn.Approach >= 0 {
			p.Side = rn.Node.Approaches[rn.Approach].Side.String()
		}
		if passedSignal(rn.DistM, d.ProgressM, d.LengthM) || d.Status != StatusEnRoute {
			p.Passed, p.DistM = true, 0
			out = append(out, p)
			continue
		}
		if stats == nil {
			stats = m.linkStatsLocked(d.Route)
		}
		p.QueueVeh = queueAt(stats[rn.InLink.ID], m.cfg.Window)
		if q, ok := m.sig.approachQueue(rn.Node.ID, rn.InLink.ID, rn.OutLink.ID); ok {
			p.QueueVeh = q // the signal estimator's count of the vehicles waiting on the unit's lanes
		}
		p.ArriveS = aheadS(d.Route, d.ProgressM, rn.DistM, speed, m.router)
		pr := signals.PreemptAt(p.ArriveS, p.QueueVeh, m.cfg.LeadS, m.cfg.HoldS)
		p.ArriveAt = now.Add(secs(pr.ArriveS))
		p.GreenAt = now.Add(secs(pr.GreenAtS))
		p.HoldUntil = now.Add(secs(pr.HoldUntilS))
		p.Controller = fmt.Sprintf("PREEMPT node=%s approach=%s exit=%s green_at=%s hold_until=%s", p.NodeID, p.Approach,
			p.Exit, p.GreenAt.UTC().Format(time.RFC3339), p.HoldUntil.UTC().Format(time.RFC3339))
		out = append(out, p)
	}
	return out
}

// PassedM: a signal counts as passed once the unit is this far beyond its stop line along the route. A
// unit waiting at the line reports positions a few metres either side of it (GPS noise; progress keeps the
// farthest), and one of them past the line released its hold while it still waited there (Bologna's 219:
// 30 s at a red the wave had asked to be green).
const PassedM = 15.0

// passedSignal reports whether a unit progressM along a route of lengthM has passed a signal at distM: PassedM
// beyond it, or at the route's end when that comes sooner (the incident just past the signal).
func passedSignal(distM, progressM, lengthM float64) bool {
	return progressM >= math.Min(distM+PassedM, lengthM)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// aheadS is the live travel time along a route from fromM to toM.
func aheadS(rt *geo.Route, fromM, toM float64, speed geo.SpeedFunc, r *geo.Router) float64 {
	t, done := 0.0, 0.0
	for _, s := range rt.Steps {
		a, b := max(done, fromM), min(done+s.LengthM, toM)
		if b > a {
			t += (b - a) / (r.SpeedKmh(s.Link, speed) / 3.6)
		}
		done += s.LengthM
	}
	return t
}

// linkStatsLocked returns the live state of the links of a route, by id.
func (m *Manager) linkStatsLocked(rt *geo.Route) map[string]*engine.LinkStats {
	g := rt.Geometry()
	b := geo.BBox{MinLat: 90, MinLng: 180, MaxLat: -90, MaxLng: -180}
	for _, p := range g {
		b.MinLat, b.MaxLat = min(b.MinLat, p.Lat), max(b.MaxLat, p.Lat)
		b.MinLng, b.MaxLng = min(b.MinLng, p.Lng), max(b.MaxLng, p.Lng)
	}
	const pad = 0.003
	b.MinLat, b.MinLng, b.MaxLat, b.MaxLng = b.MinLat-pad, b.MinLng-pad, b.MaxLat+pad, b.MaxLng+pad
	out := map[string]*engine.LinkStats{}
	list := m.src.Links(b)
	for i := range list {
		out[list[i].Link.ID] = &list[i]
	}
	return out
}
