package geo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// geoFeature is the part of a GeoJSON feature the loader reads.
type geoFeature struct {
	Type     string         `json:"type"`
	ID       any            `json:"id"`
	Geometry *geoGeometry   `json:"geometry"`
	Props    map[string]any `json:"properties"`
}

type geoGeometry struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// geoBuilder collects nodes (one per distinct endpoint) and links while features stream in.
type geoBuilder struct {
	nodes   []Node
	byKey   map[[2]int64]string
	byID    map[string]bool
	links   []Link
	linkIDs map[string]bool
	signals []LatLng // traffic-signal points, snapped to junctions once every road is read
}

// SignalSnapM is how far a GeoJSON traffic-signal point may lie from the junction node it marks. OSM maps a
// signal either on the junction node itself or on the stop line of each approach (highway=traffic_signals with
// traffic_signals:direction), which sits a few metres to about 20 m before the junction; SUMO's netconvert reads
// OSM signals the same way with --tls.guess-signals.dist 25 m. 25 m keeps stop-line signals and misses the next
// junction of a normal block (100 m and more).
const SignalSnapM = 25

// maxGeoJSONSignals bounds the traffic-signal points a GeoJSON road file may hold (the only points the loader
// keeps, 16 bytes each). The largest real city networks have tens of thousands of signals even when OSM maps one
// per approach. A variable so that a test can lower it.
var maxGeoJSONSignals = 200_000

// LoadGeoJSONFile loads a GeoJSON road file; see LoadGeoJSON.
func LoadGeoJSONFile(path string) (*Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open GeoJSON roads (%s): %w", path, err)
	}
	defer f.Close()
	n, err := LoadGeoJSON(f)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", path, err)
	}
	return n, nil
}

