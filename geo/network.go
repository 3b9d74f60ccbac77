package geo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tidwall/rtree"
)

// RoadClass orders roads by importance (lower value = more important). It drives default speeds and which roads
// the map shows at low zoom.
type RoadClass uint8

// Road classes, most important first (OSM highway names).
const (
	ClassMotorway RoadClass = iota
	ClassTrunk
	ClassPrimary
	ClassSecondary
	ClassTertiary
	ClassResidential
	ClassService
	ClassUnclassified
)

var classNames = [...]string{"motorway", "trunk", "primary", "secondary", "tertiary", "residential", "service",
	"unclassified"}

// String returns the OSM-style name of c.
func (c RoadClass) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unclassified"
}

// DefaultKmh is the speed assumed for a road of class c when the source gives no limit.
func (c RoadClass) DefaultKmh() float64 {
	switch c {
	case ClassMotorway:
		return 100
	case ClassTrunk:
		return 80
	case ClassPrimary:
		return 60
	case ClassSecondary:
		return 50
	case ClassTertiary:
		return 40
	case ClassResidential, ClassUnclassified:
		return 30
	default:
		return 20
	}
}

// ParseRoadClass maps an OSM highway tag or a SUMO edge type ("highway.primary", "highway.primary_link") to a
// class; unknown names give ClassUnclassified.
func ParseRoadClass(s string) RoadClass {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(s, "_link")
	switch s {
	case "living_street":
		return ClassResidential
	}
	for i, n := range classNames {
		if s == n {
			return RoadClass(i)
		}
	}
	return ClassUnclassified
}

// classForSpeed guesses a class from a speed limit, for sources (City Brain) that have none.
func classForSpeed(kmh float64, lanes int) RoadClass {
	switch {
	case kmh >= 90:
		return ClassMotorway
	case kmh >= 70:
		return ClassTrunk
	case kmh >= 55 || lanes >= 3:
		return ClassPrimary
	case kmh >= 45:
		return ClassSecondary
	case kmh >= 35:
		return ClassTertiary
	default:
		return ClassResidential
	}
}

// Turn is a set of movements a lane permits at the end of its link.
type Turn uint8

// Movements.
const (
	TurnLeft Turn = 1 << iota
	TurnStraight
	TurnRight
	TurnUTurn
)

// Lane is one lane of a link, when the source describes lanes individually.
type Lane struct {
	ID       string   // SUMO lane id ("edge_index"); "<link>_<index>" for other sources
	Index    int      // the source's index: SUMO counts from the right, City Brain from the left (inner)
	Turns    Turn     // permitted movements; 0 when the source does not say
	SpeedKmh float64  // 0 = the link's limit
	LengthM  float64  // declared length; 0 = the link's
	Shape    []LatLng // nil when the source has no per-lane geometry
}

// Link is a directed road segment from one node to another.
type Link struct {
	ID            string
	From, To      string // node ids
	Name          string
	AltNames      map[string]string // the name in other languages by code ("zh", "en"), when the source has them
	LengthM       float64           // declared length (the source's), else the geometry's
	Lanes         int
	SpeedLimitKmh float64 // 0 = unknown (FreeFlowKmh falls back to the class default)
	Class         RoadClass
	Geometry      []LatLng // from the From node to the To node, at least two points
	LaneInfo      []Lane   // per-lane details when the source has them

	idx   int32
	from  int32
	to    int32
	cum   []float64 // cumulative geometric length at each vertex
	laneC [][]float64
}

// GeomLengthM returns the length of the link's geometry (which may differ from the declared LengthM).
func (l *Link) GeomLengthM() float64 { return l.cum[len(l.cum)-1] }

// PointAt returns the position offsetM metres along the geometry (clamped) and the bearing of the segment there.
func (l *Link) PointAt(offsetM float64) (LatLng, float64) {
	return pointAlong(l.Geometry, l.cum, offsetM)
}

