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
	links := map[string]linkReading{a.link: {reading: reading{Kmh: 10}, Samples: 30}, b.link: {reading: reading{Kmh: 50}, Samples: 10}}
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

func TestSpeedErrorIsReportedByConfidence(t *testing.T) {
	ps := []speedPair{
		{Truth: 20, Est: 30, Conf: 0.3},        // error 0.5
		{Truth: 20, Est: 22, Conf: 0.6},        // 0.1
		{Truth: 20, Est: 18, Conf: 0.7},        // 0.1
		{Truth: 20, Est: 21, Conf: 0.9},        // 0.05
		{Truth: 20, Est: 21, Conf: 1},          // 0.05
		{Truth: 20, Est: 40, Conf: math.NaN()}, // no confidence: in the MAPE, in no band
	}
	m := speedMetrics(ps)
	want := []ConfidenceBand{{From: 0, To: 0.5, N: 1, MAPE: 0.5}, {From: 0.5, To: 0.8, N: 2, MAPE: 0.1}, {From: 0.8, To: 1, N: 2, MAPE: 0.05}}
	if len(m.ByConfidence) != len(want) {
		t.Fatalf("bands %+v, want %+v", m.ByConfidence, want)
	}
	for i := range want {
		if m.ByConfidence[i] != want[i] {
			t.Errorf("band %d: %+v, want %+v", i, m.ByConfidence[i], want[i])
		}
	}
	if m.MAPE != round3((0.5+0.1+0.1+0.05+0.05+1)/6) {
		t.Errorf("MAPE %g", m.MAPE)
	}
}