// LoadGeoJSON reads a FeatureCollection of road lines (SUMO net2geojson, OSM exports) one feature at a time.
// Each LineString becomes a link (each part of a MultiLineString a link "<id>#<part>"); other geometry types are
// skipped. Links are directed as drawn unless `oneway` says "no"/false/0 (a reverse link "<id>-rev" is added)
// or "-1" (the line is reversed). Properties read: id (else the feature id, else "f<index>"), name, lanes,
// speed_limit_kmh (this package's writer), maxspeed (km/h, OSM: "50", "30 mph"), speed (m/s, SUMO), highway/type/class/fclass (road class) and from/to
// (node ids). Without from/to, endpoints closer than about 10 cm share a node. Properties nested in a "tags"
// object (osmtogeojson without flat properties) are read as if flat; the nested tag wins.
//
// Point features tagged as traffic signals (highway or fclass "traffic_signals": OSM, overpass, ogr2ogr,
// Geofabrik) mark the nearest junction node (three or more neighbouring nodes) within SignalSnapM metres as
// Signalised; other points, and signals with no junction that close, are skipped. A file with more than
// 200,000 signal points is rejected.
func LoadGeoJSON(r io.Reader) (*Network, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	b := &geoBuilder{byKey: map[[2]int64]string{}, byID: map[string]bool{}, linkIDs: map[string]bool{}}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("cannot parse GeoJSON roads (top level): %w", err)
	}
	sawFeatures := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("cannot parse GeoJSON roads (top-level key): %w", err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var typ string
			if err := dec.Decode(&typ); err != nil || typ != "FeatureCollection" {
				return nil, fmt.Errorf("cannot parse GeoJSON roads (top-level type %q): want FeatureCollection", typ)
			}
		case "features":
			sawFeatures = true
			if err := expectDelim(dec, '['); err != nil {
				return nil, fmt.Errorf("cannot parse GeoJSON roads (features): %w", err)
			}
			for i := 0; dec.More(); i++ {
				var f geoFeature
				if err := dec.Decode(&f); err != nil {
					return nil, fmt.Errorf("cannot parse GeoJSON roads (feature %d): %w", i, err)
				}
				if err := b.add(i, &f); err != nil {
					return nil, fmt.Errorf("cannot parse GeoJSON roads (feature %d, id %q): %w", i, featureID(i, &f), err)
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, fmt.Errorf("cannot parse GeoJSON roads (end of features): %w", err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("cannot parse GeoJSON roads (key %q): %w", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("cannot parse GeoJSON roads (end of collection): %w", err)
	}
	if !sawFeatures {
		return nil, errors.New("cannot parse GeoJSON roads: no \"features\" array")
	}
	n, err := NewNetwork("geojson", b.nodes, b.links)
	if err != nil {
		return nil, fmt.Errorf("cannot build GeoJSON network: %w", err)
	}
	markSignals(n, b.signals)
	return n, nil
}

// isSignal reports whether the (flattened) properties of a point say it is a traffic signal: OSM's
// highway=traffic_signals, or fclass=traffic_signals in Geofabrik's traffic layer. Pedestrian crossings with
// signals (highway=crossing, crossing=traffic_signals) are not junction signals and are not read.
func isSignal(p map[string]any) bool {
	return propString(p["highway"]) == "traffic_signals" || propString(p["fclass"]) == "traffic_signals"
}

// flatProps returns p with the members of a nested "tags" object lifted to the top (the tag wins), or p itself
// when there is none.
func flatProps(p map[string]any) map[string]any {
	tags, ok := p["tags"].(map[string]any)
	if !ok || len(tags) == 0 {
		return p
	}
	out := make(map[string]any, len(p)+len(tags))
	for k, v := range p {
		out[k] = v
	}
	for k, v := range tags {
		out[k] = v
	}
	return out
}

// markSignals sets Signalised on the junction node nearest to each signal point, within SignalSnapM metres. A
// junction is a node with three or more neighbouring nodes: a signal next to a bend or a split of one road marks
// nothing. The junctions go into a PointIndex and each point takes the first its nearest-first search gives, so
// the work per point stays logarithmic however many junctions a hostile file stacks in one place, and the
// signal limit bounds the whole. It runs before the network is handed out.
func markSignals(n *Network, signals []LatLng) {
	if len(signals) == 0 {
		return
	}
	junctions := NewPointIndex()
	seen := map[int32]bool{}
	for i, nd := range n.nodes {
		clear(seen)
		for _, li := range nd.in {
			seen[n.nodeByID[n.links[li].From]] = true
		}
		for _, li := range nd.out {
			seen[n.nodeByID[n.links[li].To]] = true
		}
		delete(seen, int32(i))
		if len(seen) >= 3 {
			junctions.Set(nd.ID, nd.LatLng)
		}
	}
	for _, p := range signals {
		junctions.Nearby(p, func(id string, _ LatLng, distM float64) bool {
			if distM <= SignalSnapM {
				n.nodes[n.nodeByID[id]].Signalised = true
			}
			return false // the nearest only
		})
	}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

func featureID(i int, f *geoFeature) string {
	if s := propString(f.Props["id"]); s != "" {
		return s
	}
	if s := propString(f.ID); s != "" {
		return s
	}
	return "f" + strconv.Itoa(i)
}

// propString renders a string or number property; other types give "".
func propString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// propNumber reads the leading number of a numeric or string property ("2;3" -> 2, "30 mph" -> 30 and the
// unit). ok is false when there is none.
func propNumber(v any) (num float64, unit string, ok bool) {
	s := strings.TrimSpace(propString(v))
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	x, err := strconv.ParseFloat(s[:end], 64)
	if err != nil || !finite(x) || x < 0 {
		return 0, "", false
	}
	return x, strings.ToLower(strings.TrimSpace(s[end:])), true
}

func (b *geoBuilder) add(i int, f *geoFeature) error {
	if f.Geometry == nil {
		return nil
	}
	f.Props = flatProps(f.Props)
	var parts [][][]float64
	switch f.Geometry.Type {
	case "Point":
		if !isSignal(f.Props) {
			return nil // stops, crossings, junction centres: not roads
		}
		var c []float64
		if err := json.Unmarshal(f.Geometry.Coordinates, &c); err != nil {
			return fmt.Errorf("bad Point coordinates: %w", err)
		}
		if len(c) < 2 || !finite(c[0]) || !finite(c[1]) || !(LatLng{c[1], c[0]}).valid() {
			return errors.New("traffic signal point is not a [lng, lat] pair")
		}
		if len(b.signals) >= maxGeoJSONSignals {
			return fmt.Errorf("more than %d traffic signal points (the loader's limit)", maxGeoJSONSignals)
		}
		b.signals = append(b.signals, LatLng{Lat: c[1], Lng: c[0]})
		return nil
	case "LineString":
		var line [][]float64
		if err := json.Unmarshal(f.Geometry.Coordinates, &line); err != nil {
			return fmt.Errorf("bad LineString coordinates: %w", err)
		}
		parts = [][][]float64{line}
	case "MultiLineString":
		if err := json.Unmarshal(f.Geometry.Coordinates, &parts); err != nil {
			return fmt.Errorf("bad MultiLineString coordinates: %w", err)
		}
	default:
		return nil // junction polygons, multipoints: not roads
	}
	id := featureID(i, f)
	p := f.Props
	tmpl := Link{Name: propString(p["name"])}
	if v, _, ok := propNumber(p["lanes"]); ok && v >= 1 && v <= 64 {
		tmpl.Lanes = int(v)
	}
	if v, _, ok := propNumber(p["speed_limit_kmh"]); ok && v < 400 { // our own writer's output
		tmpl.SpeedLimitKmh = v
	} else if v, unit, ok := propNumber(p["maxspeed"]); ok && v < 400 {
		if unit == "mph" {
			v *= 1.609344
		}
		tmpl.SpeedLimitKmh = v
	} else if v, _, ok := propNumber(p["speed"]); ok && v < 120 {
		tmpl.SpeedLimitKmh = v * 3.6
	}
	tmpl.Class = ClassUnclassified
	for _, k := range []string{"highway", "type", "class", "fclass"} {
		if s := propString(p[k]); s != "" {
			tmpl.Class = ParseRoadClass(s)
			break
		}
	}
	if tmpl.Class == ClassUnclassified && tmpl.SpeedLimitKmh > 0 {
		tmpl.Class = classForSpeed(tmpl.SpeedLimitKmh, tmpl.Lanes)
	}
	oneway := strings.ToLower(propString(p["oneway"]))
	for k, coords := range parts {
		pts := make([]LatLng, len(coords))
		for j, c := range coords {
			if len(c) < 2 || !finite(c[0]) || !finite(c[1]) || !(LatLng{c[1], c[0]}).valid() {
				return fmt.Errorf("position %d of part %d is not a [lng, lat] pair", j, k)
			}
			pts[j] = LatLng{Lat: c[1], Lng: c[0]}
		}
		if len(pts) < 2 {
			return fmt.Errorf("part %d has %d position(s), need 2", k, len(pts))
		}
		lid := id
		if len(parts) > 1 {
			lid = fmt.Sprintf("%s#%d", id, k)
		}
		if oneway == "-1" {
			pts = reversed(pts)
		}
		from := b.node(propString(p["from"]), pts[0], len(parts) == 1)
		to := b.node(propString(p["to"]), pts[len(pts)-1], len(parts) == 1)
		l := tmpl
		l.ID, l.From, l.To, l.Geometry = lid, from, to, pts
		if err := b.link(l); err != nil {
			return err
		}
		if oneway == "no" || oneway == "false" || oneway == "0" {
			l.ID, l.From, l.To, l.Geometry = lid+"-rev", to, from, reversed(pts)
			if err := b.link(l); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *geoBuilder) link(l Link) error {
	if b.linkIDs[l.ID] {
		return fmt.Errorf("duplicate link id %q", l.ID)
	}
	b.linkIDs[l.ID] = true
	b.links = append(b.links, l)
	return nil
}

// node returns the node for an endpoint: the named one when the source names it (and useName), else the one
// at the same position (to 1e-6 degrees), creating it if needed.
func (b *geoBuilder) node(name string, p LatLng, useName bool) string {
	key := [2]int64{int64(math.Round(p.Lat * 1e6)), int64(math.Round(p.Lng * 1e6))}
	if useName && name != "" {
		if !b.byID[name] {
			b.byID[name] = true
			b.nodes = append(b.nodes, Node{ID: name, LatLng: p})
			if _, ok := b.byKey[key]; !ok {
				b.byKey[key] = name
			}
		}
		return name
	}
	if id, ok := b.byKey[key]; ok {
		return id
	}
	id := fmt.Sprintf("n%d", len(b.nodes))
	for b.byID[id] {
		id += "'"
	}
	b.byID[id] = true
	b.byKey[key] = id
	b.nodes = append(b.nodes, Node{ID: id, LatLng: p})
	return id
}

func reversed(pts []LatLng) []LatLng {
	out := make([]LatLng, len(pts))
	for i, p := range pts {
		out[len(pts)-1-i] = p
	}
	return out
}
