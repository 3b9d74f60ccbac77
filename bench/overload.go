package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Overload is the sustained overload run: a process with a memory budget well under what the offered load
// would hold, driven as fast as the harness can send, event time running ahead of the wall clock so that the
// raw retention, not just the doors, has to give way.
type Overload struct {
	LimitBytes       int64   `json:"memory_limit_bytes"`
	Seconds          float64 `json:"seconds"`
	EventTimeSpanS   float64 `json:"event_time_span_s"`
	Concurrency      int     `json:"concurrency"`
	OfferedBatches   uint64  `json:"offered_batches"`
	RefusedBatches   uint64  `json:"refused_batches_429"`
	OtherErrors      uint64  `json:"other_errors"`
	Accepted         uint64  `json:"accepted_events"`
	Reflected        uint64  `json:"reflected_events"`
	Lost             int64   `json:"acknowledged_not_reflected"`
	AcceptedPerSec   float64 `json:"accepted_per_s"`
	RSSStart         uint64  `json:"rss_start_bytes"`
	RSSMax           uint64  `json:"rss_max_bytes"`
	RSSEnd           uint64  `json:"rss_end_bytes"`
	RSSLastQuarterLo uint64  `json:"rss_last_quarter_min_bytes"`
	RSSLastQuarterHi uint64  `json:"rss_last_quarter_max_bytes"`
	RetentionS       float64 `json:"retention_in_force_s"`
	RetentionConfS   float64 `json:"retention_configured_s"`
	FirstOther       string  `json:"first_other_error,omitempty"`
	OK               bool    `json:"ok"`
	// Trace is the memory over the run, a point a second: what made the peak.
	Trace []OverloadPoint `json:"trace,omitempty"`
}

// OverloadPoint is one look at the process under overload (MiB; raw: retained raw events and their bytes).
type OverloadPoint struct {
	At          float64 `json:"t_s"`
	RSS         float64 `json:"rss_mib"`
	GoLive      float64 `json:"go_heap_live_mib"`
	GoObjects   float64 `json:"go_heap_objects_mib"`
	GoFree      float64 `json:"go_heap_free_mib"`
	GoOther     float64 `json:"go_other_mib"`
	RawEvents   int64   `json:"raw_events"`
	RawMiB      float64 `json:"raw_mib"`
	RetentionS  float64 `json:"retention_s"`
	SlowDown    bool    `json:"slow_down"`
	Backlog     uint64  `json:"backlog_messages"`
	AcceptedSum uint64  `json:"accepted_events"`
}

