package system

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/geo"
)

type memoryStatusDoc struct {
	EventsAccepted uint64 `json:"events_accepted"`
	Raw            struct {
		Events      int64   `json:"events"`
		RetentionS  float64 `json:"retention_s"`
		ConfiguredS float64 `json:"retention_configured_s"`
		Shortened   bool    `json:"shortened"`
	} `json:"raw"`
	Memory *struct {
		Limit    int64  `json:"limit_bytes"`
		RSS      int64  `json:"rss_bytes"`
		SlowDown bool   `json:"slow_down"`
		Reason   string `json:"reason"`
		Refused  uint64 `json:"batches_refused"`
	} `json:"memory"`
}

// Over its memory budget the process refuses batches at every door before reading them (HTTP 429 with
// Retry-After, a NATS "slow down" answer), says why in /api/v1/status and /metrics, and stores nothing.
func TestMemoryBudgetSlowsProducersDown(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "off") // the 1 MiB budget must not become this test process's Go memory limit
	cfg := testConfig(t, t.TempDir())
	cfg.MemoryLimit = 1 << 20 // any process is over it
	s := start(t, cfg)

	body := []byte(`{"kind":"probe","ts":1795737600000,"id":"m1","lat":30.27,"lng":120.15,"speed_kmh":30}` + "\n")
	resp, err := http.Post("http://"+s.Addr()+"/api/v1/events", "application/x-ndjson", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(data), "slow down") || !strings.Contains(string(data), "memory budget") {
		t.Errorf("POST over the budget: HTTP %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reply, err := nc.Request("citybrain.in.batch", body, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reply.Data), `"error"`) || !strings.Contains(string(reply.Data), "slow down") {
		t.Errorf("NATS over the budget: %s", reply.Data)
	}
	var st memoryStatusDoc
	if code := getJSON(t, "http://"+s.Addr()+"/api/v1/status", &st); code != 200 {
		t.Fatalf("status: HTTP %d", code)
	}
	if m := st.Memory; m == nil || m.Limit != 1<<20 || m.RSS <= 1<<20 || !m.SlowDown || m.Reason == "" || m.Refused != 2 {
		t.Errorf("status memory %+v, want the 1 MiB budget, RSS over it, slowing down, 2 batches refused", m)
	}
	if st.EventsAccepted != 0 {
		t.Errorf("%d events accepted over the budget", st.EventsAccepted)
	}
	resp, err = http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"citybrain_ingest_slow_down 1\n", "citybrain_memory_limit_bytes 1048576\n", "citybrain_ingest_refused_batches_total 2\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// When RSS passes 80 % of the budget the raw retention is shortened (and the events beyond it released),
// GOMEMLIMIT follows the budget less the raw events, and with room again the retention grows back slowly
// and the doors open.
func TestMemoryBudgetShortensRetention(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "off")
	cfg := testConfig(t, t.TempDir())
	cfg.MemoryLimit = 1 << 40 // no pressure while the events come in
	s := start(t, cfg)
	// 600 events over 10 minutes of event time.
	var b strings.Builder
	t0 := int64(1795737600000)
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&b, `{"kind":"probe","ts":%d,"id":"v%d","lat":%.4f,"lng":120.15,"speed_kmh":30}`+"\n", t0+int64(i)*1000, i%50, 30.20+float64(i%60)*0.002)
	}
	if code, out := post(t, s, "application/x-ndjson", []byte(b.String()), nil); code != 200 {
		t.Fatalf("post: HTTP %d %v", code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Engine.Status().RawRows < 600 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.Engine.Flush()
	before := s.Engine.Status()
	if before.RawRows != 600 || before.Retention != cfg.Engine.Retention {
		t.Fatalf("before: %d raw events, retention %s", before.RawRows, before.Retention)
	}
	// The governor's goroutine stops; its steps are driven here with budgets around the real RSS.
	g := s.mem
	g.close()
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	g.setGoLimit = true
	g.limit = processRSS() // RSS over 80 % (and 90 %) of it
	now := time.Now()
	g.step(now)
	s.Engine.Flush()
	after := s.Engine.Status()
	if after.Retention >= before.Retention || after.Retention < MinRawRetention {
		t.Errorf("retention %s → %s, want shortened, not under %s", before.Retention, after.Retention, MinRawRetention)
	}
	if after.RawRows >= before.RawRows {
		t.Errorf("raw events %d → %d, want those beyond the shortened retention released", before.RawRows, after.RawRows)
	}
	if got, most := debug.SetMemoryLimit(-1), max(g.limit/4, g.limit*9/10-min(before.RawBytes, after.RawBytes)); got > most || got < g.limit/4 {
		t.Errorf("Go memory limit %d, want at most 90 %% of the budget less the raw events (%d), at least a quarter of it", got, most)
	}
	if err := g.admit(); err == nil {
		t.Error("over 90 % of the budget the doors are open")
	}
	var st memoryStatusDoc
	getJSON(t, "http://"+s.Addr()+"/api/v1/status", &st)
	if !st.Raw.Shortened || st.Raw.RetentionS != after.Retention.Seconds() || st.Raw.ConfiguredS != cfg.Engine.Retention.Seconds() {
		t.Errorf("status raw %+v, want the shortened retention %s reported", st.Raw, after.Retention)
	}
	// Room again: no growth within 30 s of the last shortening, then a quarter (at least 10 s) at a time.
	g.limit = 100 * processRSS()
	g.step(now.Add(time.Second))
	if r := s.Engine.Status().Retention; r != after.Retention {
		t.Errorf("retention grew to %s a second after it was shortened", r)
	}
	if err := g.admit(); err != nil {
		t.Errorf("under 85 %% of the budget the doors are shut: %v", err)
	}
	g.step(now.Add(31 * time.Second))
	s.Engine.Flush()
	if r, want := s.Engine.Status().Retention, min(cfg.Engine.Retention, (after.Retention+max(after.Retention/4, 10*time.Second)).Round(time.Second)); r != want {
		t.Errorf("retention %s after room came back, want %s", r, want)
	}
}

// The Go heap's soft limit leaves room under 90 % of the budget for what lives outside the Go runtime: the
// raw events, or all the RSS the runtime does not hold when that is more (C memory, the binary).
func TestGoLimitLeavesRoomOutsideGo(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ limit, raw, rss, held, want int64 }{
		{1000 * mib, 100 * mib, 500 * mib, 450 * mib, 800 * mib}, // raw events more than the rest outside Go
		{1000 * mib, 10 * mib, 500 * mib, 300 * mib, 700 * mib},  // C memory and the binary: 200 MiB
		{1000 * mib, 0, 100 * mib, 400 * mib, 900 * mib},         // the runtime holds more than is resident
		{1000 * mib, 800 * mib, 950 * mib, 100 * mib, 250 * mib}, // never under a quarter of the budget
	} {
		if got := goLimit(c.limit, c.raw, c.rss, c.held); got != c.want {
			t.Errorf("goLimit(%d, %d, %d, %d MiB) = %d MiB, want %d MiB", c.limit/mib, c.raw/mib, c.rss/mib, c.held/mib, got/mib, c.want/mib)
		}
	}
}

