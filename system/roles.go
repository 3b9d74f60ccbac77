package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/ingest"
	"citybrain/ingest/httpin"
	"citybrain/ingest/natsin"
	"citybrain/replay"
	"citybrain/system/cluster"
)

// Roles of the one binary (docs/scale-out.md). RoleAll is the single process (Start); the others are nodes of
// a cluster (StartNode).
const (
	RoleAll    = "all"
	RoleIngest = "ingest"
	RoleEngine = "engine"
	RoleAPI    = "api"
)

// ClusterConfig is what a cluster node adds to Config.
type ClusterConfig struct {
	Role        string
	NodeID      string        // unique per node (default host-role-pid)
	Partitions  int           // partitions of the log (every node of a cluster must agree)
	DistrictRes int           // H3 resolution of the districts events are keyed by
	Replicas    int           // JetStream replicas of the log, the KV bucket and the object store
	LeaseTTL    time.Duration // how long a dead engine node keeps its partitions (default 3 s)
}

// Node is a running cluster node of one role.
type Node struct {
	cfg    Config
	role   string
	id     string
	logger *log.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     *cluster.KV
	Log    *eventlog.Log
	start  time.Time

	// ingest
	Ingest     *ingest.Ingestor
	natsSrc    *natsin.Source
	feedCancel context.CancelFunc
	feedWG     sync.WaitGroup
	// engine
	snaps  *cluster.Snapshots
	leases *cluster.Leases
	pmu    sync.Mutex
	parts  map[int]*cluster.Partition
	// starting holds the partitions being restored (a snapshot read can take as long as its store's
	// timeouts): they start on goroutines of their own, so the node loop keeps renewing its other leases.
	starting map[int]*partStart
	startWG  sync.WaitGroup
	// api
	Merged  *cluster.Merged
	Hub     *api.Hub
	Replays *replay.Manager

	// ingest and engine nodes: the memory budget (memory.go); clusterLag is what ingest nodes give it: the
	// most log messages an owned partition lags behind, as its engine last wrote it in the KV bucket.
	mem        *governor
	clusterLag atomic.Uint64

	http       *http.Server
	ln         net.Listener
	loopCancel context.CancelFunc
	loopDone   chan struct{}
	stopOnce   sync.Once
}

