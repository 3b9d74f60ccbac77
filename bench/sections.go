package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/natsin"
	"citybrain/system"
)

const (
	jsonBatchEvents  = 2000
	arrowBatchEvents = 5000
)

// cpuLoop runs fn on GOMAXPROCS goroutines for dur and returns the events/s they report in total.
func cpuLoop(dur time.Duration, fn func(g, i int) int) (float64, int) {
	g := runtime.GOMAXPROCS(0)
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000_000 && time.Now().Before(deadline); i++ {
				total.Add(int64(fn(k, i)))
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), g
}

// floors measures the reference rates.
func (r *runner) floors(ctx context.Context) error {
	dur := 3 * time.Second
	if r.cfg.Short {
		dur = 500 * time.Millisecond
	}
	jb := jsonBatches(r.city, 8, jsonBatchEvents, 1000, 3)
	ab, err := arrowBatches(r.city, 8, arrowBatchEvents, r.baseRes, 1000, 4)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	for _, b := range append(append([]*batch(nil), jb...), ab...) {
		b.stamp(now)
	}
	f := &r.rep.Floors
	f.JSONDecode, f.Goroutines = cpuLoop(dur, func(g, i int) int {
		n := 0
		ingest.DecodeLines(jb[(g+i)%len(jb)].Data, func(_ int, _ []byte, _ engine.Event, err error) {
			if err == nil {
				n++
			}
		})
		return n
	})
	evs := r.city.Events
	f.H3Cell, _ = cpuLoop(dur, func(g, i int) int {
		for k := 0; k < 1000; k++ {
			e := &evs[(i*1000+k+g*7919)%len(evs)]
			geo.CellOf(e.Lat, e.Lng, r.baseRes)
		}
		return 1000
	})
	f.ArrowDecode, _ = cpuLoop(dur, func(g, i int) int {
		n := 0
		var ev engine.Event
		eventlog.DecodeRecords(ab[(g+i)%len(ab)].Data, func(rec arrow.Record) error {
			for row := 0; row < int(rec.NumRows()); row++ {
				engine.ReadEvent(rec, row, &ev)
			}
			n += int(rec.NumRows())
			return nil
		})
		return n
	})
	t, err := r.newTarget(ctx, "floors", runOpts{})
	if err != nil {
		return err
	}
	defer r.dispose(t)
	if f.NATSPubSubJSON, err = natsFloor(ctx, t, jb, dur); err != nil {
		return err
	}
	if f.NATSPubSubArrow, err = natsFloor(ctx, t, ab, dur); err != nil {
		return err
	}
	return nil
}

// natsFloor publishes the batches to a plain subject of the target's NATS server for dur and returns the
// events/s that reached a subscriber on another connection. Feeds may only publish to citybrain.in.> and
// read their answers (docs/security.md), so both connections present the installation's admin token (the
// one written under --data without an auth config): the same server, the same authenticated connections,
// with no permission that narrows the subject.
func natsFloor(ctx context.Context, t *target, bs []*batch, dur time.Duration) (float64, error) {
	tok, err := os.ReadFile(filepath.Join(t.dataDir, "admin.token"))
	if err != nil {
		return 0, fmt.Errorf("cannot read the target's admin token (the NATS floor needs a subject of its own): %w", err)
	}
	auth := nats.Token(strings.TrimSpace(string(tok)))
	sub, err := nats.Connect(t.natsURL, nats.Name("bench-floor-sub"), nats.MaxReconnects(0), auth)
	if err != nil {
		return 0, fmt.Errorf("cannot connect to NATS at %s: %w", t.natsURL, err)
	}
	defer sub.Close()
	pub, err := nats.Connect(t.natsURL, nats.Name("bench-floor-pub"), nats.MaxReconnects(0), auth)
	if err != nil {
		return 0, fmt.Errorf("cannot connect to NATS at %s: %w", t.natsURL, err)
	}
	defer pub.Close()
	var got atomic.Int64
	var last atomic.Int64
	s, err := sub.Subscribe("bench.floor", func(m *nats.Msg) {
		got.Add(int64(bs[0].N))
		last.Store(time.Now().UnixNano())
	})
	if err != nil {
		return 0, fmt.Errorf("cannot subscribe to bench.floor: %w", err)
	}
	s.SetPendingLimits(1<<16, 1<<30)
	if err := sub.Flush(); err != nil {
		return 0, fmt.Errorf("cannot flush NATS subscription: %w", err)
	}
	start := time.Now()
	sent := int64(0)
	for i := 0; i < 10_000_000 && time.Since(start) < dur && ctx.Err() == nil; i++ {
		if err := pub.Publish("bench.floor", bs[i%len(bs)].Data); err != nil {
			return 0, fmt.Errorf("cannot publish to bench.floor: %w", err)
		}
		sent += int64(bs[0].N)
		if i%8 == 7 {
			if err := pub.Flush(); err != nil {
				return 0, fmt.Errorf("cannot flush NATS publisher: %w", err)
			}
		}
	}
	pub.Flush()
	for i := 0; i < 500 && got.Load() < sent; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	end := time.Unix(0, last.Load())
	if got.Load() == 0 || !end.After(start) {
		return 0, fmt.Errorf("cannot measure NATS floor: nothing arrived (sent %d events)", sent)
	}
	return float64(got.Load()) / end.Sub(start).Seconds(), nil
}

