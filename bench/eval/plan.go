package eval

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"citybrain/geo"
)

// Blockages: where and when the corpus blocks roads.
const (
	blockFirstS   = 600.0 // the first blockage starts after this warm-up
	blockEveryS   = 360.0 // start to start
	blockMinS     = 360.0
	blockMaxS     = 720.0
	blockSpacingM = 600.0 // from every blockage that overlaps it in time (± blockGuardS)
	blockGuardS   = 300.0
	squeezeMinKmh = 10.0 // traffic squeezing past a partial closure
	squeezeMaxKmh = 20.0
	blockerPrefix = "cb_block_"
	blockerType   = "cb_blocker"
	pacerType     = "cb_pacer"
	pacerPrefix   = "cb_pace_" // the local squeeze of a partial closure (writeBlockers): not traffic

	// The local squeeze (corpus c6): its zone around the blockage point and the pacers' headway.
	squeezeBeforeM = 40
	squeezeAfterM  = 10
	pacerPeriodS   = 10.0
)

// Where on its link a blockage is.
const (
	PosMidBlock     = "mid_block"
	PosStopLine     = "stop_line"     // 30–70 m before a signalised stop line
	PosPastJunction = "past_junction" // 10–25 m after the junction the link leaves
)

// Closure classes.
const (
	ClassFull    = "full_closure"    // every lane
	ClassPartial = "partial_closure" // one lane of 2–3; the others crawl past at 10–20 km/h
)

// blockage is one planned closure: a stopped vehicle on each blocked lane of an edge.
type blockage struct {
	ID         string
	Class      string
	Position   string
	Edge       string
	Lanes      []string // blocked lane ids
	Open       []string // lanes left open (partial closures): their speed drops to SqueezeKmh
	PosM       float64
	StartS     float64
	DurS       float64
	SqueezeKmh float64
	Lat, Lng   float64
}

type netLane struct {
	ID      string
	Index   int
	LengthM float64
	Cars    bool // private cars may use it
}

type netEdge struct {
	ID       string
	From, To string
	Lanes    []netLane
}

func (e *netEdge) length() float64 {
	l := math.Inf(1)
	for _, ln := range e.Lanes {
		l = math.Min(l, ln.LengthM)
	}
	if math.IsInf(l, 1) {
		return 0
	}
	return l
}

func (e *netEdge) carLanes() int {
	n := 0
	for _, l := range e.Lanes {
		if l.Cars {
			n++
		}
	}
	return n
}

type sumoNet struct {
	edges    []netEdge
	jType    map[string]string // junction id → type (traffic_light, priority, dead_end, ...)
	degree   map[string]int    // junction id → normal edges touching it
	edgeByID map[string]*netEdge
}

// readSUMONet streams a SUMO net: its normal edges with their lanes, and its junctions' types.
func readSUMONet(path string) (*sumoNet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open net (%s): %w", path, err)
	}
	defer f.Close()
	nt := &sumoNet{jType: map[string]string{}, degree: map[string]int{}, edgeByID: map[string]*netEdge{}}
	dec := xml.NewDecoder(bufio.NewReader(f))
	var cur *netEdge
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read net (%s): %w", path, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			a := attrs(t)
			switch t.Name.Local {
			case "edge":
				cur = nil
				if a["function"] == "" {
					nt.edges = append(nt.edges, netEdge{ID: a["id"], From: a["from"], To: a["to"]})
					cur = &nt.edges[len(nt.edges)-1]
				}
			case "lane":
				if cur == nil {
					continue
				}
				idx, _ := strconv.Atoi(a["index"])
				l, _ := strconv.ParseFloat(a["length"], 64)
				cur.Lanes = append(cur.Lanes, netLane{ID: a["id"], Index: idx, LengthM: l, Cars: allowsCars(a["allow"], a["disallow"])})
			case "junction":
				if !strings.HasPrefix(a["id"], ":") {
					nt.jType[a["id"]] = a["type"]
				}
			}
		case xml.EndElement:
			if t.Name.Local == "edge" {
				cur = nil
			}
		}
	}
	for i := range nt.edges {
		e := &nt.edges[i]
		nt.edgeByID[e.ID] = e
		nt.degree[e.From]++
		nt.degree[e.To]++
	}
	return nt, nil
}

func allowsCars(allow, disallow string) bool {
	if allow != "" {
		return strings.Contains(allow, "passenger") || strings.Contains(allow, "private") || allow == "all"
	}
	return !(strings.Contains(disallow, "passenger") || strings.Contains(disallow, "private") || disallow == "all")
}

func attrs(t xml.StartElement) map[string]string {
	m := make(map[string]string, len(t.Attr))
	for _, a := range t.Attr {
		m[a.Name.Local] = a.Value
	}
	return m
}