// StartNode starts a node of cfg.Cluster.Role on the NATS cluster at cfg.NATSURL (comma-separated URLs).
func StartNode(ctx context.Context, cfg Config) (_ *Node, err error) {
	cc := cfg.Cluster
	n := &Node{cfg: cfg, role: cc.Role, logger: cfg.Logger, start: time.Now(), parts: map[int]*cluster.Partition{},
		starting: map[int]*partStart{}}
	if n.logger == nil {
		n.logger = log.New(os.Stderr, "citybrain: ", log.LstdFlags)
	}
	defer func() {
		if err != nil {
			n.Stop(context.Background())
		}
	}()
	switch cc.Role {
	case RoleIngest, RoleEngine, RoleAPI:
	default:
		return nil, fmt.Errorf("cannot start: --role %q must be all, ingest, engine or api", cc.Role)
	}
	if cfg.NATSURL == "" {
		return nil, fmt.Errorf("cannot start a %s node: --nats must list the cluster's servers", cc.Role)
	}
	if cc.Partitions < 1 || cc.Partitions > eventlog.MaxPartitions {
		return nil, fmt.Errorf("cannot start a %s node: --partitions %d must be 1..%d", cc.Role, cc.Partitions, eventlog.MaxPartitions)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("cannot start: --data is required (snapshot scratch space, admin token)")
	}
	n.id = cc.NodeID
	if n.id == "" {
		host, _ := os.Hostname()
		n.id = fmt.Sprintf("%s-%s-%d", sanitize(host), cc.Role, os.Getpid())
	}
	auth, tokenPath, err := openAuth(cfg.AuthFile, cfg.HTTPAddr, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if tokenPath != "" {
		n.logger.Printf("no auth config: admin token in %s", tokenPath)
	}
	// The cluster's servers may still be starting (a machine boot): try for 30 s.
	n.nc, err = openRetrying(ctx, func() (*nats.Conn, error) {
		return nats.Connect(cfg.NATSURL, nats.Name("citybrain-"+n.id), nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond), nats.CustomInboxPrefix(InternalInbox))
	})
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", redactURL(cfg.NATSURL), err)
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		return nil, fmt.Errorf("cannot open JetStream: %w", err)
	}
	lcfg := cfg.Log
	lcfg.Partitions, lcfg.DistrictRes, lcfg.Replicas = cc.Partitions, cc.DistrictRes, max(1, cc.Replicas)
	lcfg.Layout = logLayout(cfg.Engine)
	if n.Log, err = openRetrying(ctx, func() (*eventlog.Log, error) { return eventlog.Open(ctx, n.nc, lcfg) }); err != nil {
		return nil, err
	}
	if n.kv, err = openRetrying(ctx, func() (*cluster.KV, error) {
		return cluster.OpenKV(ctx, n.js, cc.LeaseTTL, cc.Replicas)
	}); err != nil {
		return nil, err
	}
	var h http.Handler
	switch cc.Role {
	case RoleIngest:
		h, err = n.startIngest(auth)
	case RoleEngine:
		h, err = n.startEngine(ctx, auth)
	case RoleAPI:
		h, err = n.startAPI(auth)
	}
	if err != nil {
		return nil, err
	}
	if n.http, n.ln, err = httpServer(cfg.HTTPAddr, h, cfg.HTTP, n.logger); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	n.loopCancel, n.loopDone = cancel, make(chan struct{})
	go n.loop(lctx)
	return n, nil
}

