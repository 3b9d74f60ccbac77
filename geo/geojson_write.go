package geo

import (
	"math"
	"strconv"
)

// minZoom is the lowest web-map zoom at which a class is drawn.
func minZoom(c RoadClass) int {
	switch c {
	case ClassMotorway, ClassTrunk, ClassPrimary:
		return 0
	case ClassSecondary:
		return 11
	case ClassTertiary:
		return 12
	case ClassResidential, ClassUnclassified:
		return 14
	default:
		return 15
	}
}

// metresPerPixel is the ground size of a 256-pixel-tile web-map pixel at zoom and latitude.
func metresPerPixel(zoom int, lat float64) float64 {
	return 156543.03392 * math.Cos(lat*deg) / math.Exp2(float64(zoom))
}

// GeoJSON renders the links whose geometry touches bbox as a FeatureCollection of LineStrings for the map.
// Minor classes are left out at low zoom (secondary from 11, tertiary from 12, residential from 14, service
// from 15) and lines are simplified with Douglas-Peucker to one pixel at that zoom, in metres. Properties: id,
// name (when known), name_zh and name_en (when the source has them), lanes, speed_limit_kmh (when known), class, from, to.
func (n *Network) GeoJSON(bbox BBox, zoom int) []byte {
	zoom = max(0, min(zoom, 24))
	buf := make([]byte, 0, 4096)
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	first := true
	for _, l := range n.links {
		if minZoom(l.Class) > zoom || !bboxTouches(bbox, l.Geometry) {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		pts := simplifyDP(l.Geometry, metresPerPixel(zoom, l.Geometry[0].Lat))
		buf = append(buf, `{"type":"Feature","geometry":{"type":"LineString","coordinates":[`...)
		for i, p := range pts {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendFloat(buf, p.Lng, 'f', 6, 64)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, p.Lat, 'f', 6, 64)
			buf = append(buf, ']')
		}
		buf = append(buf, `]},"properties":{"id":`...)
		buf = strconv.AppendQuote(buf, l.ID)
		if l.Name != "" {
			buf = append(buf, `,"name":`...)
			buf = strconv.AppendQuote(buf, l.Name)
		}
		for _, k := range [...]string{"zh", "en"} {
			if v := l.AltNames[k]; v != "" {
				buf = append(buf, `,"name_`+k+`":`...)
				buf = strconv.AppendQuote(buf, v)
			}
		}
		buf = append(buf, `,"lanes":`...)
		buf = strconv.AppendInt(buf, int64(l.Lanes), 10)
		if l.SpeedLimitKmh > 0 {
			buf = append(buf, `,"speed_limit_kmh":`...)
			buf = strconv.AppendFloat(buf, math.Round(l.SpeedLimitKmh*10)/10, 'f', -1, 64)
		}
		buf = append(buf, `,"class":`...)
		buf = strconv.AppendQuote(buf, l.Class.String())
		buf = append(buf, `,"from":`...)
		buf = strconv.AppendQuote(buf, l.From)
		buf = append(buf, `,"to":`...)
		buf = strconv.AppendQuote(buf, l.To)
		buf = append(buf, "}}"...)
	}
	return append(buf, "]}"...)
}

// bboxTouches reports whether the bounding box of pts intersects b.
func bboxTouches(b BBox, pts []LatLng) bool {
	minLat, maxLat, minLng, maxLng := pts[0].Lat, pts[0].Lat, pts[0].Lng, pts[0].Lng
	for _, p := range pts[1:] {
		minLat, maxLat = math.Min(minLat, p.Lat), math.Max(maxLat, p.Lat)
		minLng, maxLng = math.Min(minLng, p.Lng), math.Max(maxLng, p.Lng)
	}
	return minLat <= b.MaxLat && maxLat >= b.MinLat && minLng <= b.MaxLng && maxLng >= b.MinLng
}

// simplifyDP returns pts simplified with Douglas-Peucker: every dropped point lies within tolM metres of the
// result. The end points are always kept; pts is returned as is when nothing can be dropped.
func simplifyDP(pts []LatLng, tolM float64) []LatLng {
	if len(pts) <= 2 || !(tolM > 0) {
		return pts
	}
	pl := newPlane(pts[0])
	xs, ys := make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		xs[i], ys[i] = pl.xy(p)
	}
	keep := make([]bool, len(pts))
	keep[0], keep[len(pts)-1] = true, true
	type span struct{ a, b int }
	stack := []span{{0, len(pts) - 1}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		worst, at := -1.0, -1
		for i := s.a + 1; i < s.b; i++ {
			if _, d := projectOnSegment(xs[i], ys[i], xs[s.a], ys[s.a], xs[s.b], ys[s.b]); d > worst {
				worst, at = d, i
			}
		}
		if worst > tolM {
			keep[at] = true
			stack = append(stack, span{s.a, at}, span{at, s.b})
		}
	}
	out := make([]LatLng, 0, len(pts))
	for i, k := range keep {
		if k {
			out = append(out, pts[i])
		}
	}
	return out
}
