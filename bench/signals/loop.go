package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/engine/dispatch"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/sumo/traci"
	"citybrain/system"
)

// FeedOptions are the feeds a city has, as the closed loop produces them from SUMO.
type FeedOptions struct {
	ProbeShare  float64 // share of vehicles reporting as probes (0.15)
	ProbeEveryS float64 // each reports this often (5 s), at its own phase
	NoiseM      float64 // GPS noise, standard deviation in metres per axis (3 m)
	LoopGapS    float64 // loops sit this many seconds of free-flow travel before the stop line (2 s, as SUMO's actuated)
}

// DefaultFeed is the city: 15 % probes every 5 s with 3 m noise, loops where SUMO's actuated has them.
func DefaultFeed() FeedOptions {
	return FeedOptions{ProbeShare: 0.15, ProbeEveryS: 5, NoiseM: 3, LoopGapS: 2}
}

// FeedStats counts what the closed loop sent and asked.
type FeedStats struct {
	Probes    int     `json:"probes"`
	Detectors int     `json:"detectors"`
	Rejected  int     `json:"rejected"`
	Posts     int     `json:"posts"`
	Decisions int     `json:"decisions"`
	Switches  int     `json:"switches_asked"`
	PostS     float64 `json:"post_s"`   // wall time spent posting events
	DecideS   float64 `json:"decide_s"` // ... and asking for decisions
	// PlanChecks compares, every CheckEveryS, what GET /api/v1/intersections/{id}/plan says each signal was
	// told with what the loop ran; PlanMismatches counts the differences.
	PlanChecks     int `json:"plan_checks"`
	PlanMismatches int `json:"plan_mismatches"`
	// Digest is a hash of every decision the loop was given and every green-wave hold and route it applied,
	// with their simulated times: two runs of the same seed must give the same (TestPreemptRepeats).
	Digest string `json:"decision_digest,omitempty"`
}

// CheckEveryS is how often the closed loop checks the plan API against what it ran.
const CheckEveryS = 150.0

// loopSite is one stop-line loop: the lane it sits on and its distance from the lane's start.
type loopSite struct {
	ID, Lane string
	PosM     float64
}

// writeLoops writes an e1 loop on every incoming lane of every signal, LoopGapS of free-flow travel before the
// stop line (at least 1 m from the lane's start), as SUMO places the loops of its actuated programs.
func (sc *Scenario) writeLoops(path string, gapS float64) ([]loopSite, error) {
	seen := map[string]bool{}
	var out []loopSite
	var b strings.Builder
	b.WriteString("<additional>\n")
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		for _, li := range sortedInts(tl.In) {
			lane := tl.In[li]
			if seen[lane] {
				continue
			}
			seen[lane] = true
			info, ok := sc.Lanes[lane]
			if !ok || info.LengthM <= 0 {
				continue
			}
			pos := math.Max(math.Min(1, info.LengthM), info.LengthM-gapS*info.SpeedMS)
			s := loopSite{ID: "cb_" + lane, Lane: lane, PosM: pos}
			out = append(out, s)
			fmt.Fprintf(&b, "  <inductionLoop id=%q lane=%q pos=\"%.2f\" period=\"86400\" file=\"/dev/null\"/>\n", xmlEsc(s.ID), xmlEsc(lane), pos)
		}
	}
	b.WriteString("</additional>\n")
	return out, os.WriteFile(path, []byte(b.String()), 0o644)
}

// LoopLogBytes bounds the closed loop's event log (its dead letters get a tenth of it).
const LoopLogBytes = 2 << 30

// simStart is the wall-clock time of simulated second 0 in the events the loop sends.
var simStart = time.Date(2026, 11, 27, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))

