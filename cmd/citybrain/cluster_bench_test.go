package main

import (
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/system/cluster"
)

// cpuSeconds is the user+system CPU time of a process so far (Linux /proc).
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// TestClusterScaling measures 1, 2 and 3 engine processes on one machine (make cluster-bench): each run
// starts a NATS server and k engine nodes, waits until they share the partitions, appends CITYBRAIN_BENCH_EVENTS
// probes (default 300,000) to the partitioned log as fast as one writer can, and measures the time until
// every partition has applied them and each process's CPU time. On 2 cores the wall time cannot fall much with
// more processes; what the table shows is whether the work is shared evenly and what one event costs.
func TestClusterScaling(t *testing.T) {
	if os.Getenv("CITYBRAIN_CLUSTER_BENCH") == "" {
		t.Skip("a benchmark of real processes: make cluster-bench (CITYBRAIN_CLUSTER_BENCH=1)")
	}
	total := 300_000
	if s := os.Getenv("CITYBRAIN_BENCH_EVENTS"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "citybrain")
	if out, err := runCmd("go", "build", "-o", bin, "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const partitions = 6
	var rows []string
	for k := 1; k <= 3; k++ {
		rdir := filepath.Join(dir, fmt.Sprintf("run%d", k))
		h := &clusterHarness{t: t, bin: bin, dir: rdir, procs: map[string]*proc{}, http: map[string]string{}}
		os.MkdirAll(rdir, 0o755)
		port := freePort(t)
		h.start("nats1", "nats", "--name", "n1", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--store", filepath.Join(rdir, "nats"))
		h.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
		var nc *nats.Conn
		deadline := time.Now().Add(30 * time.Second)
		for {
			var err error
			if nc, err = nats.Connect(h.natsURL); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var names []string
		for i := 1; i <= k; i++ {
			name := fmt.Sprintf("engine%d", i)
			names = append(names, name)
			h.http[name] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			h.start(name, "run", "--role", "engine", "--node", name, "--http", h.http[name], "--data", filepath.Join(rdir, name),
				"--nats", h.natsURL, "--partitions", strconv.Itoa(partitions), "--district-res", "7", "--replicas", "1",
				"--demo=false", "--snapshot-every", "1h", "--shards", "2", "--lease-ttl", "60s")
		}
		js, _ := jetstream.New(nc)
		var kv *cluster.KV
		deadline = time.Now().Add(60 * time.Second)
		for kv == nil {
			kv, _ = cluster.OpenKV(t.Context(), js, 60*time.Second, 1)
			if time.Now().After(deadline) {
				t.Fatal("no KV")
			}
		}
		// Wait for an even share: every node holds partitions/k.
		balanced := func() bool {
			v, err := cluster.Read(t.Context(), kv)
			if err != nil {
				return false
			}
			per := map[string]int{}
			for _, o := range v.Owners {
				per[o]++
			}
			if len(v.Owners) != partitions || len(per) != k {
				return false
			}
			for _, n := range per {
				if n != partitions/k {
					return false
				}
			}
			return true
		}
		deadline = time.Now().Add(60 * time.Second)
		for !balanced() {
			if time.Now().After(deadline) {
				h.stopAll()
				t.Fatalf("%d engines: partitions not shared evenly within 60 s", k)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Pause the engines (SIGSTOP; the 60-s leases outlive the pause), fill the log, then let them go: the
		// wall time is the engines catching up in parallel, with no writer competing for the cores.
		for _, n := range names {
			h.procs[n].cmd.Process.Signal(syscall.SIGSTOP)
		}
		lcfg := eventlog.DefaultConfig()
		lcfg.Partitions, lcfg.DistrictRes = partitions, 7
		lg, err := eventlog.Open(t.Context(), nc, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		ta := time.Now()
		appendProbes(t, lg, total)
		appended := time.Since(ta)
		cpu0 := map[string]float64{}
		for _, n := range names {
			cpu0[n] = cpuSeconds(h.procs[n].cmd.Process.Pid)
		}
		t0 := time.Now()
		for _, n := range names {
			h.procs[n].cmd.Process.Signal(syscall.SIGCONT)
		}
		st, _ := lg.State(t.Context())
		// Progress straight from each engine's /metrics (the KV status is written only every TTL/6 here).
		partEvents := func() (map[string]map[int]uint64, uint64) {
			out := map[string]map[int]uint64{}
			var sum uint64
			for _, n := range names {
				out[n] = map[int]uint64{}
				resp, err := http.Get("http://" + h.http[n] + "/metrics")
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, line := range strings.Split(string(body), "\n") {
					var k int
					var ev uint64
					if _, err := fmt.Sscanf(line, "citybrain_partition_events{partition=\"%d\"} %d", &k, &ev); err == nil {
						out[n][k] = ev
						sum += ev
					}
				}
			}
			return out, sum
		}
		var per map[string]map[int]uint64
		deadline = time.Now().Add(10 * time.Minute)
		for {
			var sum uint64
			per, sum = partEvents()
			if sum == uint64(total) {
				break
			}
			if time.Now().After(deadline) {
				h.stopAll()
				t.Fatalf("%d engines: %d of %d events applied after 10 min", k, sum, total)
			}
			time.Sleep(20 * time.Millisecond)
		}
		wall := time.Since(t0)
		byPart := map[int]uint64{}
		for _, m := range per {
			for p, ev := range m {
				byPart[p] = ev
			}
		}
		var shares []string
		for p := 0; p < partitions; p++ {
			shares = append(shares, fmt.Sprintf("%.0f%%", 100*float64(byPart[p])/float64(total)))
		}
		rows = append(rows, fmt.Sprintf("| %d | %.2f | %.0f | %.1f | %s |", k, wall.Seconds(), float64(total)/wall.Seconds(), appended.Seconds(), strings.Join(shares, " ")))
		for _, n := range names {
			cpu := cpuSeconds(h.procs[n].cmd.Process.Pid) - cpu0[n]
			var ev uint64
			var ks []int
			for p, e := range per[n] {
				ev += e
				ks = append(ks, p)
			}
			sort.Ints(ks)
			rows = append(rows, fmt.Sprintf("|   | %s: partitions %v, %d events (%.0f%%), %.2f CPU-s, %.0f events/CPU-s | | | |",
				n, ks, ev, 100*float64(ev)/float64(total), cpu, float64(ev)/max(cpu, 0.001)))
		}
		t.Logf("%d engines: %d events (%d log messages) applied in %s", k, total, st.Msgs, wall.Round(time.Millisecond))
		nc.Close()
		h.stopAll()
	}
	t.Logf("\n| engine processes | wall s to catch up | events/s (all) | append s (one writer, before) | events per partition |\n|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

func runCmd(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// appendProbes appends n probes over 30 km × 30 km around Hangzhou (about 180 res-7 districts) in batches
// of 1,000.
func appendProbes(t *testing.T, lg *eventlog.Log, n int) {
	t.Helper()
	rng := rand.New(rand.NewSource(2))
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixMilli()
	mem := memory.DefaultAllocator
	for done := 0; done < n; {
		bb := engine.NewBatchBuilder(mem)
		m := min(1000, n-done)
		for i := 0; i < m; i++ {
			e := engine.NewEvent(engine.KindProbe)
			e.TS, e.ID = t0+int64(done+i)*2, "veh-"+strconv.Itoa(rng.Intn(20000))
			e.Lat, e.Lng, e.SpeedKmh = 30.10+rng.Float64()*0.3, 120.00+rng.Float64()*0.3, 5+rng.Float64()*50
			cell, err := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
			if err != nil {
				t.Fatal(err)
			}
			bb.Append(&e, cell)
		}
		rec := bb.NewRecord()
		bb.Release()
		if _, err := lg.Append(t.Context(), rec, ingest.BatchID{}); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		done += m
	}
}
