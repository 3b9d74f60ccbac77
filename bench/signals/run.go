package signals

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	sig "citybrain/engine/signals"
	"citybrain/ingest/sumo/traci"
)

// Methods.
const (
	Fixed      = "fixed"       // the scenario's own programs
	Actuated   = "actuated"    // SUMO's gap-based actuated control on the same phases
	DelayBased = "delay_based" // SUMO's time-loss-based actuated control on the same phases
	// PressureTraCI is max-pressure fed with TraCI's exact lane counts: perfect information no city has, kept
	// as the upper bound of what the same control law could do.
	PressureTraCI = "max_pressure_traci"
	// CityBrain is the loop a city would run: probes and loops posted to a running CityBrain whose plan API
	// decides every signal.
	CityBrain = "citybrain"
	// CityBrainCyclic is CityBrain keeping each program's order of main greens.
	CityBrainCyclic = "citybrain_cyclic"
	// PreemptSuffix adds the emergency vehicle's green wave to a method (fixed+preempt, citybrain+preempt).
	PreemptSuffix = "+preempt"
)

// Methods lists the default methods in report order.
var Methods = []string{Fixed, Actuated, DelayBased, PressureTraCI, CityBrain}

// KnownMethod reports whether m names a method.
func KnownMethod(m string) bool {
	switch strings.TrimSuffix(m, PreemptSuffix) {
	case Fixed, Actuated, DelayBased, PressureTraCI, CityBrain, CityBrainCyclic:
		return !strings.HasSuffix(m, PreemptSuffix) || !isSUMOControlled(strings.TrimSuffix(m, PreemptSuffix)) || strings.HasPrefix(m, Fixed)
	}
	return false
}

func isSUMOControlled(m string) bool { return m == Fixed || m == Actuated || m == DelayBased }

// Options tune a run.
type Options struct {
	Seed  int
	Scale float64 // demand scale (SUMO --scale); 0 means 1
	// DecideS is how often the TraCI-driven controllers decide (default 2 s).
	DecideS float64
	Control sig.Control
	Feed    FeedOptions
	// PreemptS: the green wave holds a signal's green for the emergency vehicle from this long before its
	// ETA (default 25 s), plus the time to discharge the queue ahead of it.
	PreemptS   float64
	SumoBinary string
	// EV adds the emergency vehicle (default true through Defaults).
	NoEV bool
}

// Defaults returns the options docs/signals.md measures with.
func Defaults() Options {
	return Options{Seed: 1, Scale: 1, DecideS: 2, Control: sig.DefaultControl(), Feed: DefaultFeed(), PreemptS: 25}
}

func (o *Options) fill() {
	d := Defaults()
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.DecideS <= 0 {
		o.DecideS = d.DecideS
	}
	if o.Control == (sig.Control{}) {
		o.Control = d.Control
	}
	if o.Feed == (FeedOptions{}) {
		o.Feed = d.Feed
	}
	if o.PreemptS <= 0 {
		o.PreemptS = d.PreemptS
	}
	if o.SumoBinary == "" {
		o.SumoBinary = "sumo"
	}
}

