// Package detect finds lane blockages in traffic data the way a traffic officer reads a road: from what each
// probe vehicle does (where it stops, for how long, whether it leaves the link), how that compares with the
// link's own signal cycle and flow, and what the links around it do. A Tracker follows map-matched probe
// fixes and loop readings per vehicle and per link, strictly in event time: fixes are processed once the
// watermark has passed their bucket, so its state, its features and its judgement depend only on the log,
// never on how it was batched or when a tick ran. At every bucket end it measures a feature vector per link
// with traffic, and a calibrated model (gradient-boosted trees with Platt scaling, or a logistic regression,
// trained offline on the SUMO corpus of bench/eval, see docs/incidents.md) turns it into the probability that
// the link is blocked.
package detect

import (
	"math"
	"slices"
	"sort"
	"strings"

	"citybrain/engine/evtime"
	"citybrain/geo"
)

// Link is what the tracker needs of a road link.
type Link struct {
	LengthM float64
	FreeKmh float64
	Lanes   int
	Signal  bool    // ends at a signalised junction
	Down    []int32 // links leaving its end (not the U-turn back)
	Up      []int32 // links arriving at its start
}

// Standing, crawling (GPS speed, km/h); holding: not getting more than holdM from one place.
const (
	standKmh = 3
	crawlKmh = 25
	holdM    = 20
	holdMinS = 10 // a hold shorter than this is not a stop
	passM    = 15 // a first fix this far into the next link is believed at once
)

// Retention and bounds.
const (
	staleMs      = 20_000     // a standing vehicle not heard of this long no longer counts as standing
	trackGapMs   = 60_000     // a longer gap between a vehicle's fixes restarts its track
	vehicleIdle  = 5 * 60_000 // vehicles not heard of this long are forgotten
	maxVehicles  = 1_000_000
	eventsKept   = 128 // exits, entries and completed stops per link (the newest)
	maxHolds     = 256 // vehicles holding on one link
	maxRecent    = 512 // fixes of the last windowMs kept per link
	bucketsKept  = 61  // per-link bucket sums: 10 minutes and the current one
	maxPending   = 4_000_000
	minStopPrior = 30.0  // s: the shortest stop reference (a stop sign's wait)
	maxStopRef   = 300.0 // s: the longest (a badly congested signal, five cycles of a minute)
)

// Fix is one map-matched probe or transit fix.
type fix struct {
	vehicle string
	ts      int64
	link    int32
	offM    float32
	kmh     float32
}

type vehicle struct {
	link   int32
	offM   float32
	lastTS int64
	// The hold: where (link, offset) and since when the vehicle has stayed within holdM of one place. A
	// vehicle in a queue creeps as the queue closes up; what matters is that it does not get anywhere.
	holdLink  int32
	holdOff   float32
	holdSince int64
	// A move to another link is believed at its second fix there (or at once when clearly past the
	// junction): a vehicle standing at a stop line is often matched to the next link by GPS noise.
	candLink int32
	candTS   int64
	// slowTS, slowOff: its last slow fix on its link away from the link's end (squeeze.go; slowTS 0: none);
	// stoodTS: its last standing fix on its link (0: none).
	slowTS  int64
	slowOff float32
	stoodTS int64
}

// hold is a vehicle that has not got anywhere since since (an ongoing stop) on a link.
type hold struct {
	vehicle string
	since   int64
	last    int64
	offM    float32
}

// stop is a completed hold of holdMinS or more.
type stop struct {
	end  int64
	dur  float32
	offM float32
}

// bucket sums the fixes of one link in one bucket.
type bucket struct {
	idx      int64 // bucket index (start / bucketMs); buckets of other indexes are stale
	fixes    uint16
	standing uint16
	crawling uint16
	speedSum float32
	// Loops on the link: readings, summed flow (veh/h) and occupancy (0..1) and spot speed.
	loops   uint16
	flowSum float32
	occSum  float32
	// holdMax: the longest hold on the link at this bucket's end (s), recorded by measure.
	holdMax float32
	// held: at this bucket's end a vehicle had held on the (learned) link for a minute, so its baselines do
	// not learn from it (recorded by measure, read when the bucket is learned, learnLagMs later).
	held bool
	// measured: the link was judged at this bucket's end, its traffic slow (1 − the two minutes' mean fix
	// speed / free flow; -1: no fixes or no free flow); learned into its history histLagMs later.
	measured bool
	slow     float32
}