var routeEdges = regexp.MustCompile(`edges="([^"]*)"`)

// routeCounts counts how many routes of the route files use each edge: the demand on it.
func routeCounts(paths []string) (map[string]int, error) {
	out := map[string]int{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read routes (%s): %w", path, err)
		}
		for _, m := range routeEdges.FindAllSubmatch(data, -1) {
			for _, e := range strings.Fields(string(m[1])) {
				out[e]++
			}
		}
	}
	return out, nil
}

// planBlockages draws the blockages of one run: one every blockEveryS from blockFirstS, each blockMinS to
// blockMaxS long and over before endS, alternating full and partial closures and cycling through the three
// positions (the seed shifts both cycles), on edges drawn by their demand (busy roads are where closures
// matter and queues form), at least blockSpacingM from every blockage near it in time.
func planBlockages(rng *rand.Rand, nt *sumoNet, counts map[string]int, net *geo.Network, seed int64, endS float64) []blockage {
	maxC := 0
	for _, c := range counts {
		maxC = max(maxC, c)
	}
	byPos := map[string][]cand{}
	partialOK := map[string]bool{}
	for i := range nt.edges {
		e := &nt.edges[i]
		c := counts[e.ID]
		cars := e.carLanes()
		// Busy edges only, not where vehicles enter the network (a closure there only holds them back
		// before they exist).
		if cars == 0 || float64(c) < 0.05*float64(maxC) || nt.degree[e.From] < 3 || nt.jType[e.From] == "dead_end" {
			continue
		}
		L := e.length()
		w := float64(c)
		if L >= 120 {
			byPos[PosMidBlock] = append(byPos[PosMidBlock], cand{e, w})
		}
		if L >= 90 && nt.jType[e.To] == "traffic_light" {
			byPos[PosStopLine] = append(byPos[PosStopLine], cand{e, w})
		}
		if L >= 60 {
			byPos[PosPastJunction] = append(byPos[PosPastJunction], cand{e, w})
		}
		partialOK[e.ID] = cars >= 2 && cars <= 3
	}
	for _, cs := range byPos {
		sort.Slice(cs, func(i, j int) bool { return cs[i].e.ID < cs[j].e.ID })
	}
	positions := []string{PosMidBlock, PosStopLine, PosPastJunction}
	var out []blockage
	for k := 0; ; k++ {
		start := blockFirstS + float64(k)*blockEveryS
		dur := math.Round(blockMinS + rng.Float64()*(blockMaxS-blockMinS))
		if start+blockMinS > endS-60 {
			break
		}
		dur = math.Min(dur, endS-60-start)
		full := (k+int(seed))%2 == 0
		pos := positions[(k+int(seed))%3]
		cs := byPos[pos]
		if !full {
			var p []cand
			for _, c := range cs {
				if partialOK[c.e.ID] {
					p = append(p, c)
				}
			}
			cs = p
		}
		b, ok := drawBlockage(rng, cs, func(c cand) (blockage, bool) {
			b := blockage{ID: fmt.Sprintf("blk-%d", k+1), Position: pos, Edge: c.e.ID, StartS: start, DurS: dur}
			L := c.e.length()
			switch pos {
			case PosMidBlock:
				b.PosM = L * (0.4 + 0.2*rng.Float64())
			case PosStopLine:
				b.PosM = math.Max(15, L-30-40*rng.Float64())
			default:
				b.PosM = 10 + 15*rng.Float64()
			}
			b.PosM = math.Round(b.PosM)
			var cars []netLane
			for _, l := range c.e.Lanes {
				if l.Cars {
					cars = append(cars, l)
				}
			}
			if full {
				b.Class = ClassFull
				for _, l := range c.e.Lanes {
					b.Lanes = append(b.Lanes, l.ID)
				}
			} else {
				b.Class = ClassPartial
				// Most stalled vehicles stand in the kerb lane; some in another.
				i := 0
				if rng.Float64() < 0.3 {
					i = 1 + rng.IntN(len(cars)-1)
				}
				b.Lanes = []string{cars[i].ID}
				for j, l := range cars {
					if j != i {
						b.Open = append(b.Open, l.ID)
					}
				}
				b.SqueezeKmh = math.Round(squeezeMinKmh + rng.Float64()*(squeezeMaxKmh-squeezeMinKmh))
			}
			lat, lng, ok := net.LanePosition(b.Lanes[0], b.PosM)
			if !ok {
				return b, false
			}
			b.Lat, b.Lng = lat, lng
			for _, o := range out {
				if o.StartS-blockGuardS < start+dur && start-blockGuardS < o.StartS+o.DurS &&
					geo.DistanceM(geo.LatLng{Lat: lat, Lng: lng}, geo.LatLng{Lat: o.Lat, Lng: o.Lng}) < blockSpacingM {
					return b, false
				}
			}
			return b, true
		})
		if ok {
			out = append(out, b)
		}
	}
	return out
}

