package history

import (
	"math"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// fake is a Source with given aggregates.
type fake struct {
	aggs []engine.Aggregate
	inc  [][2]float64
	now  int64
}

func (f *fake) Aggregates(int) []engine.Aggregate { return f.aggs }
func (f *fake) ActiveIncidentsAt() [][2]float64   { return f.inc }
func (f *fake) Status() engine.Status             { return engine.Status{Now: f.now} }

func mkAgg(t *testing.T, lat, lng, speed float64, samples uint32, tpi float64) engine.Aggregate {
	c, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Aggregate{Cell: c, Lat: lat, Lng: lng, SpeedSum: speed * float64(samples), SpeedW: float64(samples), TPI: tpi, Samples: samples, Events: samples + 1}
}

var all = geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}

func TestStoreQuery(t *testing.T) {
	s := New(Config{})
	t0 := int64(1_800_000_000_000) - int64(1_800_000_000_000)%60_000
	src := &fake{}
	for m := int64(0); m < 10; m++ {
		src.aggs = []engine.Aggregate{mkAgg(t, 30.25, 120.17, float64(20+m), 4, 2), mkAgg(t, 30.28, 120.19, 40, 1, 8)}
		src.inc = nil
		if m >= 5 {
			src.inc = [][2]float64{{30.25, 120.17}}
		}
		s.Sample(t0+(m+1)*60_000, src)
	}
	q := Query{Metric: MetricSpeed, From: t0, To: t0 + 10*60_000, Step: time.Minute, BBox: all, Res: -1}
	r, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 1 || len(r.Series[0].Points) != 10 || len(r.Missing) != 0 {
		t.Fatalf("series %d, points %d, missing %v", len(r.Series), len(r.Series[0].Points), r.Missing)
	}
	for m, p := range r.Series[0].Points {
		want := (float64(20+m)*4 + 40) / 5
		if math.Abs(p.V-want) > 1e-3 || p.N != 5 || p.T != t0+int64(m)*60_000 {
			t.Errorf("minute %d: %+v, want %.3f from 5 samples", m, p, want)
		}
	}
	// TPI is sample-weighted; a 5-minute step sums its minutes.
	q.Metric, q.Step = MetricTPI, 5*time.Minute
	r, _ = s.Query(q)
	if p := r.Series[0].Points[0]; math.Abs(p.V-(2*4+8)/5.0) > 1e-6 || p.N != 25 {
		t.Errorf("tpi %+v, want %.2f from 25 samples", p, (2*4+8)/5.0)
	}
	// Incidents: the most active at once in a step; 0 (not unknown) where none.
	q.Metric = MetricIncidents
	r, _ = s.Query(q)
	if a, b := r.Series[0].Points[0].V, r.Series[0].Points[1].V; a != 0 || b != 1 {
		t.Errorf("incidents %v, %v: want 0, 1", a, b)
	}
	// A bbox around the second cell; grouping by resolution 7.
	q.Metric, q.Step, q.BBox = MetricSpeed, time.Minute, geo.BBox{MinLng: 120.185, MinLat: 30.275, MaxLng: 120.195, MaxLat: 30.285}
	r, _ = s.Query(q)
	if v := r.Series[0].Points[3].V; v != 40 {
		t.Errorf("speed in the box %v, want 40", v)
	}
	q.BBox, q.Res = all, 7
	r, _ = s.Query(q)
	if len(r.Series) != 2 || r.Series[0].Key == "all" {
		t.Errorf("res 7: %d series", len(r.Series))
	}
	// A range the store does not hold is reported missing and has no values.
	q.Res, q.From, q.To = -1, t0-5*60_000, t0+2*60_000
	r, _ = s.Query(q)
	if len(r.Missing) != 1 || r.Missing[0] != [2]int64{t0 - 5*60_000, t0} || !math.IsNaN(r.Series[0].Points[0].V) {
		t.Errorf("missing %v, first %v", r.Missing, r.Series[0].Points[0])
	}
	for _, bad := range []Query{{Metric: "x", From: t0, To: t0 + 1, Step: time.Minute}, {Metric: MetricTPI, From: t0, To: t0, Step: time.Minute},
		{Metric: MetricTPI, From: t0, To: t0 + 60_000, Step: 90 * time.Second}, {Metric: MetricTPI, From: 0, To: t0, Step: time.Minute}} {
		if _, err := s.Query(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestStoreKeepsItsSpan(t *testing.T) {
	s := New(Config{Keep: 30 * time.Minute})
	src := &fake{}
	for m := int64(1); m <= 100; m++ {
		s.Sample(m*60_000, src)
	}
	if n := s.Slots(); n != 31 {
		t.Errorf("%d slots held, want 31 (30 minutes kept)", n)
	}
	lo, hi, _ := s.Span()
	if hi != 99*60_000 || lo != 69*60_000 {
		t.Errorf("span %d..%d", lo, hi)
	}
}

func TestObserveSamplesOncePerStep(t *testing.T) {
	s := New(Config{})
	src := &fake{now: 125_000}
	var last int64
	if !s.Observe(src, &last) || last != 120_000 || !s.Has(60_000) {
		t.Fatalf("first observe: last %d", last)
	}
	src.now = 170_000
	if s.Observe(src, &last) {
		t.Error("sampled twice in one step")
	}
	src.now = 181_000
	if !s.Observe(src, &last) || !s.Has(120_000) {
		t.Error("the next step was not sampled")
	}
	// A clock far past the boundary (a bulk load): the window is not this step's; left to the log.
	src.now = 275_000
	if s.Observe(src, &last) || s.Has(180_000) {
		t.Error("sampled a step 35 s after it ended")
	}
}