type linkState struct {
	active  []hold
	stops   []stop  // completed stops, newest last (at most eventsKept)
	exits   []int64 // times vehicles left the link for a downstream link
	entries []int64 // times vehicles entered it from an upstream link
	b       [bucketsKept]bucket
	lastTS  int64
	firstTS int64 // the first observation (0: none yet, or restored from a snapshot without it)
	// Learned online (event time), so a replay warms them the same way: exits per second and speed
	// (exponentially weighted over baselineTau of buckets with traffic), and the stop durations' p90.
	exitRate  ewma
	entryRate ewma
	fixRate   ewma // fixes per bucket
	speed     ewma
	loopFlow  ewma
	loopOcc   ewma
	stopQ     quantile
	// recent holds the fixes of the last windowMs (position and speed), oldest first: where vehicles move
	// and stand relative to the queue's head.
	recent []posFix
	// exitTo counts the exits into each of Link.Down (same order): which way the traffic goes.
	exitTo []uint32
	// hist: how slow its traffic usually is (history.go).
	hist history
	// squeezes: vehicles slowed at a point and back to speed further along (squeeze.go), oldest first, kept
	// until learned into sqHist (nil until the first is learned: the link's squeezes by offset).
	squeezes []squeeze
	sqHist   *squeezeHist
	// passes: the vehicles' stints on the link (squeeze.go: the exposure), kept until learned into sqHist.
	passes []pass
}

type posFix struct {
	ts   int64
	offM float32
	kmh  float32
}

// Tracker follows vehicles and links in event time.
type Tracker struct {
	links   []Link
	st      []linkState
	veh     map[string]*vehicle
	pending []fix
	loops   []loopReading
	doneTo  int64 // bucket end up to which fixes are processed
	// learnedTo: the bucket end up to which the baselines have learned (learnLag behind doneTo).
	learnedTo int64
	bucketMs  int64
	prior     quantile           // stop durations of the whole network
	pool      history            // how slow the network's traffic usually is (history.go)
	sqPool    [squeezeZones]ewma // the network's squeezes per metre of judged links per bucket end, by zone (squeeze.go)
	// sqPassN, sqPassM: the network's squeezes and metres passed per bucket end, by zone (squeeze.go).
	sqPassN, sqPassM [squeezeZones]ewma
	active           map[int32]struct{}
}

type loopReading struct {
	ts         int64
	link       int32
	flow, occ  float32
	kmh        float32
	intervalMs int64
}

// NewTracker returns a tracker for links (indexed like the network's Links) with buckets of bucketMs.
func NewTracker(links []Link, bucketMs int64) *Tracker {
	t := &Tracker{links: links, st: make([]linkState, len(links)), veh: map[string]*vehicle{}, bucketMs: bucketMs,
		active: map[int32]struct{}{}}
	t.prior = newQuantile(0.9, 90)
	for z := range t.sqPool {
		t.sqPool[z] = ewma{tau: histTau}
		t.sqPassN[z], t.sqPassM[z] = ewma{tau: histTau}, ewma{tau: histTau}
	}
	for i := range t.st {
		t.st[i].stopQ = newQuantile(0.9, 0)
		t.st[i].exitRate = ewma{tau: baselineTau}
		t.st[i].entryRate = ewma{tau: baselineTau}
		t.st[i].fixRate = ewma{tau: baselineTau}
		t.st[i].speed = ewma{tau: baselineTau}
		t.st[i].loopFlow = ewma{tau: baselineTau}
		t.st[i].loopOcc = ewma{tau: baselineTau}
	}
	return t
}

