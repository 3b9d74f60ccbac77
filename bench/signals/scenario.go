// Package signals is the closed-loop signal-control experiment in SUMO. One scenario (any SUMO configuration,
// or a built-in shortcut) runs under the network's fixed-time plans, SUMO's own actuated and delay-based
// controllers, the perfect-information max-pressure controller (TraCI counts: an upper bound no city has) and
// the loop a city would run: SUMO's vehicles and loops become probe and detector events posted to a running
// CityBrain, whose plan API decides every signal (docs/signals.md). Runs repeat over seeds and demand scales;
// results come from SUMO's tripinfo and statistics outputs.
package signals

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	sig "citybrain/engine/signals"
)

// Scenario is a SUMO network with demand.
type Scenario struct {
	Name   string
	Config string // the .sumocfg (its processing options apply; inputs and outputs are overridden)
	Net    string
	Routes []string
	Adds   []string // additional files (the last tlLogic loaded for a signal is its active program)
	BeginS int
	EndS   int // the run's horizon, in simulated seconds from BeginS
	EVDepS int // the emergency vehicle departs this long after BeginS
	TLs    map[string]*TL
	Lanes  map[string]LaneInfo
	EV     []string // the emergency vehicle's route (edges); nil when the demand has no routes
	Work   string   // this scenario's working directory
	Extra  []string // SUMO options the scenario needs (e.g. --ignore-route-errors for converted City Brain flows)
	// Feeders are, for every incoming lane of a signal, the lanes upstream of it up to the previous signal
	// (at most FeedRangeM back) whose vehicles queue into it, each with the share of its vehicles that do.
	Feeders map[string][]Feeder

	proj      string                  // the net's projection
	netOffset [2]float64              // and offset (SUMO x,y = projected − offset)
	shapes    map[string][][2]float64 // lane shapes (x, y) of the signals' incoming lanes
}

// Feeder is an upstream lane of an approach and the share of its vehicles bound for it.
type Feeder struct {
	Lane  string
	Share float64
}

// FeedRangeM is how far upstream of a stop line an approach's queue is followed.
const FeedRangeM = 400.0

// LaneInfo is what the controllers need of a lane.
type LaneInfo struct {
	LengthM, SpeedMS float64
	Edge             string
}

// Phase is one phase of a signal program.
type Phase struct {
	Dur, MinDur, MaxDur float64
	State               string
}

func (p Phase) green() bool { return strings.ContainsAny(p.State, "Gg") }

func (p Phase) amber() bool { return strings.ContainsAny(p.State, "yYu") }

// TL is a signalised junction: its active program and the lanes each link index connects.
type TL struct {
	ID      string
	Program string
	Offset  float64
	Type    string
	Phases  []Phase
	In, Out map[int]string // link index → incoming / outgoing lane
	prog    *sig.Program
}

// Prog is the program in the controllers' terms (engine/signals), built on first use.
func (t *TL) Prog() *sig.Program {
	if t.prog != nil {
		return t.prog
	}
	p := &sig.Program{}
	for _, ph := range t.Phases {
		p.Phases = append(p.Phases, sig.ProgramPhase{State: ph.State, DurS: ph.Dur, MinS: ph.MinDur, MaxS: ph.MaxDur})
	}
	for li, l := range t.In {
		for len(p.Lanes) <= li {
			p.Lanes = append(p.Lanes, "")
		}
		p.Lanes[li] = l
	}
	t.prog = p
	return p
}

// Main reports whether phase i is a main green (engine/signals.Program.Main).
func (t *TL) Main(i int) bool { return t.Prog().Main(i) }

// Mains lists the main greens in program order.
func (t *TL) Mains() []int { return t.Prog().Mains() }

// FixedSequence reports whether the program's order must be kept (engine/signals.Program.FixedSequence).
func (t *TL) FixedSequence() bool { return t.Prog().FixedSequence() }

func (t *TL) adjustable() bool { return t.Prog().Adjustable() }

// sumoCfg is the part of a .sumocfg the experiment reads.
type sumoCfg struct {
	net, routes, adds string
	begin, end        string
}

// readConfig reads a .sumocfg's inputs and time (any element name: SUMO accepts options in any section).
func readConfig(path string) (sumoCfg, error) {
	var c sumoCfg
	err := scanXML(path, func(se xml.StartElement, _ *xml.Decoder) error {
		v := attrs(se)["value"]
		switch se.Name.Local {
		case "net-file":
			c.net = v
		case "route-files":
			c.routes = v
		case "additional-files":
			c.adds = v
		case "begin":
			c.begin = v
		case "end":
			c.end = v
		}
		return nil
	})
	return c, err
}

