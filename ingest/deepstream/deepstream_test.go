package deepstream

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/internal/datadir"
)

// cameras gives every camera of the sample a made-up position near the sample's garage (its payload positions
// are placeholders), as an operator's cameras.csv would.
func cameras(t testing.TB, sample []byte) map[string]LatLng {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("id,lat,lng\n")
	seen := map[string]bool{}
	for i, m := range regexp.MustCompile(`"sensor": \{"id": "([^"]+)"`).FindAllSubmatch(sample, -1) {
		if id := string(m[1]); !seen[id] {
			seen[id] = true
			fmt.Fprintf(&csv, "%s,%.5f,%.5f\n", id, 37.371+float64(i%7)*1e-4, -121.9668)
		}
	}
	m, err := ReadCameras(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decode(t testing.TB, opts Options, in []byte) ([]engine.Event, *Decoder) {
	t.Helper()
	d, err := NewDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	var evs []engine.Event
	if err := d.Decode(bytes.NewReader(in), func(e engine.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs, d
}

func TestParkingDemoDefaults(t *testing.T) {
	b, err := os.ReadFile(datadir.Path(t, "deepstream/parking-demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	evs, d := decode(t, Options{Name: "parking-demo.json"}, b)
	// Aisle cameras sit at 0/0: rejected with a reason; spot cameras report parked/empty only: no wire type.
	if len(evs) != 0 || d.Skipped.Count("no camera position (sensor.location and place.location absent or 0/0; add the camera to --cameras)") != 3003 ||
		d.Skipped.Count(`event type "parked" maps to skip`) != 18 || d.Skipped.Count(`event type "empty" maps to skip`) != 7 {
		t.Fatalf("%d events; %s", len(evs), &d.Skipped)
	}
	if r, _ := d.Skipped.First(`event type "parked" maps to skip`); r.Where != "parking-demo.json line 3" {
		t.Fatalf("first parked skip at %q, want line 3", r.Where)
	}
}

func TestParkingDemoWithCameras(t *testing.T) {
	b, err := os.ReadFile(datadir.Path(t, "deepstream/parking-demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	cams := cameras(t, b)
	evs, d := decode(t, Options{Name: "p", Cameras: cams, Interval: time.Minute}, b)
	// parked + empty (25), and one moving message that arrives after its camera's window was emitted.
	late := d.Skipped.Count("late message (its vehicle_count window was already emitted)")
	if d.Skipped.Total() != 25+late || late > 1 {
		t.Fatalf("%s", &d.Skipped)
	}
	var total float64
	for _, e := range evs {
		if err := ingest.Validate(&e); err != nil {
			t.Fatal(err)
		}
		if e.Type != "vehicle_count" || e.IntervalS != 60 || e.TS%60000 != 0 {
			t.Fatalf("event %+v, want minute vehicle_count windows", e)
		}
		if p := cams[e.ID]; p.Lat != e.Lat {
			t.Fatalf("camera %s at %v, want the override %v", e.ID, e.Lat, p.Lat)
		}
		total += e.Count
	}
	// Distinct (camera, window, object) triples, computed independently.
	want := map[string]bool{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.Contains(l, []byte(`"type": "moving"`)) {
			continue
		}
		cam := regexp.MustCompile(`"sensor": \{"id": "([^"]+)"`).FindSubmatch(l)[1]
		obj := regexp.MustCompile(`"object": \{"id": "([^"]+)"`).FindSubmatch(l)[1]
		ts, _ := time.Parse(time.RFC3339Nano, string(regexp.MustCompile(`"@timestamp": "([^"]+)"`).FindSubmatch(l)[1]))
		want[fmt.Sprintf("%s|%d|%s", cam, ts.Unix()/60, obj)] = true
	}
	windows := map[string]bool{}
	for k := range want {
		windows[k[:strings.LastIndexByte(k, '|')]] = true
	}
	if total > float64(len(want)) || total < float64(len(want)-late) || len(evs) != len(windows) {
		t.Fatalf("%d windows counting %v objects, want %d windows, %d objects", len(evs), total, len(windows), len(want))
	}
}

func TestMinimalAndMapping(t *testing.T) {
	in := `{"version":"4.0","id":"7","@timestamp":"2024-05-01T08:00:01.000Z","sensorId":"cam-1","objects":["3|1|2|3|4|Car","3|1|2|3|4|Car|#|x","4|1|2|3|4|Person","-1|1|2|3|4|Car","9|1|2|3|4|Truck"]}
{"version":"4.0","id":"8","@timestamp":"2024-05-01T08:00:59.000Z","sensorId":"cam-1","objects":["5|1|2|3|4|Car"]}
{"messageid":"m","@timestamp":"2024-05-01T08:00:30Z","sensor":{"id":"cam-1","location":{"lat":0,"lon":0}},"object":{"id":"o1","vehicle":{"confidence":0.9}},"event":{"type":"stopped"}}
{"messageid":"m","@timestamp":"2024-05-01T08:00:31Z","sensor":{"id":"cam-2","location":{"lat":0,"lon":0}},"object":{"id":"o1","vehicle":{}},"event":{"type":"stopped"}}
not json
`
	cams := map[string]LatLng{"cam-1": {30.25, 120.16}}
	evs, d := decode(t, Options{Cameras: cams}, []byte(in))
	if len(evs) != 2 {
		t.Fatalf("%d events %+v; %s", len(evs), evs, &d.Skipped)
	}
	if evs[0].Type != "stalled_vehicle" || evs[0].Confidence != 0.9 || evs[1].Type != "vehicle_count" || evs[1].Count != 3 {
		t.Fatalf("events %+v, want stalled_vehicle 0.9 then vehicle_count 3 (cars 3, 5 and truck 9)", evs)
	}
	if d.Skipped.Total() != 4 || d.Skipped.Count("not a DeepStream JSON message") != 1 {
		t.Fatalf("%s", &d.Skipped)
	}
	if _, err := LoadMapping(strings.NewReader(`{"parked":"vehicle_count"}`)); err == nil {
		t.Fatal("mapping to vehicle_count accepted; it needs aggregation")
	}
	if _, err := ReadCameras(strings.NewReader("c,0,0\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("0/0 camera: err %v, want a placeholder error naming line 1", err)
	}
}

func FuzzDeepStream(f *testing.F) {
	f.Add([]byte(`{"@timestamp":"2024-05-01T08:00:01.000Z","sensorId":"cam-1","objects":["3|1|2|3|4|Car"]}`))
	if p := datadir.Path(f, "deepstream/parking-demo.json"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for i, l := range bytes.Split(b, []byte("\n")) {
			if i%300 == 0 || bytes.Contains(l, []byte(`"parked"`)) {
				f.Add(l)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := NewDecoder(Options{Cameras: map[string]LatLng{"cam-1": {1, 1}, "10_110_127_110_A1": {1, 1}}, MaxCameras: 8})
		n := 0
		err := d.Decode(bytes.NewReader(b), func(e engine.Event) error {
			n++
			if err := ingest.Validate(&e); err != nil {
				t.Fatalf("emitted an invalid event %+v: %v", e, err)
			}
			return nil
		})
		if err != nil {
			return
		}
		if n != d.Emitted || len(d.windows) != 0 {
			t.Fatalf("emitted %d, counted %d, %d windows left open", n, d.Emitted, len(d.windows))
		}
	})
}

func BenchmarkParkingDemo(b *testing.B) {
	in, err := os.ReadFile(datadir.Path(b, "deepstream/parking-demo.json"))
	if err != nil {
		b.Fatal(err)
	}
	cams := cameras(b, in)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	msgs := 0
	for b.Loop() {
		d, _ := NewDecoder(Options{Cameras: cams})
		_ = d.Decode(bytes.NewReader(in), func(engine.Event) error { return nil })
		msgs += 3028
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}