// openRetrying retries fn for up to 30 s: on a cluster just started, JetStream needs a meta leader first.
func openRetrying[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := fn()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

// ID is the node's id in the cluster.
func (n *Node) ID() string { return n.id }

// Addr is the node's HTTP address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Role is the node's role.
func (n *Node) Role() string { return n.role }

func (n *Node) startIngest(auth *api.Auth) (http.Handler, error) {
	icfg := n.cfg.Ingest
	if icfg.Res == 0 {
		icfg.Res = n.engineConfig().Res
	}
	n.mem = newGovernor(n.memoryLimit(), 0, func() []*engine.Engine { return nil }, n.logger.Printf)
	if icfg.Admit == nil {
		icfg.Admit = n.mem.admit
	}
	n.Ingest = ingest.New(icfg, n.Log)
	n.mem.start(n.clusterLag.Load)
	var err error
	if n.natsSrc, err = natsin.Serve(n.Ingest, n.nc, n.cfg.NATSWorkers); err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	n.feedCancel = cancel
	for _, f := range n.cfg.Feeders {
		n.feedWG.Add(1)
		go func() {
			defer n.feedWG.Done()
			if err := f(fctx, n.Ingest); err != nil && fctx.Err() == nil {
				n.logger.Printf("feeder stopped: %v", err)
			}
		}()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/events", auth.Open(httpin.New(n.Ingest).ServeHTTP, api.RoleFeed))
	n.commonRoutes(mux, auth)
	return mux, nil
}

func (n *Node) engineConfig() engine.Config {
	ecfg := n.cfg.Engine
	if n.cfg.Network != nil {
		res := ecfg.Res
		if res == 0 {
			res = engine.DefaultConfig().Res
		}
		ecfg.Network = n.cfg.Network
		ff := n.cfg.Network.CellFreeFlowKmh(res)
		ecfg.FreeFlow = func(cell uint64) (float64, bool) { v, ok := ff[cell]; return v, ok && v > 0 }
	}
	return ecfg
}

func (n *Node) startEngine(ctx context.Context, auth *api.Auth) (http.Handler, error) {
	var err error
	if n.snaps, err = openRetrying(ctx, func() (*cluster.Snapshots, error) {
		return cluster.OpenSnapshots(ctx, n.js, n.cfg.Cluster.Replicas, filepath.Join(n.cfg.DataDir, "scratch"))
	}); err != nil {
		return nil, err
	}
	n.leases = cluster.NewLeases(n.kv, n.id, n.cfg.Cluster.Partitions)
	retention := n.partitionEngineConfig().Retention
	if retention <= 0 {
		retention = engine.DefaultConfig().Retention
	}
	n.mem = newGovernor(n.memoryLimit(), retention, n.engines, n.logger.Printf)
	n.mem.start(func() uint64 { return 0 }) // an engine node has no doors: it reads the log at its pace
	mux := http.NewServeMux()
	n.commonRoutes(mux, auth)
	return mux, nil
}

func (n *Node) startAPI(auth *api.Auth) (http.Handler, error) {
	ecfg := n.engineConfig()
	var err error
	if n.Merged, err = cluster.NewMerged(n.nc, n.cfg.Cluster.Partitions, ecfg, nil, n.logger); err != nil {
		return nil, err
	}
	n.Hub = api.NewHub(n.cfg.Hub, n.Merged)
	n.Merged.SetOnDelta(n.Hub.OnDelta)
	// An api node retains no raw events and has no doors: its governor sets GOMEMLIMIT from the budget,
	// gives a burst's memory back once the frames stop, and reports the node's memory.
	n.mem = newGovernor(n.memoryLimit(), 0, func() []*engine.Engine { return nil }, n.logger.Printf)
	n.mem.input = func() uint64 { return n.Merged.Status().Events }
	n.mem.start(func() uint64 { return 0 })
	rcfg := ecfg
	rcfg.OnDelta, rcfg.Mem = nil, nil
	n.Replays = replay.NewManager(replay.ManagerConfig{Log: n.Log, Engine: rcfg, FileDir: filepath.Join(n.cfg.DataDir, "imports")})
	srv := &api.Server{
		Engine: n.Merged, Log: n.Log, Hub: n.Hub, Auth: auth, Version: n.cfg.Version, Web: n.cfg.Web,
		Network: n.cfg.Network, AllowedOrigins: n.cfg.AllowedOrigins,
		Accepted: func() uint64 { return n.Merged.Status().Events },
		Rejected: func() uint64 { c, _ := n.Log.DeadCount(context.Background()); return c },
		Cluster:  n.serveCluster, Waiting: n.waiting, MoreMetrics: n.metrics, Memory: n.mem.status,
	}
	srv.Replays = api.NewReplays(n.Replays, n.cfg.Hub)
	return srv.Handler(), nil
}

// memoryLimit is the node's memory budget (Config.MemoryLimit: 0, half the machine; negative, none).
func (n *Node) memoryLimit() int64 {
	limit := n.cfg.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit()
	}
	return max(limit, 0)
}

// engines are the engines of the partitions this node owns now.
func (n *Node) engines() []*engine.Engine {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	out := make([]*engine.Engine, 0, len(n.parts))
	for _, p := range n.parts {
		if e := p.Engine(); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// commonRoutes are the status routes of ingest and engine nodes (api nodes have them through api.Server).
func (n *Node) commonRoutes(mux *http.ServeMux, auth *api.Auth) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if why := n.waiting(); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			writeJSON(w, map[string]string{"status": "waiting", "waiting": why, "role": n.role, "node": n.id})
			return
		}
		writeJSON(w, map[string]string{"status": "ok", "role": n.role, "node": n.id})
	})
	mux.HandleFunc("GET /metrics", auth.Open(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		n.metrics(w)
	}))
	mux.HandleFunc("GET /api/v1/cluster", auth.Open(n.serveCluster))
}

