// Package eval measures CityBrain's incident detection and speed estimation against what really happened,
// on a corpus of road networks run in SUMO under rough conditions (issue 12): probes on 15 % (and 5 %) of the
// vehicles reporting a noisy fix every 5 s, loops on some links every 30 s, closures full and partial
// anywhere on a link, traffic near capacity with a quarter of the drivers rerouting, cameras at a fifth of the
// signalised junctions with their counts, stall alarms and false alarms, and late, misplaced hotline calls.
// Truths are the stops SUMO's blockers really made and the vehicle-seconds of every vehicle; each city is
// scored on its own, and leave-one-city-out wherever something was fitted. The built-in demo city is scored
// too. See docs/incidents.md. The product must not import this package.
package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
)

// Config sets up an evaluation.
type Config struct {
	Short       bool     // one small city, one seed, 20 minutes; the demo for 30 (CI)
	Seeds       []int64  // SUMO seeds and demo seeds (nil: 1, 2, 3; short: 1)
	Minutes     int      // simulated minutes per SUMO run (0: 60; short: 20)
	DemoMinutes int      // simulated minutes of the demo city (0: 120; short: 30)
	Cities      []string // the cities to run (nil: all; short: nanchang)
	Variants    []string // evidence variants (nil: traffic, all, traffic5, all5; short: traffic, all)
	DataRoot    string   // the shared data ("" : no SUMO part)
	TempDir     string   // where data directories and SUMO runs go ("" : os.TempDir())
	SUMO        string   // the sumo binary ("" : sumo on PATH; missing: the SUMO part is skipped with a note)
	NoSUMO      bool     // skip the SUMO corpus
	NoDemo      bool     // skip the demo city
	// Cache is where built cities and SUMO runs are kept and read back ("" : the user cache directory's
	// citybrain-eval). A run is keyed by the corpus version, city, seed, length and blockages.
	Cache string
	// HTTP feeds every scenario through the whole system (system.Start: NATS, log, engine, API) over HTTP
	// instead of through the ingest decoder straight into the engine; slower, same results.
	HTTP bool
	// Prepare builds the cities and runs SUMO into the cache, scoring nothing.
	Prepare bool
	// Model is the blockage detector's model each city is judged with: "loco" (the default, and what the
	// table of issue 12 asks for: fitted and calibrated on the corpus's other cities, never on the city it
	// judges), "shipped" (engine/detect/model.json, trained on every city: what the product runs), or the
	// path of a model file.
	Model string
	// Corpus is the cities the leave-one-city-out models are fitted from (each city's model on all of them
	// but itself; nil: every city of the corpus).
	Corpus []string
	// Train, when set, fits the model on every city of the corpus, writes it to this path and prints the
	// leave-one-city-out proxy table, scoring nothing through the engine.
	Train string
	// Heavy, when above 0, adds to every model's training rows a run of each training city and seed at a
	// heavier load (its demand's period × Heavy; a scenario's own demand scaled by 1/Heavy in SUMO), with its
	// own blockages: congested links without a blockage among the negatives. Those runs are cached like the
	// corpus's (keyed by the load), never scored, and never in the model of the city they come from.
	Heavy float64
	// HeavyCalibrate chooses the operating point on the heavier runs too (default: on the corpus's own).
	HeavyCalibrate bool
	// CalSpare and CalCap: up to CalSpare training cities may exceed the calibration's limit, each within
	// CalCap false alarms per hour (TrainOptions.SpareCities; default 0: every training city within it).
	CalSpare int
	CalCap   float64
	// CalLimit: the calibration's false-alarm limit per training city (TrainOptions.MaxFalsePerH; 0: 0.5).
	CalLimit float64
	// CalCrossFit chooses each model's operating point on out-of-city probabilities (TrainOptions.CrossFit).
	CalCrossFit bool
	// TrainIgnore names features every model fitted here never splits on (TrainOptions.Ignore; default none).
	TrainIgnore []string
	// TrainPartial: partial closures' rows are fitted on at this weight (TrainOptions.Partial; default 0: not).
	TrainPartial float64
	// TrainNoFeeders: every model (the one Train writes and the leave-one-city-out ones) is fitted with a full
	// closure's feeder rows as near rows, not its positives (Feeders weight 0: the shipped model's recipe).
	TrainNoFeeders bool
	// TrainFeeders: the recipe every model is fitted with for full closures' feeder positives (nil: each fitted
	// on as a row of the closed link); TrainNoFeeders overrides it.
	TrainFeeders *Feeders
	// Cold feeds every run to an engine that has seen nothing before (and extracts the training rows the same
	// way). By default (false) each run is fed after a warm-up: the traffic data of another seed's run of the
	// same city one day earlier (warmSeed, warmShift), not scored, so the links' baselines have learned as a
	// deployed engine's would have. The short form (CI) is always cold: it keeps one SUMO run.
	Cold bool
	Log  io.Writer
}