// ingest measures each ingest path on a fresh process with growing concurrency.
func (r *runner) ingest(ctx context.Context) error {
	steps := []int{1, 2, 4, 8, 16}
	if r.cfg.Short {
		steps = []int{2}
	}
	jb := jsonBatches(r.city, 8, jsonBatchEvents, 2000, 5)
	ab, err := arrowBatches(r.city, 8, arrowBatchEvents, r.baseRes, 2000, 6)
	if err != nil {
		return err
	}
	paths := []struct {
		name    string
		arrow   bool
		subject string // "" : HTTP
		target  float64
	}{
		{"HTTP NDJSON", false, "", 0},
		{"NATS JSON", false, natsin.SubjectBatch, 700_000},
		{"HTTP Arrow", true, "", 2_000_000},
		{"NATS Arrow", true, natsin.SubjectArrow, 2_000_000},
	}
	var errs []error
	for _, p := range paths {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(r.cfg.IngestPaths) > 0 && !slices.ContainsFunc(r.cfg.IngestPaths, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), p.name) }) {
			continue
		}
		res, err := r.ingestPath(ctx, p.name, p.arrow, p.subject, steps, jb, ab)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			continue
		}
		res.Target = p.target
		r.rep.Ingest = append(r.rep.Ingest, res)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cannot measure every path: %v", errs)
	}
	return nil
}

func (r *runner) ingestPath(ctx context.Context, name string, arrowPath bool, subject string, steps []int, jb, ab []*batch) (IngestPath, error) {
	res := IngestPath{Path: name, BatchEvents: jsonBatchEvents}
	tmpl := jb
	if arrowPath {
		tmpl, res.BatchEvents = ab, arrowBatchEvents
	}
	t, err := r.newTarget(ctx, "ingest", runOpts{})
	if err != nil {
		return res, err
	}
	defer r.dispose(t)
	var snd sender
	if subject == "" {
		snd = newHTTPSender(t, steps[len(steps)-1])
	} else {
		ns, err := newNATSSender(t, subject)
		if err != nil {
			return res, err
		}
		snd = ns
	}
	defer snd.close()
	now := func(int64) int64 { return time.Now().UnixMilli() }
	for _, c := range steps {
		r.logf("ingest %s: concurrency %d for %s", name, c, r.cfg.Duration)
		d := r.drive(ctx, t, snd, tmpl, c, r.cfg.Duration, 2_000_000, now)
		res.Steps = append(res.Steps, d.IngestStep)
		r.logf("ingest %s: conc %d accepted %.0f/s pipeline %.0f/s drain %.2fs p99 %.1fms errors %d %s", name, c,
			d.AcceptedPerSec, d.PipelinePerSec, d.DrainSeconds, d.ReqP99Ms, d.Errors, d.FirstError)
	}
	// Sustained: the best pipeline rate of a step without errors or backlog (steps need not be monotone on a
	// noisy machine). The knee: the step after it, where more concurrency stops paying.
	best := -1
	for i, s := range res.Steps {
		if s.Errors > 0 || (s.DrainSeconds > 1.5 && s.DrainSeconds > 0.2*s.Seconds) {
			continue
		}
		if best < 0 || s.PipelinePerSec > res.Steps[best].PipelinePerSec {
			best = i
		}
	}
	res.Knee = "none within the steps measured"
	if best < 0 {
		for _, s := range res.Steps {
			res.SustainedPerSec = max(res.SustainedPerSec, math.Min(s.PipelinePerSec, s.ReflectedPerSec))
		}
		res.Knee = "no step without errors or backlog: sustained is the best pipeline rate; first error: " + res.Steps[0].FirstError
		return res, nil
	}
	b := res.Steps[best]
	res.SustainedPerSec, res.StableUpTo = b.PipelinePerSec, b.Concurrency
	if best+1 < len(res.Steps) {
		n := res.Steps[best+1]
		var why string
		switch {
		case n.Errors > 0:
			why = "errors: " + n.FirstError
		case n.DrainSeconds > 1.5 && n.DrainSeconds > 0.2*n.Seconds:
			why = fmt.Sprintf("backlog: the engine needed %.1fs after the last answer to reflect what was accepted", n.DrainSeconds)
		default:
			why = fmt.Sprintf("%+.0f%% throughput for ×%.1f p99 request latency", 100*(n.PipelinePerSec/b.PipelinePerSec-1), n.ReqP99Ms/max(b.ReqP99Ms, 0.001))
		}
		res.Knee = fmt.Sprintf("at concurrency %d: %s", n.Concurrency, why)
	}
	return res, nil
}

