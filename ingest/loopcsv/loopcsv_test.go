package loopcsv

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/internal/datadir"
)

func metrStart(t testing.TB) time.Time {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2012, 3, 1, 0, 0, 0, 0, loc)
}

func TestMETRLA(t *testing.T) {
	dir := datadir.Path(t, "metr-la")
	locs, err := LoadLocations(filepath.Join(dir, "sensor_locations.csv"))
	if err != nil || len(locs) != 207 {
		t.Fatalf("%d locations, %v", len(locs), err)
	}
	f, err := os.Open(filepath.Join(dir, "speed_2012-03-01_to_03-05_5min.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, _ := NewDecoder(Options{Name: "metr", Start: metrStart(t), Interval: 5 * time.Minute, Locations: locs, Mph: true, IDPrefix: "m-"})
	var n int
	var firstEv, lastEv engine.Event
	err = d.Decode(f, func(e engine.Event) error {
		if n == 0 {
			firstEv = e
		}
		lastEv = e
		n++
		if err := ingest.Validate(&e); err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		return nil
	})
	if err != nil || n != 207*1440 || d.Skipped.Total() != 0 {
		t.Fatalf("%d events, err %v, %s", n, err, &d.Skipped)
	}
	// Row 1, sensor 773869 at 34.15497,-118.31829: 64.375 mph at 2012-03-01 00:00 PST (08:00 UTC).
	if firstEv.ID != "m-773869" || firstEv.TS != time.Date(2012, 3, 1, 8, 0, 0, 0, time.UTC).UnixMilli() ||
		firstEv.Lat != 34.15497 || abs(firstEv.SpeedKmh-64.375*MphToKmh) > 1e-9 || firstEv.IntervalS != 300 || firstEv.Source != "metr-la/est" {
		t.Fatalf("first event %+v", firstEv)
	}
	if want := time.Date(2012, 3, 1, 8, 0, 0, 0, time.UTC).Add(1439 * 5 * time.Minute).UnixMilli(); lastEv.TS != want {
		t.Fatalf("last event at %d, want %d", lastEv.TS, want)
	}
}

func TestDiagram(t *testing.T) {
	d := DefaultDiagram
	for _, c := range []struct{ v, flow, occ float64 }{
		{d.FreeFlowKmh, 0, 0}, {200, 0, 0}, {0, 0, 0.72}, {d.FreeFlowKmh / 2, 60 * d.FreeFlowKmh / 2, 0.36},
	} {
		q, o := d.Estimate(c.v)
		if abs(q-c.flow) > 1e-9 || abs(o-c.occ) > 1e-9 {
			t.Errorf("Estimate(%v) = %v, %v; want %v, %v", c.v, q, o, c.flow, c.occ)
		}
	}
	// Capacity is Vf*Kj/4 at half the free-flow speed: 70 mph * 120 / 4 = 3380 veh/h/lane.
	if q, _ := d.Estimate(d.FreeFlowKmh / 2); q < 3370 || q > 3390 {
		t.Fatalf("capacity %v", q)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestBadInput(t *testing.T) {
	in := "time,a,b,c\n2024-01-01 08:00,50,,x\n2024-01-01 08:05,0,1\nnot-a-time,5,5,5\n2024-01-01 08:10,-3,40,40\n"
	locs := map[string]LatLng{"a": {1, 1}, "b": {1, 2}}
	d, _ := NewDecoder(Options{Name: "in.csv", Interval: 5 * time.Minute, Locations: locs})
	var evs []engine.Event
	if err := d.Decode(strings.NewReader(in), func(e engine.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != "a" || evs[0].SpeedKmh != 50 || evs[1].ID != "b" || evs[1].SpeedKmh != 40 {
		t.Fatalf("events %+v", evs)
	}
	for reason, n := range map[string]int{"empty speed": 1, "no location for sensor": 2, "row width differs from header": 1, "bad time in column 1": 1, "bad speed": 1} {
		if d.Skipped.Count(reason) != n {
			t.Errorf("%q skipped %d times, want %d; %s", reason, d.Skipped.Count(reason), n, &d.Skipped)
		}
	}
	if r, _ := d.Skipped.First("bad speed"); r.Where != "in.csv line 5 column 2" {
		t.Errorf("bad speed at %q, want in.csv line 5 column 2", r.Where)
	}
	if _, err := NewDecoder(Options{}); err == nil {
		t.Error("interval 0 accepted")
	}
}

func FuzzLoopCSV(f *testing.F) {
	f.Add([]byte("time,a,b\n2024-01-01 08:00,50,60\n"))
	if p := datadir.Path(f, "metr-la/speed_2012-03-01_to_03-05_5min.csv"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		lines := bytes.SplitN(b, []byte("\n"), 4)
		f.Add(bytes.Join(lines[:3], []byte("\n")))
	}
	locs := map[string]LatLng{"a": {1, 1}, "b": {1, 2}, "773869": {34, -118}, "767541": {34, -118.1}}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := NewDecoder(Options{Start: time.Unix(1.7e9, 0), Interval: time.Minute, Locations: locs, Mph: true})
		_ = d.Decode(bytes.NewReader(b), func(e engine.Event) error {
			if err := ingest.Validate(&e); err != nil {
				t.Fatalf("emitted an invalid event %+v: %v", e, err)
			}
			return nil
		})
	})
}

func BenchmarkMETRLA(b *testing.B) {
	dir := datadir.Path(b, "metr-la")
	locs, _ := LoadLocations(filepath.Join(dir, "sensor_locations.csv"))
	in, err := os.ReadFile(filepath.Join(dir, "speed_2012-03-01_to_03-05_5min.csv"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	n := 0
	for b.Loop() {
		d, _ := NewDecoder(Options{Start: metrStart(b), Interval: 5 * time.Minute, Locations: locs, Mph: true})
		_ = d.Decode(bytes.NewReader(in), func(engine.Event) error { n++; return nil })
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