// With the doors shut for memory nothing comes in and nothing makes the collector run: the governor collects
// and returns the heap itself (at most every 2 s), so RSS can fall under the mark where the doors open.
func TestGovernorCollectsWhileDoorsShut(t *testing.T) {
	g := governorByHand(t)
	gcs := func() uint32 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.NumGC
	}
	// Garbage: 64 MiB allocated and dropped, with the collector held off.
	var sink [][]byte
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 1<<20))
	}
	runtime.KeepAlive(sink)
	sink = nil
	now := time.Now()
	g.limit = processRSS() // over 90 %: the doors shut
	g.step(now)
	if g.admit() == nil {
		t.Fatal("over 90 % of the budget the doors are open")
	}
	n := gcs()
	g.step(now.Add(3 * time.Second))
	if gcs() == n {
		t.Errorf("no collection with the doors shut and %d MiB of garbage", 64)
	}
	n = gcs()
	g.step(now.Add(4 * time.Second))
	if gcs() != n {
		t.Error("collected again within 2 s of the last collection")
	}
}

// A cluster node's governor: on an engine node it gives every partition engine the node owns the same raw
// retention, shortening it on all of them over the budget, and a partition taken later gets the retention
// in force; on an ingest node it shuts the doors while an owned partition lags too far behind.
func TestGovernorOfClusterNodes(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "off")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) }) // after every engine's Stop (cleanups run last first)
	newEngine := func() *engine.Engine {
		cfg := engine.DefaultConfig()
		cfg.Mem, cfg.Tick, cfg.Shards = mem, time.Hour, 1
		e := engine.New(cfg)
		t.Cleanup(e.Stop)
		bb := engine.NewBatchBuilder(mem)
		defer bb.Release()
		t0 := int64(1795737600000)
		for i := 0; i < 300; i++ {
			ev := engine.NewEvent(engine.KindProbe)
			ev.TS, ev.ID, ev.Lat, ev.Lng, ev.SpeedKmh = t0+int64(i)*2000, fmt.Sprint("v", i%20), 30.25, 120.15+float64(i%30)*0.001, 30
			c, err := geo.CellOf(ev.Lat, ev.Lng, cfg.Res)
			if err != nil {
				t.Fatal(err)
			}
			bb.Append(&ev, c)
		}
		rec := bb.NewRecord()
		defer rec.Release()
		if err := e.Apply(1, rec); err != nil {
			t.Fatal(err)
		}
		e.Flush()
		if e.Status().RawBytes == 0 {
			t.Fatal("no raw events retained")
		}
		return e
	}
	configured := engine.DefaultConfig().Retention
	owned := []*engine.Engine{newEngine(), newEngine()}
	var logged []string
	g := newGovernor(1<<40, configured, func() []*engine.Engine { return owned }, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	g.lag = func() uint64 { return 0 }
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	now := time.Now()
	g.step(now)
	for i, e := range owned {
		if r := e.Retention(); r != configured {
			t.Fatalf("partition engine %d: retention %s within the budget, want %s", i, r, configured)
		}
	}
	g.limit = processRSS() // over 80 % of it
	g.step(now.Add(time.Second))
	short := owned[0].Retention()
	if short >= configured || short < MinRawRetention || owned[1].Retention() != short {
		t.Errorf("over the budget: retentions %s and %s, want both shortened alike (from %s)", short, owned[1].Retention(), configured)
	}
	if len(logged) == 0 || !strings.Contains(logged[0], "raw retention") {
		t.Errorf("the shortening was not logged: %q", logged)
	}
	// A partition taken now gets the retention in force at the next step (not its configured one).
	owned = append(owned, newEngine())
	g.step(now.Add(1500 * time.Millisecond))
	if r := owned[2].Retention(); r != owned[0].Retention() {
		t.Errorf("a partition taken later has retention %s, the others %s", r, owned[0].Retention())
	}

	// An ingest node: no engines; the doors shut while an owned partition lags more than MaxBacklog messages.
	var lag uint64
	in := newGovernor(1<<40, 0, func() []*engine.Engine { return nil }, func(string, ...any) {})
	in.lag = func() uint64 { return lag }
	in.step(now)
	if err := in.admit(); err != nil {
		t.Fatalf("no lag, yet the doors are shut: %v", err)
	}
	lag = DefaultMaxBacklog + 1
	in.step(now.Add(time.Second))
	if err := in.admit(); err == nil || !strings.Contains(err.Error(), "lags the log") {
		t.Errorf("an engine %d messages behind: admit says %v, want slow down naming the lag", lag, err)
	}
	if m := in.status(); m.Backlog != lag || m.SlowDown == "" || m.Refused != 1 {
		t.Errorf("ingest node memory status %+v", m)
	}
	lag = DefaultMaxBacklog / 4
	in.step(now.Add(2 * time.Second))
	if err := in.admit(); err != nil {
		t.Errorf("the engines caught up, yet the doors are shut: %v", err)
	}
}

