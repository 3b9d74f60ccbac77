package signals

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
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
	Fixed       = "fixed"
	Actuated    = "actuated"
	Webster     = "webster"
	MaxPressure = "max_pressure"
	Preempt     = "fixed+preempt" // fixed-time plans, green wave for the emergency vehicle
)

// Methods lists every method in report order.
var Methods = []string{Fixed, Actuated, Webster, MaxPressure, Preempt}

// Options tune the controllers.
type Options struct {
	SampleS     int     // lanes are sampled every SampleS seconds (default 5)
	ReplanS     float64 // Webster re-plans this often from the flows measured since the last plan (default 300)
	MinGreenS   float64 // max-pressure minimum green (default 10)
	MaxGreenS   float64 // ... maximum green (default 60)
	PreemptS    float64 // preempt a signal this many seconds before the emergency vehicle's ETA (default 20)
	Seed        int
	SumoBinary  string
	KeepOutputs bool
}

func (o *Options) fill() {
	if o.SampleS <= 0 {
		o.SampleS = 5
	}
	if o.ReplanS <= 0 {
		o.ReplanS = 300
	}
	if o.MinGreenS <= 0 {
		o.MinGreenS = 10
	}
	if o.MaxGreenS <= 0 {
		o.MaxGreenS = 60
	}
	if o.PreemptS <= 0 {
		o.PreemptS = 20
	}
	if o.SumoBinary == "" {
		o.SumoBinary = "sumo"
	}
}

// Result is one run's outcome.
type Result struct {
	Scenario      string  `json:"scenario"`
	Method        string  `json:"method"`
	Vehicles      int     `json:"vehicles"` // departed (the emergency vehicle excluded)
	Arrived       int     `json:"arrived"`
	MeanTravelS   float64 `json:"mean_travel_s"`
	MeanDelayS    float64 `json:"mean_delay_s"` // SUMO timeLoss
	MeanWaitS     float64 `json:"mean_wait_s"`  // stopped time
	DepartDelayS  float64 `json:"mean_depart_delay_s"`
	EVTravelS     float64 `json:"ev_travel_s"` // NaN when it did not arrive
	EVDelayS      float64 `json:"ev_delay_s"`
	EVArrived     bool    `json:"ev_arrived"`
	Replans       int     `json:"replans"`
	Switches      int     `json:"switches"`
	Preemptions   int     `json:"preemptions"`
	WallS         float64 `json:"wall_s"`
	SimulatedS    int     `json:"simulated_s"`
	TripinfoPath  string  `json:"-"`
	ControlledTLs int     `json:"controlled_tls"`
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Run runs one method on a scenario to its horizon and reads the tripinfo.
func Run(ctx context.Context, sc *Scenario, method string, o Options) (Result, error) {
	o.fill()
	res := Result{Scenario: sc.Name, Method: method, SimulatedS: sc.EndS, EVTravelS: math.NaN(), EVDelayS: math.NaN()}
	dir := filepath.Join(sc.Work, sc.Name+"-"+strings.ReplaceAll(method, "+", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	adds := append([]string(nil), sc.Adds...)
	if method == Actuated {
		p := filepath.Join(dir, "actuated.add.xml")
		if err := sc.writeActuated(p); err != nil {
			return res, fmt.Errorf("cannot write actuated programs: %w", err)
		}
		adds = append(adds, p)
	}
	evPath := filepath.Join(dir, "ev.rou.xml")
	if err := sc.writeEV(evPath); err != nil {
		return res, fmt.Errorf("cannot write emergency vehicle: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return res, fmt.Errorf("cannot find a free port: %w", err)
	}
	res.TripinfoPath = filepath.Join(dir, "tripinfo.xml")
	args := []string{"-n", sc.Net, "-r", strings.Join(append(append([]string(nil), sc.Routes...), evPath), ","),
		"--begin", "0", "--end", strconv.Itoa(sc.EndS), "--seed", strconv.Itoa(o.Seed),
		"--tripinfo-output", res.TripinfoPath, "--tripinfo-output.write-unfinished", "true",
		"--no-step-log", "true", "--no-warnings", "true", "--time-to-teleport", "300", "--ignore-route-errors", "true",
		"--remote-port", strconv.Itoa(port), "--log", filepath.Join(dir, "sumo.log")}
	if len(adds) > 0 {
		args = append(args, "-a", strings.Join(adds, ","))
	}
	cmd := exec.CommandContext(ctx, o.SumoBinary, args...)
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	cmd.Dir = dir
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("cannot start sumo (%s): %w", o.SumoBinary, err)
	}
	c, err := traci.Dial("127.0.0.1:"+strconv.Itoa(port), 60*time.Second)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return res, fmt.Errorf("cannot run %s on %s: %w", method, sc.Name, err)
	}
	ctl := newController(sc, method, o, c)
	for t := 0; t < sc.EndS; t++ {
		if err := ctx.Err(); err != nil {
			c.Close()
			cmd.Wait()
			return res, fmt.Errorf("cannot finish %s on %s: %w", method, sc.Name, err)
		}
		if err := c.Step(); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return res, fmt.Errorf("cannot run %s on %s (t=%d s): %w", method, sc.Name, t, err)
		}
		if err := ctl.step(float64(t + 1)); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return res, fmt.Errorf("cannot control %s on %s (t=%d s): %w", method, sc.Name, t, err)
		}
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("sumo failed on %s/%s: %w (see %s/sumo.log)", sc.Name, method, err, dir)
	}
	res.WallS = time.Since(start).Seconds()
	res.Replans, res.Switches, res.Preemptions, res.ControlledTLs = ctl.replans, ctl.switches, ctl.preemptions, len(ctl.tls)
	if err := readTripinfo(res.TripinfoPath, &res); err != nil {
		return res, err
	}
	return res, nil
}

