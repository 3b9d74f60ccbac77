package engine

import (
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// The event clock (newest event time, and the watermark behind it) never jumps far ahead on the word of one
// source: an event more than Config.MaxClockJump ahead of the clock moves it only once events that far ahead
// have come from MinJumpSources distinct ids (in one batch or over several). Until then such events are
// counted (Status.Ahead), kept in the log, and left out of the windows and the registry, so one forged or
// misclocked device cannot make every real event late. A real jump (the city's feeds back after an outage)
// has many sources and passes at once. The rule depends only on the order of the log, so live runs,
// restarts and replays agree.
const (
	DefaultMaxClockJump = 10 * time.Minute
	MinJumpSources      = 3
	maxAheadSources     = 64 // distinct ids remembered while a jump is unconfirmed
)

// clockGuard is the dispatcher's state of the rule above.
type clockGuard struct {
	maxJump int64            // ms
	ahead   map[string]int64 // id → its newest event time seen far ahead, while unconfirmed
}

// judge returns which rows of rec may move the clock and enter the windows: nil when all may, else the rows
// to keep. now is the clock before the batch (minTime: no clock yet, every row passes). Sources confirm a
// jump together only when their claims agree (lie within maxJump of each other), so a claim of 2199 does
// not help an hour's real jump, nor the other way round.
func (g *clockGuard) judge(rec arrow.Record, now int64) []int {
	if now == minTime || g.maxJump <= 0 {
		return nil
	}
	ts := rec.Column(ColTS).(*array.Timestamp)
	limit := now + g.maxJump
	for id, t := range g.ahead { // claims the clock has caught up with are no longer a jump
		if t <= limit {
			delete(g.ahead, id)
		}
	}
	far := false
	for i := 0; i < ts.Len(); i++ {
		if int64(ts.Value(i)) > limit {
			far = true
			break
		}
	}
	if !far {
		return nil
	}
	ids := rec.Column(ColID).(*array.String)
	for i := 0; i < ts.Len(); i++ {
		if t := int64(ts.Value(i)); t > limit {
			g.claim(ids.Value(i), t)
		}
	}
	allowed := limit
	if lo, hi, n := g.agreeing(); n >= MinJumpSources {
		allowed = hi // confirmed: the clock may move up to the newest of the agreeing claims
		for id, t := range g.ahead {
			if t >= lo && t <= hi {
				delete(g.ahead, id)
			}
		}
	}
	keep := make([]int, 0, ts.Len())
	for i := 0; i < ts.Len(); i++ {
		if int64(ts.Value(i)) <= allowed {
			keep = append(keep, i)
		}
	}
	if len(keep) == ts.Len() {
		return nil
	}
	return keep
}

// claim records that id says the time is t. The set is bounded: when full, the claim farthest ahead goes
// (a flood of ids from the far future cannot crowd out the sources of a real jump).
func (g *clockGuard) claim(id string, t int64) {
	if old, ok := g.ahead[id]; ok {
		g.ahead[id] = max(old, t)
		return
	}
	if len(g.ahead) >= maxAheadSources {
		far, farT := "", int64(minTime)
		for k, v := range g.ahead {
			if v > farT || v == farT && k > far {
				far, farT = k, v
			}
		}
		if farT <= t {
			return
		}
		delete(g.ahead, far)
	}
	g.ahead[schema.CloneStr(id)] = t
}

// agreeing returns the largest group of claims within maxJump of each other: its oldest and newest claim
// and its size.
func (g *clockGuard) agreeing() (lo, hi int64, n int) {
	times := make([]int64, 0, len(g.ahead))
	for _, t := range g.ahead {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	for i, j := 0, 0; j < len(times); j++ {
		for times[j]-times[i] > g.maxJump {
			i++
		}
		if j-i+1 > n {
			lo, hi, n = times[i], times[j], j-i+1
		}
	}
	return lo, hi, n
}

// state returns the unconfirmed claims, sorted, for snapshots.
func (g *clockGuard) state() []aheadClaim {
	out := make([]aheadClaim, 0, len(g.ahead))
	for id, t := range g.ahead {
		out = append(out, aheadClaim{ID: id, TS: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (g *clockGuard) restore(claims []aheadClaim) {
	clear(g.ahead)
	for _, c := range claims {
		g.ahead[c.ID] = c.TS
	}
}

// aheadClaim is one source's unconfirmed claim that the clock is far ahead (snapshot state).
type aheadClaim struct {
	ID string `json:"id"`
	TS int64  `json:"ts"`
}

// takeRows returns a new record of the given rows of rec (the caller releases it).
func (e *Engine) takeRows(rec arrow.Record, rows []int) arrow.Record {
	bb := schema.NewBatchBuilder(e.cfg.Mem)
	defer bb.Release()
	for _, i := range rows {
		bb.AppendRow(rec, i)
	}
	return bb.NewRecord()
}