// sustained is the NATS JSON sustained rate, the reference of the freshness and memory sections.
func (r *runner) sustained() float64 {
	for _, p := range r.rep.Ingest {
		if p.Path == "NATS JSON" && p.SustainedPerSec > 0 {
			return p.SustainedPerSec
		}
	}
	if r.cfg.Short {
		return 20_000
	}
	return 100_000
}

// markerSet is the strip south of the city where only marker events land, one H3 cell per marker slot.
type markerSet struct {
	cells []uint64
	names map[string]int
	lat   []float64
	lng   []float64
	bbox  geo.BBox
}

func newMarkerSet(bb geo.BBox, res, n int) markerSet {
	m := markerSet{names: map[string]int{}}
	lat := bb.MinLat - 0.02
	m.bbox = geo.BBox{MinLng: bb.MinLng - 0.01, MinLat: lat - 0.01, MaxLng: bb.MinLng + 0.2, MaxLat: lat + 0.01}
	for i := 0; i < 10*n && len(m.cells) < n; i++ {
		c, err := geo.CellOf(lat, bb.MinLng+float64(i)*0.0015, res)
		if err != nil {
			continue
		}
		s := geo.CellString(c)
		if _, ok := m.names[s]; ok {
			continue
		}
		clat, clng := geo.Center(c)
		if !m.bbox.Contains(clat, clng) {
			continue
		}
		m.names[s] = len(m.cells)
		m.cells = append(m.cells, c)
		m.lat, m.lng = append(m.lat, clat), append(m.lng, clng)
	}
	return m
}

