package geo

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ErrNoProjection is returned for a SUMO net without a geo projection (projParameter "!" or no <location>):
// its coordinates are plain metres and cannot be placed on the map.
var ErrNoProjection = errors.New("net has no geo projection (projParameter is missing or \"!\")")

// convSlackM is how far outside convBoundary a coordinate may lie (lane shapes are offset from edge centre
// lines) before the net is rejected as inconsistent.
const convSlackM = 100

type sumoXY struct{ x, y float64 }

type sumoLane struct {
	id, index     string
	speed, length float64
	shape         []sumoXY
	turns         Turn
}

type sumoEdge struct {
	id, from, to, name, typ string
	shape                   []sumoXY
	lanes                   []sumoLane
}

type sumoJunction struct {
	id         string
	x, y       float64
	signalised bool
}

type sumoParser struct {
	dec       *xml.Decoder
	edges     []sumoEdge
	edgeIdx   map[string]int
	junctions []sumoJunction
	cur       *sumoEdge // the non-internal edge being read, nil otherwise
	haveLoc   bool
	proj      string
	offset    sumoXY
	conv      [4]float64
	haveConv  bool
	sig       sumoSignals
}

// LoadSUMONetFile loads a SUMO .net.xml file; see LoadSUMONet.
func LoadSUMONetFile(path string) (*Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open SUMO net (%s): %w", path, err)
	}
	defer f.Close()
	n, err := LoadSUMONet(f)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", path, err)
	}
	return n, nil
}

// LoadSUMONet reads a SUMO network (.net.xml) element by element. Non-internal edges become links (geometry
// from the edge shape, else a straight line between its junctions; lanes keep their SUMO ids, shapes, speeds and
// the turns their <connection>s permit), non-internal junctions become nodes (traffic_light* types are
// signalised). Coordinates are moved by -netOffset and inverse-projected with the UTM projParameter to WGS84;
// a net without a projection is an error wrapping ErrNoProjection.
func LoadSUMONet(r io.Reader) (*Network, error) {
	p := &sumoParser{dec: xml.NewDecoder(r), edgeIdx: map[string]int{}}
	p.dec.Strict = true
	for {
		tok, err := p.dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := p.dec.InputPos()
			return nil, fmt.Errorf("cannot parse SUMO net (XML at line %d): %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := p.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if t.Name.Local == "edge" {
				p.cur = nil
			}
		}
	}
	return p.build()
}

