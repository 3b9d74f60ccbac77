package incident

import (
	"math"
	"sort"

	"github.com/uber/h3-go/v4"

	"citybrain/engine/detect"
	"citybrain/engine/schema"
	"citybrain/geo"
)

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
// (TrafficSample.standstill) held for standstillBuckets bucket ends.
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

	// On a road network a link's collapse must be a standstill (see TrafficSample.standstill) held for
	// standstillBuckets bucket ends, with its queue's head short of the junction (judgeLinks).
	StandstillKmh     = 5 // a probe slower than this is standing (exported: shards record where queues stand)
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

// TrafficSample is what the traffic rule needs of one cell or link at one bucket end: measured by the shard
// that holds it once the watermark has passed the bucket end (so every on-time event is in it), judged by the
// tick goroutine (Judge), which sees the neighbours' samples of the same bucket end. Deterministic for a given
// log.
type TrafficSample struct {
	cell     uint64
	link     int32 // index of the road link measured, or -1 for a cell
	t        int64 // bucket end, ms
	now1     schema.WindowStats
	now30    schema.WindowStats // the last 30 s
	early    schema.WindowStats
	ff       float64
	lat, lng float64
	// stopHead: the most downstream position (fraction of the link) of a probe standing in the last
	// minute, -1: none (links only).
	stopHead float64
	// The batch whose watermark passed t, and the watermark before it (Evidence.Seq, Evidence.WmBefore).
	seq      uint64
	wmBefore int64
}

// SetOrder records the log batch whose watermark passed the sample's bucket end, and the watermark before it.
func (x *TrafficSample) SetOrder(seq uint64, wmBefore int64) { x.seq, x.wmBefore = seq, wmBefore }

// Seq is the log batch whose watermark passed the sample's bucket end.
func (x *TrafficSample) Seq() uint64 { return x.seq }

// CellSample starts the sample of a cell (its centre and free-flow speed) at bucket end t; the shard adds
// the cell's buckets with AddBucket.
func CellSample(cell uint64, t int64, ff, lat, lng float64) TrafficSample {
	return TrafficSample{cell: cell, link: -1, t: t, ff: ff, lat: lat, lng: lng, stopHead: -1}
}

// AddBucket adds one bucket ending at end with sums st and queue head stopHead (1 + the most downstream
// standing probe's position along the link, 0: none) to the windows the rule compares: the last minute
// before the sample's time (and its last 30 s), and the minutes 5 to 10 before it.
func (x *TrafficSample) AddBucket(end int64, st *schema.WindowStats, stopHead float32) {
	t := x.t
	switch {
	case end <= t && end > t-60_000:
		x.now1.Add(st)
		if end > t-standstillWindowMs {
			x.now30.Add(st)
		}
		x.stopHead = max(x.stopHead, float64(stopHead)-1)
	case end <= t-5*60_000 && end > t-10*60_000:
		x.early.Add(st)
	}
}

// Cell is the cell the sample is placed in; Time its bucket end.
func (x *TrafficSample) Cell() uint64 { return x.cell }

// Time is the sample's bucket end (ms).
func (x *TrafficSample) Time() int64 { return x.t }

// linkPoint is where a link's anomalies are reported, and its free-flow speed.
type linkPoint struct {
	lat, lng float64
	cell     uint64
	ff       float64
	lengthM  float64
}

// Topology is what the traffic rule knows of a road network: the links leaving each link's end (its
// downstream neighbours) and where each link's anomalies are reported. Read-only after NewTopology.
type Topology struct {
	down   [][]int32
	up     [][]int32
	points []linkPoint
	net    *geo.Network
	res    int
	index  map[*geo.Link]int32 // a link's index in net.Links()
}

