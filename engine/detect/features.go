package detect

import (
	"math"
	"slices"
	"sort"

	"citybrain/engine/evtime"
)

// Features are what the model judges a link on at one bucket end. Every feature is a ratio or a count
// relative to the link's own history, cycle or neighbours, so that what it means does not depend on the
// city: no absolute speeds, no city-specific thresholds.
type Features struct {
	Link int32
	T    int64 // bucket end, ms
	X    [NumFeatures]float64
	// For placing evidence: the position (m from the link's start) of the standing queue's head, or -1.
	HeadM float64
	// Discharging: in the last two minutes probes left the link, no fewer than its usual exit rate makes
	// likely (the chance of so few is at least 10 %): whatever stands on it moves on each cycle, as a signal's
	// queue does and a blockage's does not.
	Discharging bool
	// FullFlow: more probes left the link in the last two minutes than it would let through had a blockage
	// cut its flow to a quarter of its learned exit rate (the chance of so many at that rate is under 10 %):
	// the capacity one blocked lane of two or three leaves in a city street (HCM 2010 exh. 10-17: 0.35, 0.49,
	// × 0.6 for merging and onlookers, docs/demo.md). A blockage queues traffic because it passes fewer
	// vehicles than come; a link that passes more is slow for another reason (a dense queue creeping up to
	// its signal). With one or two probes on the link the test cannot tell, so such a link is judged as
	// before. (Until session 10 the test was at half the learned rate, which read about half the true one:
	// the same quarter.)
	FullFlow bool
	// Young: the link's baselines have not yet learned from learnedBuckets buckets of traffic (a quiet link,
	// or one where a queue always stands; every link of an engine's first hour). The model is trained and
	// calibrated on learned links only; the engine judges a young link as a learned one (against what its few
	// buckets taught it, the network's stop reference), but its exits alone never make it flowing
	// (engine/incident; issue 12, seventeenth pass).
	Young bool
	// Squeeze: the squeeze judge's reading (squeeze.go): vehicles slowed at one point and back to speed past
	// it, against the link's own history there. Not a feature of the model: a judgement of its own.
	Squeeze SqueezeReading
	// Junction: the junction judge's reading (junction.go): vehicles held at the link's start and nothing on
	// it past them. Not a feature of the model: a judgement of its own.
	Junction JunctionReading
	// Hold: the hold judge's reading (hold.go): the queue's head, how long it has held, whether anything passed
	// it or left the link since, against the link's own stops there. Not a feature of the model: a judgement of
	// its own.
	Hold HoldReading
	// Set by the engine's window room: the log batch whose watermark passed T, and the watermark before it
	// (the incident tracker takes evidence in log order).
	Seq      uint64
	WmBefore int64
}

// Feature indexes.
const (
	FStandRatio    = iota // longest ongoing stop on the link / the link's stop reference (p90 of its stops)
	FStandLog             // log2 of 1 + the longest ongoing stop in units of a minute
	FStanding60           // probes standing on it for over a minute (log2 1+n)
	FHeadGap              // the standing queue's head: share of the link still ahead of it (0 at the stop line)
	FHeadGapM             // and in metres (capped at 200, /200)
	FExitDeficit          // surprise of so few exits in 2 minutes given the link's exit rate (−log10 Poisson CDF, capped)
	FNoExit               // no probe left the link in 2 minutes while it held standing probes
	FEntryDeficit         // surprise of so few entries in 2 minutes given its entry rate (a closure at its start)
	FStandShare           // share of its fixes in 2 minutes that stood
	FCrawlShare           // share that moved slower than 25 km/h without standing
	FSpeedRatio           // its mean fix speed in 2 minutes / its learned speed
	FSpeedFF              // the same / its free-flow speed
	FDownFlow             // the best downstream link's speed / its free flow (1: flowing freely; 0: standing or no data)
	FDownQuiet            // downstream links went quiet (no fixes in 2 min after traffic earlier)
	FUpStand              // the longest stop on an upstream link / the stop reference: the queue spills back
	FLoopOcc              // loop occupancy on the link in 2 minutes (0..1; 0 without loops)
	FLoopFlowRatio        // loop flow / its learned flow (1 without loops)
	FSignal               // the link ends at a signal
	FFixes                // log2(1 + fixes in 2 minutes): how much the features are worth
	FFixRatio             // fixes in 2 minutes / its learned rate (the link going quiet)
	FPassing              // vehicles moving past the queue's head in 2 minutes (log2 1+n; 0 without a head): a signal queue discharges, a blockage does not
	FStopLine             // share of its fixes in 2 minutes standing at its end (the last max(30 m, 15 %)): a queue that starts at the stop line
	FMainDown             // the speed of the link most of its traffic goes to / that link's free flow (1 without data)
	FStandBefore          // the longest hold 5 to 10 minutes earlier / the stop reference: a queue that was already there
	FSpeedBefore          // its speed 5 to 10 minutes earlier / its learned speed (1 without data)
	FFeedHeld             // the longest hold at the end of a link feeding it (its last max(30 m, 15 %)) / that link's own stop reference: traffic waiting to get onto it
	FSlowRare             // how rare traffic this slow against free flow is on this link: −log10 of the share of its past bucket ends as slow (its own day, learned online; history.go)
	FDownGone             // a vehicle holds at its end past its stop reference while a link it feeds got no probe in 2 minutes: that link's surprise (−log10 Poisson of no entry at its entry rate) × the hold / the reference (≤ 3); the largest; 0 otherwise
	NumFeatures
)