// freshness measures event time → delta at 10, 50 and 90% of the sustained rate with many clients watching.
func (r *runner) freshness(ctx context.Context) error {
	nClients, nMeasure, dur := 1000, 10, 8*time.Second
	if r.cfg.Short {
		nClients, nMeasure, dur = 50, 3, 2*time.Second
	}
	t, err := r.newTarget(ctx, "freshness", runOpts{})
	if err != nil {
		return err
	}
	defer r.dispose(t)
	ref := r.sustained()
	tick := engine.DefaultConfig().Tick
	fr := &Freshness{Clients: nClients, TickMs: float64(tick.Milliseconds()), SustainedRef: ref}
	r.rep.Freshness = fr

	ms := newMarkerSet(r.city.BBox, r.baseRes, 60)
	if len(ms.cells) < 10 {
		return fmt.Errorf("cannot place marker cells south of %+v", r.city.BBox)
	}
	vps := viewports(nClients-nMeasure, r.city.BBox, r.baseRes, 21)
	for i := 0; i < nMeasure; i++ {
		d := 0.001 * float64(i)
		vps = append(vps, viewport{BBox: [4]float64{ms.bbox.MinLng - d, ms.bbox.MinLat - d, ms.bbox.MaxLng + d, ms.bbox.MaxLat + d}, Res: r.baseRes})
	}
	fr.Viewports = len(vps)
	type key struct {
		cell string
		ts   int64
	}
	var seenMu sync.Mutex
	seen := map[key]time.Time{}
	onCell := func(cell string, updatedAt int64, recv time.Time) {
		if _, ok := ms.names[cell]; !ok {
			return
		}
		seenMu.Lock()
		k := key{cell, updatedAt}
		if _, ok := seen[k]; !ok {
			seen[k] = recv
		}
		seenMu.Unlock()
	}
	// Background clients parse nothing; measuring clients (the last nMeasure viewports) parse cells.
	bg, err := dialClients(ctx, t, vps[:nClients-nMeasure], nClients-nMeasure, 32, nil)
	if err != nil {
		return err
	}
	defer closeClients(bg)
	meas, err := dialClients(ctx, t, vps[nClients-nMeasure:], nMeasure, 8, onCell)
	if err != nil {
		return err
	}
	defer closeClients(meas)
	all := append(append([]*wsClient(nil), bg...), meas...)

	load, err := newNATSSender(t, natsin.SubjectBatch)
	if err != nil {
		return err
	}
	defer load.close()
	mark, err := newNATSSender(t, natsin.SubjectBatch)
	if err != nil {
		return err
	}
	defer mark.close()
	time.Sleep(time.Second)

	for _, pct := range []int{10, 50, 90} {
		rate := ref * float64(pct) / 100
		size := int(min(max(rate/20, 100), jsonBatchEvents))
		tmpl := jsonBatches(r.city, 8, size, 1000, int64(30+pct))
		type sentMarker struct {
			cell string
			ts   int64
		}
		var markers []sentMarker
		mctx, stopMarkers := context.WithCancel(ctx)
		mdone := make(chan struct{})
		go func() {
			defer close(mdone)
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for i := 0; i < 100000; i++ {
				select {
				case <-mctx.Done():
					return
				case <-tk.C:
				}
				k := i % len(ms.cells)
				ev := engine.NewEvent(engine.KindProbe)
				ev.TS, ev.ID, ev.Lat, ev.Lng, ev.SpeedKmh = time.Now().UnixMilli(), fmt.Sprintf("bench-marker-%d", k), ms.lat[k], ms.lng[k], 30
				b := &batch{Data: ingest.AppendJSON(nil, &ev), N: 1}
				if _, err := mark.send(mctx, b); err == nil {
					markers = append(markers, sentMarker{geo.CellString(ms.cells[k]), ev.TS})
				}
			}
		}()
		cpu0, msgs0 := t.cpu(), sumMsgs(all)
		start := time.Now()
		r.logf("freshness: %d%% of %.0f/s (%d-event batches) for %s with %d clients", pct, ref, size, dur, nClients)
		tdone := make(chan *FreshTrace, 1)
		go func() { tdone <- traceTicks(mctx, t) }()
		offered, acc, behind, perr := paced(ctx, load, tmpl, rate, dur, 8)
		stopMarkers()
		<-mdone
		trace := <-tdone
		el := time.Since(start).Seconds()
		time.Sleep(tick + time.Second) // the last markers' deltas
		lvl := FreshLevel{Percent: pct, RatePerSec: float64(offered) / el, AcceptedPerSec: float64(acc) / el,
			BehindPerSec: float64(behind) / el, Markers: len(markers), ServerCores: (t.cpu() - cpu0).Seconds() / el,
			ClientMsgs: sumMsgs(all) - msgs0, Trace: trace}
		var lat []float64
		seenMu.Lock()
		for _, m := range markers {
			if at, ok := seen[key(m)]; ok {
				lat = append(lat, float64(at.Sub(time.UnixMilli(m.ts)).Microseconds())/1000)
			}
		}
		seenMu.Unlock()
		lvl.Seen = len(lat)
		lvl.P50Ms, lvl.P99Ms, lvl.MaxMs = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
		lvl.P99BeyondTick = max(lvl.P99Ms-fr.TickMs, 0)
		fr.Levels = append(fr.Levels, lvl)
		r.logf("freshness: %d%%: accepted %.0f/s, markers %d/%d, p50 %.0f p99 %.0f max %.0f ms", pct, lvl.AcceptedPerSec,
			lvl.Seen, lvl.Markers, lvl.P50Ms, lvl.P99Ms, lvl.MaxMs)
		if tr := lvl.Trace; tr != nil {
			r.logf("freshness: %d%%: engine tick p50/p90/max %.0f/%.0f/%.0f ms, hub %.0f/%.0f/%.0f ms, backlog %.0f/%.0f/%.0f messages (%d samples)",
				pct, tr.EngineTickMs[0], tr.EngineTickMs[1], tr.EngineTickMs[2], tr.HubMs[0], tr.HubMs[1], tr.HubMs[2],
				tr.BacklogMessages[0], tr.BacklogMessages[1], tr.BacklogMessages[2], tr.Samples)
		}
		if perr != nil {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("freshness %d%%: load error: %v", pct, perr))
		}
	}
	for _, c := range all {
		if c.closeErr.Load() != nil {
			fr.Disconnects++
		}
		fr.SeqGaps += c.gaps.Load()
	}
	return nil
}

// allOK reports whether every step met the lag bound.
func allOK(steps []FanoutStep) bool {
	for _, s := range steps {
		if !s.OK {
			return false
		}
	}
	return true
}