// Result is one run's outcome.
type Result struct {
	Scenario string  `json:"scenario"`
	Method   string  `json:"method"`
	Seed     int     `json:"seed"`
	Scale    float64 `json:"scale"`
	// From SUMO's statistics output.
	Loaded    int `json:"loaded"`
	Inserted  int `json:"inserted"`
	Arrived   int `json:"arrived"` // trips finished (the emergency vehicle excluded)
	Running   int `json:"running"` // still in the network at the end
	Waiting   int `json:"waiting"` // never inserted
	Teleports int `json:"teleports"`
	// Means over the trips in the tripinfo (finished, and those still running at the horizon).
	Trips            int     `json:"trips"`
	MeanTimeLossS    float64 `json:"mean_time_loss_s"`
	MeanTravelS      float64 `json:"mean_travel_s"`
	MeanWaitS        float64 `json:"mean_wait_s"`
	MeanDepartDelayS float64 `json:"mean_depart_delay_s"`
	EVTravelS        float64 `json:"ev_travel_s"` // -1 when it did not arrive
	EVTimeLossS      float64 `json:"ev_time_loss_s"`
	Switches         int     `json:"switches"`
	Preemptions      int     `json:"preemptions"`
	Signals          int     `json:"signals"`
	// Mismatches counts green-wave entries the gateways could not apply (engine route vs programs).
	Mismatches int `json:"greenwave_mismatches,omitempty"`
	// Unsupported counts signals SUMO's own controller of this type cannot run (they keep their program).
	Unsupported int        `json:"unsupported,omitempty"`
	Feed        *FeedStats `json:"feed,omitempty"`
	WallS       float64    `json:"wall_s"`
	SimulatedS  int        `json:"simulated_s"`
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// controller drives signals over TraCI during a run.
type controller interface {
	// step is called after every simulation step with the subscribed values.
	step(now float64, subs []traci.Sub) error
	close() error
}

// Run runs one method on a scenario to its horizon and reads SUMO's outputs.
func Run(ctx context.Context, sc *Scenario, method string, o Options) (Result, error) {
	o.fill()
	return run1(ctx, sc, method, o, false)
}

func run1(ctx context.Context, sc *Scenario, method string, o Options, retried bool) (Result, error) {
	if !KnownMethod(method) {
		return Result{}, fmt.Errorf("cannot run method %q (known: %s, and +preempt on fixed and the TraCI-driven ones)", method, strings.Join(append(Methods, CityBrainCyclic), ", "))
	}
	res := Result{Scenario: sc.Name, Method: method, Seed: o.Seed, Scale: o.Scale, SimulatedS: sc.EndS, EVTravelS: -1, EVTimeLossS: -1}
	base := strings.TrimSuffix(method, PreemptSuffix)
	preempt := base != method
	dir := filepath.Join(sc.Work, fmt.Sprintf("%s-s%d-x%g", strings.ReplaceAll(method, "+", "_"), o.Seed, o.Scale))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	adds := append([]string(nil), sc.Adds...)
	if base == Actuated || base == DelayBased {
		p := filepath.Join(dir, base+".add.xml")
		skip, err := sc.unsupportedCache(base, nil)
		if err != nil {
			return res, err
		}
		if err := sc.writePrograms(p, base, skip); err != nil {
			return res, fmt.Errorf("cannot write %s programs: %w", base, err)
		}
		res.Unsupported = len(skip)
		adds = append(adds, p)
	}
	var loops []loopSite
	if base == CityBrain || base == CityBrainCyclic {
		var err error
		p := filepath.Join(dir, "loops.add.xml")
		if loops, err = sc.writeLoops(p, o.Feed.LoopGapS); err != nil {
			return res, fmt.Errorf("cannot write loops: %w", err)
		}
		adds = append(adds, p)
	}
	routes := append([]string(nil), sc.Routes...)
	if len(sc.EV) > 0 && !o.NoEV {
		evPath := filepath.Join(dir, "ev.rou.xml")
		if err := sc.writeEV(evPath); err != nil {
			return res, fmt.Errorf("cannot write emergency vehicle: %w", err)
		}
		routes = append(routes, evPath)
	}
	tripinfo, stats := filepath.Join(dir, "tripinfo.xml"), filepath.Join(dir, "stats.xml")
	args := []string{"-c", sc.Config, "-n", sc.Net, "-r", strings.Join(routes, ","),
		"--begin", strconv.Itoa(sc.BeginS), "--end", strconv.Itoa(sc.BeginS + sc.EndS), "--seed", strconv.Itoa(o.Seed),
		"--scale", strconv.FormatFloat(o.Scale, 'g', -1, 64),
		"--tripinfo-output", tripinfo, "--tripinfo-output.write-unfinished", "true", "--statistic-output", stats,
		"--duration-log.statistics", "true", "--no-step-log", "true", "--no-warnings", "true",
		"--log", filepath.Join(dir, "sumo.log")}
	args = append(args, sc.Extra...)
	if len(adds) > 0 {
		args = append(args, "-a", strings.Join(adds, ","))
	}
	traciDriven := !isSUMOControlled(base) || preempt
	port := 0
	if traciDriven {
		var err error
		if port, err = freePort(); err != nil {
			return res, fmt.Errorf("cannot find a free port: %w", err)
		}
		args = append(args, "--remote-port", strconv.Itoa(port))
	}
	cmd := exec.CommandContext(ctx, o.SumoBinary, args...)
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	cmd.Dir = dir
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("cannot start sumo (%s): %w", o.SumoBinary, err)
	}
	fail := func(err error) (Result, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return res, fmt.Errorf("cannot run %s on %s (seed %d, scale %g): %w", method, sc.Name, o.Seed, o.Scale, err)
	}
	if traciDriven {
		c, err := traci.Dial("127.0.0.1:"+strconv.Itoa(port), 2*time.Minute)
		if err != nil {
			return fail(err)
		}
		if err := drive(ctx, c, sc, base, preempt, loops, o, &res); err != nil {
			c.Close()
			return fail(err)
		}
		c.Close()
	}
	if err := cmd.Wait(); err != nil {
		if !retried && (base == Actuated || base == DelayBased) && strings.Contains(err.Error(), "abort") {
			// SUMO's own controller crashed on some junction: find which, keep their programs, run again.
			known, _ := sc.unsupportedCache(base, nil)
			bad, uerr := sc.unsupported(ctx, base, o.SumoBinary, o.Seed, o.Scale, known)
			if uerr != nil {
				return res, uerr
			}
			if _, uerr := sc.unsupportedCache(base, bad); uerr != nil {
				return res, uerr
			}
			return run1(ctx, sc, method, o, true)
		}
		return res, fmt.Errorf("sumo failed on %s/%s: %w (see %s)", sc.Name, method, err, filepath.Join(dir, "sumo.log"))
	}
	res.WallS = time.Since(start).Seconds()
	if err := readTripinfo(tripinfo, &res); err != nil {
		return res, err
	}
	if err := readStats(stats, &res); err != nil {
		return res, err
	}
	return res, nil
}

