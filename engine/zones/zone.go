// Package zones keeps the city's geofences (zones drawn as polygons or picked as road links) and judges their
// rules against what the engine publishes: congestion held above a level, incidents, units entering or
// leaving, sensors over their thresholds, crowd counts. Each firing is an Alert with its evidence.
//
// The package is fed through two narrow hooks: Manager.OnDelta with each engine tick's Delta (the tick
// goroutine), and Manager.ApplyAction with the zone actions read from the log (the log consumer, in log order).
// Alerts are judged in event time (the delta's newest event time, an incident's detection time, a sensor's
// reading time), so a replay of the same log gives the same alerts, with the same ids.
package zones

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/uber/h3-go/v4"

	"citybrain/engine"
	"citybrain/geo"
)

// Zone kinds. The hazard kinds (underpass, flood, pipe, gas, fire) also judge the city sensors of a matching
// type inside them without a rule being written, and their alerts recommend closing the links through them.
const (
	KindGeneral   = "general"
	KindSchool    = "school"
	KindVenue     = "venue"
	KindCordon    = "cordon"
	KindUnderpass = "underpass"
	KindFlood     = "flood"
	KindPipe      = "pipe"
	KindGas       = "gas"
	KindFire      = "fire"
)

var kinds = []string{KindGeneral, KindSchool, KindVenue, KindCordon, KindUnderpass, KindFlood, KindPipe, KindGas, KindFire}

// Rule types.
const (
	RuleCongestion = "congestion" // the zone's TPI at or above MinTPI (or Level) for ForS seconds
	RuleIncident   = "incident"   // an active incident of one of IncidentTypes (any when empty) inside
	RuleUnitEnter  = "unit_enter" // a unit of one of UnitTypes (any when empty) enters
	RuleUnitLeave  = "unit_leave" // ... leaves
	RuleSensor     = "sensor"     // a sensor of one of SensorTypes over its threshold (or Above / under Below)
	RuleCrowd      = "crowd"      // a camera's pedestrian count or a crowd sensor at or above Count
)

var ruleTypes = []string{RuleCongestion, RuleIncident, RuleUnitEnter, RuleUnitLeave, RuleSensor, RuleCrowd}

// Limits of what a zone may hold (input is hostile: bound before allocating).
const (
	MaxVertices  = 2000
	MaxLinks     = 2000
	MaxRules     = 16
	MaxTypes     = 16
	MaxNameBytes = 200
	// MaxCoverCells bounds the H3 cells a zone's congestion rule watches (about 1,000 km² at resolution 9).
	MaxCoverCells = 100_000
	// LinkBufferM: a point this close to one of a link zone's links is inside the zone.
	LinkBufferM = 40.0
)

// Rule is one condition of a zone. Fields not used by its Type are ignored.
type Rule struct {
	Type          string   `json:"type"`
	Level         string   `json:"level,omitempty"`   // congestion: smooth, basically_smooth, light, moderate, severe
	MinTPI        float64  `json:"min_tpi,omitempty"` // congestion: 0..10 (instead of Level)
	ForS          float64  `json:"for_s,omitempty"`   // congestion: how long the level must hold (seconds)
	IncidentTypes []string `json:"incident_types,omitempty"`
	UnitTypes     []string `json:"unit_types,omitempty"`
	SensorTypes   []string `json:"sensor_types,omitempty"` // substrings of the sensor's type ("water" matches water_level)
	Above         *float64 `json:"above,omitempty"`        // sensor: fires above this instead of the sensor's own threshold
	Below         *float64 `json:"below,omitempty"`        // sensor: fires below this (a pressure drop)
	Count         float64  `json:"count,omitempty"`        // crowd
	Severity      int      `json:"severity,omitempty"`     // 1..5 for the alert (default by rule)
}

// Zone is a geofence with rules. Either Polygon (a ring of [lng, lat], closed or not) or Links (road link ids
// of the loaded network) gives its shape.
type Zone struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Kind      string       `json:"kind"`
	Polygon   [][2]float64 `json:"polygon,omitempty"`
	Links     []string     `json:"links,omitempty"`
	Rules     []Rule       `json:"rules"`
	CreatedBy string       `json:"created_by,omitempty"`
	Role      string       `json:"role,omitempty"`
	CreatedAt int64        `json:"created_at"` // wall clock of the action that made it, ms
	UpdatedAt int64        `json:"updated_at"`
}

// levelTPI is the lowest TPI of each level (engine.Level's bands).
var levelTPI = map[string]float64{
	engine.LevelSmooth: 0, engine.LevelBasicallySmooth: 2, engine.LevelLight: 4, engine.LevelModerate: 6, engine.LevelSevere: 8,
}