// FeatureIndex is the index of the feature of that name (FeatureNames), -1 if there is none.
func FeatureIndex(name string) int { return slices.Index(FeatureNames[:], name) }

// FeatureNames name the features (model files list them, so a model and the code must agree).
var FeatureNames = [NumFeatures]string{
	"stand_ratio", "stand_log", "standing60", "head_gap", "head_gap_m", "exit_deficit", "no_exit", "entry_deficit",
	"stand_share", "crawl_share", "speed_ratio", "speed_ff", "down_flow", "down_quiet", "up_stand", "loop_occ",
	"loop_flow_ratio", "signal", "fixes", "fix_ratio", "passing", "stop_line", "main_down", "stand_before", "speed_before",
	"feed_held", "slow_rare", "down_gone",
}

const windowMs = 120_000 // the recent window the features look at

// warmMs: a link is judged once the tracker has watched it this long (event time since its first fix or loop
// reading), so a restart or the start of a replay does not judge links against nothing. It is time, not an
// amount of traffic: a quiet link, or one where a queue always stands (its baselines do not learn while a
// vehicle holds on it), is judged as soon as a busy one; its young baselines fall back to the network's (the
// stop reference) or to neutral ratios, and the model sees how many fixes the features rest on.
const warmMs = 5 * 60_000

// learnedBuckets: a link's baselines have learned once this many buckets with traffic (outside holds) went
// into them (five minutes of a busy link).
const learnedBuckets = 30

// sums of a link's buckets over (from, to].
type sums struct {
	fixes, standing, crawling float64
	speedSum                  float64
	loops                     float64
	flowSum, occSum           float64
}

func (t *Tracker) sums(ls *linkState, from, to int64) sums {
	var s sums
	lo, hi := evtime.Index(from, t.bucketMs), evtime.Index(to, t.bucketMs)
	for i := range ls.b {
		b := &ls.b[i]
		if b.idx >= lo && b.idx < hi {
			s.fixes += float64(b.fixes)
			s.standing += float64(b.standing)
			s.crawling += float64(b.crawling)
			s.speedSum += float64(b.speedSum)
			s.loops += float64(b.loops)
			s.flowSum += float64(b.flowSum)
			s.occSum += float64(b.occSum)
		}
	}
	return s
}

// countSince counts the times in [from, to): the fixes of a bucket are those before its end.
func countSince(ts []int64, from, to int64) int {
	n := 0
	for _, x := range ts {
		if x >= from && x < to {
			n++
		}
	}
	return n
}

// stopRef is the stop duration (s) a link's stops normally stay under: the p90 of its own completed stops
// once it has enough, else the network's, within [minStopPrior, maxStopRef].
func (t *Tracker) stopRef(ls *linkState) float64 {
	ref := t.prior.est
	if ls.stopQ.n >= 20 {
		ref = ls.stopQ.est
	}
	return math.Min(maxStopRef, math.Max(minStopPrior, ref))
}

// longestStand is the longest hold ongoing at t on a link (s: from its first to its last fix), the number
// of vehicles holding for a minute or more, and the most downstream position of a vehicle holding for 30 s
// or more (-1: none). A vehicle not heard of for staleMs no longer counts; holds shorter than holdMinS are
// vehicles passing.
func longestStand(ls *linkState, t int64) (longest float64, n60 int, headM float64) {
	headM = -1
	for i := range ls.active {
		a := &ls.active[i]
		d, ok := a.heldAt(t)
		if !ok {
			continue
		}
		longest = math.Max(longest, d)
		if d >= 60 {
			n60++
		}
		if d >= 30 {
			headM = math.Max(headM, float64(a.offM))
		}
	}
	return longest, n60, headM
}

