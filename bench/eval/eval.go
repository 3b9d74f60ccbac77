// Package eval measures CityBrain's incident detection against labelled ground truth, end to end through the
// real API: it starts the whole system in this process (system.Start with no feed of its own, the code
// `citybrain run --demo=false` runs), sends each scenario's events with POST /api/v1/events, waits for the
// watermark after every batch (spec/api.md Status), reads GET /api/v1/incidents?status=all and scores the
// incidents against the scenario's truth: detection rate, false alarms per simulated hour, mean, median and
// worst time to detect (event time), location error. Scenarios: the built-in demo city's logged incidents
// (all evidence, and traffic data only), and the SUMO Bologna scenario with injected lane blockages (partial
// and full closures) and with synthetic cameras and hotline calls, plus a run without incidents. See
// docs/incidents.md. The product must not import this package.
package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Config sets up an evaluation.
type Config struct {
	Short    bool    // one small scenario per source (CI)
	Seeds    []int64 // demo seeds and SUMO seeds (nil: 1, 2, 3; short: 1)
	Minutes  int     // simulated minutes per scenario (0: demo 120, Bologna 60; short: demo 30, Bologna 20); Bologna at most 60
	DataRoot string  // holds sumo/bologna-acosta ("" : no SUMO part)
	TempDir  string  // where data directories and SUMO runs go ("" : os.TempDir())
	SUMO     string  // the sumo binary ("" : sumo on PATH; missing: the SUMO part is skipped with a note)
	NoSUMO   bool    // skip the SUMO part
	NoDemo   bool    // skip the demo part
	// SUMOCache: a directory where each SUMO run's events and truths are kept (keyed by scenario, seed,
	// length and blockages) and read back instead of running SUMO again; "" : none. For re-scoring rule
	// changes quickly; the SUMO inputs are the same for the same key.
	SUMOCache string
	Log       io.Writer
}

// Scenario is one scored run: a source (demo or bologna), a variant of its evidence and a seed.
type Scenario struct {
	Name       string    `json:"name"`
	Source     string    `json:"source"`  // demo, bologna
	Variant    string    `json:"variant"` // all (traffic, video, reports), video (traffic and video), traffic
	Seed       int64     `json:"seed"`
	Incidents  string    `json:"incidents"` // what was injected
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	SimulatedS float64   `json:"simulated_s"`
	Feed       feedStats `json:"feed"`
	WallS      float64   `json:"wall_s"`
	Metrics    Metrics   `json:"metrics"`
	// ByClass scores each class of truth (crash, stalled_vehicle, full_closure, partial_closure) apart.
	ByClass    map[string]Metrics `json:"by_class"`
	Truths     []TruthResult      `json:"truths"`
	Detections []Detection        `json:"detections"`
	Notes      []string           `json:"notes,omitempty"`
}

// Target is one of issue 4's bars, measured.
type Target struct {
	Name   string  `json:"name"`
	Bar    string  `json:"bar"`
	Value  string  `json:"value"`
	Met    bool    `json:"met"`
	Over   string  `json:"over"` // the scenarios it is computed on
	Detail Metrics `json:"detail"`
}

// Report is the evaluation's result.
type Report struct {
	Version   string               `json:"version,omitempty"`
	Started   time.Time            `json:"started"`
	WallS     float64              `json:"wall_s"`
	Short     bool                 `json:"short"`
	Seeds     []int64              `json:"seeds"`
	Rule      string               `json:"match_rule"`
	Scenarios []*Scenario          `json:"scenarios"`
	Groups    map[string]Metrics   `json:"groups"` // source/variant[/class], summed over seeds
	Targets   []Target             `json:"targets"`
	Skipped   []string             `json:"skipped,omitempty"`
	byName    map[string]*Scenario `json:"-"`
}

