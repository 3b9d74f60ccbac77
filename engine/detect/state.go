package detect

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"
	"sort"
)

// The tracker's state for engine snapshots: a restart from a snapshot and the log after it judges links with
// the baselines, stops and queues the live run had (vehicles included: a queue that stood for three minutes
// before the snapshot has still stood for three minutes after it).

type stateV1 struct {
	DoneTo int64
	// LearnedTo: the bucket end up to which the baselines learned (0 in snapshots from before it: those
	// learned each bucket at its end, so up to DoneTo).
	LearnedTo int64
	Prior     quantileState
	// Pool: how slow the network's traffic usually is (nil in snapshots from before it: learned afresh).
	Pool *historyState
	// SqPool: the network's squeezes per metre by zone (squeeze.go; none in older snapshots: learned afresh).
	SqPool []ewmaState
	// SqPassN, SqPassM: the network's squeezes and metres passed by zone (squeeze.go; none in older snapshots).
	SqPassN, SqPassM []ewmaState
	Vehicles         []vehicleState
	Links            []linkStateV1
	Pending          []fixState
	Loops            []loopState
}

type quantileState struct{ Q, Est, N float64 }

type historyState struct {
	Slow []float64
	N    float64
}

type ewmaState struct{ Tau, Mean, N float64 }

type vehicleState struct {
	ID                        string
	Link, HoldLink, CandLink  int32
	Off, HoldOff              float32
	LastTS, HoldSince, CandTS int64
	// SlowTS, SlowOff, StoodTS: its last slow and standing fixes on its link (squeeze.go; zero in older
	// snapshots: none).
	SlowTS, StoodTS int64
	SlowOff         float32
}

type holdState struct {
	Vehicle     string
	Since, Last int64
	Off         float32
}

type stopState struct {
	End      int64
	Dur, Off float32
}

type bucketState struct {
	Idx                              int64
	Fixes, Standing, Crawling, Loops uint16
	SpeedSum, FlowSum, OccSum        float32
	HoldMax                          float32
	Held                             bool
	Measured                         bool
	Slow                             float32
}

type linkStateV1 struct {
	Link                                                   int32
	Active                                                 []holdState
	Stops                                                  []stopState
	Exits, Entries                                         []int64
	Buckets                                                []bucketState
	LastTS, FirstTS                                        int64
	ExitRate, EntryRate, FixRate, Speed, LoopFlow, LoopOcc ewmaState
	StopQ                                                  quantileState
	Recent                                                 []posFixState
	ExitTo                                                 []uint32
	// Idle: the link is not among the active ones (no traffic for 15 minutes) but keeps what it learned, as
	// the live tracker keeps it; zero (older snapshots, which saved active links only) means active.
	Idle bool
	// Hist: how slow the link's traffic usually is (nil in older snapshots: learned afresh).
	Hist *historyState
	// Squeezes, SqHist: its recent squeezes and its history of them by offset (squeeze.go; none in older
	// snapshots: learned afresh).
	Squeezes []squeezeState
	SqHist   *squeezeHistState
	// Passes: its vehicles' recent stints (squeeze.go; none in older snapshots).
	Passes []passState
}

type passState struct {
	TS       int64
	From, To float32
	Vehicle  string
}

type squeezeState struct {
	TS      int64
	Off     float32
	Vehicle string
}

type squeezeHistState struct {
	Bins []float32
	Pass []float32 // nil in older snapshots: learned afresh
	N    float64
	BinM float32
}

type posFixState struct {
	TS       int64
	Off, Kmh float32
}

type fixState struct {
	Vehicle string
	TS      int64
	Link    int32
	OffM    float32
	Kmh     float32
}

type loopState struct {
	TS             int64
	Link           int32
	Flow, Occ, Kmh float32
	IntervalMs     int64
}

func (q quantile) state() quantileState    { return quantileState{q.q, q.est, q.n} }
func (s quantileState) quantile() quantile { return quantile{q: s.Q, est: s.Est, n: s.N} }
func (e ewma) state() ewmaState            { return ewmaState{e.tau, e.mean, e.n} }
func (s ewmaState) ewma() ewma             { return ewma{tau: s.Tau, mean: s.Mean, n: s.N} }