// loopCtl is the closed loop through CityBrain: SUMO's loops and a share of its vehicles become detector and
// probe events posted to a running CityBrain (system.Start, the code `citybrain run` runs, on a fresh data
// directory, reached only over HTTP); every DecideS the gateways report their signals' states to
// POST /api/v1/signals/decide and show the phases it answers.
type loopCtl struct {
	c      *traci.Client
	sc     *Scenario
	o      Options
	method string
	gws    map[string]*gateway
	order  []*gateway
	sys    *system.System
	dir    string
	base   string
	token  string
	client *http.Client
	rng    *rand.Rand
	zone   geo.UTMZone
	net    *geo.Network
	amb    *ambulance // the emergency vehicle dispatched through CityBrain (+preempt), or nil

	loops   []loopSite
	prevIDs map[string]map[string]bool // loop → vehicles on it at the last step
	count   map[string]float64         // vehicles counted this interval
	occSum  map[string]float64         // Σ occupancy % per step
	spdSum  map[string]float64         // Σ mean speed (m/s) over steps with a vehicle
	spdN    map[string]float64
	lastSpd map[string]float64
	steps   float64
	probeOf map[string]int // probe vehicle → its reporting phase (s)
	buf     []byte
	last    float64
	checked float64
	stats   FeedStats
	digest  hash.Hash64 // FeedStats.Digest
}

func newLoopCtl(ctx context.Context, c *traci.Client, sc *Scenario, o Options, cyclic, preempt bool, loops []loopSite, now float64) (*loopCtl, error) {
	net, err := sc.cityNetwork()
	if err != nil {
		return nil, err
	}
	zone, err := geo.ParseUTMProj(sc.proj)
	if err != nil {
		return nil, fmt.Errorf("cannot place %s's vehicles on the map: %w", sc.Name, err)
	}
	dir, err := os.MkdirTemp(sc.Work, "citybrain-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a data directory: %w", err)
	}
	ecfg := engine.DefaultConfig()
	ecfg.Retention = 0
	// A run's log holds a few hundred MB at most (Hangzhou ×5, 2,400 s); the default 20 GiB limit is reserved
	// on the disk by JetStream and fails once the machine has less than ~30 GB free.
	lcfg := eventlog.DefaultConfig()
	lcfg.MaxBytes = LoopLogBytes
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sys, err := system.Start(sctx, system.Config{HTTPAddr: "127.0.0.1:0", DataDir: dir, Version: "signals", Network: net,
		Logger: log.New(io.Discard, "", 0), Engine: ecfg, Log: lcfg, Hub: api.DefaultHubConfig(),
		SnapshotEvery: -1, SignalControl: o.Control, EventClock: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot start CityBrain for the closed loop: %w", err)
	}
	tok, err := os.ReadFile(sys.AdminTokenPath())
	if err != nil {
		sys.Stop(context.Background())
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot read the admin token: %w", err)
	}
	l := &loopCtl{c: c, sc: sc, o: o, method: dispatch.MethodControl, sys: sys, dir: dir, base: "http://" + sys.Addr(),
		token: strings.TrimSpace(string(tok)), client: &http.Client{Timeout: time.Minute},
		rng: rand.New(rand.NewPCG(uint64(o.Seed), 16)), zone: zone, loops: loops, prevIDs: map[string]map[string]bool{},
		count: map[string]float64{}, occSum: map[string]float64{}, spdSum: map[string]float64{}, spdN: map[string]float64{}, lastSpd: map[string]float64{},
		probeOf: map[string]int{}, last: now, net: net, digest: fnv.New64a()}
	if cyclic {
		l.method = dispatch.MethodCyclic
	}
	fail := func(err error) (*loopCtl, error) {
		l.close()
		return nil, err
	}
	if preempt {
		if l.amb, err = newAmbulance(l, net); err != nil {
			return fail(err)
		}
	}
	tls := controlled(sc)
	if l.gws, err = takeOver(c, tls, now, cyclic); err != nil {
		return fail(err)
	}
	for _, tl := range tls {
		l.order = append(l.order, l.gws[tl.ID])
	}
	for _, s := range loops {
		if _, err := c.Subscribe(traci.CmdSubLoop, s.ID, traci.VarLoopIDs, traci.VarLoopOcc, traci.VarLaneV); err != nil {
			return fail(err)
		}
	}
	if _, err := c.Subscribe(traci.CmdSubSim, "", traci.VarDepartedIDs); err != nil {
		return fail(err)
	}
	return l, nil
}

// cityNetwork is the network as the city's CityBrain knows it: the SUMO net with the programs the scenario
// runs (additional files replace the net's).
func (sc *Scenario) cityNetwork() (*geo.Network, error) {
	net, err := geo.LoadSUMONetFile(sc.Net)
	if err != nil {
		return nil, err
	}
	for _, a := range sc.Adds {
		f, err := os.Open(a)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", a, err)
		}
		_, err = net.ApplySUMOPrograms(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot read programs of %s: %w", a, err)
		}
	}
	return net, nil
}