// readTripinfo averages the trips (finished and, with write-unfinished, those still running at the end).
func readTripinfo(path string, res *Result) error {
	var n, arr int
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
			res.EVArrived = arrival >= 0
			if res.EVArrived {
				res.EVTravelS, res.EVDelayS = d, l
			}
			return nil
		}
		w, _ := strconv.ParseFloat(a["waitingTime"], 64)
		x, _ := strconv.ParseFloat(a["departDelay"], 64)
		n++
		if arrival >= 0 {
			arr++
		}
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
	res.Vehicles, res.Arrived = n, arr
	res.MeanTravelS, res.MeanDelayS, res.MeanWaitS, res.DepartDelayS = dur/f, loss/f, wait/f, dd/f
	return nil
}

// tlState is the controller's view of one signal.
type tlState struct {
	*TL
	main      []int
	phase     int
	entered   float64
	target    int // phase to reach (-1 none)
	greens    map[int]float64
	preempted bool
}

type controller struct {
	sc          *Scenario
	method      string
	o           Options
	c           *traci.Client
	tls         []*tlState
	lanes       []string
	flowAcc     map[string]float64 // Σ n·v/len·dt since the last plan
	accS        float64
	lastPlan    float64
	count       map[string]float64 // latest vehicles per lane
	replans     int
	switches    int
	preemptions int
}

func newController(sc *Scenario, method string, o Options, c *traci.Client) *controller {
	ct := &controller{sc: sc, method: method, o: o, c: c, flowAcc: map[string]float64{}, count: map[string]float64{}}
	seen := map[string]bool{}
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		if len(tl.Phases) == 0 || len(tl.In) == 0 {
			continue
		}
		st := &tlState{TL: tl, target: -1, phase: -1, greens: map[int]float64{}}
		for i, p := range tl.Phases {
			if p.Main() {
				st.main = append(st.main, i)
			}
		}
		if len(st.main) < 2 {
			continue
		}
		ct.tls = append(ct.tls, st)
		for _, m := range []map[int]string{tl.In, tl.Out} {
			for _, l := range m {
				if !seen[l] {
					seen[l] = true
					ct.lanes = append(ct.lanes, l)
				}
			}
		}
	}
	sort.Strings(ct.lanes)
	return ct
}