func (h *history) state() *historyState {
	if h.n == 0 {
		return nil
	}
	return &historyState{Slow: append([]float64(nil), h.slow[:]...), N: h.n}
}

// history restores a history whose levels are this code's (else it is learned afresh).
func (s *historyState) history() history {
	var h history
	if s == nil || len(s.Slow) != len(h.slow) {
		return h
	}
	copy(h.slow[:], s.Slow)
	h.n = s.N
	return h
}

// MarshalState encodes the tracker's state (dispatcher goroutine, between batches).
func (t *Tracker) MarshalState() ([]byte, error) {
	st := stateV1{DoneTo: t.doneTo, LearnedTo: t.learnedTo, Prior: t.prior.state(), Pool: t.pool.state()}
	for z, p := range t.sqPool {
		st.SqPool = append(st.SqPool, p.state())
		st.SqPassN = append(st.SqPassN, t.sqPassN[z].state())
		st.SqPassM = append(st.SqPassM, t.sqPassM[z].state())
	}
	ids := make([]string, 0, len(t.veh))
	for id := range t.veh {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := t.veh[id]
		st.Vehicles = append(st.Vehicles, vehicleState{ID: id, Link: v.link, HoldLink: v.holdLink, CandLink: v.candLink,
			Off: v.offM, HoldOff: v.holdOff, LastTS: v.lastTS, HoldSince: v.holdSince, CandTS: v.candTS,
			SlowTS: v.slowTS, SlowOff: v.slowOff, StoodTS: v.stoodTS})
	}
	// Every link that ever saw traffic: an idle one (evicted from t.active) keeps its learned state in the live
	// tracker and uses it when traffic comes back, so a restored tracker must have it too.
	var links []int32
	for li := range t.st {
		if _, ok := t.active[int32(li)]; ok || t.st[li].seen() {
			links = append(links, int32(li))
		}
	}
	for _, li := range links {
		ls := &t.st[li]
		_, active := t.active[li]
		x := linkStateV1{Link: li, Idle: !active, Exits: ls.exits, Entries: ls.entries, LastTS: ls.lastTS, FirstTS: ls.firstTS,
			ExitRate: ls.exitRate.state(), EntryRate: ls.entryRate.state(), FixRate: ls.fixRate.state(),
			Speed: ls.speed.state(), LoopFlow: ls.loopFlow.state(), LoopOcc: ls.loopOcc.state(), StopQ: ls.stopQ.state(),
			Hist: ls.hist.state()}
		for _, a := range ls.active {
			x.Active = append(x.Active, holdState{Vehicle: a.vehicle, Since: a.since, Last: a.last, Off: a.offM})
		}
		for _, r := range ls.recent {
			x.Recent = append(x.Recent, posFixState{TS: r.ts, Off: r.offM, Kmh: r.kmh})
		}
		x.ExitTo = ls.exitTo
		for _, q := range ls.squeezes {
			x.Squeezes = append(x.Squeezes, squeezeState{TS: q.ts, Off: q.offM, Vehicle: q.vehicle})
		}
		if h := ls.sqHist; h != nil {
			x.SqHist = &squeezeHistState{Bins: append([]float32(nil), h.bins...), Pass: append([]float32(nil), h.pass...),
				N: h.n, BinM: h.binM}
		}
		for _, p := range ls.passes {
			x.Passes = append(x.Passes, passState{TS: p.ts, From: p.from, To: p.to, Vehicle: p.vehicle})
		}
		for _, s := range ls.stops {
			x.Stops = append(x.Stops, stopState{End: s.end, Dur: s.dur, Off: s.offM})
		}
		for _, b := range ls.b {
			if b.fixes > 0 || b.loops > 0 || b.holdMax > 0 || b.held || b.measured {
				x.Buckets = append(x.Buckets, bucketState{Idx: b.idx, Fixes: b.fixes, Standing: b.standing, Crawling: b.crawling,
					Loops: b.loops, SpeedSum: b.speedSum, FlowSum: b.flowSum, OccSum: b.occSum, HoldMax: b.holdMax, Held: b.held,
					Measured: b.measured, Slow: b.slow})
			}
		}
		st.Links = append(st.Links, x)
	}
	for _, f := range t.pending {
		st.Pending = append(st.Pending, fixState{Vehicle: f.vehicle, TS: f.ts, Link: f.link, OffM: f.offM, Kmh: f.kmh})
	}
	for _, r := range t.loops {
		st.Loops = append(st.Loops, loopState{TS: r.ts, Link: r.link, Flow: r.flow, Occ: r.occ, Kmh: r.kmh, IntervalMs: r.intervalMs})
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("cannot encode the detector's state: %w", err)
	}
	return buf.Bytes(), nil
}