// MatchRule describes the rule in words.
func MatchRule() string {
	return fmt.Sprintf("a detection (any incident the API lists with status=all) matches a true incident within %.0f m whose [start − %s, end + %s] holds its detected_at; a true incident is detected by its earliest matching detection (time to detect = detected_at − start, event time; location error = distance from the incident's reported position); later matches are duplicates, not false alarms; a detection that matches none is a false alarm unless all its evidence is from city sensors (out of scope: floods and gas, not lane blockages); incidents starting less than %s before the end of the data are not scored",
		MatchRadiusM, MatchBefore, MatchAfter, ScoreMargin)
}

func (c *Config) fill() {
	if len(c.Seeds) == 0 {
		c.Seeds = []int64{1, 2, 3}
		if c.Short {
			c.Seeds = []int64{1}
		}
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

func (c *Config) demoMinutes() int {
	switch {
	case c.Minutes > 0:
		return c.Minutes
	case c.Short:
		return 30
	default:
		return 120
	}
}

func (c *Config) sumoMinutes() int {
	switch {
	case c.Minutes > 0:
		return min(c.Minutes, 60)
	case c.Short:
		return 20
	default:
		return 60
	}
}

// Run runs the scenarios and scores them. It returns the report so far with an error when a scenario fails.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.fill()
	t0 := time.Now()
	rep := &Report{Started: t0.UTC(), Short: cfg.Short, Seeds: cfg.Seeds, Rule: MatchRule(), byName: map[string]*Scenario{}}
	finish := func(err error) (*Report, error) {
		rep.WallS = round3(time.Since(t0).Seconds())
		rep.summarise()
		return rep, err
	}
	if !cfg.NoDemo {
		for _, seed := range cfg.Seeds {
			variants := []string{"all", "traffic"}
			if cfg.Short {
				variants = variants[:1]
			}
			for _, v := range variants {
				sc, err := runDemo(ctx, &cfg, seed, v)
				if sc != nil {
					rep.add(sc)
				}
				if err != nil {
					return finish(err)
				}
			}
		}
	}
	if !cfg.NoSUMO {
		if why := sumoMissing(&cfg); why != "" {
			rep.Skipped = append(rep.Skipped, "SUMO Bologna scenarios skipped: "+why)
			fmt.Fprintf(cfg.Log, "eval: SUMO Bologna scenarios skipped: %s\n", why)
		} else if err := runBologna(ctx, &cfg, rep); err != nil {
			return finish(err)
		}
	}
	return finish(nil)
}

// sumoMissing says why the SUMO part cannot run ("" when it can).
func sumoMissing(cfg *Config) string {
	if cfg.SUMO == "" {
		p, err := exec.LookPath("sumo")
		if err != nil {
			return "sumo is not installed (scripts/install-sumo.sh)"
		}
		cfg.SUMO = p
	}
	if cfg.DataRoot == "" {
		return "no data dir (set CITYBRAIN_DATA or --citybrain-data)"
	}
	if _, err := os.Stat(filepath.Join(cfg.DataRoot, bolognaDir, "run.sumocfg")); err != nil {
		return fmt.Sprintf("the Bologna scenario is missing (%v)", err)
	}
	return ""
}

func (r *Report) add(sc *Scenario) {
	r.Scenarios = append(r.Scenarios, sc)
	r.byName[sc.Name] = sc
}

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
func scoreScenario(ctx context.Context, h *harness, sc *Scenario, truths []Truth) error {
	incs, err := h.incidents(ctx)
	if err != nil {
		return err
	}
	dets := make([]Detection, 0, len(incs))
	for _, in := range incs {
		d := Detection{ID: in.ID, Type: in.Type, Status: in.Status, Lat: in.Lat, Lng: in.Lng, Score: in.Score,
			DetectedAt: in.DetectedAt}
		seen := map[string]bool{}
		for _, e := range in.Evidence {
			if !seen[e.Kind] {
				seen[e.Kind] = true
				d.Kinds = append(d.Kinds, e.Kind)
			}
		}
		dets = append(dets, d)
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