// Variants of the evidence fed.
const (
	VarTraffic  = "traffic"  // probes (15 %), buses, loops
	VarAll      = "all"      // + cameras and hotline calls
	VarTraffic5 = "traffic5" // probes at 5 %
	VarAll5     = "all5"
)

// Scenario is one scored run: a city, a variant of its evidence and a seed.
type Scenario struct {
	Name       string    `json:"name"`
	Source     string    `json:"source"` // the city, or demo
	Variant    string    `json:"variant"`
	Seed       int64     `json:"seed"`
	Incidents  string    `json:"incidents"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	SimulatedS float64   `json:"simulated_s"`
	Feed       feedStats `json:"feed"`
	WallS      float64   `json:"wall_s"`
	Metrics    Metrics   `json:"metrics"`
	// ByClass scores each class of truth (crash, stalled_vehicle, full_closure, partial_closure) apart.
	ByClass    map[string]Metrics      `json:"by_class"`
	Speed      map[string]SpeedMetrics `json:"speed,omitempty"` // link, cell, square
	Truths     []TruthResult           `json:"truths"`
	Detections []Detection             `json:"detections"`
	Notes      []string                `json:"notes,omitempty"`
	speedPairs map[string][]speedPair
}

// Report is the evaluation's result.
type Report struct {
	Version   string             `json:"version,omitempty"`
	Started   time.Time          `json:"started"`
	WallS     float64            `json:"wall_s"`
	Short     bool               `json:"short"`
	Seeds     []int64            `json:"seeds"`
	Rule      string             `json:"match_rule"`
	Cities    map[string]string  `json:"cities"`
	ModelNote string             `json:"model"`
	Scenarios []*Scenario        `json:"scenarios"`
	Groups    map[string]Metrics `json:"groups"` // source/variant[/class|/position|/camera], summed over seeds
	// Speed by source/variant/unit kind, summed over seeds.
	Speed   map[string]SpeedMetrics `json:"speed"`
	Targets []Target                `json:"targets"`
	// Observable: when each full closure of the scored cities shows in the traffic data at all (the oracle
	// bound; measured on the corpus's rows, so with --model loco only).
	Observable []Observable `json:"observable,omitempty"`
	// Sweep: each held-out model's detection against false alarms over its own city's rows (sweep.go; with
	// --model loco only).
	Sweep []SweepPoint `json:"sweep,omitempty"`
	// SweepTruths: per closure of the held-out cities, the fewest false alarms per hour at which the sweep
	// finds it within its bar.
	SweepTruths []SweepTruth `json:"sweep_truths,omitempty"`
	// Against names the report the sweep's closures are paired with in the table (AgainstTruths: its closures).
	Against       string       `json:"against,omitempty"`
	AgainstTruths []SweepTruth `json:"-"`
	Skipped       []string     `json:"skipped,omitempty"`
	// Health: does each SUMO run hold the traffic condition (near capacity, not gridlock)? Per city
	// and seed, by 300-s window (health.go).
	Health []HealthRun `json:"corpus_health,omitempty"`
}

// Target is one of issue 12's bars for one city, measured.
type Target struct {
	City  string `json:"city"`
	Name  string `json:"name"`
	Bar   string `json:"bar"`
	Value string `json:"value"`
	Met   bool   `json:"met"`
}

// MatchRule describes the rule in words.
func MatchRule() string {
	return fmt.Sprintf("a detection (any incident the engine lists, status=all) matches a true incident within %.0f m whose [start − %s, end + %s] holds its detected_at; a true incident is detected by its earliest matching detection (time to detect = detected_at − start, event time; location error = distance from the incident's reported position); later matches are duplicates, not false alarms; a detection that matches none is a false alarm unless all its evidence is from city sensors; incidents starting less than %s before the end of the data are not scored",
		MatchRadiusM, MatchBefore, MatchAfter, ScoreMargin)
}

func (c *Config) fill() {
	if len(c.Seeds) == 0 {
		c.Seeds = []int64{1, 2, 3}
		if c.Short {
			c.Seeds = []int64{1}
		}
	}
	if c.Minutes <= 0 {
		c.Minutes = 60
		if c.Short {
			c.Minutes = 20
		}
	}
	if c.DemoMinutes <= 0 {
		c.DemoMinutes = 120
		if c.Short {
			c.DemoMinutes = 30
		}
	}
	if len(c.Cities) == 0 {
		c.Cities = CityNames()
		if c.Short {
			c.Cities = []string{"nanchang"}
		}
	}
	if len(c.Variants) == 0 {
		c.Variants = []string{VarTraffic, VarAll, VarTraffic5, VarAll5}
		if c.Short {
			c.Variants = []string{VarTraffic, VarAll}
		}
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.Model == "" {
		c.Model = "loco"
		if c.Short {
			c.Model = "shipped"
		}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Short {
		c.Cold = true
	}
}

func (c *Config) cacheDir() string {
	if c.Cache != "" {
		return c.Cache
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "citybrain-eval")
	}
	return filepath.Join(c.TempDir, "citybrain-eval-cache")
}

// Run runs the scenarios and scores them. It returns the report so far with an error when a scenario fails.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.fill()
	t0 := time.Now()
	rep := &Report{Started: t0.UTC(), Short: cfg.Short, Seeds: cfg.Seeds, Rule: MatchRule(), Cities: map[string]string{}}
	finish := func(err error) (*Report, error) {
		rep.WallS = round3(time.Since(t0).Seconds())
		rep.summarise()
		return rep, err
	}
	if cfg.Train != "" {
		return finish(train(ctx, &cfg, rep))
	}
	if !cfg.NoSUMO {
		if why := sumoMissing(&cfg); why != "" {
			rep.Skipped = append(rep.Skipped, "SUMO corpus skipped: "+why)
			fmt.Fprintf(cfg.Log, "eval: SUMO corpus skipped: %s\n", why)
		} else {
			models, err := cityModels(ctx, &cfg, rep)
			if err != nil {
				return finish(err)
			}
			for _, name := range cfg.Cities {
				c, ok := cityByName(name)
				if !ok {
					return finish(fmt.Errorf("cannot evaluate city %q: not in the corpus (%s)", name, strings.Join(allCityNames(), ", ")))
				}
				if err := runCity(ctx, &cfg, c, models[name], rep); err != nil {
					return finish(err)
				}
			}
		}
	}
	if !cfg.NoDemo && !cfg.Prepare {
		// The demo city is in no corpus, so no leave-one-city-out model judges it: a model file judges it as
		// it judges the corpus's cities, otherwise the shipped model does.
		model, err := modelFile(&cfg)
		if err != nil {
			return finish(err)
		}
		if rep.ModelNote == "" {
			rep.ModelNote = "the demo city judged by the shipped model (engine/detect/model.json)"
			if model != nil {
				rep.ModelNote = "the demo city judged by the model " + cfg.Model
			}
		}
		for _, seed := range cfg.Seeds {
			for _, v := range []string{VarAll, VarTraffic} {
				if cfg.Short && v == VarTraffic {
					continue
				}
				sc, err := runDemo(ctx, &cfg, seed, v, model)
				if sc != nil {
					rep.Scenarios = append(rep.Scenarios, sc)
				}
				if err != nil {
					return finish(err)
				}
			}
		}
	}
	return finish(nil)
}

// sumoMissing says why the SUMO corpus cannot run ("" when it can).
func sumoMissing(cfg *Config) string {
	if cfg.SUMO == "" {
		p, err := exec.LookPath("sumo")
		if err != nil {
			return errNoSUMO.Error()
		}
		cfg.SUMO = p
	}
	for _, t := range []string{"netconvert", "netgenerate", "python3"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Sprintf("%s is not installed (scripts/install-sumo.sh)", t)
		}
	}
	if _, err := os.Stat(filepath.Join(sumoHome(), "tools", "randomTrips.py")); err != nil {
		return fmt.Sprintf("SUMO's tools are missing (%v; apt-get install sumo-tools)", err)
	}
	if cfg.DataRoot == "" {
		return "no data dir (set CITYBRAIN_DATA or --citybrain-data)"
	}
	if _, err := os.Stat(filepath.Join(cfg.DataRoot, bolognaDir, "acosta_buslanes.net.xml")); err != nil {
		return fmt.Sprintf("the shared SUMO scenarios are missing (%v)", err)
	}
	return ""
}

// bolognaDir is the Bologna scenario under the data root (read-only: it is copied into the cache).
const bolognaDir = "sumo/bologna-acosta"

// cityModels returns the detector model each city is judged with (nil: the shipped one). With cfg.Model
// "loco" every city of the corpus is simulated (or read from the cache) for every seed first, since each
// city's model is fitted on all the others. A model fitted before on the same rows with the same options
// and fitting code is read back from the cache's models directory (fitCached), so a change to fusion reuses
// the models and a change to the detector's features refits them.
// With cfg.Prepare nothing is judged, so no model is read or fitted: preparing a city outside the corpus
// builds that city alone.
func cityModels(ctx context.Context, cfg *Config, rep *Report) (map[string]*detect.Model, error) {
	out := map[string]*detect.Model{}
	if cfg.Prepare {
		return out, nil
	}
	switch cfg.Model {
	case "shipped":
		rep.ModelNote = "each city judged by the shipped model (engine/detect/model.json, trained on every city of the corpus)"
		return out, nil
	case "loco":
	default:
		m, err := modelFile(cfg)
		if err != nil {
			return nil, err
		}
		for _, c := range cfg.Cities {
			out[c] = m
		}
		rep.ModelNote = "each city judged by the model " + cfg.Model
		return out, nil
	}
	all := *cfg
	all.Cities = CityNames()
	if len(cfg.Corpus) > 0 {
		all.Cities = cfg.Corpus
	}
	runs, err := loadCorpus(ctx, &all)
	if err != nil {
		return nil, err
	}
	feedersNote(cfg.Log, runs, cfg.trainOptions().Feeders)
	for _, c := range cfg.Cities {
		train, test := locoSplit(runs, c)
		for _, r := range test {
			rep.Observable = append(rep.Observable, r.observable...)
		}
		m, reused, err := fitCached(ctx, filepath.Join(cfg.cacheDir(), "models"), train, cfg.trainOptions())
		if err != nil {
			return nil, err
		}
		how := "fitted"
		if reused {
			how = "fitted before on the same rows (cached)"
		}
		fmt.Fprintf(cfg.Log, "eval: %s is judged by a model %s on the other cities (%s)\n", c, how, opString(m.Operating))
		pts, sts := sweepCity(c, test, m)
		rep.Sweep = append(rep.Sweep, pts...)
		rep.SweepTruths = append(rep.SweepTruths, sts...)
		out[c] = m
	}
	rep.ModelNote = fmt.Sprintf("leave-one-city-out: each city judged by a model fitted and calibrated on the other cities of %s (same seeds), never on itself", strings.Join(all.Cities, ", ")) + heavyNote(cfg)
	if fd := cfg.trainOptions().Feeders; !fd.isDefault() {
		rep.ModelNote += "; " + fd.String()
	}
	return out, nil
}

// modelFile is the model of the file cfg.Model names (nil for "loco" and "shipped": the shipped one, the
// binary's engine/detect/model.json).
func modelFile(cfg *Config) (*detect.Model, error) {
	if cfg.Model == "" || cfg.Model == "loco" || cfg.Model == "shipped" {
		return nil, nil
	}
	data, err := os.ReadFile(cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("cannot read the detector model: %w", err)
	}
	return detect.ParseModel(data)
}

// runCity builds a city, runs its seeds in SUMO (or reads them from the cache) and scores every variant,
// judged by model (nil: the shipped one).
func runCity(ctx context.Context, cfg *Config, c *city, model *detect.Model, rep *Report) error {
	cf, err := buildCity(ctx, cfg, c)
	if err != nil {
		return err
	}
	rep.Cities[c.Name] = c.What
	endS := float64(cfg.Minutes) * 60
	rs := newRunSet(ctx, cfg, c, cf, endS)
	for _, seed := range cfg.Seeds {
		run, err := rs.run(seed)
		if err != nil {
			return err
		}
		rep.Health = append(rep.Health, corpusHealth(run))
		if cfg.Prepare {
			continue
		}
		warm, err := rs.warm(seed)
		if err != nil {
			return err
		}
		for _, v := range cfg.Variants {
			sc, err := feedRun(ctx, cfg, cf.net, run, warm, v, model)
			if sc != nil {
				rep.Scenarios = append(rep.Scenarios, sc)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// feedRun feeds one variant of a SUMO run through a fresh engine and scores it; warm (nil: none) is fed
// first as the day before, its traffic data only and unscored (warm.go).
func feedRun(ctx context.Context, cfg *Config, net *geo.Network, run, warm *simRun, variant string, model *detect.Model) (*Scenario, error) {
	t0 := time.Now()
	sc := &Scenario{Name: fmt.Sprintf("%s/%s/seed%d", run.City, variant, run.Seed), Source: run.City, Variant: variant, Seed: run.Seed,
		Incidents: fmt.Sprintf("%d closures (full and partial, mid-block, before a stop line, past a junction)", len(run.Truths)),
		Start:     simStart, End: simTime(run.EndS), SimulatedS: run.EndS, Notes: append([]string(nil), run.Notes...)}
	truths := append([]Truth(nil), run.Truths...)
	low := variant == VarTraffic5 || variant == VarAll5
	withVideo := variant == VarAll || variant == VarAll5
	events := run.trafficEvents(low)
	if withVideo {
		events = append(events, run.Video...)
		events = append(events, hotlineCalls(run.City, run.Seed, truths, run.EndS)...)
		for i := range truths {
			truths[i].VideoEvidence = sawVideo(run.Video, &truths[i])
			truths[i].FirstVideoS = firstVideo(run.Video, &truths[i])
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TS < events[j].TS })
	fmt.Fprintf(cfg.Log, "eval: %s: feeding %d events\n", sc.Name, len(events))
	t, err := newTarget(ctx, cfg, net, model)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if warm != nil {
		wev := warm.warmEvents(low)
		wf := newFeeder(t, simStart.Add(-warmShift))
		if err := wf.feed(ctx, wev); err != nil {
			return sc, fmt.Errorf("cannot warm %s: %w", sc.Name, err)
		}
		sc.Notes = append(sc.Notes, fmt.Sprintf("warmed by seed %d's traffic data %s earlier (%d events, %d accepted, %d rejected; not scored)",
			warmSeed(run.Seed), warmShift, len(wev), wf.st.Accepted, wf.st.Rejected))
	}
	f := newFeeder(t, simStart)
	var ss *speedScore
	if !withVideo {
		ss = newSpeedScore(run, net, simStart, engine.DefaultConfig().Res, low)
		f.atWindow = func(ctx context.Context, at int64) error { return ss.at(ctx, t, at) }
	}
	if err := f.feed(ctx, events); err != nil {
		return sc, fmt.Errorf("cannot feed %s: %w", sc.Name, err)
	}
	if ss != nil && f.nextWin <= simTime(run.EndS).UnixMilli() {
		if err := ss.at(ctx, t, f.nextWin); err != nil {
			return sc, err
		}
	}
	sc.Feed = f.st
	if err := scoreScenario(ctx, t, sc, truths); err != nil {
		return sc, err
	}
	if ss != nil {
		sc.speedPairs = ss.pairs
		sc.Speed = map[string]SpeedMetrics{}
		for k, ps := range ss.pairs {
			sc.Speed[k] = speedMetrics(ps)
		}
	}
	sc.WallS = round3(time.Since(t0).Seconds())
	fmt.Fprintf(cfg.Log, "eval: %s: %d events in %.1f s; %d/%d detected, %d false alarms\n", sc.Name, sc.Feed.Events,
		sc.WallS, sc.Metrics.Detected, sc.Metrics.Truths, sc.Metrics.FalseAlarms)
	return sc, nil
}

func newTarget(ctx context.Context, cfg *Config, net *geo.Network, model *detect.Model) (target, error) {
	if cfg.HTTP {
		return startSystem(ctx, net, cfg.TempDir, model)
	}
	return newDirect(net, model), nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the report (%s): %w", path, err)
	}
	return nil
}

// scoreScenario reads the incidents and scores them against truths.
func scoreScenario(ctx context.Context, t target, sc *Scenario, truths []Truth) error {
	all, err := t.detections(ctx)
	if err != nil {
		return err
	}
	// The warm-up day's incidents are not the scored run's.
	var dets []Detection
	for _, d := range all {
		if !d.DetectedAt.Before(sc.Start) {
			dets = append(dets, d)
		}
	}
	hours := sc.SimulatedS / 3600
	sc.Truths, sc.Detections, sc.Metrics = score(truths, dets, sc.End, hours)
	sc.ByClass = map[string]Metrics{}
	for _, tr := range sc.Truths {
		if _, ok := sc.ByClass[tr.Class]; ok {
			continue
		}
		class := tr.Class
		sc.ByClass[class] = merge([]*Scenario{sc}, func(_ *Scenario, t *TruthResult) bool { return t.Class == class },
			func(*Scenario) bool { return false })
	}
	return nil
}

// firstVideo is when the first incident-type video detection within videoRangeM of t during [start, end]
// came, in seconds after t's start (nil: none).
func firstVideo(videos []engine.Event, t *Truth) *float64 {
	p := geo.LatLng{Lat: t.Lat, Lng: t.Lng}
	var first *float64
	for i := range videos {
		v := &videos[i]
		if v.Type == "vehicle_count" {
			continue
		}
		ts := time.UnixMilli(v.TS)
		if ts.Before(t.Start) || ts.After(t.End) || geo.DistanceM(p, geo.LatLng{Lat: v.Lat, Lng: v.Lng}) > videoRangeM {
			continue
		}
		if s := ts.Sub(t.Start).Seconds(); first == nil || s < *first {
			first = &s
		}
	}
	return first
}

// sawVideo reports whether an incident-type video detection lies within videoRangeM of t during [start, end].
func sawVideo(videos []engine.Event, t *Truth) bool {
	p := geo.LatLng{Lat: t.Lat, Lng: t.Lng}
	for i := range videos {
		v := &videos[i]
		if v.Type == "vehicle_count" {
			continue
		}
		ts := time.UnixMilli(v.TS)
		if ts.Before(t.Start) || ts.After(t.End) {
			continue
		}
		if geo.DistanceM(p, geo.LatLng{Lat: v.Lat, Lng: v.Lng}) <= videoRangeM {
			return true
		}
	}
	return false
}