// endZoneM is the end zone of a link of lengthM, where its stop line's queue stands: its last max(30 m, 15 %).
func endZoneM(lengthM float64) float64 { return math.Max(30, 0.15*lengthM) }

// heldAtEnd is the longest hold ongoing at t (s) among vehicles standing at the end of a link of lengthM
// (its end zone), 0 without one.
func heldAtEnd(ls *linkState, lengthM float64, t int64) float64 {
	zone := endZoneM(lengthM)
	var longest float64
	for i := range ls.active {
		a := &ls.active[i]
		if d, ok := a.heldAt(t); ok && lengthM-float64(a.offM) < zone {
			longest = math.Max(longest, d)
		}
	}
	return longest
}

// heldAt is how long (s) the hold has lasted at t, from its first fix to its last; ok when it is a hold
// ongoing at t: begun by t, heard of within staleMs, and at least holdMinS (shorter ones are vehicles passing).
func (a *hold) heldAt(t int64) (float64, bool) {
	if a.since > t || t-a.last > staleMs {
		return 0, false
	}
	d := float64(min(a.last, t)-a.since) / 1000
	return d, d >= holdMinS
}

// measure computes the features of every link with traffic in the last 10 minutes at bucket end b, and
// updates the baselines with the bucket that just ended.
func (t *Tracker) measure(b int64) []Features {
	ids := make([]int32, 0, len(t.active))
	for li := range t.active {
		// A link is judged once it has been watched for warmMs (or its baselines have learned).
		if ls := &t.st[li]; b-ls.lastTS <= 10*60_000 && (b-ls.firstTS >= warmMs || ls.fixRate.n >= learnedBuckets) {
			ids = append(ids, li)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]Features, 0, len(ids))
	from := b - windowMs
	for _, li := range ids {
		ls := &t.st[li]
		L := &t.links[li]
		s := t.sums(ls, from, b)
		var f Features
		f.Link, f.T = li, b
		f.Young = ls.fixRate.n < learnedBuckets
		x := &f.X
		ref := t.stopRef(ls)
		longest, n60, head := longestStand(ls, b)
		f.HeadM = head
		if n60 > 0 && !f.Young {
			t.bucketOf(ls, b-1).held = true // a vehicle has held for a minute: the baselines skip this bucket
		}
		x[FStandRatio] = math.Min(10, longest/ref)
		x[FStandLog] = math.Log2(1 + longest/60)
		x[FStanding60] = math.Log2(1 + float64(n60))
		length := math.Max(L.LengthM, 1)
		if head >= 0 {
			gap := math.Max(0, length-head)
			x[FHeadGap] = math.Min(1, gap/length)
			x[FHeadGapM] = math.Min(200, gap) / 200
		}
		exits := countSince(ls.exits, from, b)
		rate, ok := ls.exitRate.value()
		if ok && rate > 0 {
			lambda := rate * windowMs / 1000
			x[FExitDeficit] = math.Min(6, -math.Log10(poissonCDF(exits, lambda)))
		}
		if exits == 0 && n60 > 0 {
			x[FNoExit] = 1
		}
		f.Discharging = exits > 0 && x[FExitDeficit] < 1
		if ok && rate > 0 && exits > 0 {
			f.FullFlow = 1-poissonCDF(exits-1, rate*windowMs/1000/4) < 0.1
		}
		entries := countSince(ls.entries, from, b)
		if er, ok := ls.entryRate.value(); ok && er > 0 {
			x[FEntryDeficit] = math.Min(6, -math.Log10(poissonCDF(entries, er*windowMs/1000)))
		} else if xr, ok := ls.exitRate.value(); ok && xr > 0 {
			// No vehicle was ever seen entering it from a link before it (a link at the network's edge,
			// where trips begin): nothing is known of its entries, so they read as usual (as many as its
			// exits make likely), not as 0, the reading of far more entries than usual (ship3, session 13).
			lam := xr * windowMs / 1000
			x[FEntryDeficit] = math.Min(6, -math.Log10(poissonCDF(int(math.Round(lam)), lam)))
		}
		sp := math.NaN()
		if s.fixes > 0 {
			x[FStandShare] = s.standing / s.fixes
			x[FCrawlShare] = s.crawling / s.fixes
			sp = s.speedSum / s.fixes
		}
		x[FSpeedRatio], x[FSpeedFF] = 1, 1
		slow := -1.0 // no fixes, or no free flow: learned as no level reached, judged not rare
		if !math.IsNaN(sp) {
			if base, ok := ls.speed.value(); ok && base > 1 {
				x[FSpeedRatio] = math.Min(2, sp/base)
			}
			if L.FreeKmh > 0 {
				x[FSpeedFF] = math.Min(2, sp/L.FreeKmh)
				slow = 1 - math.Min(1, sp/L.FreeKmh)
			}
		}
		x[FSlowRare] = rarity(slow, &ls.hist, &t.pool)
		// Downstream: the best flowing link leaving this one, and whether they all went quiet.
		best, quiet, any := 0.0, true, false
		bestKmh := 0.0 // the fastest link after it, its mean fix speed (squeeze.go)
		for _, d := range L.Down {
			ds := &t.st[d]
			dsum := t.sums(ds, from, b)
			if dsum.fixes > 0 {
				any = true
				quiet = false
				bestKmh = math.Max(bestKmh, dsum.speedSum/dsum.fixes)
				if ff := t.links[d].FreeKmh; ff > 0 {
					best = math.Max(best, math.Min(1.5, dsum.speedSum/dsum.fixes/ff))
				}
			} else if t.sums(ds, b-10*60_000, from).fixes >= 3 {
				any = true
			}
		}
		x[FDownFlow] = best
		f.Squeeze = t.readSqueeze(li, b, !quiet && bestKmh < crawlKmh)
		if any && quiet {
			x[FDownQuiet] = 1
		}
		up := 0.0
		for _, u := range L.Up {
			l, _, _ := longestStand(&t.st[u], b)
			up = math.Max(up, l)
		}
		x[FUpStand] = math.Min(10, up/ref)
		// Traffic waiting at the end of a feeder to get onto this link, against how long that feeder's
		// own stops normally last (its signal's red): a closure near this link's start holds it there.
		feed := 0.0
		for _, u := range L.Up {
			us := &t.st[u]
			if h := heldAtEnd(us, t.links[u].LengthM, b); h > 0 {
				feed = math.Max(feed, h/t.stopRef(us))
			}
		}
		x[FFeedHeld] = math.Min(10, feed)
		x[FDownGone] = t.downGone(ls, L, ref, from, b)
		f.Junction = t.readJunction(li, b, ref, head)
		x[FLoopFlowRatio] = 1
		if s.loops > 0 {
			x[FLoopOcc] = s.occSum / s.loops
			if base, ok := ls.loopFlow.value(); ok && base > 1 {
				x[FLoopFlowRatio] = math.Min(3, s.flowSum/s.loops/base)
			}
		}
		if L.Signal {
			x[FSignal] = 1
		}
		var passing, atEnd float64
		endZone := endZoneM(length)
		for _, r := range ls.recent {
			if r.ts < from || r.ts >= b {
				continue
			}
			if head >= 0 && r.kmh >= crawlKmh/2 && float64(r.offM) > head+15 {
				passing++
			}
			if r.kmh < standKmh && length-float64(r.offM) < endZone {
				atEnd++
			}
		}
		x[FPassing] = math.Log2(1 + passing)
		if s.fixes > 0 {
			x[FStopLine] = atEnd / s.fixes
		}
		x[FMainDown] = 1
		if main := mainDown(L, ls); main >= 0 {
			if dsum := t.sums(&t.st[main], from, b); dsum.fixes > 0 && t.links[main].FreeKmh > 0 {
				x[FMainDown] = math.Min(1.5, dsum.speedSum/dsum.fixes/t.links[main].FreeKmh)
			}
		}
		var before float32
		lo, hi := evtime.Index(b-10*60_000, t.bucketMs), evtime.Index(b-5*60_000, t.bucketMs)
		for i := range ls.b {
			if bk := &ls.b[i]; bk.idx >= lo && bk.idx < hi {
				before = max(before, bk.holdMax)
			}
		}
		x[FStandBefore] = math.Min(10, float64(before)/ref)
		x[FSpeedBefore] = 1
		if sb := t.sums(ls, b-10*60_000, b-5*60_000); sb.fixes > 0 {
			if base, ok := ls.speed.value(); ok && base > 1 {
				x[FSpeedBefore] = math.Min(2, sb.speedSum/sb.fixes/base)
			}
		}
		f.Hold = t.readHold(li, b, ref)
		f.Hold.judge(L, x)
		bk := t.bucketOf(ls, b-1)
		bk.holdMax, bk.measured, bk.slow = float32(longest), true, float32(slow)
		x[FFixes] = math.Log2(1 + s.fixes)
		x[FFixRatio] = 1
		if fr, ok := ls.fixRate.value(); ok && fr > 0 {
			x[FFixRatio] = math.Min(3, s.fixes/(fr*windowMs/float64(t.bucketMs)))
		}
		out = append(out, f)
	}
	t.learnHistory(b)
	if e := b - t.learnLag(); e > t.learnedTo {
		t.learnedTo = e
		t.learn(e)
	}
	return out
}

