package bench

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"citybrain/system"
)

// Report is the machine-readable result of a run.
type Report struct {
	Version        string             `json:"version"`
	StartedAt      time.Time          `json:"started_at"`
	Short          bool               `json:"short"`
	StepSeconds    float64            `json:"step_seconds"`
	Machine        Machine            `json:"machine"`
	Pool           poolInfo           `json:"pool"`
	Floors         Floors             `json:"floors"`
	Ingest         []IngestPath       `json:"ingest"`
	Freshness      *Freshness         `json:"freshness,omitempty"`
	Fanout         *Fanout            `json:"fanout,omitempty"`
	Peer           *PeerFanout        `json:"fanout_peer,omitempty"`
	Memory         *Memory            `json:"memory,omitempty"`
	ReplaySession  *Replay            `json:"replay_session,omitempty"`
	ReplayServer   *Replay            `json:"replay_session_server,omitempty"`
	Replay         *Replay            `json:"restart_catch_up,omitempty"`
	Overload       *Overload          `json:"overload,omitempty"`
	Zones          *ZonesBench        `json:"zones,omitempty"`
	Targets        []Target           `json:"targets"`
	Notes          []string           `json:"notes,omitempty"`
	Errors         []string           `json:"errors,omitempty"`
	SectionSeconds map[string]float64 `json:"section_seconds"`
	TotalSeconds   float64            `json:"total_seconds"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel     string `json:"cpu_model"`
	CPUs         int    `json:"cpus"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	MemTotal     string `json:"mem_total"`
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

type poolInfo struct {
	Demo   string         `json:"demo"`
	Load   string         `json:"load"`
	Events int            `json:"events"`
	Kinds  map[string]int `json:"kinds"`
}

// Floors are reference rates measured in the same run (events/s), so ratios survive noisy machines.
type Floors struct {
	NATSPubSubJSON  float64 `json:"nats_pubsub_json_per_s"`  // raw NATS publish→subscribe of the NDJSON batches
	NATSPubSubArrow float64 `json:"nats_pubsub_arrow_per_s"` // the same with the Arrow IPC batches
	JSONDecode      float64 `json:"json_decode_per_s"`       // ingest.DecodeLines alone (decode + validate)
	H3Cell          float64 `json:"h3_cell_per_s"`           // geo.CellOf alone
	ArrowDecode     float64 `json:"arrow_decode_per_s"`      // IPC read + engine.ReadEvent of every row
	Goroutines      int     `json:"goroutines"`              // CPU-bound floors run on this many goroutines
}

// IngestPath is the ingest measurement of one path.
type IngestPath struct {
	Path            string             `json:"path"`
	BatchEvents     int                `json:"batch_events"`
	Steps           []IngestStep       `json:"steps"`
	SustainedPerSec float64            `json:"sustained_per_s"`
	StableUpTo      int                `json:"stable_up_to_concurrency"`
	Knee            string             `json:"knee"`
	Target          float64            `json:"target_per_s,omitempty"`
	RatioToFloor    map[string]float64 `json:"ratio_to_floor"`
}

// FreshLevel is the freshness at one load level.
type FreshLevel struct {
	Percent        int     `json:"percent_of_sustained"`
	RatePerSec     float64 `json:"offered_per_s"`
	AcceptedPerSec float64 `json:"accepted_per_s"`
	BehindPerSec   float64 `json:"behind_per_s"` // events the pacer could not send because every sender was busy
	Markers        int     `json:"markers"`
	Seen           int     `json:"markers_seen"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	P99BeyondTick  float64 `json:"p99_beyond_tick_ms"`
	ServerCores    float64 `json:"server_cpu_cores"`
	ClientMsgs     uint64  `json:"client_messages"`
	// Trace: /metrics and the status sampled every 100 ms during the level (what a marker waits on beyond
	// the tick): the engine's tick, the hub's part of it, the engine's backlog of log messages.
	Trace *FreshTrace `json:"trace,omitempty"`
}

// FreshTrace summarises the samples of a freshness level: p50, p90 and max of each.
type FreshTrace struct {
	Samples         int        `json:"samples"`
	EngineTickMs    [3]float64 `json:"engine_tick_ms_p50_p90_max"`
	HubMs           [3]float64 `json:"hub_ms_p50_p90_max"`
	BacklogMessages [3]float64 `json:"backlog_messages_p50_p90_max"`
}

// Freshness is event time → the websocket delta that shows it.
type Freshness struct {
	Clients      int          `json:"clients"`
	Viewports    int          `json:"distinct_viewports"`
	TickMs       float64      `json:"tick_ms"`
	SustainedRef float64      `json:"sustained_reference_per_s"`
	Levels       []FreshLevel `json:"levels"`
	Disconnects  int          `json:"disconnects"`
	SeqGaps      uint64       `json:"seq_gaps"`
}

// FanoutStep is one client count.
type FanoutStep struct {
	Clients      int     `json:"clients"`
	Connected    int     `json:"connected"`
	Seconds      float64 `json:"seconds"`
	Delivered    uint64  `json:"delivered"`
	PerClientHz  float64 `json:"per_client_hz"`
	P50LagMs     float64 `json:"p50_lag_ms"`
	P99LagMs     float64 `json:"p99_lag_ms"`
	MaxLagMs     float64 `json:"max_lag_ms"`
	CPUPerMsgUs  float64 `json:"server_cpu_per_message_us"`
	ServerCores  float64 `json:"server_cpu_cores"`
	ClientCores  float64 `json:"harness_cpu_cores"` // the harness's own CPU (the clients) on the same machine
	RSSBytes     uint64  `json:"rss_bytes"`
	Coalesced    float64 `json:"coalesced"`
	DroppedSlow  float64 `json:"dropped_slow"`
	Disconnected int     `json:"disconnected"`
	OK           bool    `json:"p99_under_200ms"`
}

// Fanout is websocket clients at one delta per second each.
type Fanout struct {
	TickMs     float64      `json:"tick_ms"`
	Viewports  int          `json:"distinct_viewports"`
	Steps      []FanoutStep `json:"steps"`
	MaxClients int          `json:"max_clients_p99_under_200ms"`
	Lag        string       `json:"lag_definition"`
	// AvgMessageBytes is the mean size of the messages the clients received (the peer section sends as much).
	AvgMessageBytes float64 `json:"avg_message_bytes"`
}

// Memory is what the process holds per retained event and per cell.
type Memory struct {
	Events           uint64  `json:"events"`
	BaselineRSS      uint64  `json:"baseline_rss_bytes"`
	FewCellsRSS      uint64  `json:"few_cells_rss_bytes"`
	FewCells         int     `json:"few_cells"`
	ManyCellsRSS     uint64  `json:"many_cells_rss_bytes"`
	ManyCells        int     `json:"many_cells"`
	RawRetained      float64 `json:"raw_events_retained"`
	BytesPerRawEvent float64 `json:"bytes_per_raw_event"`
	// Settled says the RSS figures above were read once the governor gave the fill's transient memory back
	// (input quiet for system.QuietSettle); the *Burst figures are RSS 2 s after the fill was reflected, with
	// the log's block caches and the fill's garbage still held.
	Settled               bool    `json:"settled"`
	FewCellsBurstRSS      uint64  `json:"few_cells_burst_rss_bytes,omitempty"`
	ManyCellsBurstRSS     uint64  `json:"many_cells_burst_rss_bytes,omitempty"`
	BytesPerRawEventBurst float64 `json:"bytes_per_raw_event_burst,omitempty"`
	BytesPerCell          float64 `json:"bytes_per_cell"`
	SustainedRef          float64 `json:"sustained_reference_per_s"`
	Projected15MinRSS     float64 `json:"projected_rss_15min_bytes"`
	ProjectionFormula     string  `json:"projection"`
	EventTimeSpanSecs     float64 `json:"event_time_span_s"`
	IngestPerSec          float64 `json:"ingest_per_s"`
	MeasuredNote          string  `json:"note"`
	ManyCellsIngestErr    string  `json:"many_cells_error,omitempty"`
}

// Replay is how fast recorded events go through the engine again.
type Replay struct {
	Kind            string  `json:"kind"`
	Events          uint64  `json:"events"`
	EventTimeSpan   float64 `json:"event_time_span_s"`
	StartupSeconds  float64 `json:"startup_s"`  // process start → status answers
	CatchUpSeconds  float64 `json:"catch_up_s"` // status answers → every event reflected and caught_up
	EventsPerSec    float64 `json:"events_per_s"`
	RealTimeFactor  float64 `json:"multiple_of_real_time"`
	RSSAfterCatchUp uint64  `json:"rss_bytes,omitempty"`
	// WallEventsPerSec counts the whole command (process start, opening the log) for a replay session.
	WallEventsPerSec float64 `json:"wall_events_per_s,omitempty"`
	// Runs are the events/s of every run of this measure in the order run; the fields above are the median
	// run's (by events/s).
	Runs []float64 `json:"runs_events_per_s,omitempty"`
}

// medianRun returns the run of median events/s (the lower middle of an even count) with every run's rate
// in its Runs, in the order they ran; nil without a run.
func medianRun(runs []*Replay) *Replay {
	if len(runs) == 0 {
		return nil
	}
	rates := make([]float64, len(runs))
	for i, rp := range runs {
		rates[i] = rp.EventsPerSec
	}
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b *Replay) int { return cmp.Compare(a.EventsPerSec, b.EventsPerSec) })
	m := *sorted[(len(sorted)-1)/2]
	m.Runs = rates
	return &m
}

// Target is a target figure of the issue and whether the run met it.
type Target struct {
	What     string  `json:"what"`
	Target   string  `json:"target"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
}

func newReport(cfg Config) *Report {
	return &Report{StartedAt: time.Now().UTC(), Short: cfg.Short, StepSeconds: cfg.Duration.Seconds(), Machine: machine(),
		SectionSeconds: map[string]float64{}}
}

// computeRatios fills the ratios to floors and the target table.
func (rep *Report) computeRatios() {
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.Machine.LoadAvgEnd = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	f := rep.Floors
	ratio := func(x, floor float64) float64 {
		if floor <= 0 {
			return 0
		}
		return x / floor
	}
	for i := range rep.Ingest {
		p := &rep.Ingest[i]
		p.RatioToFloor = map[string]float64{}
		switch {
		case strings.Contains(p.Path, "Arrow"):
			p.RatioToFloor["arrow_decode"] = ratio(p.SustainedPerSec, f.ArrowDecode)
			p.RatioToFloor["h3_cell"] = ratio(p.SustainedPerSec, f.H3Cell)
			if strings.Contains(p.Path, "NATS") {
				p.RatioToFloor["nats_pubsub_arrow"] = ratio(p.SustainedPerSec, f.NATSPubSubArrow)
			}
		default:
			p.RatioToFloor["json_decode"] = ratio(p.SustainedPerSec, f.JSONDecode)
			p.RatioToFloor["h3_cell"] = ratio(p.SustainedPerSec, f.H3Cell)
			if strings.Contains(p.Path, "NATS") {
				p.RatioToFloor["nats_pubsub_json"] = ratio(p.SustainedPerSec, f.NATSPubSubJSON)
			}
		}
	}
	rep.Targets = nil
	for _, p := range rep.Ingest {
		if p.Target > 0 {
			rep.Targets = append(rep.Targets, Target{What: "ingest " + p.Path, Target: fmt.Sprintf(">= %.0f", p.Target),
				Measured: p.SustainedPerSec, Unit: "events/s", Met: p.SustainedPerSec >= p.Target})
		}
	}
	if fr := rep.Freshness; fr != nil {
		for _, l := range fr.Levels {
			if l.Percent == 50 {
				rep.Targets = append(rep.Targets, Target{What: "freshness p99 beyond the tick at 50% of sustained", Target: "<= 50",
					Measured: l.P99BeyondTick, Unit: "ms", Met: l.Seen > 0 && l.P99BeyondTick <= 50})
			}
		}
	}
	if fo := rep.Fanout; fo != nil {
		rep.Targets = append(rep.Targets, Target{What: "websocket clients at 1 Hz with p99 lag < 200 ms", Target: ">= 10000",
			Measured: float64(fo.MaxClients), Unit: "clients", Met: fo.MaxClients >= 10000})
	}
	if ov := rep.Overload; ov != nil {
		what := "overload: RSS max under --memory-limit (+5 %), nothing acknowledged lost"
		if ov.Seconds >= 15*60 {
			what = "15-minute run flat out: RSS max under --memory-limit (+5 %), nothing acknowledged lost"
		}
		rep.Targets = append(rep.Targets, Target{What: what,
			Target: fmt.Sprintf("<= %.0f", 1.05*float64(ov.LimitBytes)/(1<<20)), Measured: float64(ov.RSSMax) / (1 << 20), Unit: "MiB",
			Met: ov.OK})
	}
	if m := rep.Memory; m != nil && m.BytesPerRawEvent > 0 {
		rep.Targets = append(rep.Targets, Target{What: "bytes per retained raw event", Target: "<= 32",
			Measured: m.BytesPerRawEvent, Unit: "bytes", Met: m.BytesPerRawEvent <= 32})
	}
	if rp := rep.ReplaySession; rp != nil {
		rep.Targets = append(rep.Targets, Target{What: "replay session", Target: ">= 5000000",
			Measured: rp.EventsPerSec, Unit: "events/s", Met: rp.EventsPerSec >= 5e6})
	}
	if rp := rep.ReplayServer; rp != nil {
		rep.Targets = append(rep.Targets, Target{What: "replay session on the running server (API)", Target: ">= 5000000",
			Measured: rp.EventsPerSec, Unit: "events/s", Met: rp.EventsPerSec >= 5e6})
	}
	if rp := rep.Replay; rp != nil {
		rep.Targets = append(rep.Targets, Target{What: "restart until caught up (snapshot restore, not a replay)", Target: ">= 5000000",
			Measured: rp.EventsPerSec, Unit: "events/s", Met: rp.EventsPerSec >= 5e6})
	}
}

func si(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	default:
		return fmt.Sprintf("%.0f", x)
	}
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

// Table renders the report for people.
func (rep *Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	m := rep.Machine
	fmt.Fprintf(&b, "CityBrain benchmark %s (short=%t, step %.0fs) on %s, %d CPUs, %s; load %s → %s\n",
		rep.StartedAt.Format(time.RFC3339), rep.Short, rep.StepSeconds, m.CPUModel, m.CPUs, m.GoVersion, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(&b, "event pool: %d events of the %s (%s); load over %s\n\n", rep.Pool.Events, rep.Pool.Demo, kindMix(rep.Pool.Kinds), rep.Pool.Load)

	if f := rep.Floors; f.Goroutines > 0 {
		fmt.Fprintf(&b, "FLOORS (events/s; CPU-bound floors on %d goroutines)\n", f.Goroutines)
		fmt.Fprintf(w, "  NATS pub→sub NDJSON\t%s\tNATS pub→sub Arrow\t%s\n", si(f.NATSPubSubJSON), si(f.NATSPubSubArrow))
		fmt.Fprintf(w, "  JSON decode alone\t%s\tH3 cell alone\t%s\tArrow decode alone\t%s\n", si(f.JSONDecode), si(f.H3Cell), si(f.ArrowDecode))
		w.Flush()
	}

	if len(rep.Ingest) > 0 {
		fmt.Fprintf(&b, "\nINGEST (closed loop: concurrency = requests in flight; pipeline = accepted / time until reflected)\n")
		fmt.Fprintf(w, "  path\tconc\taccepted/s\treflected/s\tpipeline/s\tdrain s\treq p50 ms\treq p99 ms\tserver cores\tharness cores\tRSS\terrors\n")
		for _, p := range rep.Ingest {
			for _, s := range p.Steps {
				fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%.2f\t%.2f\t%s\t%d\n", p.Path, s.Concurrency, si(s.AcceptedPerSec),
					si(s.ReflectedPerSec), si(s.PipelinePerSec), s.DrainSeconds, s.ReqP50Ms, s.ReqP99Ms, s.ServerCores, s.HarnessCores, mib(float64(s.RSSBytes)), s.Errors)
			}
		}
		w.Flush()
		fmt.Fprintf(w, "  path\tsustained/s\tstable up to\tratio to floors\tknee\n")
		for _, p := range rep.Ingest {
			fmt.Fprintf(w, "  %s\t%s\tconc %d\t%s\t%s\n", p.Path, si(p.SustainedPerSec), p.StableUpTo, ratios(p.RatioToFloor), p.Knee)
		}
		w.Flush()
	}
	if fr := rep.Freshness; fr != nil {
		fmt.Fprintf(&b, "\nFRESHNESS (event time → websocket delta, %d clients, %d viewports, tick %.0f ms, sustained ref %s/s)\n",
			fr.Clients, fr.Viewports, fr.TickMs, si(fr.SustainedRef))
		fmt.Fprintf(w, "  load\toffered/s\taccepted/s\tbehind/s\tmarkers seen\tp50 ms\tp99 ms\tmax ms\tp99 beyond tick\tserver cores\n")
		for _, l := range fr.Levels {
			fmt.Fprintf(w, "  %d%%\t%s\t%s\t%s\t%d/%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\n", l.Percent, si(l.RatePerSec), si(l.AcceptedPerSec),
				si(l.BehindPerSec), l.Seen, l.Markers, l.P50Ms, l.P99Ms, l.MaxMs, l.P99BeyondTick, l.ServerCores)
		}
		w.Flush()
		fmt.Fprintf(&b, "  disconnects %d, seq gaps %d\n", fr.Disconnects, fr.SeqGaps)
		fmt.Fprintf(w, "  load	samples	engine tick ms p50/p90/max	hub ms p50/p90/max	engine backlog (log messages) p50/p90/max\n")
		for _, l := range fr.Levels {
			if tr := l.Trace; tr != nil {
				fmt.Fprintf(w, "  %d%%	%d	%.0f/%.0f/%.0f	%.0f/%.0f/%.0f	%.0f/%.0f/%.0f\n", l.Percent, tr.Samples,
					tr.EngineTickMs[0], tr.EngineTickMs[1], tr.EngineTickMs[2], tr.HubMs[0], tr.HubMs[1], tr.HubMs[2],
					tr.BacklogMessages[0], tr.BacklogMessages[1], tr.BacklogMessages[2])
			}
		}
		w.Flush()
	}
	if fo := rep.Fanout; fo != nil {
		fmt.Fprintf(&b, "\nFAN-OUT (tick %.0f ms, %d distinct viewports; lag = %s)\n", fo.TickMs, fo.Viewports, fo.Lag)
		fmt.Fprintf(w, "  clients\tconnected\tdelivered\tper client Hz\tp50 ms\tp99 ms\tmax ms\tCPU/msg µs\tserver cores\tharness cores\tRSS\tcoalesced\tdropped\tok\n")
		for _, s := range fo.Steps {
			fmt.Fprintf(w, "  %d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%.2f\t%s\t%.0f\t%.0f\t%t\n", s.Clients, s.Connected, s.Delivered,
				s.PerClientHz, s.P50LagMs, s.P99LagMs, s.MaxLagMs, s.CPUPerMsgUs, s.ServerCores, s.ClientCores, mib(float64(s.RSSBytes)), s.Coalesced, s.DroppedSlow, s.OK)
		}
		w.Flush()
		fmt.Fprintf(&b, "  max clients with p99 < 200 ms: %d (mean message %.0f B)\n", fo.MaxClients, fo.AvgMessageBytes)
	}
	if pf := rep.Peer; pf != nil {
		fmt.Fprintf(&b, "\nFAN-OUT, PEER (%s %s, %d channels, %d-byte publications; lag = %s)\n", pf.Server, pf.Version, pf.Channels,
			pf.PayloadBytes, pf.Lag)
		if pf.Skipped != "" {
			fmt.Fprintf(&b, "  skipped: %s\n", pf.Skipped)
		}
		fmt.Fprintf(w, "  clients\tconnected\tdelivered\tper client Hz\tp50 ms\tp99 ms\tmax ms\tCPU/msg µs\tserver cores\tRSS\tok\n")
		for _, s := range pf.Steps {
			fmt.Fprintf(w, "  %d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%s\t%t\n", s.Clients, s.Connected, s.Delivered,
				s.PerClientHz, s.P50LagMs, s.P99LagMs, s.MaxLagMs, s.CPUPerMsgUs, s.ServerCores, mib(float64(s.RSSBytes)), s.OK)
		}
		w.Flush()
		fmt.Fprintf(&b, "  max clients with p99 < 200 ms: %d\n", pf.MaxClients)
	}
	if ov := rep.Overload; ov != nil {
		fmt.Fprintf(&b, "\nOVERLOAD (budget %s, HTTP Arrow, %d in flight, %.0fs, %.0fs of event time)\n", mib(float64(ov.LimitBytes)),
			ov.Concurrency, ov.Seconds, ov.EventTimeSpanS)
		fmt.Fprintf(&b, "  accepted %d events (%.0f/s); refused %d of %d batches (429); other errors %d\n", ov.Accepted,
			ov.AcceptedPerSec, ov.RefusedBatches, ov.OfferedBatches, ov.OtherErrors)
		fmt.Fprintf(&b, "  RSS start %s, max %s, last quarter %s–%s, end %s; raw retention %.0fs of %.0fs\n", mib(float64(ov.RSSStart)),
			mib(float64(ov.RSSMax)), mib(float64(ov.RSSLastQuarterLo)), mib(float64(ov.RSSLastQuarterHi)), mib(float64(ov.RSSEnd)),
			ov.RetentionS, ov.RetentionConfS)
		fmt.Fprintf(&b, "  acknowledged and not reflected: %d; ok %t\n", ov.Lost, ov.OK)
		if len(ov.Trace) > 0 {
			fmt.Fprintf(w, "  t s\tRSS MiB\tGo live\tGo objects\tGo free\tGo other\traw MiB\traw events\tretention s\tdoors\taccepted\n")
			for i, p := range ov.Trace {
				every := max(5, len(ov.Trace)/60)
				if i%every != every-1 && i != len(ov.Trace)-1 && !(i+1 < len(ov.Trace) && ov.Trace[i+1].SlowDown != p.SlowDown) {
					continue // every 5th second (of a long run, 60 rows), the last, and where the doors open or shut
				}
				doors := "open"
				if p.SlowDown {
					doors = "shut"
				}
				fmt.Fprintf(w, "  %.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%d\t%.0f\t%s\t%d\n", p.At, p.RSS, p.GoLive, p.GoObjects,
					p.GoFree, p.GoOther, p.RawMiB, p.RawEvents, p.RetentionS, doors, p.AcceptedSum)
			}
			w.Flush()
		}
	}
	if mm := rep.Memory; mm != nil {
		fmt.Fprintf(&b, "\nMEMORY (%d events over %.0fs of event time)\n", mm.Events, mm.EventTimeSpanSecs)
		fmt.Fprintf(w, "  baseline RSS\t%s\tfew cells (%d)\t%s\tmany cells (%d)\t%s\n", mib(float64(mm.BaselineRSS)), mm.FewCells,
			mib(float64(mm.FewCellsRSS)), mm.ManyCells, mib(float64(mm.ManyCellsRSS)))
		fmt.Fprintf(w, "  bytes/raw event\t%.1f\tbytes/cell\t%.0f\tprojected RSS, 15 min at %s/s\t%s\n", mm.BytesPerRawEvent, mm.BytesPerCell,
			si(mm.SustainedRef), mib(mm.Projected15MinRSS))
		if mm.Settled {
			fmt.Fprintf(w, "  (settled: input quiet %s)\tright after the fill\tfew cells\t%s\tmany cells\t%s\tbytes/raw event\t%.1f\n",
				system.QuietSettle, mib(float64(mm.FewCellsBurstRSS)), mib(float64(mm.ManyCellsBurstRSS)), mm.BytesPerRawEventBurst)
		}
		w.Flush()
	}
	if z := rep.Zones; z != nil {
		fmt.Fprintf(&b, "\nZONES (engine/zones in process: cell views, unit fixes, sensor readings, incidents judged)\n")
		fmt.Fprintf(w, "  zones\t%d\tbytes/zone\t%.0f\tevents/CPU-s\t%s\tevents/CPU-s with 100 zones\t%s\tevents/s (wall)\t%s\talerts\t%d\n", z.Zones,
			z.BytesPerZone, si(z.EventsPerCPUSec), si(z.EventsPerCPUSec0), si(z.EventsPerSec), z.AlertsFired)
		w.Flush()
	}
	if rep.ReplaySession != nil || rep.Replay != nil {
		fmt.Fprintf(&b, "\nREPLAY\n")
		fmt.Fprintf(w, "  kind (the median of its runs)\tevents\tevent time s\tstartup s\tplay s\tevents/s\t× real time\tevery run, events/s\n")
		for _, rp := range []*Replay{rep.ReplaySession, rep.ReplayServer, rep.Replay} {
			if rp != nil {
				runs := make([]string, len(rp.Runs))
				for i, x := range rp.Runs {
					runs[i] = si(x)
				}
				fmt.Fprintf(w, "  %s\t%d\t%.0f\t%.2f\t%.2f\t%s\t%.0f\t%s\n", rp.Kind, rp.Events, rp.EventTimeSpan, rp.StartupSeconds,
					rp.CatchUpSeconds, si(rp.EventsPerSec), rp.RealTimeFactor, strings.Join(runs, " "))
			}
		}
		w.Flush()
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintf(&b, "\nTARGETS (measured, not asserted)\n")
		for _, t := range rep.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "  %s\t%s %s\tmeasured %s\t%s\n", t.What, t.Target, t.Unit, si(t.Measured), mark)
		}
		w.Flush()
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "ERROR: %s\n", e)
	}
	fmt.Fprintf(&b, "total %.0fs\n", rep.TotalSeconds)
	return b.String()
}

func kindMix(k map[string]int) string {
	total := 0
	var names []string
	for n, c := range k {
		total += c
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return k[names[i]] > k[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*float64(k[n])/float64(max(total, 1))))
	}
	return strings.Join(parts, ", ")
}

func ratios(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
