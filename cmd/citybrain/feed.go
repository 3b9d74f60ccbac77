package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/ingest/deepstream"
	"citybrain/ingest/feed"
	"citybrain/ingest/gtfsrt"
	"citybrain/ingest/loopcsv"
	"citybrain/ingest/reports"
	"citybrain/ingest/skipped"
)

// feedFormat runs one adapter: it registers its own flags on fs, then, after parsing, reads inputs and calls
// emit for each event. It returns the adapter's skip log for the summary.
type feedFormat struct {
	usage string
	flags func(fs *flag.FlagSet) func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error)
}

// feedFormats is the dispatch table of `citybrain feed <format>`. Other adapters (sumo-fcd, sumo-e1) add their
// entries in their own file with an init function, so that no file is edited by two people.
var feedFormats = map[string]feedFormat{
	"gtfs-rt":    {"gtfs-rt FEED.pb|URL [FEED.pb|URL ...] --static gtfs.zip [--poll 30s]", gtfsRTFlags},
	"deepstream": {"deepstream MESSAGES.json [--cameras cameras.csv]", deepStreamFlags},
	"metr-la":    {"metr-la SPEED.csv --locations sensor_locations.csv [--start ... --interval 5m]", metrLAFlags},
	"incidents":  {"incidents REPORTS.ndjson [--mapping map.json|map.csv]", incidentFlags},
}

// feedMain implements `citybrain feed <format> <file|url>... [--to http://HOST:PORT|nats://HOST:PORT] [--rate N]
// [--token T] [--stdout] [format flags]`.
func feedMain(args []string) error {
	if len(args) == 0 || feedFormats[args[0]].flags == nil {
		return fmt.Errorf("cannot run feed (format %q): usage: citybrain feed <format> <file|url> [flags]; formats:\n%s", first(args), feedUsage())
	}
	format := feedFormats[args[0]]
	fs := flag.NewFlagSet("feed "+args[0], flag.ContinueOnError)
	to := fs.String("to", "", "destination: http://HOST:PORT (POST /api/v1/events) or nats://HOST:PORT (citybrain.in.batch)")
	rate := fs.Float64("rate", 0, "replay speed: N times the events' own timestamps; 0 = as fast as possible")
	token := fs.String("token", "", "API token (HTTP bearer, NATS token)")
	stdout := fs.Bool("stdout", false, "also print the NDJSON batches on stdout")
	batch := fs.Int("batch", 500, "events per batch")
	noReply := fs.Bool("nats-no-reply", false, "NATS: publish without waiting for the ingest answer")
	run := format.flags(fs)
	inputs, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return fmt.Errorf("cannot parse feed flags: %w", err)
	}
	if len(inputs) == 0 {
		return fmt.Errorf("cannot run feed %s: no input; usage: citybrain feed %s", args[0], format.usage)
	}
	if *rate < 0 {
		return fmt.Errorf("cannot run feed (rate %g): rate must be >= 0", *rate)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sinks, err := sinksFor(*to, *token, *noReply, *stdout)
	if err != nil {
		return err
	}
	s := feed.NewSender(ctx, *rate, sinks...)
	s.BatchSize = *batch
	log, runErr := run(ctx, inputs, s.Emit)
	closeErr := s.Close()
	printSkipped(os.Stderr, args[0], log)
	fmt.Fprintf(os.Stderr, "feed %s: %s\n", args[0], s.Summary())
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return closeErr
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func feedUsage() string {
	var b strings.Builder
	for name, f := range feedFormats {
		fmt.Fprintf(&b, "  %-11s citybrain feed %s\n", name, f.usage)
	}
	return b.String()
}

// parseInterspersed parses flags that may come before, between or after the positional inputs.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func verboseLog(l *skipped.Log) {
	l.OnSkip = func(r skipped.Record) { fmt.Fprintln(os.Stderr, "skipped:", r) }
}

