package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"citybrain/bench/eval"
	"citybrain/engine/detect"
)

// evalMain implements `citybrain eval`: incident detection and speed estimation measured against what really
// happened, on the SUMO corpus of issue 12 (several cities, rough conditions) and the demo city (see
// docs/incidents.md).
func evalMain(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	short := fs.Bool("short", false, "one small city, one seed, 20 minutes, and the demo for 30 (the CI run)")
	out := fs.String("out", filepath.Join("bin", "eval-report.json"), "where the JSON report goes (its directory is created; empty: none)")
	table := fs.String("table", "", "also write the markdown table to this file")
	seeds := fs.String("seeds", "", "comma-separated seeds of SUMO and of the demo city (default 1,2,3; --short: 1)")
	minutes := fs.Int("minutes", 0, "simulated minutes per SUMO run (default 60; --short 20)")
	demoMinutes := fs.Int("demo-minutes", 0, "simulated minutes of the demo city (default 120; --short 30)")
	cities := fs.String("cities", "", "comma-separated cities of the corpus (default all: "+strings.Join(eval.CityNames(), ",")+"), or outside it, scored only when named: "+strings.Join(eval.OutsideCityNames(), ","))
	variants := fs.String("variants", "", "comma-separated evidence variants: traffic, all, traffic5, all5 (default all four)")
	dataRoot := fs.String("citybrain-data", os.Getenv("CITYBRAIN_DATA"), "data directory holding sumo/ and citybrain/ (default $CITYBRAIN_DATA, else ../shared/data)")
	sumoBin := fs.String("sumo", "", "the sumo binary (default: sumo on PATH; without one the SUMO corpus is skipped)")
	noSUMO := fs.Bool("no-sumo", false, "skip the SUMO corpus")
	noDemo := fs.Bool("no-demo", false, "skip the demo city")
	tmpDir := fs.String("tmp", "", "where temporary data directories and SUMO runs go (default the system's temp dir)")
	cache := fs.String("cache", "", "where built cities and SUMO runs are kept and reused (default the user cache dir's citybrain-eval)")
	sumoCache := fs.String("sumo-cache", "", "same as --cache (older name)")
	viaHTTP := fs.Bool("http", false, "feed every scenario through the whole system over HTTP (slower; same results)")
	prepare := fs.Bool("prepare", false, "only build the cities and run SUMO into the cache")
	model := fs.String("model", "", "the blockage detector's model each city is judged with: loco (default: fitted on the other cities), shipped (engine/detect/model.json), or a model file (which judges the demo city too; otherwise the demo city is judged by the shipped model)")
	trainTo := fs.String("train", "", "fit the detector on every city of the corpus and write the model here (the shipped model: engine/detect/model.json); prints the leave-one-city-out proxy table")
	heavy := fs.Float64("heavy", 0, "also fit every detector model on a run of each of its training cities and seeds at a heavier load: the demand's period times this factor (0: none); those runs are cached, never scored, never in the held-out city's model")
	heavyCal := fs.Bool("heavy-calibrate", false, "choose the operating point on the heavier runs too (default: on the corpus's own runs)")
	calSpare := fs.Int("cal-spare", 0, "how many training cities (the noisiest at each candidate operating point) may exceed the calibration's limit (--cal-limit), each within --cal-cap (default 0: every training city within it)")
	calCap := fs.Float64("cal-cap", 1, "with --cal-spare: the most false alarms per hour a spared training city may raise")
	calLimit := fs.Float64("cal-limit", 0, "the most false alarms per hour the operating point may raise on a training city (through the proxy fusion; 0: the default 0.5)")
	calCross := fs.Bool("cal-crossfit", false, "choose each model's operating point on out-of-city probabilities: each training city's runs judged by a model fitted on the other training cities alone, as a city never seen is judged (default: on the model's own probabilities of the rows it was fitted on)")
	ignore := fs.String("train-ignore", "", "comma-separated detector features every model fitted here never splits on (e.g. signal: a property of the map that told the corpus's cities apart); default none")
	partial := fs.Float64("train-partial", 0, "fit every detector model here on partial closures' rows too, each weighing this much of a full closure's row (0: not fitted on them, the default; at most 1)")
	noFeeders := fs.Bool("train-no-feeders", false, "fit every detector model here (the one --train writes and the leave-one-city-out ones) with the rows of a full closure's feeders as near rows (neither hit nor false alarm), not as that closure's positives: the shipped model's recipe (SR1-c6; docs/incidents.md, session 19); the same as --train-feeders 0")
	feeders := fs.Float64("train-feeders", 1, "fit every detector model here with a full closure's feeder positives (a row of a link feeding the closed one, its vehicles held while the closed link gets nothing) each weighing this much of a row of the closed link (1: the default; 0: not fitted on, as --train-no-feeders)")
	feedersEmpty := fs.Bool("train-feeders-empty", false, "fit every detector model here with a full closure's feeder positives only at the bucket ends where the closed link itself has no row past the gate (the others as near rows)")
	corpus := fs.String("loco-cities", "", "the cities the leave-one-city-out models are fitted from (default every city of the corpus)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	warm := fs.Bool("warm", true, "feed each SUMO run after a warm-up: another seed's run of the same city one day earlier, unscored, so the links' baselines have learned as a deployed engine's (false: every engine starts cold; --short is always cold)")
	against := fs.String("against", "", "an earlier report (--out) whose sweep the table pairs this one's with, closure by closure (detector A/Bs)")
	fs.Parse(args)

	cfg := eval.Config{Short: *short, Minutes: *minutes, DemoMinutes: *demoMinutes, DataRoot: *dataRoot, TempDir: *tmpDir,
		SUMO: *sumoBin, NoSUMO: *noSUMO, NoDemo: *noDemo, Cache: *cache, HTTP: *viaHTTP, Prepare: *prepare, Model: *model, Train: *trainTo,
		Heavy: *heavy, HeavyCalibrate: *heavyCal, CalSpare: *calSpare, CalCap: *calCap, CalCrossFit: *calCross, CalLimit: *calLimit, TrainPartial: *partial, TrainNoFeeders: *noFeeders || *feeders == 0, Cold: !*warm}
	switch {
	case *calSpare < 0:
		return fmt.Errorf("--cal-spare %d: the number of training cities spared cannot be negative", *calSpare)
	case *calCap < 0 || math.IsNaN(*calCap):
		return fmt.Errorf("--cal-cap %g: false alarms per hour must be a number, 0 or more", *calCap)
	case *calLimit < 0 || math.IsNaN(*calLimit):
		return fmt.Errorf("--cal-limit %g: false alarms per hour must be a number, 0 or more (0: the default 0.5)", *calLimit)
	case !(*feeders >= 0 && *feeders <= 1):
		return fmt.Errorf("--train-feeders %g: a feeder positive weighs from 0 (not fitted on) to 1 (as a row of the closed link)", *feeders)
	case (*noFeeders || *feeders == 0) && *feedersEmpty:
		return fmt.Errorf("--train-feeders-empty: no feeder positive is fitted on with --train-no-feeders or --train-feeders 0")
	case *noFeeders && *feeders != 1:
		return fmt.Errorf("--train-no-feeders with --train-feeders %g: give one of them", *feeders)
	case !(*partial >= 0 && *partial <= 1):
		return fmt.Errorf("--train-partial %g: a partial closure's row weighs from 0 (not fitted on) to 1 (as a full closure's)", *partial)
	}
	if *feeders != 1 || *feedersEmpty {
		cfg.TrainFeeders = &eval.Feeders{Weight: *feeders, Empty: *feedersEmpty}
	}
	if *ignore != "" {
		for _, name := range strings.Split(*ignore, ",") {
			if detect.FeatureIndex(name) < 0 {
				return fmt.Errorf("--train-ignore %q: the detector has no feature %q (its features: %s)", *ignore, name, strings.Join(detect.FeatureNames[:], ","))
			}
			cfg.TrainIgnore = append(cfg.TrainIgnore, name)
		}
	}
	if *corpus != "" {
		cfg.Corpus = strings.Split(*corpus, ",")
	}
	if cfg.Cache == "" {
		cfg.Cache = *sumoCache
	}
	if *seeds != "" {
		for _, s := range strings.Split(*seeds, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("cannot parse --seeds %q: %w", *seeds, err)
			}
			cfg.Seeds = append(cfg.Seeds, n)
		}
	}
	if *cities != "" {
		cfg.Cities = strings.Split(*cities, ",")
	}
	if *variants != "" {
		cfg.Variants = strings.Split(*variants, ",")
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = sharedDataDir()
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	limit := 6 * time.Hour
	if *short {
		limit = 15 * time.Minute
	}
	ctx, cancel := boundedRun(limit)
	defer cancel()
	var base *eval.Report
	if *against != "" {
		data, err := os.ReadFile(*against)
		if err != nil {
			return fmt.Errorf("cannot read the report to pair with: %w", err)
		}
		base = new(eval.Report)
		if err := json.Unmarshal(data, base); err != nil {
			return fmt.Errorf("cannot read the report to pair with (%s): %w", *against, err)
		}
	}
	rep, err := eval.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	if base != nil {
		rep.Against, rep.AgainstTruths = *against, base.SweepTruths
	}
	rep.Version = version
	if werr := printReport(rep, *out); werr != nil {
		return werr
	}
	if *table != "" {
		if werr := os.WriteFile(*table, []byte(rep.Table()), 0o644); werr != nil {
			return fmt.Errorf("cannot write the table (%s): %w", *table, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot finish the evaluation: %w", err)
	}
	return nil
}