func pointAlong(pts []LatLng, cum []float64, off float64) (LatLng, float64) {
	if off <= 0 || math.IsNaN(off) {
		return pts[0], BearingDeg(pts[0], pts[1])
	}
	for i := 1; i < len(pts); i++ {
		if off <= cum[i] || i == len(pts)-1 {
			seg := cum[i] - cum[i-1]
			t := 1.0
			if seg > 0 {
				t = math.Min(1, (off-cum[i-1])/seg)
			}
			return interpolate(pts[i-1], pts[i], t), BearingDeg(pts[i-1], pts[i])
		}
	}
	return pts[len(pts)-1], 0 // unreachable: the loop returns at the last vertex
}

// Side is the compass side of an intersection from which an approach enters.
type Side uint8

// Sides.
const (
	SideNorth Side = iota
	SideEast
	SideSouth
	SideWest
)

func (s Side) String() string { return [...]string{"N", "E", "S", "W"}[s&3] }

// sideFromBearing returns the side of a node that lies in direction bearing (degrees) from it.
func sideFromBearing(b float64) Side { return Side(int(math.Floor(normDeg(b+45)/90)) & 3) }

// Approach is an incoming link of an intersection and the compass side it enters from (judged by geometry).
// Approaches on opposite sides (N/S and E/W) form the two default signal groups.
type Approach struct {
	Side   Side
	LinkID string
	// Slot is the approach's position in the source's signal definition (City Brain: 0..3 in the signal line,
	// which CBEngine phases refer to), or -1 when the source has none. It need not match Side: see docs/geo.md.
	Slot int
}

// Node is an intersection (or a dead end or shape node of the source).
type Node struct {
	ID string
	LatLng
	Signalised bool
	Approaches []Approach // set by the loader when the source has them, else derived from link geometry
	In, Out    []string   // ids of the links ending and starting here

	in, out []int32
}

// SignalGroups returns the approaches split into the north-south and the east-west group.
func (n *Node) SignalGroups() (ns, ew []Approach) {
	for _, a := range n.Approaches {
		if a.Side == SideNorth || a.Side == SideSouth {
			ns = append(ns, a)
		} else {
			ew = append(ew, a)
		}
	}
	return ns, ew
}

// laneRef locates a lane: link index and lane index in LaneInfo.
type laneRef struct{ link, lane int32 }

// segRef names one segment of a link in the rtree.
type segRef struct{ link, seg int32 }

// Network is a directed road network with spatial indexes. It is immutable after NewNetwork returns, so any
// number of goroutines may read it at once; callers must not modify the nodes or links it hands out.
type Network struct {
	Source     string // "citybrain", "sumo", "geojson", "generated", ...
	Projection string // the source's projection, if it had one (SUMO projParameter)

	nodes    []*Node
	links    []*Link
	nodeByID map[string]int32
	linkByID map[string]int32
	laneByID map[string]laneRef
	signals  map[string]*Signal // signal programs by id (SUMO nets; SetSignals)
	signalAt map[string]string  // intersection id → signal id
	bbox     BBox
	segs     rtree.RTreeG[segRef]
}

// ErrEmptyNetwork is returned when a source holds no links.
var ErrEmptyNetwork = errors.New("network has no links")

// NewNetwork validates nodes and links, links them together, derives missing geometry, lengths and approaches and
// builds the segment index. Links whose geometry is nil go straight from their From node to their To node.
func NewNetwork(source string, nodes []Node, links []Link) (*Network, error) {
	if len(links) == 0 {
		return nil, fmt.Errorf("cannot build %s network (%d nodes): %w", source, len(nodes), ErrEmptyNetwork)
	}
	n := &Network{
		Source:   source,
		nodes:    make([]*Node, len(nodes)),
		links:    make([]*Link, len(links)),
		nodeByID: make(map[string]int32, len(nodes)),
		linkByID: make(map[string]int32, len(links)),
		laneByID: make(map[string]laneRef),
		bbox:     BBox{MinLng: math.Inf(1), MinLat: math.Inf(1), MaxLng: math.Inf(-1), MaxLat: math.Inf(-1)},
	}
	for i := range nodes {
		nd := nodes[i]
		if !nd.LatLng.valid() {
			return nil, fmt.Errorf("cannot add node %q (%g, %g): not a WGS84 position", nd.ID, nd.Lat, nd.Lng)
		}
		if _, dup := n.nodeByID[nd.ID]; dup {
			return nil, fmt.Errorf("cannot add node %q: duplicate id", nd.ID)
		}
		nd.In, nd.Out, nd.in, nd.out = nil, nil, nil, nil
		n.nodes[i] = &nd
		n.nodeByID[nd.ID] = int32(i)
		n.extend(nd.LatLng)
	}
	for i := range links {
		l := links[i]
		if err := n.addLink(&l, int32(i)); err != nil {
			return nil, err
		}
	}
	for _, nd := range n.nodes {
		if len(nd.Approaches) == 0 {
			nd.Approaches = n.deriveApproaches(nd)
		}
	}
	return n, nil
}