// isProbe decides once per vehicle whether it reports (ProbeShare of them, by a hash of its id and the seed),
// and at which second of the reporting period.
func (l *loopCtl) isProbe(id string) (int, bool) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", l.o.Seed, id)
	v := h.Sum64()
	if float64(v%10000)/10000 >= l.o.Feed.ProbeShare {
		return 0, false
	}
	return int((v / 10000) % uint64(max(1, int(l.o.Feed.ProbeEveryS)))), true
}

func (l *loopCtl) step(now float64, subs []traci.Sub) error {
	var departed []string
	evSeen := false
	l.steps++
	t := int(now)
	for _, s := range subs {
		switch s.Cmd {
		case traci.CmdSubLoop + 0x10:
			if len(s.Vals) != 3 {
				continue
			}
			ids := s.Vals[0].Strings()
			prev := l.prevIDs[s.ID]
			cur := make(map[string]bool, len(ids))
			for _, v := range ids {
				cur[v] = true
				if !prev[v] {
					l.count[s.ID]++
				}
			}
			l.prevIDs[s.ID] = cur
			l.occSum[s.ID] += s.Vals[1].Float()
			if len(ids) > 0 {
				if v := s.Vals[2].Float(); v >= 0 {
					l.spdSum[s.ID] += v
					l.spdN[s.ID]++
				}
			}
		case traci.CmdSubSim + 0x10:
			if len(s.Vals) == 1 {
				departed = s.Vals[0].Strings()
			}
		case traci.CmdSubVeh + 0x10:
			if s.ID == "ev" {
				if l.amb != nil {
					l.amb.observe(now, s)
					evSeen = true
				}
				continue
			}
			phase, ok := l.probeOf[s.ID]
			if !ok || len(s.Vals) != 3 || (t+phase)%max(1, int(l.o.Feed.ProbeEveryS)) != 0 {
				continue
			}
			x, y, ok := s.Vals[0].Pos()
			if !ok || !validPos(x, y) {
				continue
			}
			x += l.rng.NormFloat64() * l.o.Feed.NoiseM
			y += l.rng.NormFloat64() * l.o.Feed.NoiseM
			ll := geo.UTMToLatLng(l.zone, x-l.sc.netOffset[0], y-l.sc.netOffset[1])
			ev := engine.NewEvent(engine.KindProbe)
			ev.TS = l.ts(now)
			ev.ID, ev.Lat, ev.Lng, ev.Source = "veh-"+s.ID, ll.Lat, ll.Lng, "sumo"
			ev.SpeedKmh = math.Max(0, s.Vals[1].Float()*3.6)
			if a := s.Vals[2].Float(); a >= 0 && a <= 360 {
				ev.HeadingDeg = math.Mod(a, 360)
			}
			l.append(&ev)
			l.stats.Probes++
		}
	}
	if l.amb != nil && l.amb.seen && !evSeen {
		l.amb.gone()
	}
	if l.amb != nil && l.amb.toRemove {
		// At the scene: the crew stops there; SUMO ends the trip where the vehicle stands.
		l.amb.toRemove = false
		b := l.c.NewBatch()
		b.SetByte(traci.CmdSetVeh, traci.VarRemove, "ev", traci.RemoveArrived)
		r, err := b.Do()
		if err != nil {
			return err
		}
		if r[0].Err != nil {
			return fmt.Errorf("cannot stop the emergency vehicle at the scene: %w", r[0].Err)
		}
	}
	for _, id := range departed {
		if id == "ev" {
			if l.amb != nil {
				if _, err := l.c.Subscribe(traci.CmdSubVeh, id, evVars...); err != nil {
					return err
				}
			}
			continue
		}
		if ph, ok := l.isProbe(id); ok {
			l.probeOf[id] = ph
			if _, err := l.c.Subscribe(traci.CmdSubVeh, id, traci.VarPosition, traci.VarSpeed, traci.VarAngle); err != nil {
				delete(l.probeOf, id) // arrived in the same step
			}
		}
	}
	if now-l.last >= l.o.DecideS {
		if err := l.decide(now); err != nil {
			return err
		}
	}
	b := l.c.NewBatch()
	for _, g := range l.order {
		// Held gateways too: the green wave (ambulance.go) only asks for their green; the transition to it
		// must still run (a held gateway left unadvanced froze in its amber until the hold ended).
		if st, ok := g.advance(now); ok {
			b.SetString(traci.CmdSetTL, traci.VarTLState, g.tl.ID, st)
		}
	}
	if b.Len() == 0 {
		b.Discard()
		return nil
	}
	_, err := b.Do()
	return err
}