// overload runs the process under a memory budget of its idle RSS + 256 MiB (short: + 96 MiB) with HTTP
// Arrow at 8 batches in flight for 60 s (short: 6 s; Config.OverloadFor), event time advancing 15 minutes
// (or the run's length when longer) over the run. OK when
// RSS stayed under the budget (+5 %), and every acknowledged event was reflected.
func (r *runner) overload(ctx context.Context) error {
	dur, head, conc := 60*time.Second, int64(256<<20), 8
	if r.cfg.Short {
		dur, head, conc = 6*time.Second, int64(96<<20), 4
	}
	if r.cfg.OverloadFor > 0 {
		dur = r.cfg.OverloadFor
	}
	span := max(15*time.Minute, dur)
	ab, err := arrowBatches(r.city, 8, arrowBatchEvents, r.baseRes, 1000, 70)
	if err != nil {
		return err
	}
	// The budget comes from an idle process's RSS: a first start measures it.
	probe, err := r.newTarget(ctx, "overload-probe", runOpts{})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	idle := int64(probe.rss())
	r.dispose(probe)
	ov := &Overload{LimitBytes: idle + head, EventTimeSpanS: span.Seconds(), Concurrency: conc}
	r.rep.Overload = ov
	t, err := r.newTarget(ctx, "overload", runOpts{MemoryLimit: ov.LimitBytes})
	if err != nil {
		return err
	}
	defer r.dispose(t)
	st0, err := t.status(ctx)
	if err != nil {
		return err
	}
	ov.RSSStart = t.rss()
	snd := newHTTPSender(t, conc)
	defer snd.close()
	r.logf("overload: budget %d MiB (idle %d MiB), %d in flight for %s, %s of event time", ov.LimitBytes>>20, idle>>20, conc, dur, span)

	type sample struct {
		at  time.Duration
		rss uint64
	}
	var samples []sample
	var smu sync.Mutex
	var accepted, offered, refused, other atomic.Uint64
	start := time.Now()
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-sctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			at, rss := time.Since(start), t.rss()
			smu.Lock()
			samples = append(samples, sample{at, rss})
			smu.Unlock()
			if i%4 == 3 { // a point of the trace a second
				if st, err := t.status(sctx); err == nil {
					const mib = 1 << 20
					m := st.Memory
					ov.Trace = append(ov.Trace, OverloadPoint{At: at.Seconds(), RSS: float64(rss) / mib,
						GoLive: float64(m.GoHeapLive) / mib, GoObjects: float64(m.GoHeapObjects) / mib,
						GoFree: float64(m.GoHeapFree) / mib, GoOther: float64(m.GoOther) / mib,
						RawEvents: st.Raw.Events, RawMiB: float64(st.Raw.Bytes) / mib, RetentionS: st.Raw.RetentionS,
						SlowDown: m.SlowDown, Backlog: m.Backlog, AcceptedSum: accepted.Load()})
				}
			}
		}
	}()
	t0 := start.Add(-span).UnixMilli()
	var firstOther atomic.Pointer[string]
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		mine := []*batch{ab[g%len(ab)].clone(), ab[(g+1)%len(ab)].clone()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil && i < 10_000_000; i++ {
				b := mine[i%len(mine)]
				// Event time: the run's share of the span, so 15 minutes pass over the run.
				el := time.Since(start)
				b.stamp(t0 + int64(float64(span.Milliseconds())*float64(el)/float64(dur)))
				offered.Add(1)
				a, err := snd.send(ctx, b)
				switch {
				case err == nil:
					accepted.Add(uint64(a))
				case strings.Contains(err.Error(), "HTTP 429"):
					refused.Add(1)
					time.Sleep(100 * time.Millisecond) // a producer honouring Retry-After would wait longer
				default:
					other.Add(1)
					s := err.Error()
					firstOther.CompareAndSwap(nil, &s)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	r.heapProfile("overload-loaded")
	ov.Seconds = time.Since(start).Seconds()
	stopSampler()
	<-samplerDone
	ov.OfferedBatches, ov.RefusedBatches, ov.OtherErrors, ov.Accepted = offered.Load(), refused.Load(), other.Load(), accepted.Load()
	if p := firstOther.Load(); p != nil {
		ov.FirstOther = *p
	}
	ov.AcceptedPerSec = float64(ov.Accepted) / ov.Seconds
	st, _, werr := t.waitReflected(ctx, st0.EventsReflected+ov.Accepted, 3*time.Minute)
	ov.Reflected = st.EventsReflected - st0.EventsReflected
	ov.Lost = int64(ov.Accepted) - int64(ov.Reflected)
	ov.RSSEnd = t.rss()
	for _, s := range samples {
		ov.RSSMax = max(ov.RSSMax, s.rss)
		if s.at >= time.Duration(float64(dur)*0.75) {
			if ov.RSSLastQuarterLo == 0 || s.rss < ov.RSSLastQuarterLo {
				ov.RSSLastQuarterLo = s.rss
			}
			ov.RSSLastQuarterHi = max(ov.RSSLastQuarterHi, s.rss)
		}
	}
	ov.RSSMax = max(ov.RSSMax, ov.RSSEnd)
	ov.RetentionS, ov.RetentionConfS = st.Raw.RetentionS, st.Raw.RetentionConfiguredS
	ov.OK = werr == nil && ov.Lost <= 0 && float64(ov.RSSMax) <= 1.05*float64(ov.LimitBytes)
	r.logf("overload: accepted %d (%.0f/s), refused %d of %d batches, RSS %d → max %d MiB (budget %d), retention %.0fs of %.0fs, lost %d",
		ov.Accepted, ov.AcceptedPerSec, ov.RefusedBatches, ov.OfferedBatches, ov.RSSStart>>20, ov.RSSMax>>20, ov.LimitBytes>>20,
		ov.RetentionS, ov.RetentionConfS, ov.Lost)
	if werr != nil {
		return fmt.Errorf("overload: %w", werr)
	}
	return nil
}