func sumMsgs(cs []*wsClient) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.msgs.Load()
	}
	return n
}

// trickle sends small batches stamped with the wall clock every interval until ctx ends, so every engine
// tick changes cells and a delta's `now` is close to the wall clock.
func trickle(ctx context.Context, snd sender, tmpl []*batch, interval time.Duration) {
	mine := tmpl[0].clone()
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for i := 0; i < 10_000_000; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		mine.stamp(time.Now().UnixMilli())
		snd.send(ctx, mine)
	}
}

// fanoutSteps is the fan-out load, for CityBrain and for the peer alike: the client counts up to --clients,
// how long each is measured after its warm-up, and the number of viewports (channels) the clients share.
// A short run measures --clients alone, briefly, on 50 viewports.
func (r *runner) fanoutSteps() (counts []int, dur, warm time.Duration, viewports int) {
	dur, warm, viewports = 15*time.Second, 2*time.Second, 1000
	if r.cfg.Short {
		dur, warm, viewports = 3*time.Second, time.Second, 50
	} else {
		for _, c := range []int{1000, 2500, 5000, 10000} {
			if c < r.cfg.Clients {
				counts = append(counts, c)
			}
		}
	}
	return append(counts, r.cfg.Clients), dur, warm, viewports
}

// fanout measures how many clients get one delta per second with p99 lag under 200 ms.
func (r *runner) fanout(ctx context.Context) error {
	cs, dur, warm, nvp := r.fanoutSteps()
	tick := time.Second
	t, err := r.newTarget(ctx, "fanout", runOpts{Tick: tick})
	if err != nil {
		return err
	}
	defer r.dispose(t)
	fo := &Fanout{TickMs: float64(tick.Milliseconds()), Viewports: nvp,
		Lag: "receipt − the delta's `now` (newest event time; events are stamped with the wall clock every 20 ms)"}
	r.rep.Fanout = fo
	snd, err := newNATSSender(t, natsin.SubjectBatch)
	if err != nil {
		return err
	}
	defer snd.close()
	tctx, stopTrickle := context.WithCancel(ctx)
	tdone := make(chan struct{})
	go func() { defer close(tdone); trickle(tctx, snd, jsonBatches(r.city, 1, 20, 1, 40), 20*time.Millisecond) }()
	defer func() { stopTrickle(); <-tdone }()

	vps := viewports(nvp, r.city.BBox, r.baseRes, 41)
	var clients []*wsClient
	defer func() { closeClients(clients) }()
	for _, n := range cs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.logf("fan-out: %d clients", n)
		more, err := dialClients(ctx, t, vps[len(clients)%len(vps):], n-len(clients), 64, nil)
		clients = append(clients, more...)
		if err != nil {
			return err
		}
		time.Sleep(warm)
		co0, _ := t.metric(ctx, "citybrain_ws_coalesced_total")
		dr0, _ := t.metric(ctx, "citybrain_ws_disconnected_slow_total")
		cpu0, msgs0, self0 := t.cpu(), sumMsgs(clients), procCPU(os.Getpid())
		lags, el := recordLags(clients, dur)
		st := FanoutStep{Clients: n, Seconds: el, Delivered: sumMsgs(clients) - msgs0, RSSBytes: t.rss()}
		var nb, nm uint64
		for _, c := range clients {
			nb, nm = nb+c.bytes.Load(), nm+c.msgs.Load()
		}
		if nm > 0 {
			fo.AvgMessageBytes = float64(nb) / float64(nm)
		}
		cpu := (t.cpu() - cpu0).Seconds()
		st.ServerCores = cpu / el
		if !r.cfg.InProcess {
			st.ClientCores = (procCPU(os.Getpid()) - self0).Seconds() / el
		}
		if st.Delivered > 0 {
			st.CPUPerMsgUs = cpu / float64(st.Delivered) * 1e6
		}
		st.P50LagMs, st.P99LagMs, st.MaxLagMs = percentile(lags, 0.5), percentile(lags, 0.99), percentile(lags, 1)
		co1, _ := t.metric(ctx, "citybrain_ws_coalesced_total")
		dr1, _ := t.metric(ctx, "citybrain_ws_disconnected_slow_total")
		st.Coalesced, st.DroppedSlow = co1-co0, dr1-dr0
		for _, c := range clients {
			if c.closeErr.Load() != nil {
				st.Disconnected++
			}
		}
		st.Connected = len(clients) - st.Disconnected
		st.PerClientHz = float64(st.Delivered) / el / float64(max(st.Connected, 1))
		st.OK = len(lags) > 0 && st.P99LagMs < 200 && st.Disconnected == 0 && st.PerClientHz > 0.8
		fo.Steps = append(fo.Steps, st)
		r.logf("fan-out: %d clients: %.2f Hz each, p99 lag %.0f ms, %.1f µs CPU/msg, disconnected %d", n, st.PerClientHz,
			st.P99LagMs, st.CPUPerMsgUs, st.Disconnected)
		if allOK(fo.Steps) {
			fo.MaxClients = n
		}
		// Go on past a miss to show the curve, but not when it is far off.
		if st.P99LagMs > 1000 || st.Disconnected > 0 || len(lags) == 0 {
			break
		}
	}
	return nil
}