// downGone is FDownGone: a closure just past a junction holds the vehicles bound for its link at the end of
// the links feeding it, through their greens, while its own link gets nothing; the link itself, with no
// probe on it, says little (a quiet street's lull reads the same), its feeder's queue alone is a red light's.
// Both at once: the longest hold at this link's end (its last max(30 m, 15 %)) against its own stop
// reference, once it is at least that, times the surprise of no probe entering a link it feeds in the
// window, at that link's learned entry rate (a link that has not learned one says nothing). The largest over
// the links it feeds.
func (t *Tracker) downGone(ls *linkState, L *Link, ref float64, from, b int64) float64 {
	held := heldAtEnd(ls, L.LengthM, b)
	if held <= 0 || held < ref {
		return 0
	}
	gone := 0.0
	for _, d := range L.Down {
		ds := &t.st[d]
		if t.sums(ds, from, b).fixes > 0 || countSince(ds.entries, from, b) > 0 {
			continue
		}
		if er, ok := ds.entryRate.value(); ok && er > 0 {
			gone = math.Max(gone, math.Min(6, -math.Log10(poissonCDF(0, er*windowMs/1000))))
		}
	}
	return gone * math.Min(3, held/ref)
}

// learnLag is how long after a bucket's end its baselines learn from it (a whole number of buckets): an exit
// (and the entry into the next link) is recorded at the vehicle's second fix on the next link with the first
// fix's time, up to trackGapMs later (a longer gap restarts the track without an exit). Learned at its end,
// a bucket of 10 s with a fix every 5 s had about half its exits, and the exit rate read half the true one.
func (t *Tracker) learnLag() int64 {
	return (trackGapMs + t.bucketMs - 1) / t.bucketMs * t.bucketMs
}