// seen reports whether the link holds anything learned or observed (a link never seen is all zero).
func (ls *linkState) seen() bool {
	return ls.lastTS != 0 || ls.firstTS != 0 || len(ls.active) > 0 || len(ls.stops) > 0 || len(ls.exits) > 0 ||
		len(ls.entries) > 0 || len(ls.recent) > 0 || len(ls.exitTo) > 0 || ls.exitRate.n > 0 || ls.entryRate.n > 0 ||
		ls.fixRate.n > 0 || ls.speed.n > 0 || ls.loopFlow.n > 0 || ls.loopOcc.n > 0 || ls.stopQ.n > 0 || ls.hist.n > 0 ||
		len(ls.squeezes) > 0 || ls.sqHist != nil || len(ls.passes) > 0
}

// RestoreState loads a state MarshalState wrote into a fresh tracker for the same network.
func (t *Tracker) RestoreState(data []byte) error {
	var st stateV1
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("cannot decode the detector's state: %w", err)
	}
	if err := t.checkState(&st); err != nil {
		return fmt.Errorf("cannot restore the detector's state: %w", err)
	}
	t.doneTo, t.learnedTo, t.prior, t.pool = st.DoneTo, st.LearnedTo, st.Prior.quantile(), st.Pool.history()
	if len(st.SqPool) == len(t.sqPool) {
		for z, p := range st.SqPool {
			t.sqPool[z] = p.ewma()
		}
	}
	if len(st.SqPassN) == len(t.sqPassN) && len(st.SqPassM) == len(t.sqPassM) {
		for z := range st.SqPassN {
			t.sqPassN[z], t.sqPassM[z] = st.SqPassN[z].ewma(), st.SqPassM[z].ewma()
		}
	}
	if st.LearnedTo == 0 {
		t.learnedTo = st.DoneTo
	}
	for _, v := range st.Vehicles {
		t.veh[v.ID] = &vehicle{link: v.Link, holdLink: v.HoldLink, candLink: v.CandLink, offM: v.Off, holdOff: v.HoldOff,
			lastTS: v.LastTS, holdSince: v.HoldSince, candTS: v.CandTS,
			slowTS: v.SlowTS, slowOff: v.SlowOff, stoodTS: v.StoodTS}
	}
	for _, x := range st.Links {
		ls := &t.st[x.Link]
		if !x.Idle {
			t.active[x.Link] = struct{}{}
		}
		ls.exits, ls.entries, ls.lastTS, ls.firstTS = x.Exits, x.Entries, x.LastTS, x.FirstTS
		ls.exitRate, ls.entryRate, ls.fixRate = x.ExitRate.ewma(), x.EntryRate.ewma(), x.FixRate.ewma()
		ls.speed, ls.loopFlow, ls.loopOcc, ls.stopQ = x.Speed.ewma(), x.LoopFlow.ewma(), x.LoopOcc.ewma(), x.StopQ.quantile()
		ls.hist = x.Hist.history()
		for _, a := range x.Active {
			ls.active = append(ls.active, hold{vehicle: a.Vehicle, since: a.Since, last: a.Last, offM: a.Off})
		}
		for _, r := range x.Recent {
			ls.recent = append(ls.recent, posFix{ts: r.TS, offM: r.Off, kmh: r.Kmh})
		}
		for _, q := range x.Squeezes {
			ls.squeezes = append(ls.squeezes, squeeze{ts: q.TS, offM: q.Off, vehicle: q.Vehicle})
		}
		if h := x.SqHist; h != nil && h.BinM > 0 {
			if want := newSqueezeHist(t.links[x.Link].LengthM); len(h.Bins) == len(want.bins) && h.BinM == want.binM {
				ls.sqHist = &squeezeHist{bins: h.Bins, pass: h.Pass, n: h.N, binM: h.BinM}
				if len(h.Pass) != len(h.Bins) {
					ls.sqHist.pass = make([]float32, len(h.Bins))
				}
			}
		}
		for _, p := range x.Passes {
			ls.passes = append(ls.passes, pass{ts: p.TS, from: p.From, to: p.To, vehicle: p.Vehicle})
		}
		if len(x.ExitTo) == len(t.links[x.Link].Down) {
			ls.exitTo = x.ExitTo
		}
		for _, s := range x.Stops {
			ls.stops = append(ls.stops, stop{end: s.End, dur: s.Dur, offM: s.Off})
		}
		for _, b := range x.Buckets {
			*t.bucketOf(ls, b.Idx*t.bucketMs) = bucket{idx: b.Idx, fixes: b.Fixes, standing: b.Standing, crawling: b.Crawling,
				loops: b.Loops, speedSum: b.SpeedSum, flowSum: b.FlowSum, occSum: b.OccSum, holdMax: b.HoldMax, held: b.Held,
				measured: b.Measured, slow: b.Slow}
		}
	}
	for i := range t.st {
		t.st[i].bound()
	}
	for _, f := range st.Pending[:min(len(st.Pending), maxPending)] {
		if f.Link >= 0 && int(f.Link) < len(t.links) {
			t.pending = append(t.pending, fix{vehicle: f.Vehicle, ts: f.TS, link: f.Link, offM: f.OffM, kmh: f.Kmh})
		}
	}
	for _, r := range st.Loops[:min(len(st.Loops), maxPending)] {
		if r.Link >= 0 && int(r.Link) < len(t.links) {
			t.loops = append(t.loops, loopReading{ts: r.TS, link: r.Link, flow: r.Flow, occ: r.Occ, kmh: r.Kmh, intervalMs: r.IntervalMs})
		}
	}
	return nil
}

