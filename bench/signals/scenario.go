// Package signals is the closed-loop signal-control experiment in SUMO: the same scenario run under the
// network's fixed-time plans, SUMO's actuated control, CityBrain's Webster plans re-timed from measured flows,
// and max-pressure control (both driven over TraCI), plus an emergency vehicle crossing the network with and
// without green-wave preemption. It reports mean travel time and delay from SUMO's tripinfo output.
package signals

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Scenario is a SUMO network with demand.
type Scenario struct {
	Name   string
	Net    string
	Routes []string
	Adds   []string // additional files (the last tlLogic loaded for a signal is its active program)
	EndS   int
	EVDepS int
	TLs    map[string]*TL
	Lanes  map[string]float64 // lane id → length
	EV     []string           // the emergency vehicle's route (edges)
	Work   string
}

// Phase is one phase of a signal program.
type Phase struct {
	Dur, MinDur, MaxDur float64
	State               string
}

// Main reports whether the phase is a main green: some green, no amber, at least 5 s in the plan.
func (p Phase) Main() bool {
	return p.Dur >= 5 && strings.ContainsAny(p.State, "Gg") && !strings.ContainsAny(p.State, "yY")
}

// TL is a signalised junction: its active program and the lanes each link index connects.
type TL struct {
	ID      string
	Program string
	Offset  float64
	Type    string
	Phases  []Phase
	In, Out map[int]string // link index → incoming / outgoing lane
}

// Bologna returns the Andrea Costa scenario from the shared data (its "utopia" plans are the fixed-time plans).
func Bologna(dataDir, work string, endS int) (*Scenario, error) {
	dataDir, work = abs(dataDir), abs(work)
	dir := filepath.Join(dataDir, "sumo", "bologna-acosta")
	sc := &Scenario{Name: "bologna", Net: filepath.Join(dir, "acosta_buslanes.net.xml"),
		Routes: []string{filepath.Join(dir, "acosta.rou.xml"), filepath.Join(dir, "acosta_busses.rou.xml")},
		Adds: []string{filepath.Join(dir, "acosta_vtypes.add.xml"), filepath.Join(dir, "acosta_bus_stops.add.xml"),
			filepath.Join(dir, "acosta_tls.add.xml")}, EndS: endS, EVDepS: endS / 4, Work: work}
	return sc, sc.load(filepath.Join(dir, "acosta_tls.add.xml"))
}

// Hangzhou converts the City Brain Hangzhou roadnet and flows with SUMO's own importers (cached in work).
func Hangzhou(dataDir, work string, endS int) (*Scenario, error) {
	dataDir, work = abs(dataDir), abs(work)
	src := filepath.Join(dataDir, "citybrain", "hangzhou")
	dir := filepath.Join(work, "hangzhou")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	net, rou := filepath.Join(dir, "city.net.xml"), filepath.Join(dir, "city.rou.xml")
	tools := filepath.Join(sumoHome(), "tools", "import", "citybrain")
	if _, err := os.Stat(net); err != nil {
		// citybrain_road.py (SUMO 1.15) exits 1 after "Success." when netconvert printed warnings: the net is
		// judged by its presence.
		if err := run(dir, "python3", filepath.Join(tools, "citybrain_road.py"), "-n", filepath.Join(src, "roadnet.txt"), "-o", net); err != nil && !exists(net) {
			return nil, fmt.Errorf("cannot convert Hangzhou roadnet (citybrain_road.py): %w", err)
		}
	}
	if _, err := os.Stat(rou); err != nil {
		if err := run(dir, "python3", filepath.Join(tools, "citybrain_flow.py"), "-f", filepath.Join(src, "flow.txt"), "-o", rou); err != nil && !exists(rou) {
			return nil, fmt.Errorf("cannot convert Hangzhou flows (citybrain_flow.py): %w", err)
		}
	}
	sc := &Scenario{Name: "hangzhou", Net: net, Routes: []string{rou}, EndS: endS, EVDepS: endS / 4, Work: work}
	return sc, sc.load("")
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

// load reads signal programs and controlled links from the net (and the tls additional file, whose programs
// replace the net's), lane lengths, and picks the emergency vehicle's route: the route in the demand with the
// most signalised edges.
func (sc *Scenario) load(tlsAdd string) error {
	sc.TLs, sc.Lanes = map[string]*TL{}, map[string]float64{}
	tlEdges := map[string]bool{}
	err := scanXML(sc.Net, func(se xml.StartElement, d *xml.Decoder) error {
		a := attrs(se)
		switch se.Name.Local {
		case "lane":
			sc.Lanes[a["id"]], _ = strconv.ParseFloat(a["length"], 64)
		case "tlLogic":
			return sc.readTL(se, d)
		case "connection":
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
	if tlsAdd != "" {
		if err := scanXML(tlsAdd, func(se xml.StartElement, d *xml.Decoder) error {
			if se.Name.Local == "tlLogic" {
				return sc.readTL(se, d)
			}
			return nil
		}); err != nil {
			return err
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
	if len(sc.TLs) == 0 || len(sc.EV) == 0 {
		return fmt.Errorf("cannot load scenario %s (%d signals, emergency route of %d edges)", sc.Name, len(sc.TLs), len(sc.EV))
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
	tl.Program, tl.Type, tl.Phases = a["programID"], a["type"], nil
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

// writeActuated writes an additional file that loads every signal's active program again as type actuated
// (min/max durations from the plan where given, else 0.5×–2× the fixed duration for main greens).
func (sc *Scenario) writeActuated(path string) error {
	var b strings.Builder
	b.WriteString("<additional>\n")
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		fmt.Fprintf(&b, "  <tlLogic id=%q type=\"actuated\" programID=\"cb_actuated\" offset=\"%g\">\n", xmlEsc(id), tl.Offset)
		for _, p := range tl.Phases {
			mn, mx := p.MinDur, p.MaxDur
			if mn <= 0 || mx <= 0 {
				mn, mx = p.Dur, p.Dur
				if p.Main() {
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

// writeEV writes the emergency vehicle (a passenger-class car, red, id "ev") on its route.
func (sc *Scenario) writeEV(path string) error {
	s := fmt.Sprintf("<routes>\n  <vType id=\"cb_ev\" color=\"1,0,0\" guiShape=\"emergency\" speedFactor=\"1.2\"/>\n"+
		"  <vehicle id=\"ev\" type=\"cb_ev\" depart=\"%d\" departLane=\"best\" departSpeed=\"max\">\n"+
		"    <route edges=%q/>\n  </vehicle>\n</routes>\n", sc.EVDepS, strings.Join(sc.EV, " "))
	return os.WriteFile(path, []byte(s), 0o644)
}

func xmlEsc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