// Validate checks z and fills defaults (Kind general, congestion level moderate for 5 minutes).
func (z *Zone) Validate() error {
	if z.ID == "" || len(z.ID) > 64 {
		return errors.New("zone id must be 1..64 bytes")
	}
	if !utf8.ValidString(z.Name) || len(z.Name) > MaxNameBytes {
		return fmt.Errorf("zone name must be valid UTF-8 of at most %d bytes", MaxNameBytes)
	}
	if z.Kind == "" {
		z.Kind = KindGeneral
	}
	if !slices.Contains(kinds, z.Kind) {
		return fmt.Errorf("zone kind %q must be one of %s", z.Kind, strings.Join(kinds, ", "))
	}
	switch {
	case len(z.Polygon) > 0 && len(z.Links) > 0:
		return errors.New("a zone has either a polygon or links, not both")
	case len(z.Polygon) == 0 && len(z.Links) == 0:
		return errors.New("a zone needs a polygon (ring of [lng, lat]) or links (road link ids)")
	case len(z.Polygon) > MaxVertices:
		return fmt.Errorf("polygon has %d vertices (at most %d)", len(z.Polygon), MaxVertices)
	case len(z.Links) > MaxLinks:
		return fmt.Errorf("zone has %d links (at most %d)", len(z.Links), MaxLinks)
	}
	if len(z.Polygon) > 0 {
		if n := len(z.Polygon); n > 1 && z.Polygon[0] == z.Polygon[n-1] {
			z.Polygon = z.Polygon[:n-1]
		}
		if len(z.Polygon) < 3 {
			return errors.New("polygon needs at least 3 distinct vertices")
		}
		for i, p := range z.Polygon {
			if !(p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90) {
				return fmt.Errorf("polygon vertex %d [%g, %g] is not a [lng, lat] on the globe", i, p[0], p[1])
			}
		}
		if b := ringBBox(z.Polygon); b.MaxLng-b.MinLng > 2 || b.MaxLat-b.MinLat > 2 {
			return errors.New("polygon spans more than 2 degrees: a zone is a part of a city")
		}
		if a := ringArea(z.Polygon); !(a > 1e-12) {
			return errors.New("polygon has no area (its vertices are on one line)")
		}
	}
	for i, l := range z.Links {
		if l == "" || len(l) > 128 {
			return fmt.Errorf("link %d must be an id of 1..128 bytes", i)
		}
	}
	if len(z.Rules) > MaxRules {
		return fmt.Errorf("zone has %d rules (at most %d)", len(z.Rules), MaxRules)
	}
	for i := range z.Rules {
		if err := z.Rules[i].validate(); err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
	}
	return nil
}

func (r *Rule) validate() error {
	if !slices.Contains(ruleTypes, r.Type) {
		return fmt.Errorf("type %q must be one of %s", r.Type, strings.Join(ruleTypes, ", "))
	}
	for _, l := range [][]string{r.IncidentTypes, r.UnitTypes, r.SensorTypes} {
		if len(l) > MaxTypes {
			return fmt.Errorf("at most %d types", MaxTypes)
		}
		for _, s := range l {
			if s == "" || len(s) > 64 {
				return errors.New("a type must be 1..64 bytes")
			}
		}
	}
	if r.Severity < 0 || r.Severity > 5 {
		return errors.New("severity must be 1..5")
	}
	finite := func(p *float64) bool { return p == nil || !math.IsNaN(*p) && !math.IsInf(*p, 0) }
	if !finite(r.Above) || !finite(r.Below) || !finite(&r.MinTPI) || !finite(&r.ForS) || !finite(&r.Count) {
		return errors.New("numbers must be finite")
	}
	switch r.Type {
	case RuleCongestion:
		if r.Level != "" {
			t, ok := levelTPI[r.Level]
			if !ok {
				return fmt.Errorf("level %q must be smooth, basically_smooth, light, moderate or severe", r.Level)
			}
			r.MinTPI = t
		}
		if r.MinTPI == 0 && r.Level == "" {
			r.MinTPI, r.Level = 6, engine.LevelModerate
		}
		if r.MinTPI < 0 || r.MinTPI > 10 {
			return errors.New("min_tpi must be 0..10")
		}
		if r.ForS < 0 || r.ForS > 24*3600 {
			return errors.New("for_s must be 0..86400")
		}
	case RuleCrowd:
		if r.Count <= 0 {
			return errors.New("crowd needs count > 0")
		}
	}
	return nil
}

