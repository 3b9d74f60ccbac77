package geo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// UTM on the WGS84 ellipsoid with Krüger's series to third order in n (Karney 2011, eqs. 35-36): under a
// millimetre inside a zone, far below the metre-level accuracy of any road network.
const (
	wgs84A  = 6378137.0
	wgs84F  = 1 / 298.257223563
	utmK0   = 0.9996
	utmE0   = 500000.0
	utmNSth = 10000000.0
)

var (
	utmN  = wgs84F / (2 - wgs84F)
	utmAA = wgs84A / (1 + utmN) * (1 + utmN*utmN/4 + utmN*utmN*utmN*utmN/64)
	// forward (alpha) and inverse (beta) coefficients, and the conformal-to-geodetic latitude series (delta)
	utmAlpha = [3]float64{utmN/2 - 2*utmN*utmN/3 + 5*utmN*utmN*utmN/16, 13*utmN*utmN/48 - 3*utmN*utmN*utmN/5,
		61 * utmN * utmN * utmN / 240}
	utmBeta = [3]float64{utmN/2 - 2*utmN*utmN/3 + 37*utmN*utmN*utmN/96, utmN*utmN/48 + utmN*utmN*utmN/15,
		17 * utmN * utmN * utmN / 480}
	utmDelta = [3]float64{2*utmN - 2*utmN*utmN/3 - 2*utmN*utmN*utmN, 7*utmN*utmN/3 - 8*utmN*utmN*utmN/5,
		56 * utmN * utmN * utmN / 15}
)

// UTMZone is a UTM zone (1..60) and hemisphere.
type UTMZone struct {
	Zone  int
	South bool
}

func (z UTMZone) centralMeridian() float64 { return float64(z.Zone-1)*6 - 180 + 3 }

// UTMToLatLng inverts the UTM projection: easting and northing in metres (false easting 500 km, false northing
// 10,000 km in the south) to WGS84 degrees.
func UTMToLatLng(z UTMZone, easting, northing float64) LatLng {
	if z.South {
		northing -= utmNSth
	}
	xi := northing / (utmK0 * utmAA)
	eta := (easting - utmE0) / (utmK0 * utmAA)
	xip, etap := xi, eta
	for j, b := range utmBeta {
		k := float64(2 * (j + 1))
		xip -= b * math.Sin(k*xi) * math.Cosh(k*eta)
		etap -= b * math.Cos(k*xi) * math.Sinh(k*eta)
	}
	chi := math.Asin(math.Sin(xip) / math.Cosh(etap))
	lat := chi
	for j, d := range utmDelta {
		lat += d * math.Sin(float64(2*(j+1))*chi)
	}
	lng := z.centralMeridian() + math.Atan2(math.Sinh(etap), math.Cos(xip))/deg
	return LatLng{Lat: lat / deg, Lng: lng}
}

// LatLngToUTM projects a WGS84 position into zone z (the inverse of UTMToLatLng).
func LatLngToUTM(z UTMZone, p LatLng) (easting, northing float64) {
	phi := p.Lat * deg
	dl := (p.Lng - z.centralMeridian()) * deg
	c := 2 * math.Sqrt(utmN) / (1 + utmN)
	t := math.Sinh(math.Atanh(math.Sin(phi)) - c*math.Atanh(c*math.Sin(phi)))
	xip := math.Atan2(t, math.Cos(dl))
	etap := math.Atanh(math.Sin(dl) / math.Sqrt(1+t*t))
	xi, eta := xip, etap
	for j, a := range utmAlpha {
		k := float64(2 * (j + 1))
		xi += a * math.Sin(k*xip) * math.Cosh(k*etap)
		eta += a * math.Cos(k*xip) * math.Sinh(k*etap)
	}
	easting = utmE0 + utmK0*utmAA*eta
	northing = utmK0 * utmAA * xi
	if z.South {
		northing += utmNSth
	}
	return easting, northing
}

// ParseUTMProj reads a PROJ string of the form SUMO writes ("+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84
// +units=m +no_defs", optionally +south). Other projections, ellipsoids or units are errors.
func ParseUTMProj(s string) (UTMZone, error) {
	var z UTMZone
	var isUTM bool
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "+"), "=")
		switch k {
		case "proj":
			if v != "utm" {
				return z, fmt.Errorf("cannot use projection %q: only UTM is supported, not %q", s, v)
			}
			isUTM = true
		case "zone":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 60 {
				return z, fmt.Errorf("cannot use projection %q: zone %q is not 1..60", s, v)
			}
			z.Zone = n
		case "south":
			z.South = true
		case "ellps", "datum":
			if v != "WGS84" {
				return z, fmt.Errorf("cannot use projection %q: %s %q is not WGS84", s, k, v)
			}
		case "units":
			if v != "m" {
				return z, fmt.Errorf("cannot use projection %q: units %q are not metres", s, v)
			}
		}
	}
	if !isUTM || z.Zone == 0 {
		return z, fmt.Errorf("cannot use projection %q: want +proj=utm with a +zone", s)
	}
	return z, nil
}