func sortedIDs(m map[string]*TL) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (ct *controller) step(now float64) error {
	if ct.method == Fixed || ct.method == Actuated {
		return nil
	}
	b := ct.c.NewBatch()
	for _, t := range ct.tls {
		b.Get(traci.CmdGetTL, traci.VarTLPhase, t.ID)
	}
	sample := int(now)%ct.o.SampleS == 0 && ct.method != Preempt
	if sample {
		for _, l := range ct.lanes {
			b.Get(traci.CmdGetLane, traci.VarLaneN, l)
			b.Get(traci.CmdGetLane, traci.VarLaneV, l)
		}
	}
	if ct.method == Preempt {
		b.Get(traci.CmdGetVeh, traci.VarNextTLS, "ev")
		b.Get(traci.CmdGetVeh, traci.VarSpeed, "ev")
	}
	res, err := b.Do()
	if err != nil {
		return err
	}
	set := ct.c.NewBatch()
	for i, t := range ct.tls {
		if ph := res[i].Int(); ph != t.phase {
			t.phase, t.entered = ph, now
			ct.onPhase(set, t)
		}
	}
	k := len(ct.tls)
	if sample {
		for _, l := range ct.lanes {
			n, v := float64(res[k].Int()), res[k+1].Float()
			k += 2
			ct.count[l] = n
			if ln := ct.sc.Lanes[l]; ln > 0 && v > 0 && n > 0 {
				ct.flowAcc[l] += n * v / ln * float64(ct.o.SampleS)
			}
		}
		ct.accS += float64(ct.o.SampleS)
		switch ct.method {
		case Webster:
			if now-ct.lastPlan >= ct.o.ReplanS {
				ct.plan(now)
			}
		case MaxPressure:
			for _, t := range ct.tls {
				ct.pressure(set, t, now)
			}
		}
	}
	if ct.method == Preempt && res[k].Err == nil {
		ct.preempt(set, now, res[k].NextTLS(), res[k+1].Float())
	} else if ct.method == Preempt {
		ct.preempt(set, now, nil, 0)
	}
	if set.Len() > 0 {
		if _, err := set.Do(); err != nil {
			return err
		}
	} else {
		set.Discard()
	}
	return nil
}

func isMain(t *tlState, p int) bool {
	for _, m := range t.main {
		if m == p {
			return true
		}
	}
	return false
}

// onPhase reacts to a signal entering a phase: Webster sets the planned green; max-pressure and preemption
// steer to their target phase (after the amber that follows the green they ended) and hold it.
func (ct *controller) onPhase(set *traci.Batch, t *tlState) {
	if !isMain(t, t.phase) {
		return
	}
	switch {
	case ct.method == Webster:
		if g, ok := t.greens[t.phase]; ok {
			set.SetDouble(traci.CmdSetTL, traci.VarTLPhDur, t.ID, g)
		}
	case ct.method == MaxPressure || t.preempted || t.target >= 0:
		if t.target >= 0 && t.target != t.phase {
			set.SetInt(traci.CmdSetTL, traci.VarTLSetPh, t.ID, int32(t.target))
			t.phase = t.target
		}
		t.target = -1
		if ct.method == MaxPressure || t.preempted {
			set.SetDouble(traci.CmdSetTL, traci.VarTLPhDur, t.ID, 1000)
		}
	}
}

// switchTo ends the current green (into its amber) on the way to phase p.
func (ct *controller) switchTo(set *traci.Batch, t *tlState, p int) {
	if t.phase == p {
		return
	}
	t.target = p
	next := (t.phase + 1) % len(t.Phases)
	if isMain(t, next) || !isMain(t, t.phase) {
		if isMain(t, t.phase) {
			set.SetInt(traci.CmdSetTL, traci.VarTLSetPh, t.ID, int32(p))
			t.phase, t.target = p, -1
			set.SetDouble(traci.CmdSetTL, traci.VarTLPhDur, t.ID, 1000)
		}
		return
	}
	set.SetInt(traci.CmdSetTL, traci.VarTLSetPh, t.ID, int32(next))
	t.phase = next
	ct.switches++
}