func (n *Network) extend(p LatLng) {
	n.bbox.MinLat = math.Min(n.bbox.MinLat, p.Lat)
	n.bbox.MaxLat = math.Max(n.bbox.MaxLat, p.Lat)
	n.bbox.MinLng = math.Min(n.bbox.MinLng, p.Lng)
	n.bbox.MaxLng = math.Max(n.bbox.MaxLng, p.Lng)
}

func (n *Network) addLink(l *Link, i int32) error {
	if _, dup := n.linkByID[l.ID]; dup {
		return fmt.Errorf("cannot add link %q: duplicate id", l.ID)
	}
	fi, ok := n.nodeByID[l.From]
	if !ok {
		return fmt.Errorf("cannot add link %q: unknown from node %q", l.ID, l.From)
	}
	ti, ok := n.nodeByID[l.To]
	if !ok {
		return fmt.Errorf("cannot add link %q: unknown to node %q", l.ID, l.To)
	}
	if len(l.Geometry) == 0 {
		l.Geometry = []LatLng{n.nodes[fi].LatLng, n.nodes[ti].LatLng}
	}
	if len(l.Geometry) < 2 {
		return fmt.Errorf("cannot add link %q: geometry has %d point(s), need 2", l.ID, len(l.Geometry))
	}
	for _, p := range l.Geometry {
		if !p.valid() {
			return fmt.Errorf("cannot add link %q (point %g, %g): not a WGS84 position", l.ID, p.Lat, p.Lng)
		}
		n.extend(p)
	}
	if math.IsNaN(l.LengthM) || math.IsInf(l.LengthM, 0) || l.LengthM < 0 ||
		math.IsNaN(l.SpeedLimitKmh) || math.IsInf(l.SpeedLimitKmh, 0) || l.SpeedLimitKmh < 0 {
		return fmt.Errorf("cannot add link %q (length %g m, limit %g km/h): not a finite non-negative value",
			l.ID, l.LengthM, l.SpeedLimitKmh)
	}
	l.cum = polylineLengths(l.Geometry)
	if l.LengthM == 0 {
		l.LengthM = l.GeomLengthM()
	}
	if l.Lanes <= 0 {
		l.Lanes = max(1, len(l.LaneInfo))
	}
	l.idx, l.from, l.to = i, fi, ti
	l.LaneInfo = slices.Clone(l.LaneInfo) // lane ids and shapes are normalised below: not in the caller's slice
	l.laneC = make([][]float64, len(l.LaneInfo))
	for j := range l.LaneInfo {
		ln := &l.LaneInfo[j]
		if ln.ID == "" {
			ln.ID = fmt.Sprintf("%s_%d", l.ID, ln.Index)
		}
		if len(ln.Shape) == 1 {
			ln.Shape = nil
		}
		for _, p := range ln.Shape {
			if !p.valid() {
				return fmt.Errorf("cannot add lane %q (point %g, %g): not a WGS84 position", ln.ID, p.Lat, p.Lng)
			}
		}
		if ln.Shape != nil {
			l.laneC[j] = polylineLengths(ln.Shape)
		}
		if _, dup := n.laneByID[ln.ID]; dup {
			return fmt.Errorf("cannot add lane %q of link %q: duplicate id", ln.ID, l.ID)
		}
		n.laneByID[ln.ID] = laneRef{link: i, lane: int32(j)}
	}
	n.links[i] = l
	n.linkByID[l.ID] = i
	from, to := n.nodes[fi], n.nodes[ti]
	from.Out, from.out = append(from.Out, l.ID), append(from.out, i)
	to.In, to.in = append(to.In, l.ID), append(to.in, i)
	for s := 1; s < len(l.Geometry); s++ {
		a, b := l.Geometry[s-1], l.Geometry[s]
		n.segs.Insert([2]float64{math.Min(a.Lng, b.Lng), math.Min(a.Lat, b.Lat)},
			[2]float64{math.Max(a.Lng, b.Lng), math.Max(a.Lat, b.Lat)}, segRef{link: i, seg: int32(s - 1)})
	}
	return nil
}

