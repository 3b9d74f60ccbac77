package bench

import (
	"context"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// percentile returns the q-quantile (0..1) of xs (sorted in place); 0 for none.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	if !sort.Float64sAreSorted(xs) {
		sort.Float64s(xs)
	}
	i := int(q*float64(len(xs)-1) + 0.5)
	return xs[min(max(i, 0), len(xs)-1)]
}

// IngestStep is one closed-loop load step: conc requests in flight for a bounded time.
type IngestStep struct {
	Concurrency     int     `json:"concurrency"`
	Seconds         float64 `json:"seconds"`
	Batches         int     `json:"batches"`
	Accepted        uint64  `json:"accepted"`
	AcceptedPerSec  float64 `json:"accepted_per_s"`
	ReflectedPerSec float64 `json:"reflected_per_s"` // slope of events_reflected while sending
	PipelinePerSec  float64 `json:"pipeline_per_s"`  // accepted / (send time + time until all were reflected)
	DrainSeconds    float64 `json:"drain_s"`         // after the last answer, until every accepted event was reflected
	ReqP50Ms        float64 `json:"request_p50_ms"`
	ReqP99Ms        float64 `json:"request_p99_ms"`
	RSSBytes        uint64  `json:"rss_bytes"`
	ServerCores     float64 `json:"server_cpu_cores"`  // server CPU seconds per wall second
	HarnessCores    float64 `json:"harness_cpu_cores"` // the load generator's own CPU on the same machine
	Errors          int     `json:"errors"`
	FirstError      string  `json:"first_error,omitempty"`
}

// driveResult is what one drive measured.
type driveResult struct {
	IngestStep
	reflectedAtStart uint64
}

// drive runs conc senders for at most dur (and at most maxBatches batches), stamping every batch with
// tsFn(batch number) before it goes, then waits for the engine to reflect what was accepted.
func (r *runner) drive(ctx context.Context, t *target, snd sender, tmpl []*batch, conc int, dur time.Duration, maxBatches int64, tsFn func(n int64) int64) driveResult {
	st0, _ := t.status(ctx)
	cpu0, self0 := t.cpu(), procCPU(os.Getpid())
	var res driveResult
	res.Concurrency, res.reflectedAtStart = conc, st0.EventsReflected

	var n atomic.Int64
	var accepted atomic.Uint64
	var mu sync.Mutex
	var lat []float64
	var errs int
	var firstErr string
	type sample struct {
		at   time.Time
		refl uint64
	}
	var samples []sample
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for i := 0; i < 100000; i++ {
			select {
			case <-sctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			if st, err := t.status(sctx); err == nil {
				samples = append(samples, sample{time.Now(), st.EventsReflected})
			}
		}
	}()

	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		mine := make([]*batch, 0, 4)
		for j := 0; j < min(4, len(tmpl)); j++ {
			mine = append(mine, tmpl[(g+j)%len(tmpl)].clone())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []float64
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				k := n.Add(1)
				if k > maxBatches {
					break
				}
				b := mine[i%len(mine)]
				b.stamp(tsFn(k))
				t0 := time.Now()
				a, err := snd.send(ctx, b)
				local = append(local, float64(time.Since(t0).Microseconds())/1000)
				if err != nil {
					mu.Lock()
					if errs == 0 {
						firstErr = err.Error()
					}
					errs++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
					continue
				}
				accepted.Add(uint64(a))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sendEnd := time.Now()
	stopSampler()
	<-samplerDone
	sendDur := sendEnd.Sub(start).Seconds()
	res.Seconds = sendDur
	res.Batches = len(lat)
	res.Accepted = accepted.Load()
	res.AcceptedPerSec = float64(res.Accepted) / sendDur
	res.ReqP50Ms, res.ReqP99Ms = percentile(lat, 0.5), percentile(lat, 0.99)
	res.Errors, res.FirstError = errs, firstErr

	_, doneAt, err := t.waitReflected(ctx, st0.EventsReflected+res.Accepted, 3*time.Minute)
	if err != nil && res.FirstError == "" {
		res.Errors++
		res.FirstError = err.Error()
	}
	res.DrainSeconds = doneAt.Sub(sendEnd).Seconds()
	// Status is refreshed once per engine tick: up to one tick of the drain is that refresh, not a backlog.
	busy := sendDur + max(res.DrainSeconds-r.tick.Seconds(), 0)
	res.PipelinePerSec = float64(res.Accepted) / busy
	res.ServerCores = (t.cpu() - cpu0).Seconds() / doneAt.Sub(start).Seconds()
	if !r.cfg.InProcess {
		res.HarnessCores = (procCPU(os.Getpid()) - self0).Seconds() / doneAt.Sub(start).Seconds()
	}
	res.RSSBytes = t.rss()
	// The reflected rate while sending, over the samples after a warm-up of a third of the step.
	var first, last *sample
	for i := range samples {
		s := &samples[i]
		if s.at.Sub(start) < time.Duration(float64(sendEnd.Sub(start))/3) {
			continue
		}
		if first == nil {
			first = s
		}
		last = s
	}
	if first != nil && last != nil && last.at.Sub(first.at) > 800*time.Millisecond {
		res.ReflectedPerSec = float64(last.refl-first.refl) / last.at.Sub(first.at).Seconds()
	} else {
		res.ReflectedPerSec = res.PipelinePerSec
	}
	return res
}

// paced sends batches open-loop at rate events/s for dur through up to workers senders in flight; a batch
// that finds every worker busy is skipped and counted as behind. It returns the events offered, accepted and
// skipped.
func paced(ctx context.Context, snd sender, tmpl []*batch, rate float64, dur time.Duration, workers int) (offered, acc, behind uint64, firstErr error) {
	per := tmpl[0].N
	interval := time.Duration(float64(per) / rate * float64(time.Second))
	work := make(chan *batch, workers)
	var wg sync.WaitGroup
	var accepted atomic.Uint64
	var errOnce sync.Once
	free := make(chan *batch, workers*2)
	for i := 0; i < workers*2; i++ {
		free <- tmpl[i%len(tmpl)].clone()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				a, err := snd.send(ctx, b)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
				accepted.Add(uint64(a))
				free <- b
			}
		}()
	}
	start := time.Now()
	next := start
	for i := 0; i < 10_000_000 && time.Since(start) < dur && ctx.Err() == nil; i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		select {
		case b := <-free:
			b.stamp(time.Now().UnixMilli())
			select {
			case work <- b:
				offered += uint64(b.N)
			default:
				free <- b
				behind += uint64(per)
			}
		default:
			behind += uint64(per)
		}
	}
	close(work)
	wg.Wait()
	return offered, accepted.Load(), behind, firstErr
}
