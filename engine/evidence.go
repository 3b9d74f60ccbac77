package engine

import (
	"fmt"
	"math"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/uber/h3-go/v4"
)

// Evidence is one observation that something is wrong at a place: an incident-type video detection, a
// report, a sensor over its threshold, a sudden transit delay, or a traffic anomaly the engine found in a
// cell. Shards produce it; the incident tracker fuses it.
type Evidence struct {
	Kind   Kind   // the kind of the event behind it; traffic anomalies use KindProbe or KindDetector
	Source string // who saw it: camera, call, sensor, bus route, or the cell for traffic
	Type   string // crash, stalled_vehicle, speed_collapse, water_pressure, ...
	TS     int64
	Lat    float64
	Lng    float64
	Cell   uint64
	Weight float64 // 0..1: how strongly this observation alone says "incident here"
	Sev    int8    // severity hint 1..5 (reports; 0 unknown)
}

// incidentVideo are the video types that are incident evidence, with the incident type they suggest.
var incidentVideo = map[string]string{
	"crash": "crash", "stalled_vehicle": "stalled_vehicle", "debris": "debris", "wrong_way": "wrong_way",
	"pedestrian": "pedestrian", "fire_smoke": "fire",
}

// pointEvidence turns row r of rec into evidence when it is an incident signal.
func pointEvidence(rec arrow.Record, r int, cell uint64, lat, lng float64, k Kind, ts int64) (Evidence, bool) {
	typ := rec.Column(ColType).(*array.String)
	ev := Evidence{Kind: k, TS: ts, Lat: lat, Lng: lng, Cell: cell}
	id := rec.Column(ColID).(*array.String)
	switch k {
	case KindVideo:
		if typ.IsNull(r) {
			return ev, false
		}
		t, ok := incidentVideo[typ.Value(r)]
		if !ok {
			return ev, false
		}
		conf := rec.Column(ColConfidence).(*array.Float32)
		if conf.IsNull(r) {
			return ev, false
		}
		ev.Type, ev.Weight, ev.Source = t, float64(conf.Value(r)), cloneStr(id.Value(r))
	case KindReport:
		sev := rec.Column(ColSeverity).(*array.Int8)
		s := int8(3)
		if sev.IsValid(r) {
			s = sev.Value(r)
		}
		ev.Type, ev.Sev, ev.Source = cloneStr(typ.Value(r)), s, cloneStr(id.Value(r))
		ev.Weight = 0.45 + 0.08*float64(s) // severity 3: 0.69; 5: 0.85
	case KindSensor:
		val := rec.Column(ColValue).(*array.Float64)
		thr := rec.Column(ColThreshold).(*array.Float64)
		if thr.IsNull(r) || val.IsNull(r) || !(val.Value(r) > thr.Value(r)) {
			return ev, false
		}
		ev.Source, ev.Type = cloneStr(id.Value(r)), cloneStr(typ.Value(r))
		over := (val.Value(r) - thr.Value(r)) / math.Max(math.Abs(thr.Value(r)), 1e-9)
		ev.Weight = math.Min(0.9, 0.6+over)
	default:
		return ev, false
	}
	return ev, true
}

