package geo

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Signal is a traffic-signal controller as the city's signal department knows it: its program (phases in
// order, each a state over its link indexes) and the movement each link index controls. SUMO nets carry
// them (tlLogic and the connections' tl/linkIndex); a controller joined over several junctions has one
// Signal for all of them.
type Signal struct {
	ID      string
	Program string
	Nodes   []string // the intersections it controls
	Phases  []SignalPhase
	Links   []SignalLink // by link index (Links[i].Index == i where the program has that index)
}

// SignalPhase is one phase of a program: a state character per link index (SUMO's: G green with priority,
// g green yielding, y amber, r red, ...) and its durations (MinS/MaxS 0 when the program gives none).
type SignalPhase struct {
	State      string  `json:"state"`
	DurS       float64 `json:"duration_s"`
	MinS, MaxS float64 `json:"-"`
}

// SignalLink is the movement one link index controls: from a lane of an incoming link to a lane of an
// outgoing one.
type SignalLink struct {
	Index    int
	From, To string // link ids
	FromLane string // lane ids
	ToLane   string
	Turn     Turn
}

// Green reports whether state character c lets traffic go.
func Green(c byte) bool { return c == 'G' || c == 'g' }

// SetSignals attaches signal programs to the network, replacing any with the same id. Like every other
// change, it must happen before the network is shared.
func (n *Network) SetSignals(sigs ...*Signal) {
	if n.signals == nil {
		n.signals = map[string]*Signal{}
		n.signalAt = map[string]string{}
	}
	for _, s := range sigs {
		n.signals[s.ID] = s
		for _, nd := range s.Nodes {
			n.signalAt[nd] = s.ID
		}
	}
}

// Signal returns the signal with id, or the one controlling the intersection with that id.
func (n *Network) Signal(id string) (*Signal, bool) {
	if s, ok := n.signals[id]; ok {
		return s, true
	}
	if sid, ok := n.signalAt[id]; ok {
		return n.signals[sid], true
	}
	return nil, false
}