// drive steps the simulation to its horizon under the method's controller.
func drive(ctx context.Context, c *traci.Client, sc *Scenario, base string, preempt bool, loops []loopSite, o Options, res *Result) error {
	var ctl controller
	var gws map[string]*gateway
	var err error
	now := float64(sc.BeginS)
	switch base {
	case PressureTraCI:
		var p *pressureCtl
		p, err = newPressureCtl(c, sc, o, now)
		ctl, gws = p, p.gws
	case CityBrain, CityBrainCyclic:
		var l *loopCtl
		l, err = newLoopCtl(ctx, c, sc, o, base == CityBrainCyclic, preempt, loops, now)
		if err == nil {
			ctl, gws = l, l.gws
		}
	}
	if err != nil {
		return err
	}
	var pre *preemptor
	if preempt && ctl == nil || preempt && base == PressureTraCI {
		// The green wave on TraCI's view (the closed loop runs the engine's own: ambulance.go).
		pre = newPreemptor(c, sc, gws, o)
	}
	defer func() {
		if ctl != nil {
			ctl.close()
		}
	}()
	for t := 0; t < sc.EndS; t++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		subs, err := c.StepSubs()
		if err != nil {
			return fmt.Errorf("t=%d s: %w", t, err)
		}
		now = float64(sc.BeginS + t + 1)
		if pre != nil {
			if err := pre.step(now); err != nil {
				return fmt.Errorf("t=%d s: preemption: %w", t, err)
			}
		}
		if ctl != nil {
			if err := ctl.step(now, subs); err != nil {
				return fmt.Errorf("t=%d s: %w", t, err)
			}
		}
	}
	if ctl != nil {
		err := ctl.close()
		if lc, ok := ctl.(*loopCtl); ok {
			st := lc.feedStats()
			res.Feed = &st
			if lc.amb != nil {
				res.Preemptions, res.Mismatches = lc.amb.count, lc.amb.mismatch
			}
		}
		ctl = nil
		if err != nil {
			return err
		}
	}
	for _, g := range gws {
		res.Switches += g.switches
	}
	res.Signals = len(gws)
	if pre != nil {
		res.Preemptions = pre.preemptions
	}
	return nil
}

