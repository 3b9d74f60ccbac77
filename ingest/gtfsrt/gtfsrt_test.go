package gtfsrt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/MobilityData/gtfs-realtime-bindings/golang/gtfs"
	"google.golang.org/protobuf/proto"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/internal/datadir"
)

func decodeAll(t testing.TB, st *Static, files ...string) ([]engine.Event, *Decoder) {
	t.Helper()
	d, err := NewDecoder(st, Options{IDPrefix: "x-"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []engine.Event
	if err := d.DecodeFiles(files, func(e engine.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs, d
}

func TestCaltrain(t *testing.T) {
	dir := datadir.Path(t, "gtfs/caltrain")
	st, err := LoadStatic(filepath.Join(dir, "ct.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Routes["L1"]; r.Mode != "metro" || r.Name != "L1" {
		t.Fatalf("route L1 = %+v, want mode metro (route_type 2), name L1", r)
	}
	evs, d := decodeAll(t, st, filepath.Join(dir, "ct-vehicle-positions.pb"), filepath.Join(dir, "ct-trip-updates.pb"))
	// 14 vehicle positions + 5 trip updates whose trips have no position.
	if len(evs) != 19 || d.Skipped.Total() != 0 {
		t.Fatalf("%d events, %s; want 19 events, 0 skipped", len(evs), &d.Skipped)
	}
	byID := map[string]engine.Event{}
	for _, e := range evs {
		if err := ingest.Validate(&e); err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		byID[e.ID] = e
	}
	v := byID["x-124"]
	if v.Lat != float64(float32(37.37046)) || v.Route != "L1" || v.Mode != "metro" || !engine.Has(v.SpeedKmh) {
		t.Fatalf("vehicle 124 = %+v", v)
	}
	// Trip 124's next stop (seq 21, 70242) is due at 1699405801; the schedule says 15:37 start... the delay is
	// measured against stop_times, so it must be known and within an hour.
	if !engine.Has(v.DelayS) || v.DelayS < -3600 || v.DelayS > 3600 {
		t.Fatalf("vehicle 124 delay %v, want a known delay within an hour", v.DelayS)
	}
	schedOnly := 0
	for _, e := range evs {
		if e.Source == "gtfs-rt/schedule" {
			schedOnly++
		}
	}
	if schedOnly != 5 {
		t.Fatalf("%d events at next-stop positions, want 5", schedOnly)
	}
}

func TestBART(t *testing.T) {
	dir := datadir.Path(t, "gtfs/bart")
	st, err := LoadStatic(filepath.Join(dir, "bart-rt.zip"))
	if err != nil {
		t.Fatal(err)
	}
	evs, d := decodeAll(t, st, filepath.Join(dir, "bart-trip-updates.pb"), filepath.Join(dir, "bart-alerts.pb"))
	// 91 trip updates: 26 name trips absent from the 2019 static feed (no route): skipped with that reason.
	if len(evs) != 65 || d.Skipped.Total() != 27 || d.Skipped.Count("alert entity (no transit event)") != 1 {
		t.Fatalf("%d events, %s", len(evs), &d.Skipped)
	}
	delayed := 0
	for _, e := range evs {
		if e.DelayS > 0 {
			delayed++
		}
		if e.Mode != "metro" {
			t.Fatalf("BART event mode %q, want metro", e.Mode)
		}
	}
	if delayed == 0 {
		t.Fatal("no BART event carries a positive delay_s, though the feed has delays")
	}
}

// TestSpeedFromSuccessivePositions checks that a vehicle without position.speed gets the speed between two
// snapshots, and that a repeated snapshot is skipped, not re-emitted.
func TestSpeedFromSuccessivePositions(t *testing.T) {
	d, _ := NewDecoder(nil, Options{Mode: "bus"})
	snap := func(ts uint64, lat float32) Feed {
		return Feed{Name: "t", Msg: &gtfs.FeedMessage{
			Header: &gtfs.FeedHeader{GtfsRealtimeVersion: proto.String("2.0"), Timestamp: proto.Uint64(ts)},
			Entity: []*gtfs.FeedEntity{{Id: proto.String("1"), Vehicle: &gtfs.VehiclePosition{
				Trip:     &gtfs.TripDescriptor{TripId: proto.String("t1"), RouteId: proto.String("R9")},
				Vehicle:  &gtfs.VehicleDescriptor{Id: proto.String("bus-1")},
				Position: &gtfs.Position{Latitude: proto.Float32(lat), Longitude: proto.Float32(120)},
			}}},
		}}
	}
	var evs []engine.Event
	emit := func(e engine.Event) error { evs = append(evs, e); return nil }
	for _, s := range []Feed{snap(1_700_000_000, 30), snap(1_700_000_000, 30), snap(1_700_000_060, 30.005)} {
		if err := d.Snapshot([]Feed{s}, emit); err != nil {
			t.Fatal(err)
		}
	}
	if len(evs) != 1 || d.Skipped.Total() != 2 {
		t.Fatalf("%d events, %s; want 1 event (the second position), 2 skipped", len(evs), &d.Skipped)
	}
	// 0.005 degrees of latitude = 556 m in 60 s = 33.4 km/h.
	if s := evs[0].SpeedKmh; s < 33 || s > 34 || evs[0].Route != "R9" || evs[0].Mode != "bus" {
		t.Fatalf("event %+v, want speed 33.4 km/h on R9 by bus", evs[0])
	}
}

func TestModeOf(t *testing.T) {
	for rt, want := range map[int]string{0: "tram", 1: "metro", 2: "metro", 3: "bus", 4: "", 5: "tram", 6: "", 7: "", 11: "bus", 12: "metro", 700: "bus", 900: "tram", 109: "metro", 1000: ""} {
		if got := ModeOf(rt); got != want {
			t.Errorf("ModeOf(%d) = %q, want %q", rt, got, want)
		}
	}
}

func FuzzGTFSRT(f *testing.F) {
	for _, p := range []string{"gtfs/caltrain/ct-vehicle-positions.pb", "gtfs/caltrain/ct-trip-updates.pb", "gtfs/bart/bart-alerts.pb"} {
		if path := datadir.Path(f, p); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	d, _ := NewDecoder(nil, Options{Mode: "bus", MaxVehicles: 64})
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseFeed(b, "fuzz")
		if err != nil {
			return
		}
		_ = d.Snapshot([]Feed{feed}, func(e engine.Event) error {
			if err := ingest.Validate(&e); err != nil {
				t.Fatalf("emitted an invalid event %+v: %v", e, err)
			}
			return nil
		})
		if len(d.last) > 64 {
			t.Fatalf("vehicle table has %d entries, bound 64", len(d.last))
		}
	})
}

func BenchmarkCaltrainSnapshot(b *testing.B) {
	dir := datadir.Path(b, "gtfs/caltrain")
	st, err := LoadStatic(filepath.Join(dir, "ct.zip"))
	if err != nil {
		b.Fatal(err)
	}
	var raw [][]byte
	size := 0
	for _, n := range []string{"ct-vehicle-positions.pb", "ct-trip-updates.pb"} {
		x, _ := os.ReadFile(filepath.Join(dir, n))
		raw = append(raw, x)
		size += len(x)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	n := 0
	for b.Loop() {
		d, _ := NewDecoder(st, Options{})
		feeds := make([]Feed, len(raw))
		for i, x := range raw {
			feeds[i], _ = ParseFeed(x, "b")
		}
		_ = d.Snapshot(feeds, func(engine.Event) error { n++; return nil })
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