// cand is an edge a blockage may be drawn on, weighted by its demand.
type cand struct {
	e *netEdge
	w float64
}

// drawBlockage draws candidates by weight until make accepts one (at most 300 tries).
func drawBlockage(rng *rand.Rand, cs []cand, make func(cand) (blockage, bool)) (blockage, bool) {
	var sum float64
	for _, c := range cs {
		sum += c.w
	}
	for try := 0; try < 300 && sum > 0; try++ {
		x := rng.Float64() * sum
		i := 0
		for ; i < len(cs)-1; i++ {
			if x -= cs[i].w; x <= 0 {
				break
			}
		}
		if b, ok := make(cs[i]); ok {
			return b, true
		}
	}
	return blockage{}, false
}

// writeBlockers writes the blockers and the squeeze of partial closures (one route file). A blocker enters its
// lane at the start of the edge at the blockage's start (with SUMO's insertion checks, so it waits for a gap),
// drives to the blockage and stops there for its duration; the truth is the stop SUMO reports, not this
// schedule.
//
// The squeeze is local: on each open lane of a partial closure a flow of pacers (pacerPrefix, one every
// pacerPeriodS over the blockage's schedule) is inserted at a free place of its lane (random_free: a pacer
// that finds none, or one placed past its zone, is dropped by SUMO instead of waiting, so a jammed lane does
// not keep a backlog of pacers after the blockage), passes [PosM-squeezeBeforeM, PosM+squeezeAfterM] as a
// waypoint (a stop with a speed) at the squeeze's speed and leaves the network just past it; traffic that
// reaches a pacer squeezes past the blocker at its speed and recovers after it. Pacers never change lanes
// (lcStrategic and lcCooperative -1, no speed gain nor keep-right); they are not traffic (the processor drops
// them, and the loops count every vehicle type but theirs: loopTypes).
func writeBlockers(routes string, bs []blockage) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<routes>\n    <vType id=%q vClass=\"ignoring\" length=\"5\" minGap=\"1\"/>\n", blockerType)
	fmt.Fprintf(&b, "    <vType id=%q vClass=\"ignoring\" length=\"2\" minGap=\"0.5\" lcStrategic=\"-1\" lcSpeedGain=\"0\" lcKeepRight=\"0\" lcCooperative=\"-1\" lcSpeedGainRight=\"0\" lcOvertakeRight=\"0\"/>\n", pacerType)
	type veh struct {
		depart float64
		text   string
	}
	var vs []veh
	for i, bl := range bs {
		for _, lane := range bl.Lanes {
			idx := lane[strings.LastIndexByte(lane, '_')+1:]
			id := fmt.Sprintf("%s%d_%s", blockerPrefix, i, idx)
			vs = append(vs, veh{bl.StartS, fmt.Sprintf(`    <vehicle id=%q type="`+blockerType+`" depart="%.0f" departLane="%s" departPos="base" departSpeed="max">`+"\n"+
				`        <route edges=%q/>`+"\n"+`        <stop lane=%q startPos="%.1f" endPos="%.1f" duration="%.0f"/>`+"\n    </vehicle>\n",
				id, bl.StartS, idx, bl.Edge, lane, math.Max(0, bl.PosM-6), bl.PosM, bl.DurS)})
		}
		for _, lane := range bl.Open {
			idx := lane[strings.LastIndexByte(lane, '_')+1:]
			// Every blockage point lies 30 m or more before its link's end (planBlockages), so the zone and the
			// pacer's arrival (PosM+squeezeAfterM+1) stay on the link.
			from, to := math.Max(0, bl.PosM-squeezeBeforeM), bl.PosM+squeezeAfterM
			vs = append(vs, veh{bl.StartS, fmt.Sprintf(`    <flow id="%s%d_%s" type="`+pacerType+`" begin="%.0f" end="%.0f" period="%g" departLane="%s" departPos="random_free" departSpeed="%.2f" arrivalLane="%s" arrivalPos="%.1f">`+"\n"+
				`        <route edges=%q/>`+"\n"+`        <stop lane=%q startPos="%.1f" endPos="%.1f" speed="%.2f"/>`+"\n    </flow>\n",
				pacerPrefix, i, idx, bl.StartS, bl.StartS+bl.DurS, pacerPeriodS, idx, bl.SqueezeKmh/3.6, idx, to+1, bl.Edge, lane, from, to, bl.SqueezeKmh/3.6)})
		}
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].depart < vs[j].depart })
	for _, v := range vs {
		b.WriteString(v.text)
	}
	b.WriteString("</routes>\n")
	if err := os.WriteFile(routes, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write blockers (%s): %w", routes, err)
	}
	return nil
}