// NewTopology derives the rule's topology from net, with report points in cells of resolution res. Links
// are known by their index in net.Links().
func NewTopology(net *geo.Network, res int) *Topology {
	links := net.Links()
	linkIdx := make(map[string]int32, len(links))
	for i, l := range links {
		linkIdx[l.ID] = int32(i)
	}
	tp := &Topology{down: make([][]int32, len(links)), up: make([][]int32, len(links)), points: make([]linkPoint, len(links)),
		net: net, res: res, index: make(map[*geo.Link]int32, len(links))}
	for i, l := range links {
		tp.index[l] = int32(i)
		if n, ok := net.Node(l.To); ok {
			for _, id := range n.Out {
				if j, ok := linkIdx[id]; ok && links[j].To != l.From { // not the U-turn back
					tp.down[i] = append(tp.down[i], j)
					tp.up[j] = append(tp.up[j], int32(i))
				}
			}
		}
		p, _ := l.PointAt(0.7 * l.GeomLengthM())
		c, _ := geo.CellOf(p.Lat, p.Lng, res)
		ff := l.SpeedLimitKmh
		if ff <= 0 {
			ff = l.Class.DefaultKmh()
		}
		tp.points[i] = linkPoint{lat: p.Lat, lng: p.Lng, cell: c, ff: ff, lengthM: l.GeomLengthM()}
	}
	return tp
}

// reaches reports whether a link of set can be reached from link li in at most hops steps downstream (li is
// upstream of set).
func (tp *Topology) reaches(li int32, set map[int32]bool, hops int) bool {
	return tp.walk(li, set, hops, tp.down)
}

// reachedFrom reports whether li can be reached from a link of set in at most hops steps downstream (li is
// downstream of set).
func (tp *Topology) reachedFrom(li int32, set map[int32]bool, hops int) bool {
	return tp.walk(li, set, hops, tp.up)
}

func (tp *Topology) walk(li int32, set map[int32]bool, hops int, next [][]int32) bool {
	if len(set) == 0 || li < 0 || int(li) >= len(next) {
		return false
	}
	frontier := []int32{li}
	seen := map[int32]bool{li: true}
	for h := 0; h < hops && len(frontier) > 0; h++ {
		var nf []int32
		for _, x := range frontier {
			for _, d := range next[x] {
				if set[d] {
					return true
				}
				if !seen[d] {
					seen[d] = true
					nf = append(nf, d)
				}
			}
		}
		frontier = nf
	}
	return false
}

// LengthM is the geometry length of link li.
func (tp *Topology) LengthM(li int32) float64 { return tp.points[li].lengthM }

// linkRunKey marks link entries in the persistence counters (cells are H3 indexes, whose top bit is 0).
const linkRunKey = uint64(1) << 63

// runN2Shift places a link's second-point count above its first in a snapshot's persistence counter.
const runN2Shift = 24

// collapse reports whether sample x shows a collapse (condition 1), and how deep (speed ratio to the
// reference, lower is deeper).
func (x *TrafficSample) collapse() (bool, float64) {
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
func judgeTraffic(samples []TrafficSample, runs map[uint64]int) []Evidence {
	return judge(samples, runs, trafficUnit{
		key: func(x *TrafficSample) uint64 { return x.cell },
		neighbours: func(x *TrafficSample, visit func(key uint64)) {
			for _, nb := range h3.Cell(x.cell).GridDisk(1) {
				if uint64(nb) != x.cell {
					visit(uint64(nb))
				}
			}
		},
		lonely:          func(*TrafficSample) float64 { return lonelyRatio },
		speedlessFollow: true,
		persist:         persistBuckets,
		source:          func(x *TrafficSample) string { return "cell:" + h3.Cell(x.cell).String() },
	})
}

// trafficUnit is what differs between the rule on cells and on links.
type trafficUnit struct {
	key        func(x *TrafficSample) uint64                  // persistence counter key
	neighbours func(x *TrafficSample, visit func(key uint64)) // the keys compared against
	// lonely: without neighbour data, a collapse deeper than this still counts (0: never).
	lonely func(x *TrafficSample) float64
	// persist: consecutive bucket ends the anomaly must hold before it is evidence.
	persist int
	// speedlessFollow: a collapse seen in occupancy only counts when any neighbour flows.
	speedlessFollow bool
	source          func(x *TrafficSample) string
}

// judge runs the traffic rule over the samples of one bucket end and returns the evidence of units whose
// anomaly has persisted. runs holds each unit's consecutive anomalous bucket ends.
func judge(samples []TrafficSample, runs map[uint64]int, u trafficUnit) []Evidence {
	byKey := make(map[uint64]*TrafficSample, len(samples))
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
		if !cond {
			delete(runs, key)
			continue
		}
		runs[key]++
		if runs[key] < u.persist {
			continue
		}
		w := 0.55 + 0.3*(1-math.Min(1, ratio/collapseRatio)) // deeper collapse, stronger evidence
		k := schema.KindProbe
		if x.now1.FlowN > 0 {
			k = schema.KindDetector
		}
		out = append(out, Evidence{Kind: k, Source: u.source(x), Type: "speed_collapse",
			TS: x.t, Lat: x.lat, Lng: x.lng, Cell: x.cell, Weight: math.Min(0.85, w), Seq: x.seq, WmBefore: x.wmBefore})
	}
	return out
}