// shape is a zone's geometry prepared for containment tests.
type shape struct {
	bbox  geo.BBox
	ring  [][2]float64   // polygon zones
	lines [][]geo.LatLng // link zones: the links' geometries
	cells []uint64       // H3 cells (base resolution) whose congestion counts for the zone
	links []string       // road links through the zone (closures for hazard alerts)
}

// contains reports whether (lat, lng) is inside the shape.
func (s *shape) contains(lat, lng float64) bool {
	if !s.bbox.Contains(lat, lng) {
		return false
	}
	if s.ring != nil {
		return inRing(s.ring, lng, lat)
	}
	for _, l := range s.lines {
		if distToLineM(l, lat, lng) <= LinkBufferM {
			return true
		}
	}
	return false
}

// buildShape prepares z's geometry at H3 resolution res; net resolves link ids and finds the links through
// a polygon (nil: no network).
func buildShape(z *Zone, res int, net *geo.Network) (*shape, error) {
	s := &shape{}
	if len(z.Polygon) > 0 {
		s.ring = z.Polygon
		s.bbox = ringBBox(z.Polygon)
		loop := make(h3.GeoLoop, len(z.Polygon))
		for i, p := range z.Polygon {
			loop[i] = h3.LatLng{Lat: p[1], Lng: p[0]}
		}
		// Bound the cover before computing it: the bbox's area in cells.
		if est := bboxAreaKm2(s.bbox) / cellAreaKm2(res); est > 4*MaxCoverCells {
			return nil, fmt.Errorf("polygon covers about %.0f H3 cells at resolution %d (at most %d)", est, res, MaxCoverCells)
		}
		cells, err := polygonCells(loop, res)
		if err != nil {
			return nil, err
		}
		for _, c := range cells {
			s.cells = append(s.cells, uint64(c))
		}
		if len(s.cells) > MaxCoverCells {
			return nil, fmt.Errorf("polygon covers %d H3 cells at resolution %d (at most %d)", len(s.cells), res, MaxCoverCells)
		}
		if len(s.cells) == 0 { // smaller than a cell: the cells of its corners
			for _, p := range z.Polygon {
				if c, err := geo.CellOf(p[1], p[0], res); err == nil && !slices.Contains(s.cells, c) {
					s.cells = append(s.cells, c)
				}
			}
		}
		if net != nil {
			for _, l := range net.Links() {
				if lineInRing(l.Geometry, s.ring, s.bbox) {
					s.links = append(s.links, l.ID)
				}
			}
		}
		return s, nil
	}
	if net == nil {
		return nil, errors.New("a zone of links needs a loaded road network (run with --network)")
	}
	s.bbox = geo.BBox{MinLng: 180, MinLat: 90, MaxLng: -180, MaxLat: -90}
	seen := map[uint64]bool{}
	for _, id := range z.Links {
		l, ok := net.Link(id)
		if !ok {
			return nil, fmt.Errorf("no link %q in the road network", id)
		}
		s.lines = append(s.lines, l.Geometry)
		s.links = append(s.links, l.ID)
		for _, p := range l.Geometry {
			s.bbox.MinLng, s.bbox.MaxLng = math.Min(s.bbox.MinLng, p.Lng), math.Max(s.bbox.MaxLng, p.Lng)
			s.bbox.MinLat, s.bbox.MaxLat = math.Min(s.bbox.MinLat, p.Lat), math.Max(s.bbox.MaxLat, p.Lat)
		}
		// The cells the link passes through, sampled every 50 m.
		for off := 0.0; ; off += 50 {
			p, _ := l.PointAt(math.Min(off, l.GeomLengthM()))
			if c, err := geo.CellOf(p.Lat, p.Lng, res); err == nil && !seen[c] {
				seen[c] = true
				s.cells = append(s.cells, c)
			}
			if off >= l.GeomLengthM() {
				break
			}
		}
	}
	// Widen the bbox by the buffer.
	dLat := LinkBufferM / 111_320
	dLng := dLat / math.Max(0.01, math.Cos((s.bbox.MinLat+s.bbox.MaxLat)/2*math.Pi/180))
	s.bbox.MinLat, s.bbox.MaxLat = s.bbox.MinLat-dLat, s.bbox.MaxLat+dLat
	s.bbox.MinLng, s.bbox.MaxLng = s.bbox.MinLng-dLng, s.bbox.MaxLng+dLng
	return s, nil
}