// validPos reports whether TraCI gave a real position: a vehicle being teleported is reported at
// INVALID_DOUBLE_VALUE (-2^30), which became a probe without a coordinate (the engine rejected it; the result
// is the same, the event is not sent).
func validPos(x, y float64) bool {
	return x > -1e9 && y > -1e9 && !math.IsNaN(x) && !math.IsNaN(y)
}

func (l *loopCtl) ts(now float64) int64 {
	return simStart.Add(time.Duration(now * float64(time.Second))).UnixMilli()
}

func (l *loopCtl) append(ev *engine.Event) {
	l.buf = ingest.AppendJSON(l.buf, ev)
	l.buf = append(l.buf, '\n')
}

// decide sends the interval's loop readings and probes, then asks for every signal's phase.
func (l *loopCtl) decide(now float64) error {
	iv := now - l.last
	l.last = now
	ts := l.ts(now)
	for _, s := range l.loops {
		ev := engine.NewEvent(engine.KindDetector)
		ev.TS, ev.ID, ev.Source, ev.Lane = ts, s.ID, "sumo-loop", s.Lane
		ll, ok := l.sc.lanePoint(s.Lane, s.PosM, l.zone)
		if !ok {
			continue
		}
		ev.Lat, ev.Lng = ll.Lat, ll.Lng
		ev.IntervalS = iv
		ev.FlowVph = l.count[s.ID] * 3600 / iv
		ev.Occupancy = math.Min(1, l.occSum[s.ID]/100/math.Max(1, l.steps))
		if n := l.spdN[s.ID]; n > 0 {
			ev.SpeedKmh = l.spdSum[s.ID] / n * 3.6
			l.lastSpd[s.ID] = ev.SpeedKmh
		} else if ev.FlowVph > 0 {
			// A vehicle crossed between two steps: the loop's last measured speed (else the lane's limit).
			ev.SpeedKmh = l.lastSpd[s.ID]
			if ev.SpeedKmh <= 0 {
				ev.SpeedKmh = l.sc.Lanes[s.Lane].SpeedMS * 3.6
			}
		}
		l.append(&ev)
		l.stats.Detectors++
	}
	clear(l.count)
	clear(l.occSum)
	clear(l.spdSum)
	clear(l.spdN)
	l.steps = 0
	if l.amb != nil {
		l.amb.beforePost(now)
	}
	t0 := time.Now()
	if err := l.post(); err != nil {
		return err
	}
	// The loop is the clock: the engine and the dispatcher tick now, on what this step's feeds made known
	// (system.Config.EventClock), never on a wall-clock timer that falls anywhere in simulated time.
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := l.sys.Step(sctx)
	cancel()
	if err != nil {
		return err
	}
	t1 := time.Now()
	l.stats.PostS += t1.Sub(t0).Seconds()
	type req struct {
		At      int64                    `json:"at"`
		Method  string                   `json:"method"`
		WaitMs  int                      `json:"wait_ms"`
		Signals []dispatch.SignalRequest `json:"signals"`
	}
	r := req{At: ts, Method: l.method, WaitMs: 5000}
	for _, g := range l.order {
		sr := dispatch.SignalRequest{ID: g.tl.ID, Phase: -1, State: g.shown}
		if !g.inTransition() && g.cur >= 0 {
			sr.Phase, sr.ElapsedS = g.mains[g.cur], g.elapsed(now)
		}
		r.Signals = append(r.Signals, sr)
	}
	var ans struct {
		Decisions []dispatch.SignalDecision `json:"decisions"`
	}
	if err := l.call("POST", "/api/v1/signals/decide", r, &ans); err != nil {
		return err
	}
	l.stats.DecideS += time.Since(t1).Seconds()
	if len(ans.Decisions) != len(l.order) {
		return fmt.Errorf("cannot decide signals: %d answers for %d signals", len(ans.Decisions), len(l.order))
	}
	if now-l.checked >= CheckEveryS {
		l.checked = now
		if err := l.checkPlans(ans.Decisions); err != nil {
			return err
		}
	}
	for i, d := range ans.Decisions {
		l.stats.Decisions++
		fmt.Fprintf(l.digest, "%.0f %s %d %t;", now, d.ID, d.Phase, d.Hold)
		g := l.order[i]
		if d.Hold || d.Err != "" || g.held || g.inTransition() {
			continue
		}
		for k, m := range g.mains {
			if m == d.Phase {
				g.request(k, now)
				l.stats.Switches++
				break
			}
		}
	}
	if l.amb != nil {
		return l.amb.step(now)
	}
	return nil
}