func gtfsRTFlags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	static := fs.String("static", "", "static GTFS zip (routes, trips, stops, stop_times)")
	poll := fs.Duration("poll", 0, "poll the URLs at this interval (0: read once)")
	prefix := fs.String("id-prefix", "", "prefix for vehicle ids, e.g. ct-")
	mode := fs.String("mode", "", "mode for routes not in the static feed (bus, tram, metro)")
	source := fs.String("source", "gtfs-rt", "wire source")
	v := fs.Bool("v", false, "print every skipped entity on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		var st *gtfsrt.Static
		if *static != "" {
			var err error
			if st, err = gtfsrt.LoadStatic(*static); err != nil {
				return nil, err
			}
		}
		d, err := gtfsrt.NewDecoder(st, gtfsrt.Options{Source: *source, IDPrefix: *prefix, Mode: *mode})
		if err != nil {
			return nil, err
		}
		if *v {
			verboseLog(&d.Skipped)
		}
		isURL := strings.HasPrefix(inputs[0], "http://") || strings.HasPrefix(inputs[0], "https://")
		switch {
		case *poll > 0:
			err = d.Poll(ctx, &http.Client{Timeout: 30 * time.Second}, inputs, *poll, func(e error) { fmt.Fprintln(os.Stderr, "feed gtfs-rt:", e) }, emit)
		case isURL:
			feeds := make([]gtfsrt.Feed, 0, len(inputs))
			for _, u := range inputs {
				f, ferr := gtfsrt.Fetch(ctx, &http.Client{Timeout: 30 * time.Second}, u)
				if ferr != nil {
					return &d.Skipped, ferr
				}
				feeds = append(feeds, f)
			}
			err = d.Snapshot(feeds, emit)
		default:
			err = d.DecodeFiles(inputs, emit)
		}
		return &d.Skipped, err
	}
}

func deepStreamFlags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	cameras := fs.String("cameras", "", "camera positions CSV (id,lat,lng); wins over the payload's locations")
	mapping := fs.String("mapping", "", "JSON object event type -> count|skip|video type, over the default table")
	interval := fs.Duration("interval", time.Minute, "vehicle_count window")
	conf := fs.Float64("default-confidence", 0, "confidence for events whose payload has none (0: skip them)")
	prefix := fs.String("id-prefix", "", "prefix for camera ids")
	source := fs.String("source", "deepstream", "wire source")
	v := fs.Bool("v", false, "print every skipped message on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		opts := deepstream.Options{Interval: *interval, DefaultConfidence: *conf, IDPrefix: *prefix, Source: *source}
		if *cameras != "" {
			var err error
			if opts.Cameras, err = deepstream.LoadCameras(*cameras); err != nil {
				return nil, err
			}
		}
		if *mapping != "" {
			f, err := os.Open(*mapping)
			if err != nil {
				return nil, fmt.Errorf("cannot open DeepStream mapping: %w", err)
			}
			opts.Mapping, err = deepstream.LoadMapping(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("cannot read DeepStream mapping %s: %w", *mapping, err)
			}
		}
		var log skipped.Log
		for _, in := range inputs {
			opts.Name = in
			d, err := deepstream.NewDecoder(opts)
			if err != nil {
				return &log, err
			}
			if *v {
				verboseLog(&d.Skipped)
			}
			if err := withFile(in, func(r io.Reader) error { return d.Decode(r, emit) }); err != nil {
				return &d.Skipped, err
			}
			merge(&log, &d.Skipped)
		}
		return &log, nil
	}
}