// baselineTau: baselines forget over about 30 minutes of buckets with traffic.
const baselineTau = 180.0

// AddFix queues a map-matched fix at off (a fraction of the link's length, as the engine's matcher gives it)
// (dispatcher goroutine, in log order). It is processed once the watermark has passed its bucket; a fix
// older than what was processed is too late and ignored.
func (t *Tracker) AddFix(vehicle string, ts int64, link int32, off float32, kmh float64) {
	if link < 0 || int(link) >= len(t.links) || ts < t.doneTo || len(t.pending) >= maxPending || math.IsNaN(kmh) {
		return
	}
	offM := off * float32(t.links[link].LengthM)
	t.pending = append(t.pending, fix{vehicle: strings.Clone(vehicle), ts: ts, link: link, offM: offM, kmh: float32(kmh)})
}

// Fraction is offM along a link of lengthM as a fraction of it in [0, 1], as the engine's matcher reports it.
func Fraction(lengthM, offM float64) float32 {
	if lengthM <= 0 {
		return 0
	}
	return float32(min(1, max(0, offM/lengthM)))
}

// AddLoop queues a loop reading on link (its ts is the end of its interval).
func (t *Tracker) AddLoop(ts int64, link int32, flowVph, occ, kmh, intervalS float64) {
	if link < 0 || int(link) >= len(t.links) || ts < t.doneTo || len(t.loops) >= maxPending || math.IsNaN(flowVph) || math.IsNaN(occ) {
		return
	}
	t.loops = append(t.loops, loopReading{ts: ts, link: link, flow: float32(flowVph), occ: float32(occ), kmh: float32(kmh),
		intervalMs: int64(intervalS * 1000)})
}

// Advance processes every queued fix and reading of the buckets that end at or before wm, bucket by bucket,
// and calls at with each bucket end and the features of every link with recent traffic.
func (t *Tracker) Advance(wm int64, at func(end int64, feats []Features)) {
	end := evtime.Floor(wm, t.bucketMs)
	if t.doneTo == 0 {
		// The first bucket end: start with the bucket before the oldest queued data.
		first := end
		for _, f := range t.pending {
			first = min(first, evtime.Floor(f.ts, t.bucketMs))
		}
		t.doneTo = first
	}
	if end <= t.doneTo {
		return
	}
	if end-t.doneTo > 30*60_000 {
		t.doneTo = end - 30*60_000 // a jump in time: the last half hour only
	}
	sort.SliceStable(t.pending, func(i, j int) bool {
		if t.pending[i].ts != t.pending[j].ts {
			return t.pending[i].ts < t.pending[j].ts
		}
		return t.pending[i].vehicle < t.pending[j].vehicle
	})
	sort.SliceStable(t.loops, func(i, j int) bool { return t.loops[i].ts < t.loops[j].ts })
	pi, li := 0, 0
	for b := t.doneTo + t.bucketMs; b <= end; b += t.bucketMs {
		for pi < len(t.pending) && t.pending[pi].ts < b {
			t.fix(&t.pending[pi])
			pi++
		}
		for li < len(t.loops) && t.loops[li].ts < b {
			t.loop(&t.loops[li])
			li++
		}
		t.doneTo = b
		feats := t.measure(b)
		if at != nil {
			at(b, feats)
		}
	}
	t.pending = append(t.pending[:0], t.pending[pi:]...)
	t.loops = append(t.loops[:0], t.loops[li:]...)
	t.evict(end)
}

// slot is where bucket idx lives in a link's ring of bucketsKept buckets.
func slot(idx int64) int { return int(((idx % bucketsKept) + bucketsKept) % bucketsKept) }

func (t *Tracker) bucketOf(ls *linkState, ts int64) *bucket {
	idx := evtime.Index(ts, t.bucketMs)
	b := &ls.b[slot(idx)]
	if b.idx != idx {
		*b = bucket{idx: idx}
	}
	return b
}