// plan re-times every signal by Webster from the flows measured since the last plan (Edie's flow: vehicle-
// metres travelled per lane-metre per hour).
func (ct *controller) plan(now float64) {
	if ct.accS <= 0 {
		return
	}
	o := sig.DefaultOptions()
	o.MaxCycleS = 120
	for _, t := range ct.tls {
		greenIn := map[string]int{}
		for _, p := range t.main {
			for li, ch := range t.Phases[p].State {
				if ch == 'G' || ch == 'g' {
					greenIn[t.In[li]]++
				}
			}
		}
		phases := make([]sig.Phase, len(t.main))
		lost := 0.0
		for i, p := range t.Phases {
			if !p.Main() {
				lost += p.Dur
			}
			_ = i
		}
		for i, p := range t.main {
			best := 0.0
			for li, ch := range t.Phases[p].State {
				if ch != 'G' && ch != 'g' {
					continue
				}
				l := t.In[li]
				q := ct.flowAcc[l] / ct.accS * 3600
				if y := q / sig.SatFlowPerLane / float64(greenIn[l]); y > best {
					best = y
				}
			}
			phases[i] = sig.Phase{Flow: best * sig.SatFlowPerLane, SatFlow: sig.SatFlowPerLane}
		}
		o.LostPerPhaseS = lost / float64(len(t.main))
		pl, err := sig.Webster(phases, o)
		if err != nil {
			continue
		}
		for i, p := range t.main {
			t.greens[p] = math.Max(5, pl.GreenS[i])
		}
	}
	clear(ct.flowAcc)
	ct.accS, ct.lastPlan = 0, now
	ct.replans++
}

// pressure applies max-pressure at one signal: after the minimum green, switch to the main phase with the
// highest pressure (vehicles on its incoming lanes less those on its outgoing lanes) if it beats the current
// one, or after the maximum green in any case.
func (ct *controller) pressure(set *traci.Batch, t *tlState, now float64) {
	if !isMain(t, t.phase) || t.target >= 0 || now-t.entered < ct.o.MinGreenS {
		return
	}
	moves := make([][]sig.Movement, len(t.main))
	cur := -1
	for i, p := range t.main {
		if p == t.phase {
			cur = i
		}
		for li, ch := range t.Phases[p].State {
			if ch == 'G' || ch == 'g' {
				moves[i] = append(moves[i], sig.Movement{In: ct.count[t.In[li]], Out: ct.count[t.Out[li]]})
			}
		}
	}
	best, pr := sig.MaxPressure(moves)
	if cur < 0 {
		return
	}
	if now-t.entered >= ct.o.MaxGreenS && best == cur {
		pr[cur] = math.Inf(-1)
		best, _ = argmax(pr)
	}
	if best != cur && (pr[best] > pr[cur] || now-t.entered >= ct.o.MaxGreenS) {
		ct.switchTo(set, t, t.main[best])
	}
}

func argmax(x []float64) (int, float64) {
	b := 0
	for i := range x {
		if x[i] > x[b] {
			b = i
		}
	}
	return b, x[b]
}

// preempt gives the emergency vehicle green at each signal ahead whose ETA (distance over its current speed,
// at least 8 m/s) is within PreemptS, and releases a signal once the vehicle has passed it.
func (ct *controller) preempt(set *traci.Batch, now float64, next []traci.NextTLS, speed float64) {
	want := map[string]int{}
	for _, n := range next {
		eta := n.DistM / math.Max(8, speed)
		if eta > ct.o.PreemptS {
			continue
		}
		if _, ok := want[n.ID]; !ok {
			want[n.ID] = n.LinkIndex
		}
	}
	for _, t := range ct.tls {
		li, ok := want[t.ID]
		if !ok {
			if t.preempted {
				t.preempted, t.target = false, -1
				set.SetDouble(traci.CmdSetTL, traci.VarTLPhDur, t.ID, 3) // resume the plan
			}
			continue
		}
		p := -1
		for _, m := range t.main {
			if li < len(t.Phases[m].State) && t.Phases[m].State[li] == 'G' {
				p = m
				break
			}
		}
		if p < 0 {
			for _, m := range t.main {
				if li < len(t.Phases[m].State) && t.Phases[m].State[li] == 'g' {
					p = m
					break
				}
			}
		}
		if p < 0 {
			continue
		}
		if !t.preempted {
			t.preempted = true
			ct.preemptions++
			if t.phase == p {
				set.SetDouble(traci.CmdSetTL, traci.VarTLPhDur, t.ID, 1000)
			}
		}
		if t.phase != p && t.target != p {
			ct.switchTo(set, t, p)
		}
	}
}