// loop renews the node's record and, on engine nodes, the partition leases.
func (n *Node) loop(ctx context.Context) {
	defer close(n.loopDone)
	ttl := n.cfg.Cluster.LeaseTTL
	if ttl <= 0 {
		ttl = cluster.DefaultTTL
	}
	t := time.NewTicker(ttl / 6) // leases renewed 6 times per TTL; status written as often
	defer t.Stop()
	for {
		n.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) round(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ni := cluster.NodeInfo{ID: n.id, Role: n.role, HTTP: n.Addr(), Version: n.cfg.Version, Started: n.start,
		Waiting: n.waiting()}
	if n.leases != nil {
		ni.Partitions = n.leases.Held()
	}
	if err := cluster.PutNode(rctx, n.kv, ni); err != nil && ctx.Err() == nil {
		n.logger.Printf("%v", err)
	}
	if n.role == RoleIngest {
		// The engines' lag, for the memory governor's doors.
		if lag, err := cluster.MaxLag(rctx, n.kv, n.cfg.Cluster.Partitions); err == nil {
			n.clusterLag.Store(lag)
		}
	}
	if n.leases == nil {
		return
	}
	gained, lost, err := n.leases.Round(rctx)
	if err != nil && ctx.Err() == nil {
		n.logger.Printf("lease round: %v", err)
	}
	n.takeStarted(rctx)
	for _, c := range lost {
		n.pmu.Lock()
		p := n.parts[c.Partition]
		delete(n.parts, c.Partition)
		s := n.starting[c.Partition]
		delete(n.starting, c.Partition)
		n.pmu.Unlock()
		if s != nil {
			s.abandon()
		}
		if p != nil {
			if err := p.Stop(c.Release); err != nil {
				n.logger.Printf("partition %d: %v", c.Partition, err)
			}
		}
		if c.Release {
			if err := n.leases.Release(rctx, c.Partition); err != nil {
				n.logger.Printf("%v", err)
			}
			n.logger.Printf("partition %d given back (over this node's share)", c.Partition)
		} else {
			n.logger.Printf("partition %d lost (lease taken or not renewed)", c.Partition)
		}
	}
	for _, c := range gained {
		n.startPartition(ctx, c)
	}
	n.pmu.Lock()
	owned := make([]*cluster.Partition, 0, len(n.parts))
	var failed []int
	for k, p := range n.parts {
		if p.Failed() != nil {
			failed = append(failed, k)
			continue
		}
		owned = append(owned, p)
	}
	n.pmu.Unlock()
	for _, k := range failed { // give it back: a fresh start (here or elsewhere) restores and replays it
		n.pmu.Lock()
		p := n.parts[k]
		delete(n.parts, k)
		n.pmu.Unlock()
		n.logger.Printf("partition %d: %v; giving it back", k, p.Failed())
		p.Stop(false)
		n.leases.Release(rctx, k)
	}
	for _, p := range owned {
		k := p.Status(0).Partition
		last, _ := n.Log.PartitionLast(rctx, k)
		cluster.PutStatus(rctx, n.kv, p.Status(last))
	}
}

// partStart is a partition being started on a goroutine of its own.
type partStart struct {
	c      cluster.Change
	t0     time.Time
	cancel context.CancelFunc
	mu     sync.Mutex
	done   bool // StartPartition returned: p and err are set
	gone   bool // the lease was lost meanwhile: the goroutine stops p itself
	p      *cluster.Partition
	err    error
}

// abandon gives up a start whose lease was lost: a partition already started is stopped at once (another
// node may own it), one still starting is stopped by its goroutine when it returns.
func (s *partStart) abandon() {
	s.cancel()
	s.mu.Lock()
	s.gone = true
	p := s.p
	s.p = nil
	s.mu.Unlock()
	if p != nil {
		p.Stop(false)
	}
}

// startPartition restores and starts a gained partition on its own goroutine (loop goroutine).
func (n *Node) startPartition(ctx context.Context, c cluster.Change) {
	sctx, cancel := context.WithCancel(ctx)
	s := &partStart{c: c, t0: time.Now(), cancel: cancel}
	n.pmu.Lock()
	n.starting[c.Partition] = s
	n.pmu.Unlock()
	n.startWG.Add(1)
	go func() {
		defer n.startWG.Done()
		p, err := cluster.StartPartition(sctx, cluster.PartitionConfig{K: c.Partition, Node: n.id, Epoch: c.Epoch,
			Log: n.Log, NC: n.nc, Snaps: n.snaps, Engine: n.partitionEngineConfig(), SnapshotEvery: n.cfg.SnapshotEvery,
			Logger: n.logger})
		s.mu.Lock()
		gone := s.gone
		if !gone {
			s.done, s.p, s.err = true, p, err
		}
		s.mu.Unlock()
		if gone && p != nil {
			p.Stop(false)
		}
	}()
}

// takeStarted moves the partitions whose start finished into the owned ones, and gives back those that could
// not start (loop goroutine: the leases are the loop's).
func (n *Node) takeStarted(ctx context.Context) {
	n.pmu.Lock()
	var failed []*partStart
	for k, s := range n.starting {
		s.mu.Lock()
		done, p, err := s.done, s.p, s.err
		s.mu.Unlock()
		if !done {
			continue
		}
		delete(n.starting, k)
		s.cancel()
		if err != nil {
			failed = append(failed, s)
			continue
		}
		n.parts[k] = p
		n.logger.Printf("partition %d taken (epoch %d): restored snapshot at %d in %s", k, s.c.Epoch, p.Status(0).Restored, time.Since(s.t0).Round(time.Millisecond))
	}
	n.pmu.Unlock()
	for _, s := range failed {
		n.logger.Printf("cannot start partition %d: %v", s.c.Partition, s.err)
		n.leases.Release(ctx, s.c.Partition)
	}
}

// partitionEngineConfig is the engine of one partition: one shard each (a node runs several).
func (n *Node) partitionEngineConfig() engine.Config {
	ecfg := n.engineConfig()
	if ecfg.Shards == 0 || ecfg.Shards > 2 {
		ecfg.Shards = 2
	}
	return ecfg
}

// waiting says what the node waits for ("" when ready).
func (n *Node) waiting() string {
	if n.nc == nil || !n.nc.IsConnected() {
		return "NATS connection"
	}
	switch n.role {
	case RoleEngine:
		n.pmu.Lock()
		defer n.pmu.Unlock()
		var behind []string
		for k, p := range n.parts {
			if !p.CaughtUp() {
				behind = append(behind, fmt.Sprint(k))
			}
		}
		for k := range n.starting {
			behind = append(behind, fmt.Sprint(k))
		}
		if len(behind) > 0 {
			sort.Strings(behind)
			return "partitions catching up: " + strings.Join(behind, ",")
		}
		if len(n.parts) == 0 {
			return "a partition lease (none free yet)"
		}
	case RoleAPI:
		if n.Merged == nil {
			return "start"
		}
		// A partition whose owner died (stale) keeps serving its last state: the node stays healthy (a load
		// balancer must not drop every api node during an engine failover); /metrics and /api/v1/cluster show it.
		var missing []string
		for _, s := range n.Merged.Sync() {
			if !s.Ready {
				missing = append(missing, fmt.Sprint(s.Partition))
			}
		}
		if len(missing) > 0 {
			return "state of partitions " + strings.Join(missing, ",") + " from their engines"
		}
	}
	return ""
}

// ClusterStatus is GET /api/v1/cluster.
type ClusterStatus struct {
	Node       string                  `json:"node"`
	Role       string                  `json:"role"`
	Partitions int                     `json:"partitions"`
	Nodes      []cluster.NodeInfo      `json:"nodes"`
	Parts      []PartitionRow          `json:"partition_status"`
	Unowned    []int                   `json:"unowned"`
	Time       time.Time               `json:"time"`
	Sync       []cluster.PartitionSync `json:"sync,omitempty"` // api nodes: what this node has of each partition
}

// PartitionRow is one partition in ClusterStatus.
type PartitionRow struct {
	Partition  int    `json:"partition"`
	Owner      string `json:"owner"`
	Lag        uint64 `json:"lag"`
	AppliedSeq uint64 `json:"applied_seq"`
	LastSeq    uint64 `json:"last_seq"`
	Events     uint64 `json:"events"`
	CaughtUp   bool   `json:"caught_up"`
	Epoch      uint64 `json:"epoch"`
	TookMs     int64  `json:"took_ms"`
}

// Status reads the cluster's state from the KV bucket.
func (n *Node) Status(ctx context.Context) (ClusterStatus, error) {
	v, err := cluster.Read(ctx, n.kv)
	if err != nil {
		return ClusterStatus{}, err
	}
	cs := ClusterStatus{Node: n.id, Role: n.role, Partitions: n.cfg.Cluster.Partitions, Nodes: v.Nodes, Time: time.Now()}
	for k := 0; k < n.cfg.Cluster.Partitions; k++ {
		row := PartitionRow{Partition: k, Owner: v.Owners[k]}
		if st, ok := v.Partitions[k]; ok && st.Owner == row.Owner {
			row.Lag, row.AppliedSeq, row.LastSeq, row.Events, row.CaughtUp, row.Epoch, row.TookMs =
				st.Lag, st.AppliedSeq, st.LastSeq, st.Events, st.CaughtUp, st.Epoch, st.TookMs
		}
		if row.Owner == "" {
			cs.Unowned = append(cs.Unowned, k)
		}
		cs.Parts = append(cs.Parts, row)
	}
	if n.Merged != nil {
		cs.Sync = n.Merged.Sync()
	}
	return cs, nil
}

func (n *Node) serveCluster(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	cs, err := n.Status(ctx)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, cs)
}