// Judge judges traffic: on a road network, the blockage detector's features link by link (blockage.go);
// without one, the cell rule on the samples shards measured, bucket end by bucket end, keeping each unit's
// persistence counter. Owned by the engine's tick goroutine.
type Judge struct {
	topo *Topology      // nil: no road network, the rule runs on cells
	runs map[uint64]int // the cell rule's persistence counters by cell
	blk  *blockageJudge // road networks
}

// NewJudge returns a judge on a road network's topology with the detector's model (nil: the model shipped
// with the engine), or on cells when topo is nil.
func NewJudge(topo *Topology, model *detect.Model) (*Judge, error) {
	j := &Judge{topo: topo, runs: map[uint64]int{}}
	if topo != nil {
		if model == nil {
			var err error
			if model, err = detect.DefaultModel(); err != nil {
				return nil, err
			}
		}
		j.blk = &blockageJudge{model: model, topo: topo, runs: map[int32]detect.Run{}}
	}
	return j, nil
}

// Judge returns the evidence of the anomalies the samples (cells) and features (links) show; their order
// does not matter.
func (j *Judge) Judge(samples []TrafficSample, feats []detect.Features) []Evidence {
	var out []Evidence
	if j.blk != nil {
		out = j.blk.judgeFeatures(feats)
	}
	if len(samples) == 0 {
		return out
	}
	sort.Slice(samples, func(i, j int) bool {
		if samples[i].t != samples[j].t {
			return samples[i].t < samples[j].t
		}
		if samples[i].link != samples[j].link {
			return samples[i].link < samples[j].link
		}
		return samples[i].cell < samples[j].cell
	})
	// A link that crosses shard boundaries is measured by each shard that holds some of its data: one
	// sample of the link per bucket end, the sum of its parts.
	merged := samples[:0]
	for _, x := range samples {
		if n := len(merged); n > 0 && x.link >= 0 && merged[n-1].t == x.t && merged[n-1].link == x.link {
			merged[n-1].now1.Add(&x.now1)
			merged[n-1].early.Add(&x.early)
			merged[n-1].now30.Add(&x.now30)
			merged[n-1].stopHead = max(merged[n-1].stopHead, x.stopHead)
			continue
		}
		merged = append(merged, x)
	}
	samples = merged
	for i := 0; i < len(samples); {
		k := i
		for k < len(samples) && samples[k].t == samples[i].t {
			k++
		}
		out = append(out, judgeTraffic(samples[i:k], j.runs)...)
		i = k
	}
	return out
}

// Runs returns the persistence counters (for snapshots; owned by the judge): the cell rule's by cell, the
// blockage judge's by link with linkRunKey set, the second operating point's count (detect.Run.N2) in the
// bits from runN2Shift (a snapshot of a model with one point reads as before).
func (j *Judge) Runs() map[uint64]int {
	if j.blk == nil {
		return j.runs
	}
	out := make(map[uint64]int, len(j.runs)+len(j.blk.runs))
	for k, v := range j.runs {
		out[k] = v
	}
	for li, v := range j.blk.runs {
		const most = 1<<runN2Shift - 1 // a count past any persistence alarms alike
		out[linkRunKey|uint64(uint32(li))] = min(v.N, most) | min(v.N2, most)<<runN2Shift
	}
	return out
}

// SetRuns restores the persistence counters from a snapshot.
func (j *Judge) SetRuns(runs map[uint64]int) {
	for k, v := range runs {
		if k&linkRunKey != 0 {
			if j.blk != nil {
				j.blk.runs[int32(uint32(k))] = detect.Run{N: v & (1<<runN2Shift - 1), N2: v >> runN2Shift}
			}
			continue
		}
		j.runs[k] = v
	}
}
