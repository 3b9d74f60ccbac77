// Package basemap makes the command center's base map offline: the features it draws under the traffic
// (water, parks, waterways, roads of an OSM extract, place and water names, in several languages) and the tile
// archives an operator gives (run --basemap: PMTiles and MBTiles files served by the binary, or a URL the
// server fetches for the browser, so that the page never asks another host).
package basemap

import (
	"math"
	"sort"
	"strconv"

	"citybrain/geo"
)

// Feature kinds, as the web app's style knows them.
const (
	KindWater    = "water"    // polygon
	KindPark     = "park"     // polygon: parks, woods, grass, gardens
	KindWaterway = "waterway" // line: rivers, canals
	KindRoad     = "road"     // line: roads of an OSM extract (the loaded network draws its own)
	KindLabel    = "label"    // point: a name to show; Of says what it names (water, park, place)
)

// Feature is one thing of the base map. Rings and Line are lng/lat as geo.LatLng.
type Feature struct {
	Kind  string
	Of    string            // for labels: water, park, place
	Class string            // roads: the OSM class; places: suburb, neighbourhood, …
	Name  string            // the local name
	Names map[string]string // other languages by code (zh, en)
	Rank  int               // labels: lower is more important
	Rings [][]geo.LatLng    // polygons: outer ring first, then holes (each closed)
	Line  []geo.LatLng      // lines
	Point geo.LatLng        // labels
}

// Set is the base map's features with their bounds.
type Set struct {
	Features []Feature
	Source   string // "demo", the OSM file's name, …
}

// Counts returns the number of features by kind.
func (s *Set) Counts() map[string]int {
	m := map[string]int{}
	for _, f := range s.Features {
		m[f.Kind]++
	}
	return m
}

// LabelPolygons adds a label at the pole of each named polygon (water and parks), so names show once.
func (s *Set) LabelPolygons() {
	n := len(s.Features)
	for i := 0; i < n; i++ {
		f := &s.Features[i]
		if (f.Kind != KindWater && f.Kind != KindPark) || (f.Name == "" && len(f.Names) == 0) || len(f.Rings) == 0 {
			continue
		}
		s.Features = append(s.Features, Feature{Kind: KindLabel, Of: f.Kind, Name: f.Name, Names: f.Names,
			Rank: 10 - min(9, int(math.Log10(1+ringArea(f.Rings[0])))), Point: labelPoint(f.Rings[0])})
	}
}

// GeoJSON encodes the features whose bounds touch bbox as a FeatureCollection; properties: kind, of, class,
// name, name_zh, name_en, rank.
func (s *Set) GeoJSON(bbox geo.BBox) []byte {
	buf := make([]byte, 0, 1<<14)
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	first := true
	for i := range s.Features {
		f := &s.Features[i]
		if !f.touches(bbox) {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, `{"type":"Feature","geometry":`...)
		switch {
		case len(f.Rings) > 0:
			buf = append(buf, `{"type":"Polygon","coordinates":[`...)
			for j, r := range f.Rings {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendLine(buf, r)
			}
			buf = append(buf, "]}"...)
		case len(f.Line) > 0:
			buf = append(buf, `{"type":"LineString","coordinates":`...)
			buf = appendLine(buf, f.Line)
			buf = append(buf, '}')
		default:
			buf = append(buf, `{"type":"Point","coordinates":`...)
			buf = appendPos(buf, f.Point)
			buf = append(buf, '}')
		}
		buf = append(buf, `,"properties":{"kind":`...)
		buf = strconv.AppendQuote(buf, f.Kind)
		if f.Of != "" {
			buf = append(buf, `,"of":`...)
			buf = strconv.AppendQuote(buf, f.Of)
		}
		if f.Class != "" {
			buf = append(buf, `,"class":`...)
			buf = strconv.AppendQuote(buf, f.Class)
		}
		if f.Name != "" {
			buf = append(buf, `,"name":`...)
			buf = strconv.AppendQuote(buf, f.Name)
		}
		keys := make([]string, 0, len(f.Names))
		for k := range f.Names {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if f.Names[k] == "" {
				continue
			}
			buf = append(buf, `,"name_`...)
			buf = append(buf, k...)
			buf = append(buf, `":`...)
			buf = strconv.AppendQuote(buf, f.Names[k])
		}
		buf = append(buf, `,"rank":`...)
		buf = strconv.AppendInt(buf, int64(f.Rank), 10)
		buf = append(buf, "}}"...)
	}
	return append(buf, "]}\n"...)
}