// After a burst nothing allocates and nothing makes the collector run: once no input has come for
// QuietSettle the governor collects and returns the heap itself, once per quiet spell; new input starts a
// new spell.
func TestGovernorGivesBackABurstOnceQuiet(t *testing.T) {
	g := governorByHand(t)
	burst := func() {
		var sink [][]byte
		for i := 0; i < 96; i++ {
			sink = append(sink, make([]byte, 1<<20))
		}
		runtime.KeepAlive(sink)
	}
	burst()
	now := time.Now()
	g.step(now)
	held := readGoMemory().held
	g.step(now.Add(QuietSettle - time.Second))
	if g.settles.Load() != 0 {
		t.Fatal("gave the memory back before the input was quiet for QuietSettle")
	}
	g.step(now.Add(QuietSettle + time.Second))
	if g.settles.Load() != 1 {
		t.Fatalf("input quiet for %s with %d MiB of garbage: nothing given back", QuietSettle, 96)
	}
	if after := readGoMemory().held; held-after < 64<<20 {
		t.Errorf("the runtime holds %d MiB after giving back, %d MiB before: the garbage was not returned", after>>20, held>>20)
	}
	burst()
	g.step(now.Add(2 * QuietSettle))
	if g.settles.Load() != 1 {
		t.Error("gave back twice in one quiet spell")
	}
	g.admit() // a batch at the doors: a new spell
	g.step(now.Add(2*QuietSettle + time.Second))
	g.step(now.Add(3*QuietSettle + 2*time.Second))
	if g.settles.Load() != 2 {
		t.Errorf("a batch admitted, then quiet for %s with garbage: %d spells given back, want 2", QuietSettle, g.settles.Load())
	}
	if st := g.status(); st.Settles != 2 {
		t.Errorf("status says %d settles, want 2", st.Settles)
	}
}

// governorByHand is the governor of a running system whose goroutine is stopped, for a test to drive its
// steps, with no Go memory limit and the collector held off (both restored after the test).
func governorByHand(t *testing.T) *governor {
	t.Setenv("GOMEMLIMIT", "off")
	cfg := testConfig(t, t.TempDir())
	cfg.MemoryLimit = 1 << 40
	s := start(t, cfg)
	g := s.mem
	g.close()
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	return g
}

// The retained raw events live where the engine's allocators say: Start no longer puts them in C memory when
// the engine's Mem is nil (which the product's engine.DefaultConfig never left, so the product kept them on
// the Go heap anyway; measured, C memory was no better: docs/performance.md "Session 8").
func TestRawEventsLiveWhereTheEngineSays(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Engine.Mem = nil
	s := start(t, cfg)
	if m := s.Engine.Config().RawMem; m != nil {
		t.Errorf("raw events retained by %T, want the engine's Mem", m)
	}
}