// touch marks link active with an observation at ts and returns its state and the bucket of ts.
func (t *Tracker) touch(link int32, ts int64) (*linkState, *bucket) {
	ls := &t.st[link]
	t.active[link] = struct{}{}
	if ls.firstTS == 0 && ls.lastTS == 0 {
		ls.firstTS = ts
	}
	ls.lastTS = max(ls.lastTS, ts)
	return ls, t.bucketOf(ls, ts)
}

// fix processes one fix in event-time order.
func (t *Tracker) fix(f *fix) {
	ls, b := t.touch(f.link, f.ts)
	b.fixes++
	b.speedSum += f.kmh
	ls.recent = append(ls.recent, posFix{ts: f.ts, offM: f.offM, kmh: f.kmh})
	drop := 0
	for drop < len(ls.recent) && (ls.recent[drop].ts < f.ts-windowMs || len(ls.recent)-drop > maxRecent) {
		drop++
	}
	if drop > 0 {
		ls.recent = slices.Delete(ls.recent, 0, drop)
	}
	switch {
	case f.kmh < standKmh:
		b.standing++
	case f.kmh < crawlKmh:
		b.crawling++
	}
	v := t.veh[f.vehicle]
	if v == nil {
		if len(t.veh) >= maxVehicles {
			return
		}
		v = &vehicle{link: -1, holdLink: -1, candLink: -1}
		t.veh[f.vehicle] = v
	}
	if v.link >= 0 && f.ts-v.lastTS > trackGapMs {
		t.endHold(v, v.lastTS, f.vehicle)
		v.link = -1
	}
	prev := v.link
	switch {
	case v.link < 0:
		v.link, v.offM = f.link, f.offM
		t.startHold(v, f)
	case f.link == v.link:
		v.candLink = -1
		v.offM = f.offM
		if math.Abs(float64(f.offM-v.holdOff)) > holdM {
			t.endHold(v, f.ts, f.vehicle)
			t.startHold(v, f)
		}
	case slices.Contains(t.links[v.link].Down, f.link):
		if v.candLink != f.link && f.offM < passM {
			v.candLink, v.candTS = f.link, f.ts
			break // wait for a second fix there
		}
		at := f.ts
		if v.candLink == f.link {
			at = v.candTS
		}
		pushTS(&t.st[v.link].exits, at)
		pushTS(&ls.entries, at)
		from := &t.st[v.link]
		if from.exitTo == nil {
			from.exitTo = make([]uint32, len(t.links[v.link].Down))
		}
		from.exitTo[slices.Index(t.links[v.link].Down, f.link)]++
		t.endHold(v, at, f.vehicle)
		v.link, v.offM, v.candLink = f.link, f.offM, -1
		t.startHold(v, f)
	case slices.Contains(t.links[f.link].Down, v.link):
		// A step back upstream: noise at the junction; the vehicle stays where it was.
	default:
		// A jump to an unconnected link (a parallel street, the opposite direction): believed at the
		// second fix there, without an exit.
		if v.candLink != f.link {
			v.candLink, v.candTS = f.link, f.ts
			break
		}
		t.endHold(v, f.ts, f.vehicle)
		v.link, v.offM, v.candLink = f.link, f.offM, -1
		t.startHold(v, f)
	}
	t.squeezeStep(v, f, prev)
	v.lastTS = f.ts
	if v.holdLink >= 0 {
		hl := &t.st[v.holdLink]
		for i := range hl.active {
			if hl.active[i].vehicle == f.vehicle {
				hl.active[i].last = f.ts
			}
		}
	}
}

func (t *Tracker) startHold(v *vehicle, f *fix) {
	v.holdLink, v.holdOff, v.holdSince = f.link, f.offM, f.ts
	ls := &t.st[f.link]
	if len(ls.active) < maxHolds {
		ls.active = append(ls.active, hold{vehicle: f.vehicle, since: f.ts, last: f.ts, offM: f.offM})
	}
}