func (p *sumoParser) errf(el xml.StartElement, format string, args ...any) error {
	line, _ := p.dec.InputPos()
	id := attr(el, "id")
	return fmt.Errorf("cannot parse SUMO net (<%s id=%q> at line %d): %s", el.Name.Local, id, line,
		fmt.Sprintf(format, args...))
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (p *sumoParser) start(el xml.StartElement) error {
	switch el.Name.Local {
	case "location":
		return p.location(el)
	case "edge":
		p.cur = nil
		if attr(el, "function") == "internal" || strings.HasPrefix(attr(el, "id"), ":") {
			return nil
		}
		e := sumoEdge{id: attr(el, "id"), from: attr(el, "from"), to: attr(el, "to"), name: attr(el, "name"),
			typ: attr(el, "type")}
		if e.id == "" || e.from == "" || e.to == "" {
			return p.errf(el, "edge needs id, from and to")
		}
		if _, dup := p.edgeIdx[e.id]; dup {
			return p.errf(el, "duplicate edge")
		}
		if s := attr(el, "shape"); s != "" {
			sh, err := parseShape(s)
			if err != nil {
				return p.errf(el, "bad shape: %v", err)
			}
			e.shape = sh
		}
		p.edgeIdx[e.id] = len(p.edges)
		p.edges = append(p.edges, e)
		p.cur = &p.edges[len(p.edges)-1]
	case "lane":
		if p.cur == nil {
			return nil // lane of an internal edge
		}
		ln := sumoLane{id: attr(el, "id"), index: attr(el, "index")}
		var err1, err2, err3 error
		ln.speed, err1 = strconv.ParseFloat(attr(el, "speed"), 64)
		ln.length, err2 = strconv.ParseFloat(attr(el, "length"), 64)
		ln.shape, err3 = parseShape(attr(el, "shape"))
		if err := errors.Join(err1, err2, err3); err != nil {
			return p.errf(el, "lane of edge %q: %v", p.cur.id, err)
		}
		if ln.id == "" || !(ln.speed >= 0 && ln.speed < 200) || !(ln.length >= 0 && ln.length < 1e7) {
			return p.errf(el, "lane of edge %q needs an id, a speed in 0..200 m/s and a length", p.cur.id)
		}
		p.cur.lanes = append(p.cur.lanes, ln)
	case "junction":
		if attr(el, "type") == "internal" || strings.HasPrefix(attr(el, "id"), ":") {
			return nil
		}
		x, err1 := strconv.ParseFloat(attr(el, "x"), 64)
		y, err2 := strconv.ParseFloat(attr(el, "y"), 64)
		if err := errors.Join(err1, err2); err != nil || attr(el, "id") == "" || !finite(x) || !finite(y) {
			return p.errf(el, "junction needs an id and numeric x, y")
		}
		p.junctions = append(p.junctions, sumoJunction{id: attr(el, "id"), x: x, y: y,
			signalised: strings.HasPrefix(attr(el, "type"), "traffic_light")})
	case "connection":
		return p.connection(el)
	case "tlLogic":
		return p.sig.tlLogic(p, el)
	}
	return nil
}

func (p *sumoParser) location(el xml.StartElement) error {
	p.haveLoc = true
	p.proj = attr(el, "projParameter")
	if s := attr(el, "netOffset"); s != "" {
		xy, err := parseXY(s)
		if err != nil {
			return p.errf(el, "bad netOffset %q: %v", s, err)
		}
		p.offset = xy
	}
	for _, name := range []string{"convBoundary", "origBoundary"} {
		s := attr(el, name)
		if s == "" {
			continue
		}
		b, err := parseBoundary(s)
		if err != nil {
			return p.errf(el, "bad %s %q: %v", name, s, err)
		}
		if name == "convBoundary" {
			p.conv, p.haveConv = b, true
		}
	}
	return nil
}

func (p *sumoParser) connection(el xml.StartElement) error {
	from := attr(el, "from")
	i, ok := p.edgeIdx[from]
	if !ok {
		return nil // from an internal edge, or to an edge we never saw: nothing to record
	}
	lane, err := strconv.Atoi(attr(el, "fromLane"))
	if err != nil {
		return p.errf(el, "connection from %q: bad fromLane %q", from, attr(el, "fromLane"))
	}
	if err := p.sig.connection(p, el, p.edges[i].to); err != nil {
		return err
	}
	var bit Turn
	switch attr(el, "dir") {
	case "l", "L":
		bit = TurnLeft
	case "s":
		bit = TurnStraight
	case "r", "R":
		bit = TurnRight
	case "t":
		bit = TurnUTurn
	}
	for j := range p.edges[i].lanes {
		if p.edges[i].lanes[j].index == strconv.Itoa(lane) {
			p.edges[i].lanes[j].turns |= bit
		}
	}
	return nil
}

func (p *sumoParser) build() (*Network, error) {
	if !p.haveLoc || p.proj == "" || p.proj == "!" {
		return nil, fmt.Errorf("cannot place SUMO net: %w", ErrNoProjection)
	}
	zone, err := ParseUTMProj(p.proj)
	if err != nil {
		return nil, fmt.Errorf("cannot place SUMO net: %w", err)
	}
	conv := func(xy sumoXY, what string) (LatLng, error) {
		if p.haveConv && (xy.x < p.conv[0]-convSlackM || xy.x > p.conv[2]+convSlackM ||
			xy.y < p.conv[1]-convSlackM || xy.y > p.conv[3]+convSlackM) {
			return LatLng{}, fmt.Errorf("cannot place SUMO net (%s at %.2f,%.2f): outside convBoundary %v",
				what, xy.x, xy.y, p.conv)
		}
		ll := UTMToLatLng(zone, xy.x-p.offset.x, xy.y-p.offset.y)
		if !ll.valid() || math.IsNaN(ll.Lat) {
			return LatLng{}, fmt.Errorf("cannot place SUMO net (%s at %.2f,%.2f): projects outside WGS84", what, xy.x, xy.y)
		}
		return ll, nil
	}
	convAll := func(pts []sumoXY, what string) ([]LatLng, error) {
		if len(pts) == 0 {
			return nil, nil
		}
		out := make([]LatLng, len(pts))
		for i, xy := range pts {
			ll, err := conv(xy, what)
			if err != nil {
				return nil, err
			}
			out[i] = ll
		}
		return out, nil
	}
	nodes := make([]Node, 0, len(p.junctions))
	for _, j := range p.junctions {
		ll, err := conv(sumoXY{j.x, j.y}, "junction "+strconv.Quote(j.id))
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, Node{ID: j.id, LatLng: ll, Signalised: j.signalised})
	}
	links := make([]Link, 0, len(p.edges))
	for _, e := range p.edges {
		geom, err := convAll(e.shape, "edge "+strconv.Quote(e.id))
		if err != nil {
			return nil, err
		}
		l := Link{ID: e.id, From: e.from, To: e.to, Name: e.name, Geometry: geom, Lanes: len(e.lanes),
			Class: ParseRoadClass(e.typ)}
		for _, ln := range e.lanes {
			shape, err := convAll(ln.shape, "lane "+strconv.Quote(ln.id))
			if err != nil {
				return nil, err
			}
			idx, _ := strconv.Atoi(ln.index)
			l.LaneInfo = append(l.LaneInfo, Lane{ID: ln.id, Index: idx, Turns: ln.turns, SpeedKmh: ln.speed * 3.6,
				LengthM: ln.length, Shape: shape})
			l.SpeedLimitKmh = math.Max(l.SpeedLimitKmh, ln.speed*3.6)
			l.LengthM = math.Max(l.LengthM, ln.length)
		}
		if l.Class == ClassUnclassified && e.typ == "" {
			l.Class = classForSpeed(l.SpeedLimitKmh, l.Lanes)
		}
		links = append(links, l)
	}
	n, err := NewNetwork("sumo", nodes, links)
	if err != nil {
		return nil, fmt.Errorf("cannot build SUMO network: %w", err)
	}
	n.Projection = p.proj
	n.SetSignals(p.sig.build()...)
	return n, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func parseXY(s string) (sumoXY, error) {
	xs, ys, ok := strings.Cut(s, ",")
	if !ok {
		return sumoXY{}, fmt.Errorf("want x,y, got %q", s)
	}
	x, err1 := strconv.ParseFloat(xs, 64)
	y, err2 := strconv.ParseFloat(ys, 64)
	if err := errors.Join(err1, err2); err != nil {
		return sumoXY{}, err
	}
	if !finite(x) || !finite(y) {
		return sumoXY{}, fmt.Errorf("coordinate %q is not finite", s)
	}
	return sumoXY{x, y}, nil
}

// parseShape reads SUMO's "x,y x,y ..." (a third z value is ignored).
func parseShape(s string) ([]sumoXY, error) {
	f := strings.Fields(s)
	out := make([]sumoXY, 0, len(f))
	for _, pt := range f {
		if c := strings.Count(pt, ","); c == 2 {
			pt = pt[:strings.LastIndexByte(pt, ',')]
		}
		xy, err := parseXY(pt)
		if err != nil {
			return nil, err
		}
		out = append(out, xy)
	}
	return out, nil
}

func parseBoundary(s string) ([4]float64, error) {
	var b [4]float64
	f := strings.Split(s, ",")
	if len(f) != 4 {
		return b, fmt.Errorf("want 4 numbers, got %d", len(f))
	}
	for i, v := range f {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !finite(x) {
			return b, fmt.Errorf("value %q is not a finite number", v)
		}
		b[i] = x
	}
	if b[0] > b[2] || b[1] > b[3] {
		return b, errors.New("minimum exceeds maximum")
	}
	return b, nil
}