// FromConfig loads a scenario from a SUMO configuration: its network, routes and additional files (paths
// relative to the configuration, as SUMO reads them), its begin time and, when endS is 0, its end. The
// additional files are copied into work so that outputs they declare with relative paths (e1 files, for
// example) are written there and not beside a read-only scenario.
func FromConfig(name, cfgPath, work string, endS int) (*Scenario, error) {
	cfgPath = abs(cfgPath)
	c, err := readConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	if c.net == "" {
		return nil, fmt.Errorf("cannot load scenario %s (%s): no net-file", name, cfgPath)
	}
	dir := filepath.Dir(cfgPath)
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(cfgPath), filepath.Ext(cfgPath))
	}
	sc := &Scenario{Name: name, Config: cfgPath, Net: rel(c.net), Work: filepath.Join(abs(work), name)}
	for _, r := range splitFiles(c.routes) {
		sc.Routes = append(sc.Routes, rel(r))
	}
	addDir := filepath.Join(sc.Work, "adds")
	if err := os.MkdirAll(addDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make %s: %w", addDir, err)
	}
	for i, a := range splitFiles(c.adds) {
		dst := filepath.Join(addDir, fmt.Sprintf("%02d-%s", i, filepath.Base(a)))
		if err := copyFile(rel(a), dst); err != nil {
			return nil, fmt.Errorf("cannot load scenario %s: %w", name, err)
		}
		sc.Adds = append(sc.Adds, dst)
	}
	if c.begin != "" {
		b, err := strconv.ParseFloat(c.begin, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot load scenario %s: begin %q: %w", name, c.begin, err)
		}
		sc.BeginS = int(b)
	}
	sc.EndS = endS
	if sc.EndS <= 0 && c.end != "" {
		e, err := strconv.ParseFloat(c.end, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot load scenario %s: end %q: %w", name, c.end, err)
		}
		sc.EndS = int(e) - sc.BeginS
	}
	if sc.EndS <= 0 {
		return nil, fmt.Errorf("cannot load scenario %s: no horizon (give --end or an end in %s)", name, cfgPath)
	}
	sc.EVDepS = sc.EndS / 4
	return sc, sc.load()
}