// endHold ends the vehicle's hold at ts: a completed stop of its link when it lasted holdMinS or more.
func (t *Tracker) endHold(v *vehicle, ts int64, id string) {
	if v.holdLink < 0 {
		return
	}
	ls := &t.st[v.holdLink]
	for i := range ls.active {
		if ls.active[i].vehicle == id {
			ls.active = slices.Delete(ls.active, i, i+1)
			break
		}
	}
	if dur := float64(ts-v.holdSince) / 1000; dur >= holdMinS {
		ls.stops = append(ls.stops, stop{end: ts, dur: float32(dur), offM: v.holdOff})
		if len(ls.stops) > eventsKept {
			ls.stops = slices.Delete(ls.stops, 0, len(ls.stops)-eventsKept)
		}
		ls.stopQ.add(dur)
		t.prior.add(dur)
	}
	v.holdLink = -1
}

func (t *Tracker) loop(r *loopReading) {
	_, b := t.touch(r.link, r.ts)
	b.loops++
	b.flowSum += r.flow
	b.occSum += r.occ
}

func pushTS(s *[]int64, ts int64) {
	*s = append(*s, ts)
	if len(*s) > eventsKept {
		*s = slices.Delete(*s, 0, len(*s)-eventsKept)
	}
}

// evict forgets vehicles idle for vehicleIdle and links without traffic for 15 minutes. The idle vehicles'
// holds end in the order of their ids: a completed stop feeds its link's and the network's stop quantiles,
// whose estimates depend on the order of what they learn, so map order would make two runs of the same log
// differ (and the eval's training rows with them).
func (t *Tracker) evict(now int64) {
	var idle []string
	for id, v := range t.veh {
		if now-v.lastTS > vehicleIdle {
			idle = append(idle, id)
		}
	}
	sort.Strings(idle)
	for _, id := range idle {
		v := t.veh[id]
		t.endHold(v, v.lastTS, id)
		delete(t.veh, id)
	}
	for li := range t.active {
		if now-t.st[li].lastTS > 15*60_000 {
			delete(t.active, li)
		}
	}
}

// ewma is an exponentially weighted mean over updates.
type ewma struct {
	tau  float64
	mean float64
	n    float64
}

func (e *ewma) add(x float64) {
	e.n++
	a := 1 / math.Min(e.n, e.tau)
	e.mean += a * (x - e.mean)
}

func (e *ewma) value() (float64, bool) { return e.mean, e.n > 0 }

// quantile tracks a quantile of a stream with a stochastic approximation (Robbins-Monro steps of a size that
// shrinks as samples come, floored so it keeps adapting).
type quantile struct {
	q, est float64
	n      float64
}

func newQuantile(q, init float64) quantile { return quantile{q: q, est: init} }

func (s *quantile) add(x float64) {
	s.n++
	if s.n == 1 && s.est == 0 {
		s.est = x
		return
	}
	step := math.Max(2, s.est) * 1.5 / math.Sqrt(math.Min(s.n, 400))
	if x > s.est {
		s.est += step * s.q
	} else {
		s.est -= step * (1 - s.q)
	}
	s.est = math.Max(0, s.est)
}

// LinksOf describes the links of a road network for a tracker, in the network's order.
func LinksOf(net *geo.Network) []Link {
	links := net.Links()
	idx := make(map[string]int32, len(links))
	for i, l := range links {
		idx[l.ID] = int32(i)
	}
	out := make([]Link, len(links))
	for i, l := range links {
		ff := l.SpeedLimitKmh
		if ff <= 0 {
			ff = l.Class.DefaultKmh()
		}
		x := Link{LengthM: l.GeomLengthM(), FreeKmh: ff, Lanes: max(1, l.Lanes)}
		if n, ok := net.Node(l.To); ok {
			x.Signal = n.Signalised
			for _, id := range n.Out {
				if j, ok := idx[id]; ok && links[j].To != l.From {
					x.Down = append(x.Down, j)
				}
			}
		}
		if n, ok := net.Node(l.From); ok {
			for _, id := range n.In {
				if j, ok := idx[id]; ok && links[j].From != l.To {
					x.Up = append(x.Up, j)
				}
			}
		}
		out[i] = x
	}
	return out
}