// memory measures RSS per retained raw event and per cell, and (section replay) the catch-up on restart.
func (r *runner) memory(ctx context.Context) error {
	n, span := int64(3_000_000), 600*time.Second
	if r.cfg.Short {
		n, span = 100_000, 60*time.Second
	}
	mm := &Memory{Events: uint64(n), EventTimeSpanSecs: span.Seconds(), SustainedRef: r.sustained()}
	r.rep.Memory = mm
	few := r.city.concentrate(50)
	fb, err := arrowBatches(few, 8, arrowBatchEvents, r.baseRes, 1000, 50)
	if err != nil {
		return err
	}
	nb := n / arrowBatchEvents
	t0 := time.Now().Add(-span).UnixMilli()
	tsFn := func(k int64) int64 { return t0 + k*span.Milliseconds()/nb }
	// fill sends n events to a new target and returns it, its status and its RSS 2 s after they were
	// reflected (burst); when the Go runtime then holds enough beyond its live heap for the governor to give
	// it back once the input is quiet (system.QuietSettle), it returns once the governor did (the target's
	// RSS is then the settled one).
	fill := func(name string, bs []*batch) (*target, status, uint64, error) {
		t, err := r.newTarget(ctx, name, runOpts{})
		if err != nil {
			return nil, status{}, 0, err
		}
		time.Sleep(time.Second)
		if mm.BaselineRSS == 0 {
			mm.BaselineRSS = t.rss()
		}
		if st, err := t.status(ctx); err == nil {
			r.logf("memory: %s: empty: %s", name, memoryParts(t.rss(), st))
		}
		snd := newHTTPSender(t, 4)
		defer snd.close()
		r.logf("memory: %s: %d events over %s of event time", name, n, span)
		d := r.drive(ctx, t, snd, bs, 4, 5*time.Minute, nb, tsFn)
		if d.Errors > 0 {
			return t, status{}, 0, fmt.Errorf("cannot fill %s: %s", name, d.FirstError)
		}
		mm.IngestPerSec = d.PipelinePerSec
		time.Sleep(2 * time.Second)
		burst := t.rss()
		st, err := t.status(ctx)
		if err != nil {
			return t, st, burst, err
		}
		m := st.Memory // what the runtime holds (objects, free, other) beyond its live heap: the governor's test
		if m.GoHeapObjects+m.GoHeapFree+m.GoOther-m.GoHeapLive < system.SettleSlack {
			return t, st, burst, nil // nothing worth giving back
		}
		r.heapProfile(name + "-burst")
		for deadline := time.Now().Add(system.QuietSettle + 10*time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if st2, err := t.status(ctx); err == nil && st2.Memory.Settles > m.Settles {
				mm.Settled = true
				return t, st2, burst, nil
			}
		}
		r.logf("memory: %s: the governor did not give the fill's memory back within %s", name, system.QuietSettle+10*time.Second)
		return t, st, burst, nil
	}
	ta, sta, burst, err := fill("memory-few-cells", fb)
	if ta == nil {
		return err
	}
	if err != nil {
		r.dispose(ta)
		return err
	}
	mm.FewCellsRSS, mm.FewCells, mm.FewCellsBurstRSS = ta.rss(), sta.Cells, burst
	r.logf("memory: memory-few-cells: filled (settled %v): %s", mm.Settled, memoryParts(mm.FewCellsRSS, sta))
	r.heapProfile("memory-filled")
	mm.RawRetained, _ = ta.metric(ctx, "citybrain_engine_raw_events")
	if mm.RawRetained > 0 {
		mm.BytesPerRawEvent = float64(int64(mm.FewCellsRSS)-int64(mm.BaselineRSS)) / mm.RawRetained
		mm.BytesPerRawEventBurst = float64(int64(burst)-int64(mm.BaselineRSS)) / mm.RawRetained
	}
	mm.MeasuredNote = "RSS of the whole process less its baseline, per raw event retained, once the governor gave the fill's transient memory back (settled: the log's expired block caches, the fill's garbage); *_burst: 2 s after the events were reflected, the transient still held"
	if !mm.Settled {
		mm.MeasuredNote = "RSS of the whole process (Go heap with GC headroom, JetStream caches) 2 s after the events were reflected (not settled)"
	}
	accepted := sta.EventsReflected
	// Replay: the engine's catch-up on restart over the same data directory.
	if r.want("replay") || r.cfg.KeepLog != "" {
		if err := ta.stop(); err != nil {
			r.rep.Errors = append(r.rep.Errors, err.Error())
		}
		ta.sys, ta.cmd = nil, nil
		if r.cfg.KeepLog != "" {
			if err := os.RemoveAll(r.cfg.KeepLog); err != nil {
				return fmt.Errorf("cannot keep the log (%s): %w", r.cfg.KeepLog, err)
			}
			if err := os.CopyFS(r.cfg.KeepLog, os.DirFS(ta.dataDir)); err != nil {
				return fmt.Errorf("cannot keep the log (%s): %w", r.cfg.KeepLog, err)
			}
			r.logf("memory: the data directory of %d events is kept in %s", accepted, r.cfg.KeepLog)
		}
	}
	if r.want("replay") {
		var sessions, restarts, servers []*Replay
		for i := range r.replayRuns() {
			if r.cfg.Bin != "" {
				rp, err := r.replaySession(ctx, ta.dataDir, accepted, span)
				if err != nil {
					r.rep.Errors = append(r.rep.Errors, "replay session: "+err.Error())
				} else {
					sessions = append(sessions, rp)
				}
			}
			rp, srv, err := r.replay(ctx, ta.dataDir, accepted, span)
			if err != nil {
				r.rep.Errors = append(r.rep.Errors, "restart catch-up: "+err.Error())
				continue
			}
			restarts = append(restarts, rp)
			if srv != nil {
				servers = append(servers, srv)
			}
			r.logf("replay: run %d of %d", i+1, r.replayRuns())
		}
		r.rep.ReplaySession, r.rep.Replay, r.rep.ReplayServer = medianRun(sessions), medianRun(restarts), medianRun(servers)
	}
	r.dispose(ta)
	if !r.want("memory") {
		r.rep.Memory = nil
		return nil
	}
	// Many cells: the same mix at uniform random points of a 1.5° square around the city (about as many
	// cells as positions).
	mb, err := arrowBatches(r.city.spread(1.5, 52), 40, arrowBatchEvents, r.baseRes, 1000, 51)
	if err != nil {
		return err
	}
	tb, stb, burst, err := fill("memory-many-cells", mb)
	if tb != nil {
		mm.ManyCellsRSS, mm.ManyCells, mm.ManyCellsBurstRSS = tb.rss(), stb.Cells, burst
		r.dispose(tb)
	}
	if err != nil {
		mm.ManyCellsIngestErr = err.Error()
		return err
	}
	if mm.ManyCells-mm.FewCells > 1000 {
		mm.BytesPerCell = float64(int64(mm.ManyCellsRSS)-int64(mm.FewCellsRSS)) / float64(mm.ManyCells-mm.FewCells)
	}
	transient := max(0, float64(mm.FewCellsBurstRSS)-float64(mm.FewCellsRSS))
	mm.Projected15MinRSS = float64(mm.BaselineRSS) + transient + mm.BytesPerRawEvent*mm.SustainedRef*900 + mm.BytesPerCell*float64(mm.ManyCells)
	mm.ProjectionFormula = "baseline + the fill's transient memory (right after the fill less settled) + bytes/raw event × sustained NATS JSON rate × 900 s + bytes/cell × cells of the city (not run for 15 minutes: a projection)"
	return nil
}