func splitFiles(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", dst, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func sumoHome() string {
	if h := os.Getenv("SUMO_HOME"); h != "" {
		return h
	}
	return "/usr/share/sumo"
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// load reads signal programs and controlled links from the net (and the additional files, whose programs
// replace the net's), lanes, and picks the emergency vehicle's route: the route in the demand with the most
// signalised edges.
func (sc *Scenario) load() error {
	sc.TLs, sc.Lanes, sc.shapes = map[string]*TL{}, map[string]LaneInfo{}, map[string][][2]float64{}
	shapes := map[string]string{}
	tlEdges := map[string]bool{}
	type conn struct {
		from, to string
		tl       bool
	}
	var conns []conn
	edge := ""
	err := scanXML(sc.Net, func(se xml.StartElement, d *xml.Decoder) error {
		a := attrs(se)
		switch se.Name.Local {
		case "edge":
			edge = a["id"]
			if a["function"] == "internal" {
				edge = ""
			}
		case "location":
			sc.proj = a["projParameter"]
			if x, y, ok := strings.Cut(a["netOffset"], ","); ok {
				sc.netOffset[0], _ = strconv.ParseFloat(x, 64)
				sc.netOffset[1], _ = strconv.ParseFloat(y, 64)
			}
		case "lane":
			l, _ := strconv.ParseFloat(a["length"], 64)
			v, _ := strconv.ParseFloat(a["speed"], 64)
			sc.Lanes[a["id"]] = LaneInfo{LengthM: l, SpeedMS: v, Edge: edge}
			if edge != "" {
				shapes[a["id"]] = a["shape"]
			}
		case "tlLogic":
			return sc.readTL(se, d)
		case "connection":
			if a["via"] != "" || a["tl"] != "" {
				conns = append(conns, conn{a["from"] + "_" + a["fromLane"], a["to"] + "_" + a["toLane"], a["tl"] != ""})
			}
			if a["tl"] == "" {
				return nil
			}
			tl := sc.TLs[a["tl"]]
			if tl == nil {
				tl = &TL{ID: a["tl"]}
				sc.TLs[a["tl"]] = tl
			}
			if tl.In == nil {
				tl.In, tl.Out = map[int]string{}, map[int]string{}
			}
			li, _ := strconv.Atoi(a["linkIndex"])
			tl.In[li] = a["from"] + "_" + a["fromLane"]
			tl.Out[li] = a["to"] + "_" + a["toLane"]
			tlEdges[a["from"]] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, add := range sc.Adds {
		if err := scanXML(add, func(se xml.StartElement, d *xml.Decoder) error {
			if se.Name.Local == "tlLogic" {
				return sc.readTL(se, d)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for id, tl := range sc.TLs {
		if len(tl.Phases) == 0 || len(tl.In) == 0 {
			delete(sc.TLs, id)
		}
	}
	for _, tl := range sc.TLs {
		for _, in := range tl.In {
			var sh [][2]float64
			for _, pt := range strings.Fields(shapes[in]) {
				f := strings.Split(pt, ",")
				if len(f) >= 2 {
					x, _ := strconv.ParseFloat(f[0], 64)
					y, _ := strconv.ParseFloat(f[1], 64)
					sh = append(sh, [2]float64{x, y})
				}
			}
			sc.shapes[in] = sh
		}
	}
	// Upstream feeders: walk back from each signal's incoming lanes over connections that no signal controls.
	up := map[string][]string{}
	outDeg := map[string]int{}
	for _, c := range conns {
		if !c.tl {
			up[c.to] = append(up[c.to], c.from)
		}
		outDeg[c.from]++
	}
	sc.Feeders = map[string][]Feeder{}
	for _, tl := range sc.TLs {
		for _, in := range tl.In {
			if _, done := sc.Feeders[in]; done {
				continue
			}
			var fs []Feeder
			type item struct {
				lane  string
				share float64
				dist  float64
			}
			queue := []item{{in, 1, sc.Lanes[in].LengthM}}
			seen := map[string]bool{in: true}
			for len(queue) > 0 {
				it := queue[0]
				queue = queue[1:]
				if it.dist >= FeedRangeM {
					continue
				}
				for _, f := range up[it.lane] {
					if seen[f] {
						continue
					}
					seen[f] = true
					sh := it.share / float64(max(1, outDeg[f]))
					fs = append(fs, Feeder{f, sh})
					queue = append(queue, item{f, sh, it.dist + sc.Lanes[f].LengthM})
				}
			}
			sc.Feeders[in] = fs
		}
	}
	best := 0
	for _, r := range sc.Routes {
		if err := scanXML(r, func(se xml.StartElement, _ *xml.Decoder) error {
			if se.Name.Local != "route" {
				return nil
			}
			edges := strings.Fields(attrs(se)["edges"])
			n := 0
			for _, e := range edges {
				if tlEdges[e] {
					n++
				}
			}
			if n > best {
				best, sc.EV = n, edges
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if len(sc.TLs) == 0 {
		return fmt.Errorf("cannot load scenario %s: no signalised junction in %s", sc.Name, sc.Net)
	}
	return nil
}

func (sc *Scenario) readTL(se xml.StartElement, d *xml.Decoder) error {
	a := attrs(se)
	tl := sc.TLs[a["id"]]
	if tl == nil {
		tl = &TL{ID: a["id"]}
		sc.TLs[a["id"]] = tl
	}
	tl.Program, tl.Type, tl.Phases, tl.prog = a["programID"], a["type"], nil, nil
	tl.Offset, _ = strconv.ParseFloat(a["offset"], 64)
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("cannot read tlLogic %s: %w", tl.ID, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "phase" {
				pa := attrs(t)
				p := Phase{State: pa["state"]}
				p.Dur, _ = strconv.ParseFloat(pa["duration"], 64)
				p.MinDur, _ = strconv.ParseFloat(pa["minDur"], 64)
				p.MaxDur, _ = strconv.ParseFloat(pa["maxDur"], 64)
				tl.Phases = append(tl.Phases, p)
			}
		case xml.EndElement:
			if t.Name.Local == "tlLogic" {
				return nil
			}
		}
	}
}

func attrs(se xml.StartElement) map[string]string {
	m := make(map[string]string, len(se.Attr))
	for _, a := range se.Attr {
		m[a.Name.Local] = a.Value
	}
	return m
}

func scanXML(path string, visit func(xml.StartElement, *xml.Decoder) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot parse %s: %w", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if err := visit(se, d); err != nil {
				return err
			}
		}
	}
}

// writePrograms writes an additional file that loads every signal's active program again as SUMO's type
// (actuated or delay_based), with the program's min/max durations where given, else 0.5×–2× the fixed
// duration for main greens. Signals in skip keep their program.
func (sc *Scenario) writePrograms(path, typ string, skip map[string]bool) error {
	var b strings.Builder
	b.WriteString("<additional>\n")
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		if skip[id] {
			continue
		}
		fmt.Fprintf(&b, "  <tlLogic id=%q type=%q programID=\"cb_%s\" offset=\"%g\">\n", xmlEsc(id), typ, typ, tl.Offset)
		for i, p := range tl.Phases {
			mn, mx := p.MinDur, p.MaxDur
			if mn <= 0 || mx <= 0 {
				mn, mx = p.Dur, p.Dur
				if tl.Main(i) {
					mn, mx = max(5, p.Dur/2), p.Dur*2
				}
			}
			fmt.Fprintf(&b, "    <phase duration=\"%g\" minDur=\"%g\" maxDur=\"%g\" state=%q/>\n", p.Dur, mn, mx, p.State)
		}
		b.WriteString("  </tlLogic>\n")
	}
	b.WriteString("</additional>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeEV writes the emergency vehicle (a passenger car in emergency colours, id "ev") on its route.
func (sc *Scenario) writeEV(path string) error {
	s := fmt.Sprintf("<routes>\n  <vType id=\"cb_ev\" color=\"1,0,0\" guiShape=\"emergency\" speedFactor=\"1.2\"/>\n"+
		"  <vehicle id=\"ev\" type=\"cb_ev\" depart=\"%d\" departLane=\"best\" departSpeed=\"max\">\n"+
		"    <route edges=%q/>\n  </vehicle>\n</routes>\n", sc.BeginS+sc.EVDepS, strings.Join(sc.EV, " "))
	return os.WriteFile(path, []byte(s), 0o644)
}

func xmlEsc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sortStrings(ids)
	return ids
}

// unsupported finds the signals SUMO cannot run as type typ: SUMO 1.15 aborts on assertions in the
// detectors of its delay_based programs at a few junctions with short lanes (Hangzhou: while building them, and
// when certain vehicles enter them). The whole set is run for the run's seed, scale and horizon; on failure,
// halves are tried until each failing signal is found. The answer (the union over the runs checked) is cached
// in the scenario's working directory; those signals keep their fixed program in that method's runs.
func (sc *Scenario) unsupported(ctx context.Context, typ, bin string, seed int, scale float64, known map[string]bool) (map[string]bool, error) {
	dir := filepath.Join(sc.Work, "probe-"+typ)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	try := func(ids []string) (bool, error) {
		keep := map[string]bool{}
		for id := range sc.TLs {
			keep[id] = true
		}
		for _, id := range ids {
			delete(keep, id)
		}
		for id := range known {
			keep[id] = true
		}
		p := filepath.Join(dir, "try.add.xml")
		if err := sc.writePrograms(p, typ, keep); err != nil {
			return false, err
		}
		args := []string{"-c", sc.Config, "-n", sc.Net, "-r", strings.Join(sc.Routes, ","), "-a", strings.Join(append(append([]string(nil), sc.Adds...), p), ","),
			"--begin", strconv.Itoa(sc.BeginS), "--end", strconv.Itoa(sc.BeginS + sc.EndS), "--no-step-log", "true", "--no-warnings", "true",
			"--seed", strconv.Itoa(seed), "--scale", strconv.FormatFloat(scale, 'g', -1, 64), "--log", filepath.Join(dir, "log.txt")}
		args = append(args, sc.Extra...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
		return cmd.Run() == nil, ctx.Err()
	}
	bad := map[string]bool{}
	for id := range known {
		bad[id] = true
	}
	var find func(ids []string) error
	find = func(ids []string) error {
		ok, err := try(ids)
		if err != nil || ok {
			return err
		}
		if len(ids) == 1 {
			bad[ids[0]] = true
			return nil
		}
		h := len(ids) / 2
		if err := find(ids[:h]); err != nil {
			return err
		}
		return find(ids[h:])
	}
	var ids []string
	for _, id := range sortedIDs(sc.TLs) {
		if !known[id] {
			ids = append(ids, id)
		}
	}
	if err := find(ids); err != nil {
		return nil, fmt.Errorf("cannot check %s programs on %s: %w", typ, sc.Name, err)
	}
	if len(bad) == len(sc.TLs) {
		return nil, fmt.Errorf("cannot run %s on %s: sumo fails with every signal's program", typ, sc.Name)
	}
	return bad, nil
}

// unsupportedCache reads and writes the signals found by unsupported.
func (sc *Scenario) unsupportedCache(typ string, write map[string]bool) (map[string]bool, error) {
	p := filepath.Join(sc.Work, "unsupported-"+typ+".txt")
	if write != nil {
		if err := os.WriteFile(p, []byte(strings.Join(sortedIDs(write), "\n")+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("cannot write %s: %w", p, err)
		}
		return write, nil
	}
	skip := map[string]bool{}
	b, err := os.ReadFile(p)
	if err != nil {
		return skip, nil
	}
	for _, id := range strings.Fields(string(b)) {
		skip[id] = true
	}
	return skip, nil
}