// sensorIncidentType maps a sensor type to the incident type it suggests.
func sensorIncidentType(t string) string {
	switch {
	case containsAny(t, "water", "flood", "rain", "pipe"):
		return "flood"
	case containsAny(t, "gas", "smoke", "fire", "temperature"):
		return "hazard"
	default:
		return "hazard"
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

// Traffic anomaly rule (a comparative, persistence-checked rule in the family of the California and
// McMaster loop-detector algorithms, applied to fused probe, detector and transit speeds per cell):
//
//  1. collapse: the cell's 1-minute speed is below collapseRatio × its reference, where the reference is the
//     cell's own speed 5–10 minutes earlier (so a slow build-up such as rush hour does not count), and below
//     collapseFF × its free-flow speed;
//  2. discontinuity: where neighbouring cells have data, at least one of them moves at least
//     neighbourRatio × faster (the head of a queue ends at the blockage; rush hour slows a whole area);
//     without neighbour data the drop must be deeper (lonelyRatio);
//  3. persistence: conditions 1–2 hold at persistBuckets consecutive bucket ends (a red light's queue
//     clears within a cycle and breaks the run).
//
// On a road network (judgeLinks) the unit is a road link, its neighbours are the links leaving its end (a
// downstream link that went quiet counts as flowing), and the collapse must be a standstill
// (trafficSample.standstill) held for standstillBuckets bucket ends.
//
// A detector's occupancy above occupancyHigh and at least twice its earlier level counts as a collapse too.
const (
	collapseRatio  = 0.55
	collapseFF     = 0.5
	neighbourRatio = 1.6
	lonelyRatio    = 0.35
	persistBuckets = 9
	occupancyHigh  = 0.35
	minAnomalyN    = 2  // speed samples in the last minute
	quietEarlyN    = 15 // speed samples 5–10 minutes earlier for a downstream link's silence to count

	// On a road network a link's collapse must be a standstill (see trafficSample.standstill) held for
	// standstillBuckets bucket ends, with its queue's head short of the junction (judgeLinks).
	standstillKmh     = 5
	standstillOcc     = 0.5
	standstillFlowVph = 200
	standstillBuckets = 6
	// A standing queue whose head is within max(stopLineM, stopLineShare × length) of the end of its link
	// is a queue at the junction.
	stopLineM          = 25
	stopLineShare      = 0.1
	standstillWindowMs = 30_000 // the standstill is measured over the last 30 s
	standstillN        = 4      // speed samples in it: one vehicle waiting is not a standstill
)

// trafficSample is what the traffic rule needs of one cell at one bucket end: measured by the cell's shard
// once the watermark has passed the bucket end (so every on-time event is in it), judged by the tick
// goroutine, which sees the neighbours' samples of the same bucket end. Deterministic for a given log.
type trafficSample struct {
	cell     uint64
	link     int32 // index of the road link measured, or -1 for a cell
	t        int64 // bucket end, ms
	now1     WindowStats
	now30    WindowStats // the last 30 s
	early    WindowStats
	ff       float64
	lat, lng float64
	// stopHead: the most downstream position (fraction of the link) of a probe standing in the last
	// minute, -1: none (links only).
	stopHead float64
}

// measure returns the sample of cell cs at bucket end t.
func (s *shard) measure(cell uint64, cs *cellState, t int64) trafficSample {
	ts := trafficSample{cell: cell, link: -1, t: t, ff: s.freeFlow(cell, cs), lat: cs.lat, lng: cs.lng}
	s.windows(cs.aggs, t, &ts)
	return ts
}

// measureLink returns the sample of road link li at bucket end t, placed where a queue behind a blockage
// would have its head (70% along the link).
func (s *shard) measureLink(li int32, ls *linkState, t int64) trafficSample {
	p := &s.e.linkPoints[li]
	ts := trafficSample{cell: p.cell, link: li, t: t, ff: p.ff, lat: p.lat, lng: p.lng}
	s.windows(ls.aggs, t, &ts)
	return ts
}

// windows sums the last minute before t (and its last 30 s) and the minutes 5 to 10 before it, and finds the
// head of the last minute's standing queue.
func (s *shard) windows(aggs []agg, t int64, ts *trafficSample) {
	head := float32(0)
	for j := range aggs {
		a := &aggs[j]
		end := a.start + s.e.bucketMs
		switch {
		case end <= t && end > t-60_000:
			ts.now1.add(&a.WindowStats)
			if end > t-standstillWindowMs {
				ts.now30.add(&a.WindowStats)
			}
			head = max(head, a.stopHead)
		case end <= t-5*60_000 && end > t-10*60_000:
			ts.early.add(&a.WindowStats)
		}
	}
	ts.stopHead = float64(head) - 1
}

// linkPoint is where a link's anomalies are reported, and its free-flow speed.
type linkPoint struct {
	lat, lng float64
	cell     uint64
	ff       float64
	lengthM  float64
}

// judgeLinks is the traffic rule on a road network: a link collapses while at least one of the links
// leaving its end, with data, still flows (the classic upstream/downstream comparison of loop-detector
// algorithms; downstream of a blockage traffic is free, in ordinary congestion or spillback it is not). down
// lists the downstream links of each link. Without data downstream there is nothing to tell a blockage from
// congestion: no evidence.
func judgeLinks(samples []trafficSample, runs map[uint64]int, down [][]int32, points []linkPoint) []Evidence {
	return judge(samples, runs, trafficUnit{
		key: func(x *trafficSample) uint64 { return linkRunKey | uint64(uint32(x.link)) },
		neighbours: func(x *trafficSample, visit func(key uint64)) {
			for _, d := range down[x.link] {
				visit(linkRunKey | uint64(uint32(d)))
			}
		},
		quietDownstream: true,
		// A link at the edge of the network (nothing downstream to compare with) is judged on its own
		// history, with the deeper drop cells need without neighbours.
		lonely: func(x *trafficSample) float64 {
			if len(down[x.link]) == 0 {
				return lonelyRatio
			}
			return 0
		},
		standstill: true,
		// A standing queue whose head reaches the end of its link is indistinguishable from a queue at the
		// junction (a red light, a give-way line, spillback from the next link): its standstill is no
		// evidence. Behind a blockage the queue's head is the blockage, short of the junction. (Tried on
		// signalised junctions only: Bologna's give-way approaches then kept 1–2 false alarms per hour.)
		atStopLine: func(x *trafficSample) bool {
			p := &points[x.link]
			if len(down[x.link]) == 0 || x.stopHead < 0 || p.lengthM <= 0 {
				return false
			}
			return (1-x.stopHead)*p.lengthM < max(stopLineM, stopLineShare*p.lengthM)
		},
		persist: standstillBuckets,
		source:  func(x *trafficSample) string { return fmt.Sprintf("link:%d", x.link) },
	})
}

// standstill reports whether the traffic measured in sample x has stopped, not merely slowed: probes
// average under standstillKmh over the last 30 s (standstillWindowMs), or, without probe speeds, loops read
// high occupancy at a low flow over the last minute. Behind a blocked road vehicles stand; in congestion
// they move.
func (x *trafficSample) standstill() bool {
	w := &x.now30
	if sp, ok := w.Speed(); ok && w.Kinds[KindProbe]+w.Kinds[KindTransit] > 0 {
		return sp < standstillKmh && w.Samples >= standstillN
	}
	return x.now1.FlowN > 0 && x.now1.Occupancy() > standstillOcc && x.now1.FlowVph() < standstillFlowVph
}

// linkRunKey marks link entries in the persistence counters (cells are H3 indexes, whose top bit is 0).
const linkRunKey = uint64(1) << 63

// collapse reports whether sample x shows a collapse (condition 1), and how deep (speed ratio to the
// reference, lower is deeper).
func (x *trafficSample) collapse() (bool, float64) {
	sp, ok := x.now1.Speed()
	ref, refOK := x.early.Speed()
	ratio := 1.0
	cond := false
	if ok && refOK && x.now1.Samples >= minAnomalyN {
		ratio = sp / ref
		cond = ratio < collapseRatio && sp < collapseFF*x.ff
	}
	if !cond && x.now1.FlowN > 0 && x.early.FlowN > 0 {
		o, o0 := x.now1.Occupancy(), x.early.Occupancy()
		if o > occupancyHigh && o > 2*o0 {
			cond, ratio = true, math.Min(ratio, o0/o)
		}
	}
	return cond, ratio
}

// judgeTraffic runs the traffic rule over the cell samples of one bucket end (tick goroutine), the six
// neighbour cells playing the downstream part; without neighbour data the drop must reach lonelyRatio.
func judgeTraffic(samples []trafficSample, runs map[uint64]int) []Evidence {
	return judge(samples, runs, trafficUnit{
		key: func(x *trafficSample) uint64 { return x.cell },
		neighbours: func(x *trafficSample, visit func(key uint64)) {
			for _, nb := range h3.Cell(x.cell).GridDisk(1) {
				if uint64(nb) != x.cell {
					visit(uint64(nb))
				}
			}
		},
		lonely:          func(*trafficSample) float64 { return lonelyRatio },
		speedlessFollow: true,
		persist:         persistBuckets,
		source:          func(x *trafficSample) string { return "cell:" + h3.Cell(x.cell).String() },
	})
}

// trafficUnit is what differs between the rule on cells and on links.
type trafficUnit struct {
	key        func(x *trafficSample) uint64                  // persistence counter key
	neighbours func(x *trafficSample, visit func(key uint64)) // the keys compared against
	// lonely: without neighbour data, a collapse deeper than this still counts (0: never).
	lonely func(x *trafficSample) float64
	// standstill: only a collapse to a standstill counts (trafficSample.standstill).
	standstill bool
	// atStopLine: the standstill is a queue at the junction's stop line (nil: never).
	atStopLine func(x *trafficSample) bool
	// persist: consecutive bucket ends the anomaly must hold before it is evidence.
	persist int
	// speedlessFollow: a collapse seen in occupancy only counts when any neighbour flows.
	speedlessFollow bool
	// quietDownstream: a neighbour that had steady traffic 5–10 minutes ago (quietEarlyN speed samples) and
	// has none in the last minute counts as flowing: downstream of a full closure the road empties (the
	// occupancy drop of the California algorithm), in congestion it does not. Persistence makes a chance
	// gap in the probes unlikely to count.
	quietDownstream bool
	source          func(x *trafficSample) string
}

// judge runs the traffic rule over the samples of one bucket end and returns the evidence of units whose
// anomaly has persisted. runs holds each unit's consecutive anomalous bucket ends.
func judge(samples []trafficSample, runs map[uint64]int, u trafficUnit) []Evidence {
	byKey := make(map[uint64]*trafficSample, len(samples))
	for i := range samples {
		byKey[u.key(&samples[i])] = &samples[i]
	}
	for key := range runs {
		if byKey[key] == nil {
			delete(runs, key) // no recent data: the run is broken
		}
	}
	var out []Evidence
	for i := range samples {
		x := &samples[i]
		key := u.key(x)
		cond, ratio := x.collapse()
		if cond {
			sp, ok := x.now1.Speed()
			// Spatial discontinuity: a neighbour (downstream) with data still flows, and faster.
			var fastest float64
			seen, quiet := false, false
			u.neighbours(x, func(nk uint64) {
				n := byKey[nk]
				if n == nil {
					return
				}
				if u.quietDownstream && n.now1.Events == 0 && n.early.Samples >= quietEarlyN {
					seen, quiet = true, true
					return
				}
				nsp, nok := n.now1.Speed()
				if !nok || n.now1.Samples < minAnomalyN {
					return
				}
				seen = true
				if nsp >= 0.5*n.ff {
					fastest = math.Max(fastest, nsp)
				}
			})
			switch {
			case quiet:
				cond = true
			case seen && ok:
				cond = fastest >= neighbourRatio*sp
			case seen:
				cond = u.speedlessFollow && fastest > 0
			default:
				cond = ratio < u.lonely(x)
			}
		}
		if cond && u.standstill {
			cond = x.standstill() && (u.atStopLine == nil || !u.atStopLine(x))
		}
		if !cond {
			delete(runs, key)
			continue
		}
		runs[key]++
		if runs[key] < u.persist {
			continue
		}
		w := 0.55 + 0.3*(1-math.Min(1, ratio/collapseRatio)) // deeper collapse, stronger evidence
		k := KindProbe
		if x.now1.FlowN > 0 {
			k = KindDetector
		}
		out = append(out, Evidence{Kind: k, Source: u.source(x), Type: "speed_collapse",
			TS: x.t, Lat: x.lat, Lng: x.lng, Cell: x.cell, Weight: math.Min(0.85, w)})
	}
	return out
}

// sortEvidence orders evidence by event time, then place and source, so fusion is deterministic.
func sortEvidence(ev []Evidence) {
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := &ev[i], &ev[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		if a.Cell != b.Cell {
			return a.Cell < b.Cell
		}
		return a.Source < b.Source
	})
}