func appendPos(buf []byte, p geo.LatLng) []byte {
	buf = append(buf, '[')
	buf = strconv.AppendFloat(buf, p.Lng, 'f', 6, 64)
	buf = append(buf, ',')
	buf = strconv.AppendFloat(buf, p.Lat, 'f', 6, 64)
	return append(buf, ']')
}

func appendLine(buf []byte, pts []geo.LatLng) []byte {
	buf = append(buf, '[')
	for i, p := range pts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendPos(buf, p)
	}
	return append(buf, ']')
}

func (f *Feature) touches(b geo.BBox) bool {
	pts := f.Line
	if len(f.Rings) > 0 {
		pts = f.Rings[0]
	}
	if len(pts) == 0 {
		return b.Contains(f.Point.Lat, f.Point.Lng)
	}
	minLat, maxLat, minLng, maxLng := pts[0].Lat, pts[0].Lat, pts[0].Lng, pts[0].Lng
	for _, p := range pts[1:] {
		minLat, maxLat = math.Min(minLat, p.Lat), math.Max(maxLat, p.Lat)
		minLng, maxLng = math.Min(minLng, p.Lng), math.Max(maxLng, p.Lng)
	}
	return minLat <= b.MaxLat && maxLat >= b.MinLat && minLng <= b.MaxLng && maxLng >= b.MinLng
}

// ringArea is the area of a ring in square metres (planar, around its first point).
func ringArea(r []geo.LatLng) float64 {
	if len(r) < 3 {
		return 0
	}
	kx := 111320 * math.Cos(r[0].Lat*math.Pi/180)
	a := 0.0
	for i := 1; i < len(r); i++ {
		x0, y0 := (r[i-1].Lng-r[0].Lng)*kx, (r[i-1].Lat-r[0].Lat)*110540
		x1, y1 := (r[i].Lng-r[0].Lng)*kx, (r[i].Lat-r[0].Lat)*110540
		a += x0*y1 - x1*y0
	}
	return math.Abs(a) / 2
}

// labelPoint is a point inside the ring: the centroid when it is inside, else the middle of the widest
// horizontal span through the ring's middle latitude.
func labelPoint(r []geo.LatLng) geo.LatLng {
	var sx, sy float64
	n := len(r)
	if n > 1 && r[0] == r[n-1] {
		n--
	}
	for _, p := range r[:n] {
		sx += p.Lng
		sy += p.Lat
	}
	c := geo.LatLng{Lat: sy / float64(n), Lng: sx / float64(n)}
	if inRing(r, c) {
		return c
	}
	var xs []float64
	for i := 1; i < len(r); i++ {
		a, b := r[i-1], r[i]
		if (a.Lat > c.Lat) != (b.Lat > c.Lat) {
			xs = append(xs, a.Lng+(c.Lat-a.Lat)/(b.Lat-a.Lat)*(b.Lng-a.Lng))
		}
	}
	sort.Float64s(xs)
	best, at := -1.0, c
	for i := 0; i+1 < len(xs); i += 2 {
		if w := xs[i+1] - xs[i]; w > best {
			best, at = w, geo.LatLng{Lat: c.Lat, Lng: (xs[i] + xs[i+1]) / 2}
		}
	}
	return at
}

func inRing(r []geo.LatLng, p geo.LatLng) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, b := r[i], r[j]
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) && p.Lng < (b.Lng-a.Lng)*(p.Lat-a.Lat)/(b.Lat-a.Lat)+a.Lng {
			in = !in
		}
	}
	return in
}