// polygonCells is h3.PolygonToCells, which panics on some degenerate polygons (h3-go v4.1.0 indexes an empty
// result): that is a refused polygon, not a crash.
func polygonCells(loop h3.GeoLoop, res int) (cells []h3.Cell, err error) {
	defer func() {
		if v := recover(); v != nil {
			cells, err = nil, fmt.Errorf("cannot cover the polygon with H3 cells: %v", v)
		}
	}()
	return h3.PolygonToCells(h3.GeoPolygon{GeoLoop: loop}, res), nil
}

// ringArea is the ring's area in square degrees (shoelace).
func ringArea(ring [][2]float64) float64 {
	var a float64
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		a += ring[j][0]*ring[i][1] - ring[i][0]*ring[j][1]
	}
	return math.Abs(a) / 2
}

func ringBBox(ring [][2]float64) geo.BBox {
	b := geo.BBox{MinLng: 180, MinLat: 90, MaxLng: -180, MaxLat: -90}
	for _, p := range ring {
		b.MinLng, b.MaxLng = math.Min(b.MinLng, p[0]), math.Max(b.MaxLng, p[0])
		b.MinLat, b.MaxLat = math.Min(b.MinLat, p[1]), math.Max(b.MaxLat, p[1])
	}
	return b
}

// inRing is the even-odd ray test (x = lng, y = lat).
func inRing(ring [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		xi, yi, xj, yj := ring[i][0], ring[i][1], ring[j][0], ring[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// lineInRing reports whether a polyline has a vertex inside the ring or crosses one of its edges.
func lineInRing(pts []geo.LatLng, ring [][2]float64, bbox geo.BBox) bool {
	lb := geo.BBox{MinLng: 180, MinLat: 90, MaxLng: -180, MaxLat: -90}
	for _, p := range pts {
		lb.MinLng, lb.MaxLng = math.Min(lb.MinLng, p.Lng), math.Max(lb.MaxLng, p.Lng)
		lb.MinLat, lb.MaxLat = math.Min(lb.MinLat, p.Lat), math.Max(lb.MaxLat, p.Lat)
	}
	if lb.MaxLng < bbox.MinLng || lb.MinLng > bbox.MaxLng || lb.MaxLat < bbox.MinLat || lb.MinLat > bbox.MaxLat {
		return false
	}
	for _, p := range pts {
		if inRing(ring, p.Lng, p.Lat) {
			return true
		}
	}
	for i := 1; i < len(pts); i++ {
		for j, k := 0, len(ring)-1; j < len(ring); k, j = j, j+1 {
			if segmentsCross(pts[i-1].Lng, pts[i-1].Lat, pts[i].Lng, pts[i].Lat, ring[k][0], ring[k][1], ring[j][0], ring[j][1]) {
				return true
			}
		}
	}
	return false
}

func segmentsCross(ax, ay, bx, by, cx, cy, dx, dy float64) bool {
	d1 := (dx-cx)*(ay-cy) - (dy-cy)*(ax-cx)
	d2 := (dx-cx)*(by-cy) - (dy-cy)*(bx-cx)
	d3 := (bx-ax)*(cy-ay) - (by-ay)*(cx-ax)
	d4 := (bx-ax)*(dy-ay) - (by-ay)*(dx-ax)
	return (d1 > 0) != (d2 > 0) && (d3 > 0) != (d4 > 0)
}

// distToLineM is the distance in metres from (lat, lng) to a polyline (equirectangular, fine at city scale).
func distToLineM(pts []geo.LatLng, lat, lng float64) float64 {
	kx := 111_320 * math.Cos(lat*math.Pi/180)
	const ky = 110_540.0
	best := math.Inf(1)
	for i := 1; i < len(pts); i++ {
		ax, ay := (pts[i-1].Lng-lng)*kx, (pts[i-1].Lat-lat)*ky
		bx, by := (pts[i].Lng-lng)*kx, (pts[i].Lat-lat)*ky
		dx, dy := bx-ax, by-ay
		t := 0.0
		if l2 := dx*dx + dy*dy; l2 > 0 {
			t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
		}
		x, y := ax+t*dx, ay+t*dy
		best = math.Min(best, math.Hypot(x, y))
	}
	if len(pts) == 1 {
		best = math.Hypot((pts[0].Lng-lng)*kx, (pts[0].Lat-lat)*ky)
	}
	return best
}

func bboxAreaKm2(b geo.BBox) float64 {
	return (b.MaxLat - b.MinLat) * 110.54 * (b.MaxLng - b.MinLng) * 111.32 * math.Cos((b.MinLat+b.MaxLat)/2*math.Pi/180)
}

// cellAreaKm2 is the mean area of an H3 cell at res (res 0: 4,357,449 km², each finer res one seventh).
func cellAreaKm2(res int) float64 { return 4_357_449 / math.Pow(7, float64(res)) }