// learn updates the baselines with the bucket ending at e, once every exit and entry of it has been recorded:
// a link's exit and entry rates per second, its fixes, its speed, its loops' flow and occupancy; once
// learned, not while a vehicle had held on it for a minute at that bucket's end (a queue that does not move
// is what the baselines are there to tell from normal). A young link learns from whatever it does: one
// where a queue always stands learns the queue as its normal instead of staying young for good.
func (t *Tracker) learn(e int64) {
	idx := evtime.Index(e-1, t.bucketMs)
	for li := range t.active {
		ls := &t.st[li]
		if bk := &ls.b[slot(idx)]; bk.idx == idx && bk.held {
			continue
		}
		s := t.sums(ls, e-t.bucketMs, e)
		exits := countSince(ls.exits, e-t.bucketMs, e)
		if s.fixes == 0 && s.loops == 0 && exits == 0 {
			continue
		}
		ls.exitRate.add(float64(exits) / (float64(t.bucketMs) / 1000))
		ls.entryRate.add(float64(countSince(ls.entries, e-t.bucketMs, e)) / (float64(t.bucketMs) / 1000))
		ls.fixRate.add(s.fixes)
		if s.fixes > 0 {
			ls.speed.add(s.speedSum / s.fixes)
		}
		if s.loops > 0 {
			ls.loopFlow.add(s.flowSum / s.loops)
			ls.loopOcc.add(s.occSum / s.loops)
		}
	}
}

// mainDown is the downstream link most of a link's exits went to (-1: none yet).
func mainDown(l *Link, ls *linkState) int32 {
	best, bn := int32(-1), uint32(0)
	for i, n := range ls.exitTo {
		if n > bn {
			best, bn = l.Down[i], n
		}
	}
	return best
}

// poissonCDF is P(X ≤ k) for X ~ Poisson(lambda).
func poissonCDF(k int, lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	term := math.Exp(-lambda)
	sum := term
	for i := 1; i <= k; i++ {
		term *= lambda / float64(i)
		sum += term
	}
	return math.Min(1, math.Max(sum, 1e-300))
}