// checkPlans reads every signal's plan from the API and compares the decision it says the signal was last
// given with the one the loop is about to run.
func (l *loopCtl) checkPlans(ds []dispatch.SignalDecision) error {
	for _, d := range ds {
		var plan struct {
			Signal *dispatch.SignalPlan `json:"signal"`
		}
		if err := l.call("GET", "/api/v1/intersections/"+url.PathEscape(d.ID)+"/plan?method="+l.method, nil, &plan); err != nil {
			return err
		}
		l.stats.PlanChecks++
		if plan.Signal == nil || plan.Signal.LastDecision == nil || plan.Signal.LastDecision.Phase != d.Phase || plan.Signal.LastDecision.Hold != d.Hold {
			l.stats.PlanMismatches++
		}
	}
	return nil
}

// post sends the buffered events as one NDJSON batch.
func (l *loopCtl) post() error {
	if len(l.buf) == 0 {
		return nil
	}
	req, err := http.NewRequest("POST", l.base+"/api/v1/events", bytes.NewReader(l.buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot post events (%d bytes): %w", len(l.buf), err)
	}
	defer resp.Body.Close()
	var ans struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Errors   []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(data, &ans); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cannot post events (status %d): %.300s", resp.StatusCode, data)
	}
	if ans.Rejected > 0 && l.stats.Rejected == 0 && len(ans.Errors) > 0 {
		fmt.Fprintf(os.Stderr, "signals: CityBrain rejected %d events, e.g. line %d: %s\n", ans.Rejected, ans.Errors[0].Line, ans.Errors[0].Error)
	}
	l.stats.Rejected += ans.Rejected
	l.stats.Posts++
	l.buf = l.buf[:0]
	return nil
}

// call sends a JSON request to the API and decodes the answer.
func (l *loopCtl) call(method, path string, in, out any) error {
	var rd io.Reader
	if in != nil {
		body, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, l.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot call %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cannot call %s %s (status %d): %.300s", method, path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func (l *loopCtl) feedStats() FeedStats {
	st := l.stats
	st.Digest = fmt.Sprintf("%016x", l.digest.Sum64())
	return st
}

// close stops CityBrain and removes its data directory.
func (l *loopCtl) close() error {
	if l.sys == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := l.sys.Stop(ctx)
	os.RemoveAll(l.dir)
	l.sys = nil
	if err != nil {
		return fmt.Errorf("cannot stop CityBrain: %w", err)
	}
	return nil
}

// lanePoint is the WGS84 position posM along a lane's shape.
func (sc *Scenario) lanePoint(lane string, posM float64, z geo.UTMZone) (geo.LatLng, bool) {
	sh := sc.shapes[lane]
	if len(sh) < 2 {
		return geo.LatLng{}, false
	}
	x, y := pointAlong(sh, posM)
	return geo.UTMToLatLng(z, x-sc.netOffset[0], y-sc.netOffset[1]), true
}

// pointAlong walks a polyline of x,y pairs.
func pointAlong(sh [][2]float64, d float64) (float64, float64) {
	for i := 1; i < len(sh); i++ {
		seg := math.Hypot(sh[i][0]-sh[i-1][0], sh[i][1]-sh[i-1][1])
		if d <= seg || i == len(sh)-1 {
			t := 1.0
			if seg > 0 {
				t = math.Min(1, math.Max(0, d/seg))
			}
			return sh[i-1][0] + t*(sh[i][0]-sh[i-1][0]), sh[i-1][1] + t*(sh[i][1]-sh[i-1][1])
		}
		d -= seg
	}
	return sh[len(sh)-1][0], sh[len(sh)-1][1]
}