// readTripinfo averages the trips (finished, and with write-unfinished those still running at the end).
func readTripinfo(path string, res *Result) error {
	var n int
	var dur, loss, wait, dd float64
	err := scanXML(path, func(se xml.StartElement, _ *xml.Decoder) error {
		if se.Name.Local != "tripinfo" {
			return nil
		}
		a := attrs(se)
		d, _ := strconv.ParseFloat(a["duration"], 64)
		l, _ := strconv.ParseFloat(a["timeLoss"], 64)
		arrival, _ := strconv.ParseFloat(a["arrival"], 64)
		if a["id"] == "ev" {
			if arrival >= 0 {
				res.EVTravelS, res.EVTimeLossS = d, l
			}
			return nil
		}
		w, _ := strconv.ParseFloat(a["waitingTime"], 64)
		x, _ := strconv.ParseFloat(a["departDelay"], 64)
		n++
		dur, loss, wait, dd = dur+d, loss+l, wait+w, dd+x
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("cannot read results (%s): no trips", path)
	}
	f := float64(n)
	res.Trips = n
	res.MeanTravelS, res.MeanTimeLossS, res.MeanWaitS, res.MeanDepartDelayS = dur/f, loss/f, wait/f, dd/f
	return nil
}

// readStats reads SUMO's statistic output: vehicles loaded, inserted, running, waiting; teleports; arrivals.
func readStats(path string, res *Result) error {
	found := false
	err := scanXML(path, func(se xml.StartElement, _ *xml.Decoder) error {
		a := attrs(se)
		num := func(k string) int { v, _ := strconv.Atoi(a[k]); return v }
		switch se.Name.Local {
		case "vehicles":
			found = true
			res.Loaded, res.Inserted, res.Running, res.Waiting = num("loaded"), num("inserted"), num("running"), num("waiting")
		case "teleports":
			res.Teleports = num("total")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("cannot read results (%s): no vehicle statistics", path)
	}
	res.Arrived = res.Inserted - res.Running
	if res.EVTravelS >= 0 {
		res.Arrived--
	}
	return nil
}

// sigLanes is one signal's lanes as the decision sees them.
type sigLanes struct {
	gw     *gateway
	lanes  []string // incoming lanes
	stages []sig.Stage
	outs   [][]string // incoming lane → the outgoing lanes its links lead to
}

// buildSigLanes lists a signal's stages (engine/signals.Program.Stages) and each lane's outgoing lanes.
func buildSigLanes(tl *TL, gw *gateway) *sigLanes {
	s := &sigLanes{gw: gw}
	s.lanes, s.stages, _ = tl.Prog().Stages()
	idx := map[string]int{}
	for i, l := range s.lanes {
		idx[l] = i
	}
	s.outs = make([][]string, len(s.lanes))
	for li, in := range tl.In {
		if i, ok := idx[in]; ok {
			if out := tl.Out[li]; !containsStr(s.outs[i], out) {
				s.outs[i] = append(s.outs[i], out)
			}
		}
	}
	for i := range s.outs {
		sort.Strings(s.outs[i])
	}
	return s
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// controlled lists the signals the TraCI controllers drive: those with a main green (and two, unless the
// program's durations are adjustable, so that the cycle has something to decide).
func controlled(sc *Scenario) []*TL {
	var out []*TL
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		if n := len(tl.Mains()); n >= 2 || n == 1 && tl.adjustable() {
			out = append(out, tl)
		}
	}
	return out
}

// takeOver reads the phase each signal shows and starts its gateway there.
func takeOver(c *traci.Client, tls []*TL, now float64, cyclic bool) (map[string]*gateway, error) {
	b := c.NewBatch()
	for _, tl := range tls {
		b.Get(traci.CmdGetTL, traci.VarTLPhase, tl.ID)
	}
	res, err := b.Do()
	if err != nil {
		return nil, err
	}
	gws := map[string]*gateway{}
	for i, tl := range tls {
		g := newGateway(tl)
		g.cyclic = cyclic || tl.FixedSequence()
		g.start(res[i].Int(), now)
		gws[tl.ID] = g
	}
	return gws, nil
}
