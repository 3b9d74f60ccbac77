package eval

import (
	"math"
	"testing"

	"citybrain/geo"
)

func TestASquareIsReadFromTheLinksCrossingIt(t *testing.T) {
	net := geo.GenerateWestLake(1)
	bb := net.BBox()
	origin := geo.LatLng{Lat: bb.MinLat, Lng: bb.MinLng}
	squares := squareLinks(net, origin)
	total := map[string]float64{}
	for _, shares := range squares {
		for _, s := range shares {
			total[s.link] += s.share
		}
	}
	for _, l := range net.Links() {
		if math.Abs(total[l.ID]-1) > 1e-9 {
			t.Fatalf("link %s: shares over its squares add to %g, want 1", l.ID, total[l.ID])
		}
	}
	// A square two links cross: a queue (10 km/h, 30 observations) and a free street (50 km/h, 10).
	var sq string
	for k, shares := range squares {
		if len(shares) >= 2 && (sq == "" || k < sq) {
			sq = k
		}
	}
	if sq == "" {
		t.Fatal("no square is crossed by two links")
	}
	a, b := squares[sq][0], squares[sq][1]
	s := &speedScore{squares: squares}
	links := map[string]linkReading{a.link: {Kmh: 10, Samples: 30}, b.link: {Kmh: 50, Samples: 10}}
	got, ok := s.squareFromLinks(sq, links)
	want := (10*30*a.share + 50*10*b.share) / (30*a.share + 10*b.share)
	if !ok || math.Abs(got-want) > 1e-9 {
		t.Errorf("square %s reads %g (%v), want %g: each link weighted by its observations in the square", sq, got, ok, want)
	}
	// No link crossing the square has a reading: none (the scorer falls back to the centre's cell).
	if got, ok := s.squareFromLinks(sq, map[string]linkReading{}); ok {
		t.Errorf("square without link readings reads %g", got)
	}
}