// metrics writes the node's cluster metrics (Prometheus text).
func (n *Node) metrics(w io.Writer) {
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("citybrain_node_info", "gauge", "This node's role and id.")
	fmt.Fprintf(w, "citybrain_node_info{role=%q,node=%q} 1\n", n.role, n.id)
	metric("citybrain_node_ready", "gauge", "1 when the node waits for nothing (see /healthz).")
	fmt.Fprintf(w, "citybrain_node_ready %d\n", b2i(n.waiting() == ""))
	if n.mem != nil && n.role != RoleAPI { // an api node's Server writes them (api.Server.Memory)
		api.WriteMemoryMetrics(w, n.mem.status())
	}
	switch n.role {
	case RoleIngest:
		st := n.Ingest.Stats()
		metric("citybrain_ingest_events_total", "counter", "Events accepted into the log by this node, by kind.")
		for _, k := range engine.Kinds {
			fmt.Fprintf(w, "citybrain_ingest_events_total{kind=%q} %d\n", k.String(), st.Accepted[k].Load())
		}
		metric("citybrain_ingest_rejected_total", "counter", "Events rejected by this node.")
		fmt.Fprintf(w, "citybrain_ingest_rejected_total %d\n", st.Rejected.Load())
		metric("citybrain_ingest_batches_total", "counter", "Batches stored by this node.")
		fmt.Fprintf(w, "citybrain_ingest_batches_total %d\n", st.Batches.Load())
		metric("citybrain_ingest_failed_total", "counter", "Batches this node could not store (the client was told to retry).")
		fmt.Fprintf(w, "citybrain_ingest_failed_total %d\n", st.Failed.Load())
		metric("citybrain_queue_depth", "gauge", "Messages waiting in a bounded queue.")
		fmt.Fprintf(w, "citybrain_queue_depth{queue=\"nats-ingest\"} %d\n", n.natsSrc.QueueDepth())
	case RoleEngine:
		n.pmu.Lock()
		var sts []cluster.PartitionStatus
		for _, p := range n.parts {
			sts = append(sts, p.Status(0))
		}
		n.pmu.Unlock()
		sort.Slice(sts, func(i, j int) bool { return sts[i].Partition < sts[j].Partition })
		metric("citybrain_partitions_owned", "gauge", "Partitions this engine node owns.")
		fmt.Fprintf(w, "citybrain_partitions_owned %d\n", len(sts))
		metric("citybrain_partition_events", "gauge", "Events reflected in a partition's engine.")
		for _, s := range sts {
			fmt.Fprintf(w, "citybrain_partition_events{partition=\"%d\"} %d\n", s.Partition, s.Events)
		}
		metric("citybrain_partition_lag", "gauge", "Log messages of a partition not yet applied.")
		for _, s := range sts {
			fmt.Fprintf(w, "citybrain_partition_lag{partition=\"%d\"} %d\n", s.Partition, s.Lag)
		}
		metric("citybrain_partition_applied_seq", "gauge", "Log sequence of the last message a partition applied.")
		for _, s := range sts {
			fmt.Fprintf(w, "citybrain_partition_applied_seq{partition=\"%d\"} %d\n", s.Partition, s.AppliedSeq)
		}
	case RoleAPI:
		f, r, b := n.Merged.Counters()
		metric("citybrain_cluster_frames_total", "counter", "Partition frames applied by this api node.")
		fmt.Fprintf(w, "citybrain_cluster_frames_total %d\n", f)
		metric("citybrain_cluster_resyncs_total", "counter", "Full partition states fetched (start, new owner, lost frame).")
		fmt.Fprintf(w, "citybrain_cluster_resyncs_total %d\n", r)
		metric("citybrain_cluster_bad_frames_total", "counter", "Frames refused (undecodable).")
		fmt.Fprintf(w, "citybrain_cluster_bad_frames_total %d\n", b)
		metric("citybrain_cluster_partition_synced", "gauge", "1 when this api node holds a partition's current state.")
		for _, s := range n.Merged.Sync() {
			fmt.Fprintf(w, "citybrain_cluster_partition_synced{partition=\"%d\"} %d\n", s.Partition, b2i(s.Synced))
		}
		metric("citybrain_cluster_partition_stale", "gauge", "1 when a partition sent no frame for 5 s (its owner is gone; its last state is shown).")
		for _, s := range n.Merged.Sync() {
			fmt.Fprintf(w, "citybrain_cluster_partition_stale{partition=\"%d\"} %d\n", s.Partition, b2i(s.Stale))
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Stop stops the node: engine nodes store each partition's snapshot and give their leases back.
func (n *Node) Stop(ctx context.Context) error {
	var errs []error
	n.stopOnce.Do(func() {
		if n.feedCancel != nil {
			n.feedCancel()
			n.feedWG.Wait()
		}
		if n.loopCancel != nil {
			n.loopCancel()
			<-n.loopDone
		}
		if n.mem != nil {
			n.mem.close()
		}
		if n.http != nil {
			if err := n.http.Shutdown(ctx); err != nil {
				n.http.Close()
			}
		}
		if n.Hub != nil {
			n.Hub.Close()
		}
		if n.Merged != nil {
			n.Merged.Close()
		}
		if n.Replays != nil {
			n.Replays.Stop()
		}
		if n.natsSrc != nil {
			n.natsSrc.Stop()
		}
		n.pmu.Lock()
		parts := n.parts
		n.parts = map[int]*cluster.Partition{}
		starting := n.starting
		n.starting = map[int]*partStart{}
		n.pmu.Unlock()
		for _, s := range starting {
			s.abandon()
		}
		n.startWG.Wait()
		for k, p := range parts {
			if err := p.Stop(true); err != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", k, err))
			}
		}
		if n.leases != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			n.leases.ReleaseAll(rctx)
			cancel()
		}
		if n.kv != nil && n.id != "" {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cluster.DeleteNode(rctx, n.kv, n.id)
			cancel()
		}
		if n.nc != nil {
			n.nc.Drain()
			n.nc.Close()
		}
	})
	return errors.Join(errs...)
}

func writeJSON(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
