package geo

import "math"

// earthRadiusM is the mean Earth radius used for distances (IUGG, metres).
const earthRadiusM = 6371008.8

const deg = math.Pi / 180

// LatLng is a WGS84 position in degrees.
type LatLng struct{ Lat, Lng float64 }

// valid reports whether p is a finite WGS84 position.
func (p LatLng) valid() bool {
	return p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

// DistanceM returns the great-circle (haversine) distance between a and b in metres.
func DistanceM(a, b LatLng) float64 {
	dLat := (b.Lat - a.Lat) * deg
	dLng := (b.Lng - a.Lng) * deg
	s := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*deg)*math.Cos(b.Lat*deg)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(s)))
}

// BearingDeg returns the initial bearing from a to b in degrees clockwise from north, in [0, 360).
func BearingDeg(a, b LatLng) float64 {
	y := math.Sin((b.Lng-a.Lng)*deg) * math.Cos(b.Lat*deg)
	x := math.Cos(a.Lat*deg)*math.Sin(b.Lat*deg) - math.Sin(a.Lat*deg)*math.Cos(b.Lat*deg)*math.Cos((b.Lng-a.Lng)*deg)
	return normDeg(math.Atan2(y, x) / deg)
}

// normDeg maps an angle in degrees to [0, 360).
func normDeg(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	return a
}

// angleDiffDeg returns the absolute difference between two bearings, in [0, 180].
func angleDiffDeg(a, b float64) float64 {
	d := math.Abs(normDeg(a) - normDeg(b))
	if d > 180 {
		d = 360 - d
	}
	return d
}

// plane is a local equirectangular projection around an origin: good to well under a metre over a city.
type plane struct {
	lat0, lng0 float64
	kx, ky     float64 // metres per degree of longitude and latitude
}

func newPlane(origin LatLng) plane {
	ky := earthRadiusM * deg
	return plane{lat0: origin.Lat, lng0: origin.Lng, kx: ky * math.Cos(origin.Lat*deg), ky: ky}
}

// xy returns p's coordinates in metres east and north of the origin.
func (pl plane) xy(p LatLng) (x, y float64) {
	return (p.Lng - pl.lng0) * pl.kx, (p.Lat - pl.lat0) * pl.ky
}

// projectOnSegment returns the fraction t in [0, 1] of the closest point to (px, py) on segment a-b, and the
// distance to it.
func projectOnSegment(px, py, ax, ay, bx, by float64) (t, dist float64) {
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	if l2 > 0 {
		t = ((px-ax)*dx + (py-ay)*dy) / l2
		t = math.Max(0, math.Min(1, t))
	}
	cx, cy := ax+t*dx, ay+t*dy
	return t, math.Hypot(px-cx, py-cy)
}

// interpolate returns the point at fraction t between a and b (linear in degrees: fine for segments of a road).
func interpolate(a, b LatLng, t float64) LatLng {
	return LatLng{Lat: a.Lat + (b.Lat-a.Lat)*t, Lng: a.Lng + (b.Lng-a.Lng)*t}
}

// polylineLengths returns the cumulative great-circle length at each vertex of pts (first element 0).
func polylineLengths(pts []LatLng) []float64 {
	cum := make([]float64, len(pts))
	for i := 1; i < len(pts); i++ {
		cum[i] = cum[i-1] + DistanceM(pts[i-1], pts[i])
	}
	return cum
}

// metresToDegLat converts a north-south distance to degrees of latitude.
func metresToDegLat(m float64) float64 { return m / (earthRadiusM * deg) }

// metresToDegLng converts an east-west distance at latitude lat to degrees of longitude.
func metresToDegLng(m, lat float64) float64 {
	c := math.Cos(lat * deg)
	if c < 1e-6 {
		c = 1e-6
	}
	return m / (earthRadiusM * deg * c)
}