// memoryParts says what a target's RSS is made of, as its status splits it (MiB).
func memoryParts(rss uint64, st status) string {
	const mib = 1 << 20
	m := st.Memory
	return fmt.Sprintf("RSS %.1f MiB: Go live %.1f, objects %.1f, free %.1f, other %.1f; raw %d events in %.1f MiB",
		float64(rss)/mib, float64(m.GoHeapLive)/mib, float64(m.GoHeapObjects)/mib, float64(m.GoHeapFree)/mib,
		float64(m.GoOther)/mib, st.Raw.Events, float64(st.Raw.Bytes)/mib)
}

var replayReads = regexp.MustCompile(`replay reads ([^\n]*)`)

var replayFinished = regexp.MustCompile(`replay finished: (\d+) events in \d+ batches.*; ([0-9.]+) events/s, ([0-9.]+)× real time over ([0-9.]+)s`)

// replayRuns is how many times each replay measure runs.
func (r *runner) replayRuns() int {
	switch {
	case r.cfg.ReplayRuns > 0:
		return r.cfg.ReplayRuns
	case r.cfg.Short:
		return 1
	}
	return 3
}

// replaySession runs `citybrain replay --data dir --speed 0 --warmup 0` (a replay session over the whole
// recorded log, as fast as it goes, printing its own measured speed) and times it from outside too.
func (r *runner) replaySession(ctx context.Context, dir string, n uint64, span time.Duration) (*Replay, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, r.cfg.Bin, "replay", "--data", dir, "--speed", "0", "--warmup", "0")
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("cannot run %s replay (%v): %s", r.cfg.Bin, err, tail(string(out)))
	}
	m := replayFinished.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("cannot find the replay's summary in its output: %s", tail(string(out)))
	}
	ev, _ := strconv.ParseUint(string(m[1]), 10, 64)
	eps, _ := strconv.ParseFloat(string(m[2]), 64)
	rt, _ := strconv.ParseFloat(string(m[3]), 64)
	played, _ := strconv.ParseFloat(string(m[4]), 64)
	kind := "offline replay session (citybrain replay --data)"
	if m := replayReads.FindSubmatch(out); m != nil {
		kind += ", reads " + string(m[1])
	}
	rp := &Replay{Kind: kind, Events: ev,
		EventTimeSpan: span.Seconds(), StartupSeconds: wall.Seconds() - played, CatchUpSeconds: played, EventsPerSec: eps,
		RealTimeFactor: rt, WallEventsPerSec: float64(ev) / wall.Seconds()}
	if ev != n {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("replay session played %d events, the log holds %d", ev, n))
	}
	return rp, nil
}