// Signals lists the network's signal programs by id.
func (n *Network) Signals() []*Signal {
	out := make([]*Signal, 0, len(n.signals))
	for _, s := range n.signals {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lane returns the link and lane with SUMO lane id (or "<link>_<index>" for other sources).
func (n *Network) Lane(id string) (*Link, *Lane, bool) {
	ref, ok := n.laneByID[id]
	if !ok {
		return nil, nil, false
	}
	l := n.links[ref.link]
	return l, &l.LaneInfo[ref.lane], true
}

// sumoSignals collects tlLogic programs and signalised connections while a SUMO net is parsed.
type sumoSignals struct {
	progs map[string]*Signal
	order []string
	links map[string]map[int]SignalLink
	nodes map[string]map[string]bool
}

func (s *sumoSignals) init() {
	if s.progs == nil {
		s.progs, s.links, s.nodes = map[string]*Signal{}, map[string]map[int]SignalLink{}, map[string]map[string]bool{}
	}
}

// readTLLogic reads one <tlLogic> element (the decoder is inside it) into a program.
func readTLLogic(dec *xml.Decoder, el xml.StartElement) (*Signal, error) {
	s := &Signal{ID: attr(el, "id"), Program: attr(el, "programID")}
	if s.ID == "" {
		return nil, errors.New("tlLogic without id")
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("tlLogic %q: %w", s.ID, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "phase" {
				continue
			}
			p := SignalPhase{State: attr(t, "state")}
			var errs []error
			num := func(name string) float64 {
				v := attr(t, name)
				if v == "" {
					return 0
				}
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || !finite(f) || f < 0 || f > 1e6 {
					errs = append(errs, fmt.Errorf("phase %s %q", name, v))
				}
				return f
			}
			p.DurS, p.MinS, p.MaxS = num("duration"), num("minDur"), num("maxDur")
			if err := errors.Join(errs...); err != nil {
				return nil, fmt.Errorf("tlLogic %q: %w", s.ID, err)
			}
			if p.State == "" || len(p.State) > 4096 {
				return nil, fmt.Errorf("tlLogic %q: phase without a state (or over 4,096 links)", s.ID)
			}
			s.Phases = append(s.Phases, p)
		case xml.EndElement:
			if t.Name.Local == "tlLogic" {
				return s, nil
			}
		}
	}
}

// tlLogic records a program read from the net (the last one loaded for an id is the active one).
func (s *sumoSignals) tlLogic(p *sumoParser, el xml.StartElement) error {
	s.init()
	sig, err := readTLLogic(p.dec, el)
	if err != nil {
		return p.errf(el, "%v", err)
	}
	if _, ok := s.progs[sig.ID]; !ok {
		s.order = append(s.order, sig.ID)
	}
	s.progs[sig.ID] = sig
	return nil
}

// connection records a signalised connection (tl and linkIndex set).
func (s *sumoSignals) connection(p *sumoParser, el xml.StartElement, fromNode string) error {
	tl := attr(el, "tl")
	if tl == "" {
		return nil
	}
	s.init()
	idx, err := strconv.Atoi(attr(el, "linkIndex"))
	if err != nil || idx < 0 || idx > 4096 {
		return p.errf(el, "connection controlled by %q: bad linkIndex %q", tl, attr(el, "linkIndex"))
	}
	from, to := attr(el, "from"), attr(el, "to")
	l := SignalLink{Index: idx, From: from, To: to, FromLane: from + "_" + attr(el, "fromLane"),
		ToLane: to + "_" + attr(el, "toLane"), Turn: turnOf(attr(el, "dir"))}
	if s.links[tl] == nil {
		s.links[tl], s.nodes[tl] = map[int]SignalLink{}, map[string]bool{}
	}
	s.links[tl][idx] = l
	if fromNode != "" {
		s.nodes[tl][fromNode] = true
	}
	return nil
}

func turnOf(dir string) Turn {
	switch dir {
	case "l", "L":
		return TurnLeft
	case "s":
		return TurnStraight
	case "r", "R":
		return TurnRight
	case "t":
		return TurnUTurn
	}
	return 0
}

// build returns the programs that control at least one connection, with their links by index.
func (s *sumoSignals) build() []*Signal {
	var out []*Signal
	for _, id := range s.order {
		sig := s.progs[id]
		ls := s.links[id]
		if len(ls) == 0 || len(sig.Phases) == 0 {
			continue
		}
		n := 0
		for i := range ls {
			n = max(n, i+1)
		}
		sig.Links = make([]SignalLink, n)
		for i := range sig.Links {
			sig.Links[i] = SignalLink{Index: -1}
		}
		for i, l := range ls {
			sig.Links[i] = l
		}
		for nd := range s.nodes[id] {
			sig.Nodes = append(sig.Nodes, nd)
		}
		sort.Strings(sig.Nodes)
		out = append(out, sig)
	}
	return out
}

// ApplySUMOPrograms reads the <tlLogic> elements of a SUMO additional file and replaces the programs of the
// network's signals with the same ids (SUMO runs the last program it loads for a signal); it returns how many
// it replaced. Programs of signals the network does not have are ignored. Like SetSignals, it must be called
// before the network is shared.
func (n *Network) ApplySUMOPrograms(r io.Reader) (int, error) {
	dec := xml.NewDecoder(r)
	replaced := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return replaced, nil
		}
		if err != nil {
			line, _ := dec.InputPos()
			return replaced, fmt.Errorf("cannot parse SUMO programs (XML at line %d): %w", line, err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "tlLogic" {
			continue
		}
		prog, err := readTLLogic(dec, el)
		if err != nil {
			return replaced, fmt.Errorf("cannot parse SUMO programs: %w", err)
		}
		old, ok := n.signals[prog.ID]
		if !ok || len(prog.Phases) == 0 {
			continue
		}
		for _, p := range prog.Phases {
			if len(p.State) < len(old.Links) {
				return replaced, fmt.Errorf("cannot apply SUMO program %q/%q: a state of %d links, the signal has %d", prog.ID, prog.Program, len(p.State), len(old.Links))
			}
		}
		cp := *old
		cp.Program, cp.Phases = prog.Program, prog.Phases
		n.signals[prog.ID] = &cp
		replaced++
	}
}

// String names a signal for messages.
func (s *Signal) String() string { return "signal " + s.ID + " (" + strings.Join(s.Nodes, ",") + ")" }