// checkState refuses a state no tracker for this network writes (a snapshot damaged or made by hand), before
// anything is restored: a link outside the network or listed twice, a vehicle on a link outside it, more
// vehicles than a tracker keeps. A restart from it fails with the reason instead of the first fix panicking.
func (t *Tracker) checkState(st *stateV1) error {
	n := int32(len(t.links))
	seen := make(map[int32]bool, len(st.Links))
	for _, l := range st.Links {
		if l.Link < 0 || l.Link >= n {
			return fmt.Errorf("link %d is not in this network of %d links", l.Link, n)
		}
		if seen[l.Link] {
			return fmt.Errorf("link %d is listed twice", l.Link)
		}
		seen[l.Link] = true
	}
	if len(st.Vehicles) > maxVehicles {
		return fmt.Errorf("%d vehicles, more than the %d a tracker keeps", len(st.Vehicles), maxVehicles)
	}
	for _, v := range st.Vehicles {
		for _, li := range [...]int32{v.Link, v.HoldLink, v.CandLink} {
			if li < -1 || li >= n {
				return fmt.Errorf("vehicle %q is on link %d, not in this network of %d links", v.ID, li, n)
			}
		}
	}
	return nil
}

// bound cuts what a link keeps to the limits the live tracker holds it to (the newest kept), so a restored
// link holds no more than a live one ever does.
func (ls *linkState) bound() {
	ls.active = ls.active[:min(len(ls.active), maxHolds)]
	ls.recent = newest(ls.recent, maxRecent)
	ls.stops = newest(ls.stops, eventsKept)
	ls.exits = newest(ls.exits, eventsKept)
	ls.entries = newest(ls.entries, eventsKept)
	ls.squeezes = newest(ls.squeezes, maxSqueezes)
	ls.passes = newest(ls.passes, maxPasses)
}

// newest is the last n of s.
func newest[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return slices.Clone(s[len(s)-n:])
}
