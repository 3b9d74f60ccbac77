package system

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/ingest"
)

// The memory governor keeps the process within its memory budget (Config.MemoryLimit, `--memory-limit`) at
// any input rate. Every 250 ms it reads the process's RSS and the engine's status and:
//   - shortens the raw retention when RSS passes 80 % of the budget (to what the raw events may take of the
//     budget left by everything else, down to MinRawRetention), and lengthens it again, slowly, when RSS is
//     under 60 % (never past the configured retention); /api/v1/status reports the retention in force;
//   - refuses new batches at the doors (ingest.ErrSlowDown: HTTP 429 with Retry-After, a NATS "slow down"
//     answer) while RSS is over 90 % of the budget or the engine lags the log by more than MaxBacklog
//     messages, until RSS is under 85 % and the backlog under half that (the batches in flight and the
//     backlog's apply still add to RSS after the doors shut): what was acknowledged is in the log and is
//     applied; what was refused was never read;
//   - after a shortening, once the shards have released, returns the freed heap to the system
//     (debug.FreeOSMemory), or RSS would stay where it was and keep the doors shut;
//   - sets the Go runtime's memory limit (GOMEMLIMIT, unless given in the environment) to the budget less
//     the retained raw events, which live off the Go heap.
// The 15-minute aggregates do not depend on the raw retention: they stay complete when it is shortened.

// MinRawRetention is the shortest raw retention the governor sets.
const MinRawRetention = time.Minute

// DefaultMaxBacklog is how many log messages the engine may lag behind what ingest stored before the doors
// slow producers down (a message holds up to a few thousand events).
const DefaultMaxBacklog = 4096

// DefaultMemoryLimit is half the memory of the machine (or of the cgroup, when it has a lower limit); 0 when
// unknown.
func DefaultMemoryLimit() int64 {
	total := int64(0)
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total = kb << 10
			}
		}
	}
	if data, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total / 2
}

// ParseBytes reads a size: a number of bytes with an optional unit (k, M, G, T, with or without "i" and
// "B": powers of 1024), e.g. "12GiB", "512M", "1073741824".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 {
		return 0, fmt.Errorf("cannot read size %q: want bytes with an optional unit (512MiB, 12GiB)", s)
	}
	return int64(v * mult), nil
}

// governor is the memory governor of one process: a single-process System, or a cluster node (owned by it:
// started by Start or StartNode, stopped by Stop). On an ingest node it governs no engine (its doors and the
// engines' lag); on an engine node it governs every partition engine the node owns, and has no doors.
type governor struct {
	limit      int64
	maxBacklog uint64
	engines    func() []*engine.Engine // the engines whose raw retention it governs, now
	lag        func() uint64           // log messages the engines lag behind what was stored
	setGoLimit bool
	configured time.Duration
	retention  time.Duration // the raw retention it set (governor goroutine): every engine is given it
	logf       func(string, ...any)

	rss      atomic.Int64
	goMem    atomic.Pointer[goMemory] // the Go runtime's split of its memory at the last step
	backlog  atomic.Uint64
	slowDown atomic.Pointer[string] // why the doors refuse batches; nil: they do not
	refused  atomic.Uint64

	lastShrink, lastGrow time.Time
	freeAfter            time.Time // when to give the memory a shortening released back (zero: none due)
	lastFree             time.Time // when memory was last given back

	// input, when set, counts what else came in (an api node: the events its merged view reflected).
	input func() uint64
	// Settling after a burst (settle): the input seen at the last step (events the engines reflected and
	// batches the doors admitted), when it last changed, whether this quiet spell was settled.
	admitted   atomic.Uint64
	lastInput  uint64
	lastActive time.Time
	settledNow bool
	settles    atomic.Uint64

	stop, done chan struct{}
}

// QuietSettle is how long nothing may have come in before the governor gives a burst's memory back: longer
// than the log's message-block caches live (JetStream drops a block's cache 10 s after its last use and
// recycles its buffer through a pool that only a collection empties).
const QuietSettle = 12 * time.Second

// newGovernor returns the governor of a process with memory budget limit (0: none) whose engines (a
// function: a cluster node's change) have the raw retention configured.
func newGovernor(limit int64, configured time.Duration, engines func() []*engine.Engine, logf func(string, ...any)) *governor {
	return &governor{limit: limit, maxBacklog: DefaultMaxBacklog, engines: engines,
		setGoLimit: os.Getenv("GOMEMLIMIT") == "", configured: configured, retention: configured, logf: logf}
}