// replay restarts a process on dir and times its catch-up to n events, then a replay session on it through
// its API (srv: nil when that failed, its error in the report).
func (r *runner) replay(ctx context.Context, dir string, n uint64, span time.Duration) (rp, srv *Replay, err error) {
	rp = &Replay{Kind: "restart of citybrain run until caught up (snapshot + log tail)", Events: n, EventTimeSpan: span.Seconds()}
	start := time.Now()
	t, err := r.startTarget(ctx, dir, runOpts{})
	if err != nil {
		return nil, nil, err
	}
	defer t.stop()
	up := time.Now()
	rp.StartupSeconds = up.Sub(start).Seconds()
	deadline := up.Add(5 * time.Minute)
	for {
		st, err := t.status(ctx)
		if err == nil && st.CaughtUp && st.EventsReflected >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("cannot see the restart catch up within 5 minutes (reflected %d of %d)", st.EventsReflected, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := time.Now()
	rp.CatchUpSeconds = done.Sub(start).Seconds()
	rp.EventsPerSec = float64(n) / rp.CatchUpSeconds
	rp.RealTimeFactor = span.Seconds() / rp.CatchUpSeconds
	rp.RSSAfterCatchUp = t.rss()
	// The replay session a planner starts in the command center: through the running server's API, its
	// reader on the log through the server.
	srv, err = r.replayOverServer(ctx, t, n, span)
	if err != nil {
		r.rep.Errors = append(r.rep.Errors, "replay session over the server: "+err.Error())
	}
	return rp, srv, nil
}

// traceTicks samples the target's last tick (engine and hub parts) and the engine's backlog every 100 ms
// until ctx ends, and summarises them (nil without a sample).
func traceTicks(ctx context.Context, t *target) *FreshTrace {
	const engineTick, hub = "citybrain_engine_tick_seconds", `citybrain_tick_seconds{part="hub"}`
	var eng, hubs, backlog []float64
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			if len(eng) == 0 {
				return nil
			}
			sum := func(x []float64) [3]float64 {
				return [3]float64{percentile(x, 0.5), percentile(x, 0.9), percentile(x, 1)}
			}
			return &FreshTrace{Samples: len(eng), EngineTickMs: sum(eng), HubMs: sum(hubs), BacklogMessages: sum(backlog)}
		case <-tk.C:
		}
		m, err := t.metrics(ctx, engineTick, hub)
		if err != nil {
			continue
		}
		st, err := t.status(ctx)
		if err != nil {
			continue
		}
		eng, hubs, backlog = append(eng, 1000*m[engineTick]), append(hubs, 1000*m[hub]), append(backlog, float64(st.Memory.Backlog))
	}
}
