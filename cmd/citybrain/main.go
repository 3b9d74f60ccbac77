// Command citybrain runs the CityBrain traffic and emergency-command engine and its tools.
//
//	citybrain run [flags]                    the whole system: NATS (embedded), engine, API, web UI, demo city
//	citybrain feed <format> <file|url> ...   send a field format (GTFS-RT, DeepStream, METR-LA, ...) to a server
//	citybrain version
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"citybrain/basemap"
	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/system"
	"citybrain/web"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

func usage() {
	fmt.Fprintf(os.Stderr, `usage: citybrain <command> [flags]

commands:
  run       start the whole system (see citybrain run -h)
  feed      send a field format to a running server (see citybrain feed -h)
  sim       run the demo city as a separate feeder (see citybrain sim -h)
  nats      run one node of a NATS cluster with JetStream for a CityBrain cluster (see citybrain nats -h)
  version   print the version
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "feed":
		err = feedMain(os.Args[2:])
	case "sim":
		err = simMain(os.Args[2:])
	case "nats":
		err = natsMain(os.Args[2:])
	case "replay":
		err = replayMain(os.Args[2:])
	case "export":
		err = exportMain(os.Args[2:])
	case "bench":
		err = benchMain(os.Args[2:])
	case "signals":
		err = signalsMain(os.Args[2:])
	case "eval":
		err = evalMain(os.Args[2:])
	case "version", "--version", "-version":
		fmt.Println(version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "citybrain: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "citybrain: %v\n", err)
		os.Exit(1)
	}
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	ed, ld := engine.DefaultConfig(), eventlog.DefaultConfig()
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the API and web UI")
	dataDir := fs.String("data", "data", "directory for the event log (JetStream) and the admin token")
	demo := fs.Bool("demo", true, "run the built-in live demo city inside the process")
	natsURL := fs.String("nats", "", "URL of an external NATS server with JetStream, or a cluster's as nats://h1:4222,nats://h2:4222,... (default: start an embedded one)")
	role := fs.String("role", system.RoleAll, "all (the whole system in one process), or a cluster node: ingest, engine or api (docs/scale-out.md)")
	partitions := fs.Int("partitions", 12, "cluster: partitions of the city (the same on every node)")
	districtRes := fs.Int("district-res", eventlog.DefaultDistrictRes, "cluster: H3 resolution of the districts events are keyed by (the same on every node)")
	replicas := fs.Int("replicas", 3, "cluster: JetStream replicas of the log, leases and snapshots (1 on a single NATS server)")
	nodeID := fs.String("node", "", "cluster: this node's id (default host-role-pid)")
	leaseTTL := fs.Duration("lease-ttl", 3*time.Second, "cluster: how long a dead engine node keeps its partitions")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server for outside publishers (empty: in-process only; port 0: random)")
	authFile := fs.String("auth", "", "auth config file (tokens and roles); without one, an admin token is written under --data and the server must listen on loopback")
	res := fs.Int("res", ed.Res, "base H3 resolution of cells")
	bucket := fs.Duration("bucket", ed.Bucket, "event-time bucket")
	lateness := fs.Duration("lateness", ed.Lateness, "allowed lateness: watermark = newest event time − lateness")
	retention := fs.Duration("retention", ed.Retention, "how long raw events stay in memory (shortened while the memory budget needs it)")
	memLimit := fs.String("memory-limit", "", "memory budget of the process (e.g. 8GiB; default half the machine's memory, \"none\": no budget): raw retention is shortened and ingest answers 429 / slow down to stay within it; sets GOMEMLIMIT unless given")
	tick := fs.Duration("tick", ed.Tick, "how often changed cells are published")
	shards := fs.Int("shards", ed.Shards, "engine shard goroutines")
	maxAge := fs.Duration("log-max-age", ld.MaxAge, "event log retention by age")
	maxBytes := fs.Int64("log-max-bytes", ld.MaxBytes, "event log retention by size (bytes)")
	demoSpeed := fs.Float64("demo-speed", 1, "demo city speed: 1 = real time")
	demoSeed := fs.Int64("demo-seed", 1, "demo city random seed")
	networkFile := fs.String("network", "", "road network file: City Brain roadnet .txt, SUMO .net.xml or GeoJSON lines (.geojson/.json)")
	flowFile := fs.String("flows", "", "City Brain flow file for the demo city's routes on --network (default: flow.txt beside a City Brain roadnet)")
	snapEvery := fs.Duration("snapshot-every", 5*time.Minute, "how often to snapshot the engine state under --data/snapshots (negative: never)")
	maxAhead := fs.Duration("max-ahead", 5*time.Minute, "events from HTTP and NATS more than this ahead of the server's clock are rejected (0: no bound; feed recorded data faster than real time with a --start in the past instead)")
	maxConns := fs.Int("max-conns", system.DefaultHTTPLimits().MaxConns, "HTTP connections open at once (websockets included)")
	basemapSrc := fs.String("basemap", "", "offline base map: a .pmtiles or .mbtiles file served by this binary, or an http(s) URL it fetches for the browser")
	osmFile := fs.String("osm", "", "OSM XML extract whose water, parks, roads and places draw the base map")
	tz := fs.String("tz", "", "the city's IANA time zone for the web app (default: Asia/Shanghai for the demo city, else the browser's)")
	webhooksFile := fs.String("webhooks", "", `JSON file of alert webhooks: [{"url": "https://...", "secret": "...", "min_severity": 3, "zones": ["..."]}] (docs/zones.md)`)
	openAnon := fs.Bool("opendata-anonymous", false, "with --auth, let callers without a token read the open-data API (/api/v1/opendata)")
	openRate := fs.Int("opendata-rate", 60, "open-data API requests a minute per caller (token or address)")
	capSender := fs.String("cap-sender", "", "sender of CAP 1.2 messages (default citybrain@citybrain.local)")
	var origins stringList
	fs.Var(&origins, "ws-origin", "an extra browser origin allowed to open /ws (repeatable; the page's own origin always is)")
	fs.Parse(args)

	ecfg := ed
	ecfg.Res, ecfg.Bucket, ecfg.Lateness, ecfg.Retention, ecfg.Tick, ecfg.Shards = *res, *bucket, *lateness, *retention, *tick, *shards
	lcfg := ld
	lcfg.MaxAge, lcfg.MaxBytes = *maxAge, *maxBytes
	logger := log.New(os.Stderr, "citybrain: ", log.LstdFlags)
	cfg := system.Config{
		HTTPAddr: *httpAddr, DataDir: *dataDir, NATSURL: *natsURL, NATSListen: *natsListen, AuthFile: *authFile,
		Version: version, Web: web.Files(), Logger: logger, Engine: ecfg, Log: lcfg,
		SnapshotEvery: *snapEvery, AllowedOrigins: origins, CAPSender: *capSender,
		HTTP:              system.HTTPLimits{MaxConns: *maxConns},
		CommandCenter:     system.CommandCenter{Basemap: *basemapSrc, OSM: *osmFile, TimeZone: *tz},
		OpenDataAnonymous: *openAnon, OpenDataPerMinute: *openRate,
	}
	switch *memLimit {
	case "":
	case "none", "0":
		cfg.MemoryLimit = -1
	default:
		n, err := system.ParseBytes(*memLimit)
		if err != nil {
			return fmt.Errorf("cannot use --memory-limit: %w", err)
		}
		cfg.MemoryLimit = n
	}
	cfg.Ingest.MaxAhead = *maxAhead
	if *maxAhead == 0 {
		cfg.Ingest.MaxAhead = -1
	}
	if *webhooksFile != "" {
		data, err := os.ReadFile(*webhooksFile)
		if err != nil {
			return fmt.Errorf("cannot read --webhooks: %w", err)
		}
		if err := json.Unmarshal(data, &cfg.Webhooks); err != nil {
			return fmt.Errorf("cannot parse --webhooks %s: %w", *webhooksFile, err)
		}
	}
	if *networkFile != "" {
		net, err := loadNetwork(*networkFile)
		if err != nil {
			return err
		}
		cfg.Network = net
		for _, line := range networkSummary(*networkFile, net) {
			logger.Print(line)
		}
		if *flowFile == "" && strings.HasSuffix(*networkFile, "roadnet.txt") {
			if f := filepath.Join(filepath.Dir(*networkFile), "flow.txt"); fileExists(f) {
				*flowFile = f
			}
		}
	}
	demoSet := false
	fs.Visit(func(f *flag.Flag) { demoSet = demoSet || f.Name == "demo" })
	if *demo {
		if cfg.Network == nil {
			cfg.Network = geo.GenerateWestLake(*demoSeed)
			cfg.CommandCenter.BaseFeatures = basemap.WestLake(*demoSeed)
			if *tz == "" {
				cfg.CommandCenter.TimeZone = "Asia/Shanghai"
			}
		}
		// In a cluster every node loads the demo city's roads; only an ingest node given --demo runs the city.
		if *role == system.RoleAll || (*role == system.RoleIngest && demoSet) {
			cfg.Feeders = append(cfg.Feeders, demoFeeder(cfg.Network, *flowFile, *demoSeed, *demoSpeed, logger))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *role != system.RoleAll {
		return runNode(ctx, cfg, system.ClusterConfig{Role: *role, NodeID: *nodeID, Partitions: *partitions,
			DistrictRes: *districtRes, Replicas: *replicas, LeaseTTL: *leaseTTL}, logger)
	}
	sys, err := system.Start(ctx, cfg)
	if err != nil {
		return err
	}
	logger.Printf("CityBrain %s listening on http://%s (map at http://%s/)", version, sys.Addr(), sys.Addr())
	if u := sys.NATSURL(); u != "" {
		logger.Printf("NATS ingest at %s (subjects citybrain.in.<kind>, citybrain.in.batch, citybrain.in.arrow)", u)
	}
	<-ctx.Done()
	logger.Printf("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sys.Stop(sctx)
}

// networkSummary is what `run` logs about a loaded road network: its size and, when no junction is
// signalised (a GeoJSON file without traffic-signal points, a City Brain file of zeros), a warning: the
// blockage detector leans on whether a link ends at a signal and finds far fewer closures without it.
func networkSummary(path string, net *geo.Network) []string {
	signals := 0
	for _, nd := range net.Nodes() {
		if nd.Signalised {
			signals++
		}
	}
	lines := []string{fmt.Sprintf("road network %s: %d intersections (%d signalised), %d links", path, len(net.Nodes()), signals, len(net.Links()))}
	if signals == 0 {
		lines = append(lines, fmt.Sprintf("warning: road network %s has no signalised junction; the blockage detector judges every link as "+
			"ending at an unsignalised junction and finds far fewer closures (GeoJSON: add highway=traffic_signals points, docs/geo.md)", path))
	}
	return lines
}

// loadNetwork picks the loader by file name.
func loadNetwork(path string) (*geo.Network, error) {
	switch {
	case strings.HasSuffix(path, ".net.xml"):
		return geo.LoadSUMONetFile(path)
	case strings.HasSuffix(path, ".geojson"), strings.HasSuffix(path, ".json"):
		return geo.LoadGeoJSONFile(path)
	default:
		return geo.LoadCityBrainFile(path)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runNode runs a cluster node until ctx ends.
func runNode(ctx context.Context, cfg system.Config, cc system.ClusterConfig, logger *log.Logger) error {
	cfg.Cluster = cc
	n, err := system.StartNode(ctx, cfg)
	if err != nil {
		return err
	}
	logger.Printf("CityBrain %s: %s node %s on http://%s (NATS %s, %d partitions)", version, n.Role(), n.ID(), n.Addr(), cfg.NATSURL, cc.Partitions)
	<-ctx.Done()
	logger.Printf("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Stop(sctx)
}