// deriveApproaches gives each incoming link the side it enters from, judged by the direction of its last
// segment (a link heading north enters from the south).
func (n *Network) deriveApproaches(nd *Node) []Approach {
	var out []Approach
	for _, li := range nd.in {
		g := n.links[li].Geometry
		k := len(g) - 1
		for k > 0 && DistanceM(g[k-1], g[len(g)-1]) < 1 {
			k--
		}
		if k == 0 {
			continue // a link shorter than a metre has no direction
		}
		out = append(out, Approach{Side: sideFromBearing(BearingDeg(g[len(g)-1], g[k-1])), LinkID: n.links[li].ID,
			Slot: -1})
	}
	return out
}

// Nodes returns all nodes in load order. The slice and nodes are shared: do not modify them.
func (n *Network) Nodes() []*Node { return n.nodes }

// Links returns all links in load order. The slice and links are shared: do not modify them.
func (n *Network) Links() []*Link { return n.links }

// Node returns the node with the given id.
func (n *Network) Node(id string) (*Node, bool) {
	i, ok := n.nodeByID[id]
	if !ok {
		return nil, false
	}
	return n.nodes[i], true
}

// Link returns the link with the given id.
func (n *Network) Link(id string) (*Link, bool) {
	i, ok := n.linkByID[id]
	if !ok {
		return nil, false
	}
	return n.links[i], true
}

// BBox returns the bounding box of all nodes and link geometry.
func (n *Network) BBox() BBox { return n.bbox }

// FreeFlowKmh returns the free-flow speed of a link: its speed limit, or its class default when the source gave
// none. ok is false for an unknown link.
func (n *Network) FreeFlowKmh(linkID string) (kmh float64, ok bool) {
	l, ok := n.Link(linkID)
	if !ok {
		return 0, false
	}
	return freeFlow(l), true
}

func freeFlow(l *Link) float64 {
	if l.SpeedLimitKmh > 0 {
		return l.SpeedLimitKmh
	}
	return l.Class.DefaultKmh()
}

// LanePosition returns the position posM metres along a lane (SUMO semantics: a negative position counts from
// the lane's end; positions are in the lane's declared length and scaled onto its shape; out-of-range positions
// are clamped). Lanes without their own shape use the link geometry. ok is false for an unknown lane or a NaN
// position.
func (n *Network) LanePosition(laneID string, posM float64) (lat, lng float64, ok bool) {
	ref, ok := n.laneByID[laneID]
	if !ok || math.IsNaN(posM) {
		return 0, 0, false
	}
	l := n.links[ref.link]
	ln := &l.LaneInfo[ref.lane]
	pts, cum := l.Geometry, l.cum
	declared := l.LengthM
	if ln.Shape != nil {
		pts, cum = ln.Shape, l.laneC[ref.lane]
	}
	if ln.LengthM > 0 {
		declared = ln.LengthM
	}
	if posM < 0 {
		posM += declared
	}
	off := posM
	if geom := cum[len(cum)-1]; declared > 0 {
		off = posM * geom / declared
	}
	p, _ := pointAlong(pts, cum, off)
	return p.Lat, p.Lng, true
}