func metrLAFlags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	locations := fs.String("locations", "", "sensor locations CSV (sensor_id,latitude,longitude); required")
	start := fs.String("start", "2012-03-01 00:00", "time of the first row: RFC 3339, or 2012-03-01T00:00 / 2012-03-01 00:00 in --tz (METR-LA: 2012-03-01 00:00)")
	tz := fs.String("tz", "America/Los_Angeles", "time zone of --start and of a time column")
	interval := fs.Duration("interval", 5*time.Minute, "row interval")
	kmh := fs.Bool("kmh", false, "speeds are km/h (default: mph)")
	prefix := fs.String("id-prefix", "metr-la-", "prefix for sensor ids")
	source := fs.String("source", "metr-la/est", "wire source (flow and occupancy are estimates)")
	v := fs.Bool("v", false, "print every skipped reading on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		if *locations == "" {
			return nil, errors.New("cannot run feed metr-la: --locations is required")
		}
		locs, err := loopcsv.LoadLocations(*locations)
		if err != nil {
			return nil, err
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return nil, fmt.Errorf("cannot load time zone (--tz %q): %w", *tz, err)
		}
		t0, err := parseTimeFlag("--start", *start, loc, false)
		if err != nil {
			return nil, err
		}
		var log skipped.Log
		for _, in := range inputs {
			d, err := loopcsv.NewDecoder(loopcsv.Options{Name: in, Start: t0, Interval: *interval, Locations: locs, Mph: !*kmh, Source: *source, IDPrefix: *prefix, Location: loc})
			if err != nil {
				return &log, err
			}
			if *v {
				verboseLog(&d.Skipped)
			}
			if err := withFile(in, func(r io.Reader) error { return d.Decode(r, emit) }); err != nil {
				return &d.Skipped, err
			}
			merge(&log, &d.Skipped)
		}
		return &log, nil
	}
}

func incidentFlags(fs *flag.FlagSet) func(context.Context, []string, func(engine.Event) error) (*skipped.Log, error) {
	mapping := fs.String("mapping", "", "type mapping (JSON or CSV source_type,type,severity); default: Austin")
	prefix := fs.String("id-prefix", "", "prefix for report ids")
	source := fs.String("source", "austin-traffic", "wire source")
	v := fs.Bool("v", false, "print every skipped record on stderr")
	return func(ctx context.Context, inputs []string, emit func(engine.Event) error) (*skipped.Log, error) {
		opts := reports.Options{Source: *source, IDPrefix: *prefix}
		if *mapping != "" {
			var err error
			if opts.Mapping, err = reports.LoadMapping(*mapping); err != nil {
				return nil, err
			}
		}
		var log skipped.Log
		for _, in := range inputs {
			opts.Name = in
			d, err := reports.NewDecoder(opts)
			if err != nil {
				return &log, err
			}
			if *v {
				verboseLog(&d.Skipped)
			}
			if err := withFile(in, func(r io.Reader) error { return d.Decode(r, emit) }); err != nil {
				return &d.Skipped, err
			}
			merge(&log, &d.Skipped)
			for typ, n := range d.Unmapped {
				fmt.Fprintf(os.Stderr, "feed incidents: %d reports of unmapped type %q sent as the \"*\" rule\n", n, typ)
			}
		}
		return &log, nil
	}
}

// withFile opens path ("-" is stdin) and calls fn with it.
func withFile(path string, fn func(io.Reader) error) error {
	if path == "-" {
		return fn(os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open feed input: %w", err)
	}
	defer f.Close()
	return fn(f)
}

// merge adds the counts of src to dst (the first example of each reason is kept).
func merge(dst, src *skipped.Log) {
	for reason, n := range src.Counts() {
		r, _ := src.First(reason)
		for i := 0; i < n; i++ {
			dst.Add(r.Where, reason, r.Detail)
		}
	}
}

// sinksFor opens the destinations of --to (http(s):// or nats://; none: stdout) for feed and sim.
func sinksFor(to, token string, noReply, stdout bool) ([]feed.Sink, error) {
	var sinks []feed.Sink
	switch {
	case strings.HasPrefix(to, "http://") || strings.HasPrefix(to, "https://"):
		sinks = append(sinks, &feed.HTTPSink{URL: strings.TrimRight(to, "/") + "/api/v1/events", Token: token})
	case strings.HasPrefix(to, "nats://"):
		nc, err := feed.DialNATS(to, token)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, &feed.NATSSink{Conn: nc, Reply: !noReply, Own: true})
	case to != "":
		return nil, fmt.Errorf("cannot send to %q: the destination must start with http://, https:// or nats://", to)
	}
	if stdout || to == "" {
		sinks = append(sinks, feed.WriterSink{W: os.Stdout})
	}
	return sinks, nil
}