// start takes its first look and starts the governor's goroutine; backlog says how many log messages the
// engines lag behind what ingest stored (0 where the node has no doors).
func (g *governor) start(lag func() uint64) {
	g.lag = lag
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	g.step(time.Now())
	go g.run()
}

func (g *governor) run() {
	defer close(g.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.step(now)
		}
	}
}

func (g *governor) close() {
	if g.stop != nil {
		close(g.stop)
		<-g.done
		g.stop = nil
	}
}

// step is one look at the process (governor goroutine, or Start before it runs).
func (g *governor) step(now time.Time) {
	rss := processRSS()
	g.rss.Store(rss)
	gm := readGoMemory()
	g.goMem.Store(&gm)
	engines := g.engines()
	var rawBytes int64
	input := g.admitted.Load()
	if g.input != nil {
		input += g.input()
	}
	for _, e := range engines {
		st := e.Status()
		rawBytes += st.RawBytes
		input += st.Events
	}
	backlog := g.lag()
	g.backlog.Store(backlog)
	if after, ok := g.settle(now, input, gm, rss); ok {
		rss = after
		g.rss.Store(rss)
	}
	if g.limit <= 0 {
		return
	}
	// The Go heap's soft limit: what is left of 90 % of the budget (where the doors shut) once the memory
	// outside the Go runtime is counted (the raw events, C allocations, the binary's resident text), so the
	// collector, not the next step of the governor, keeps a fast producer's garbage from passing the budget.
	if g.setGoLimit {
		debug.SetMemoryLimit(goLimit(g.limit, rawBytes, rss, gm.held))
	}
	// Raw retention, the same for every engine (a partition taken since the last step gets it now).
	high, low := g.limit*8/10, g.limit*6/10
	ret := g.retention
	setAll := func(r time.Duration) {
		g.retention = r
		for _, e := range engines {
			if e.Retention() != r {
				e.SetRetention(r)
			}
		}
	}
	setAll(ret)
	switch {
	case rss > high && ret > MinRawRetention && now.Sub(g.lastShrink) >= 2*time.Second && rawBytes > 0:
		room := high - (rss - rawBytes) // what the raw events may take
		f := min(max(float64(room)/float64(rawBytes), 0.25), 0.9)
		next := max(MinRawRetention, time.Duration(float64(ret)*f).Round(time.Second))
		if next < ret {
			setAll(next)
			g.lastShrink = now
			g.logf("memory: RSS %d MiB over 80%% of the %d MiB budget: raw retention %s → %s", rss>>20, g.limit>>20, ret, next)
			g.freeAfter = now.Add(time.Second) // the shards release at their next tick
		}
	case rss < low && ret < g.configured && now.Sub(g.lastShrink) >= 30*time.Second && now.Sub(g.lastGrow) >= 10*time.Second:
		next := min(g.configured, (ret + max(ret/4, 10*time.Second)).Round(time.Second))
		setAll(next)
		g.lastGrow = now
		g.logf("memory: RSS %d MiB under 60%% of the %d MiB budget: raw retention %s → %s", rss>>20, g.limit>>20, ret, next)
	}
	if cur := g.slowDown.Load(); cur != nil && rss > g.limit*85/100 && g.freeAfter.IsZero() && now.Sub(g.lastFree) >= 2*time.Second &&
		gm.objects-gm.live+gm.free > g.limit/20 {
		// The doors are shut for memory and nothing is coming in, so nothing makes the collector run: the
		// garbage of the last batches and the heap it freed would hold RSS (and the doors) where they are.
		g.freeAfter = now
	}
	if !g.freeAfter.IsZero() && !now.Before(g.freeAfter) {
		// What the shortening released goes back to the system, or RSS would stay where it was and keep
		// the doors shut: a collection, and the heap's free pages returned (at most once per shortening).
		g.freeAfter, g.lastFree = time.Time{}, now
		debug.FreeOSMemory()
		rss = processRSS()
		g.rss.Store(rss)
	}
	// Backpressure, with hysteresis.
	var why string
	cur := g.slowDown.Load()
	switch {
	case rss > g.limit*90/100 || (cur != nil && rss > g.limit*85/100):
		why = fmt.Sprintf("the process holds %d MiB of its %d MiB memory budget", rss>>20, g.limit>>20)
	case backlog > g.maxBacklog || (cur != nil && backlog > g.maxBacklog/2):
		why = fmt.Sprintf("the engine lags the log by %d messages", backlog)
	}
	switch {
	case why != "" && cur == nil:
		g.logf("memory: slowing producers down: %s", why)
		g.slowDown.Store(&why)
	case why != "":
		g.slowDown.Store(&why)
	case cur != nil:
		g.logf("memory: producers may go on (RSS %d MiB, backlog %d messages)", rss>>20, backlog)
		g.slowDown.Store(nil)
	}
}

