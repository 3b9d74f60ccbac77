package system

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
	"citybrain/ingest/deepstream"
	"citybrain/ingest/gtfsrt"
	"citybrain/ingest/loopcsv"
	"citybrain/ingest/reports"
)

// dataDir is the shared real data ($CITYBRAIN_DATA, else ../shared/data beside the checkout).
func dataDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CITYBRAIN_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared", "data")
}

// TestMetrLAThroughTheSystem feeds the real METR-LA loop-detector table (Los Angeles, 207 sensors, 5-minute
// speeds) of the night and morning of 2012-03-01 through the running system over HTTP: the cells' speeds
// must equal the sensors' speeds, and the morning peak on the freeways must show as congestion that the
// night did not have.
func TestMetrLAThroughTheSystem(t *testing.T) {
	dir := filepath.Join(dataDir(t), "metr-la")
	speeds := filepath.Join(dir, "speed_2012-03-01_to_03-05_5min.csv")
	if _, err := os.Stat(speeds); err != nil {
		t.Skipf("METR-LA data missing (%v): set CITYBRAIN_DATA to the shared data directory", err)
	}
	locs, err := loopcsv.LoadLocations(filepath.Join(dir, "sensor_locations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	la, _ := time.LoadLocation("America/Los_Angeles")
	day := time.Date(2012, 3, 1, 0, 0, 0, 0, la)
	dec, err := loopcsv.NewDecoder(loopcsv.Options{Name: "metr-la", Start: day, Interval: 5 * time.Minute, Locations: locs, Mph: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(speeds)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	night := day.Add(3 * time.Hour)
	peak := day.Add(8 * time.Hour)
	var toNight, toPeak []engine.Event
	errStop := os.ErrClosed
	err = dec.Decode(f, func(e engine.Event) error {
		ts := time.UnixMilli(e.TS)
		switch {
		case !ts.After(night):
			toNight = append(toNight, e)
		case !ts.After(peak):
			toPeak = append(toPeak, e)
		default:
			return errStop
		}
		return nil
	})
	if err != nil && !bytes.Contains([]byte(err.Error()), []byte(errStop.Error())) {
		t.Fatal(err)
	}
	if len(toNight) < 5000 || len(toPeak) < 10000 {
		t.Fatalf("decoded %d night and %d morning events", len(toNight), len(toPeak))
	}

	cfg := testConfig(t, t.TempDir())
	s := start(t, cfg)
	congested := func() (n int, byCell map[string]cellDoc) {
		byCell = cells(t, s, "window=60s")
		for _, c := range byCell {
			if c.Level != "smooth" && c.Level != "basically_smooth" {
				n++
			}
		}
		return n, byCell
	}

	feedEvents(t, s, toNight)
	waitWatermark(t, s, night)
	nightCongested, _ := congested()

	feedEvents(t, s, toPeak)
	waitWatermark(t, s, peak)
	peakCongested, byCell := congested()

	// The cells' speeds are the sensors' speeds: check every cell that holds exactly one sensor, at 08:00.
	last := map[string]engine.Event{}
	perCell := map[string]int{}
	for _, e := range toPeak {
		if time.UnixMilli(e.TS).Equal(peak) {
			c, _ := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
			key := geo.CellString(c)
			last[key] = e
			perCell[key]++
		}
	}
	checked := 0
	for key, e := range last {
		if perCell[key] != 1 {
			continue
		}
		c, ok := byCell[key]
		if !ok || c.Speed == nil || math.Abs(*c.Speed-e.SpeedKmh) > 0.05 {
			t.Errorf("cell %s: speed %v, sensor %s says %.2f km/h", key, c.Speed, e.ID, e.SpeedKmh)
			continue
		}
		checked++
	}
	if checked < 50 {
		t.Errorf("only %d single-sensor cells checked", checked)
	}
	// The morning peak: more congested cells at 08:00 than at 03:00, by a margin.
	if peakCongested < nightCongested+10 {
		t.Errorf("congested cells: %d at 03:00, %d at 08:00; the morning peak does not show", nightCongested, peakCongested)
	}
	t.Logf("METR-LA: %d night + %d morning events; %d single-sensor cells match; congested cells %d at 03:00, %d at 08:00",
		len(toNight), len(toPeak), checked, nightCongested, peakCongested)
}

// feedEvents posts events in NDJSON batches and fails on any rejection.
func feedEvents(t *testing.T, s *System, events []engine.Event) {
	t.Helper()
	for i := 0; i < len(events); i += 2000 {
		var body []byte
		for j := i; j < min(i+2000, len(events)); j++ {
			body = ingest.AppendJSON(body, &events[j])
			body = append(body, '\n')
		}
		if code, ans := post(t, s, "application/x-ndjson", body, nil); code != 200 || ans["rejected"] != 0.0 {
			t.Fatalf("batch at %d: %d %v", i, code, ans)
		}
	}
}

func newestTS(events []engine.Event) time.Time {
	var n int64
	for _, e := range events {
		n = max(n, e.TS)
	}
	return time.UnixMilli(n)
}

// TestAustinReportsBecomeIncidents feeds the real Austin incident reports through the system.
func TestAustinReportsBecomeIncidents(t *testing.T) {
	path := filepath.Join(dataDir(t), "incidents", "austin-2025-12-07_to_14.ndjson")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("Austin incident reports missing (%v): set CITYBRAIN_DATA", err)
	}
	defer f.Close()
	dec, err := reports.NewDecoder(reports.Options{Name: path})
	if err != nil {
		t.Fatal(err)
	}
	var events []engine.Event
	if err := dec.Decode(f, func(e engine.Event) error { events = append(events, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(events) < 900 {
		t.Fatalf("%d reports decoded", len(events))
	}
	s := start(t, testConfig(t, t.TempDir()))
	feedEvents(t, s, events)
	waitWatermark(t, s, newestTS(events))
	all := incidents(t, s, "?status=all", nil)
	// Reports of the last 6 hours of the week stay listed; each is an incident in Austin with its report.
	if len(all) < 5 {
		t.Fatalf("%d incidents from %d reports", len(all), len(events))
	}
	for _, in := range all {
		if in.Lat < 29.9 || in.Lat > 30.7 || in.Lng < -98.1 || in.Lng > -97.4 || len(in.Evidence) == 0 || in.Evidence[0].Kind != "report" {
			t.Errorf("incident %+v is not an Austin report", in)
			break
		}
	}
}

// TestCaltrainGTFSRealtime feeds the real Caltrain vehicle positions and trip updates through the system.
func TestCaltrainGTFSRealtime(t *testing.T) {
	dir := filepath.Join(dataDir(t), "gtfs", "caltrain")
	st, err := gtfsrt.LoadStatic(filepath.Join(dir, "ct.zip"))
	if err != nil {
		t.Skipf("Caltrain GTFS missing (%v): set CITYBRAIN_DATA", err)
	}
	dec, err := gtfsrt.NewDecoder(st, gtfsrt.Options{IDPrefix: "ct-"})
	if err != nil {
		t.Fatal(err)
	}
	var events []engine.Event
	err = dec.DecodeFiles([]string{filepath.Join(dir, "ct-vehicle-positions.pb"), filepath.Join(dir, "ct-trip-updates.pb")},
		func(e engine.Event) error { events = append(events, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, testConfig(t, t.TempDir()))
	feedEvents(t, s, events)
	waitWatermark(t, s, newestTS(events))
	var transit []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(transit) < 14 {
		getJSON(t, "http://"+s.Addr()+"/api/v1/transit?bbox=-122.6,37.0,-121.5,38.0", &transit)
		time.Sleep(20 * time.Millisecond)
	}
	if len(transit) < 14 {
		t.Fatalf("%d Caltrain vehicles on the transit layer from %d events", len(transit), len(events))
	}
	for _, v := range transit {
		if v["route"] == nil || v["mode"] == nil {
			t.Errorf("transit vehicle without route or mode: %v", v)
		}
	}
	if c := cells(t, s, "bbox=-122.6,37.0,-121.5,38.0&window=900s"); len(c) < 10 {
		t.Errorf("%d cells along the Caltrain line", len(c))
	}
}

// TestDeepStreamThroughTheSystem feeds the real DeepStream parking-garage messages, with the cameras placed
// on a surveyed grid (the sample's own positions are placeholders), through the system.
func TestDeepStreamThroughTheSystem(t *testing.T) {
	path := filepath.Join(dataDir(t), "deepstream", "parking-demo.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("DeepStream sample missing (%v): set CITYBRAIN_DATA", err)
	}
	// Every camera id of the sample, placed 100 m apart in Hangzhou.
	cams := map[string]deepstream.LatLng{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var m struct {
			Sensor struct {
				ID string `json:"id"`
			} `json:"sensor"`
		}
		if json.Unmarshal(line, &m) == nil && m.Sensor.ID != "" {
			if _, ok := cams[m.Sensor.ID]; !ok {
				n := len(cams)
				cams[m.Sensor.ID] = deepstream.LatLng{Lat: 30.25 + float64(n%8)*0.001, Lng: 120.16 + float64(n/8)*0.001}
			}
		}
	}
	if len(cams) < 20 {
		t.Fatalf("%d cameras found in the sample", len(cams))
	}
	dec, err := deepstream.NewDecoder(deepstream.Options{Name: path, Cameras: cams})
	if err != nil {
		t.Fatal(err)
	}
	var events []engine.Event
	emit := func(e engine.Event) error { events = append(events, e); return nil }
	if err := dec.Decode(bytes.NewReader(data), emit); err != nil {
		t.Fatal(err)
	}
	if err := dec.Flush(emit); err != nil {
		t.Fatal(err)
	}
	if len(events) < 100 {
		t.Fatalf("%d video events from the sample", len(events))
	}
	s := start(t, testConfig(t, t.TempDir()))
	feedEvents(t, s, events)
	waitWatermark(t, s, newestTS(events))
	var sensors []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(sensors) == 0 {
		getJSON(t, "http://"+s.Addr()+"/api/v1/sensors?bbox=120.15,30.24,120.18,30.27", &sensors)
		time.Sleep(20 * time.Millisecond)
	}
	counted := 0
	for _, c := range sensors {
		if c["asset"] == "camera" && c["type"] == "vehicle_count" {
			counted++
		}
	}
	if counted < 10 {
		t.Errorf("%d counting cameras on the sensors layer: %v", counted, sensors)
	}
	var events900 int
	for _, c := range cells(t, s, "bbox=120.15,30.24,120.18,30.27&window=900s") {
		events900 += c.Events
	}
	if events900 == 0 {
		t.Error("the cameras' cells hold no events")
	}
}