// settle gives the memory of a burst back to the system once the input has gone quiet (QuietSettle with
// nothing reflected or admitted), once per quiet spell, when the Go runtime holds more than the heap's
// live part and SettleSlack beyond it. Under a steady input the collector runs often and the heap stays near
// its goal; after a burst (a backfill, a replay's import, a load test) nothing allocates, so nothing makes it
// run: the garbage, the log's expired block caches parked in their pool and the heap's free pages would keep
// RSS where the burst left it (1 GB after 3 M events, of which the events retained take 80 MB) until the
// runtime's two-minute forced collection and its slow scavenger. Two collections empty the pool (its
// victim cache survives one), FreeOSMemory returns the pages. rss is the process's RSS before; it returns the
// RSS after and whether it gave memory back.
func (g *governor) settle(now time.Time, input uint64, gm goMemory, rss int64) (int64, bool) {
	if input != g.lastInput || g.lastActive.IsZero() {
		g.lastInput, g.lastActive, g.settledNow = input, now, false
		return rss, false
	}
	if g.settledNow || now.Sub(g.lastActive) < QuietSettle || gm.held-gm.live < SettleSlack {
		return rss, false
	}
	g.settledNow = true
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	g.settles.Add(1)
	after := processRSS()
	g.logf("memory: input quiet for %s: the burst's memory given back, RSS %d → %d MiB", now.Sub(g.lastActive).Round(time.Second), rss>>20, after>>20)
	return after, true
}

// SettleSlack is how much the Go runtime may hold beyond the live heap before a quiet spell is worth a
// collection.
const SettleSlack = 32 << 20

// goLimit is the Go runtime's soft memory limit for a process with memory budget limit that holds rss, of
// which the Go runtime holds held and the retained raw events rawBytes: 90 % of the budget (where the doors
// shut) less the memory outside the Go runtime (at least the raw events), never under a quarter of the
// budget. The product keeps the raw events on the Go heap (system.Start), where held counts them too: the
// limit counts them twice, which leaves the collector less room than the budget allows (not changed: the
// overload section's RSS under the budget was measured with it).
func goLimit(limit, rawBytes, rss, held int64) int64 {
	outside := max(rawBytes, rss-held)
	return max(limit/4, limit*9/10-outside)
}

// admit is ingest.Config.Admit.
func (g *governor) admit() error {
	g.admitted.Add(1)
	if why := g.slowDown.Load(); why != nil {
		g.refused.Add(1)
		return fmt.Errorf("%w: %s", ingest.ErrSlowDown, *why)
	}
	return nil
}

// status is what /api/v1/status reports.
func (g *governor) status() api.MemoryStatus {
	m := api.MemoryStatus{Limit: g.limit, RSS: g.rss.Load(), Backlog: g.backlog.Load(), Refused: g.refused.Load(), Settles: g.settles.Load()}
	if gm := g.goMem.Load(); gm != nil {
		m.GoHeapLive, m.GoHeapObjects, m.GoHeapFree, m.GoOther = gm.live, gm.objects, gm.free, gm.other
	}
	if why := g.slowDown.Load(); why != nil {
		m.SlowDown = *why
	}
	return m
}

// processRSS is the resident set size of this process in bytes (Linux /proc; elsewhere what the Go runtime
// obtained from the system).
func processRSS() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		if f := strings.Fields(string(data)); len(f) >= 2 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys - ms.HeapReleased)
}

// goMemory is where the Go runtime's memory is (runtime/metrics, read without stopping the world): what the
// process holds beyond it (RSS less these) is C memory: the retained raw events, h3, the C allocator's free lists.
type goMemory struct {
	live    int64 // heap reachable at the last collection
	objects int64 // heap objects now, the garbage since the last collection included
	free    int64 // heap the runtime holds free and has not returned to the system
	other   int64 // stacks, runtime metadata, profiling and other runtime memory
	held    int64 // all the runtime holds from the system (the sum of the above and what it has not used yet)
}

var goMemoryNames = []string{
	"/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/free:bytes",
	"/memory/classes/heap/unused:bytes", "/memory/classes/total:bytes", "/memory/classes/heap/released:bytes",
}

func readGoMemory() goMemory {
	s := make([]metrics.Sample, len(goMemoryNames))
	for i, n := range goMemoryNames {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	m := goMemory{live: v(0), objects: v(1), free: v(2) + v(3)}
	m.held = v(4) - v(5)
	m.other = max(0, m.held-m.objects-m.free)
	return m
}
