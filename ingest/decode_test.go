package ingest

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/engine"
)

// specExamples are the example lines of spec/events.md, byte for byte.
var specExamples = []string{
	`{"kind":"probe","ts":"2026-11-27T08:00:00.250+08:00","id":"veh-1182","lat":30.2528,"lng":120.1675,"speed_kmh":23.5,"heading_deg":92}`,
	`{"kind":"detector","ts":1795737600000,"id":"det-yanan-n-2","lat":30.2581,"lng":120.1662,"flow_vph":1320,"occupancy":0.31,"speed_kmh":18.2,"interval_s":30}`,
	`{"kind":"video","ts":"2026-11-27T08:00:05+08:00","id":"cam-0412","lat":30.2504,"lng":120.1699,"type":"stalled_vehicle","confidence":0.83}`,
	`{"kind":"report","ts":"2026-11-27T08:00:41+08:00","id":"call-122-88231","lat":30.2506,"lng":120.1702,"type":"crash","severity":3,"source":"hotline-122"}`,
	`{"kind":"unit","ts":"2026-11-27T08:00:42+08:00","id":"amb-07","lat":30.2611,"lng":120.1588,"unit_type":"ambulance","status":"available"}`,
}

func TestSpecExamplesDecode(t *testing.T) {
	for _, line := range specExamples {
		ev, err := DecodeEvent([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		// Round trip through the encoder gives the same event.
		again, err := DecodeEvent(AppendJSON(nil, &ev))
		if err != nil {
			t.Fatalf("re-encoded %s: %v", AppendJSON(nil, &ev), err)
		}
		if !sameEvent(ev, again) {
			t.Errorf("round trip changed %+v into %+v", ev, again)
		}
	}
	ev, _ := DecodeEvent([]byte(specExamples[0]))
	if ev.Kind != engine.KindProbe || ev.TS != 1795737600250 || ev.SpeedKmh != 23.5 || ev.HeadingDeg != 92 || ev.ID != "veh-1182" {
		t.Errorf("probe decoded as %+v", ev)
	}
	ev, _ = DecodeEvent([]byte(specExamples[3]))
	if ev.Severity != 3 || ev.Source != "hotline-122" || ev.Type != "crash" {
		t.Errorf("report decoded as %+v", ev)
	}
}

func sameEvent(a, b engine.Event) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.Kind == b.Kind && a.TS == b.TS && a.ID == b.ID && eq(a.Lat, b.Lat) && eq(a.Lng, b.Lng) &&
		a.Source == b.Source && eq(a.SpeedKmh, b.SpeedKmh) && eq(a.HeadingDeg, b.HeadingDeg) &&
		eq(a.FlowVph, b.FlowVph) && eq(a.Occupancy, b.Occupancy) && eq(a.IntervalS, b.IntervalS) &&
		a.Lane == b.Lane && a.Route == b.Route && eq(a.DelayS, b.DelayS) && a.Mode == b.Mode && eq(a.Load, b.Load) &&
		a.Type == b.Type && eq(a.Confidence, b.Confidence) && eq(a.Count, b.Count) && eq(a.QueueM, b.QueueM) &&
		a.Severity == b.Severity && a.Text == b.Text && a.UnitType == b.UnitType && a.Status == b.Status &&
		eq(a.Value, b.Value) && a.Unit == b.Unit && eq(a.Threshold, b.Threshold)
}

func TestDecodeRejectsWithField(t *testing.T) {
	base := `"ts":1795737600000,"id":"x","lat":30.25,"lng":120.16`
	cases := []struct {
		line, field string
	}{
		{`{` + base + `,"speed_kmh":1}`, "kind"},
		{`{"kind":"bicycle",` + base + `}`, "kind"},
		{`{"kind":"probe","id":"x","lat":30.25,"lng":120.16,"speed_kmh":1}`, "ts"},
		{`{"kind":"probe","ts":"2026-11-27T08:00:00","id":"x","lat":30.25,"lng":120.16,"speed_kmh":1}`, "ts"}, // no zone
		{`{"kind":"probe","ts":1795737600000.5,"id":"x","lat":30.25,"lng":120.16,"speed_kmh":1}`, "ts"},
		{`{"kind":"probe","ts":1795737600,"id":"x","lat":30.25,"lng":120.16,"speed_kmh":1}`, "ts"}, // seconds
		{`{"kind":"probe","ts":1795737600000,"id":"","lat":30.25,"lng":120.16,"speed_kmh":1}`, "id"},
		{`{"kind":"probe","ts":1795737600000,"id":"` + strings.Repeat("x", 129) + `","lat":30.25,"lng":120.16,"speed_kmh":1}`, "id"},
		{`{"kind":"probe","ts":1795737600000,"id":"x","lat":91,"lng":120.16,"speed_kmh":1}`, "lat"},
		{`{"kind":"probe","ts":1795737600000,"id":"x","lat":30,"lng":-181,"speed_kmh":1}`, "lng"},
		{`{"kind":"probe","ts":1795737600000,"id":"x","lat":0,"lng":0,"speed_kmh":1}`, "lat"},
		{`{"kind":"probe","ts":1795737600000,"id":"x","lat":"30","lng":120,"speed_kmh":1}`, "lat"},
		{`{"kind":"probe",` + base + `}`, "speed_kmh"},
		{`{"kind":"probe",` + base + `,"speed_kmh":-1}`, "speed_kmh"},
		{`{"kind":"probe",` + base + `,"speed_kmh":1,"heading_deg":361}`, "heading_deg"},
		{`{"kind":"detector",` + base + `,"flow_vph":10,"occupancy":0.1,"interval_s":30}`, "speed_kmh"},
		{`{"kind":"detector",` + base + `,"flow_vph":10,"occupancy":1.1,"speed_kmh":3,"interval_s":30}`, "occupancy"},
		{`{"kind":"detector",` + base + `,"flow_vph":10,"occupancy":0.1,"speed_kmh":3,"interval_s":0}`, "interval_s"},
		{`{"kind":"transit",` + base + `,"route":"K9","speed_kmh":3,"mode":"boat"}`, "mode"},
		{`{"kind":"transit",` + base + `,"speed_kmh":3,"mode":"bus"}`, "route"},
		{`{"kind":"video",` + base + `,"type":"crash"}`, "confidence"},
		{`{"kind":"video",` + base + `,"type":"ufo","confidence":0.5}`, "type"},
		{`{"kind":"video",` + base + `,"type":"vehicle_count"}`, "count"},
		{`{"kind":"video",` + base + `,"type":"queue","confidence":0.5}`, "queue_m"},
		{`{"kind":"report",` + base + `,"type":"crash","severity":6}`, "severity"},
		{`{"kind":"report",` + base + `,"type":"crash","severity":2.5}`, "severity"},
		{`{"kind":"report",` + base + `,"type":"alien","severity":2}`, "type"},
		{`{"kind":"unit",` + base + `,"unit_type":"ambulance","status":"napping"}`, "status"},
		{`{"kind":"unit",` + base + `,"unit_type":"taxi","status":"available"}`, "unit_type"},
		{`{"kind":"sensor",` + base + `,"type":"water_level","unit":"m"}`, "value"},
		{`{"kind":"sensor",` + base + `,"type":"water_level","value":1}`, "unit"},
	}
	for _, c := range cases {
		_, err := DecodeEvent([]byte(c.line))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: error %v, want one naming field %s", c.line, err, c.field)
		}
	}
	for _, bad := range []string{`{`, `{"kind":"probe",}`, `[1]`, `{"kind":"probe"} x`, `{"kind":"pro\u0000be"}`, "{\"id\":\"\xff\"}"} {
		if _, err := DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	// Unknown fields (nested too), nulls for optional fields, escapes, lane as number, whitespace.
	line := ` { "kind" : "detector", "ts":1795737600000, "id":"d\u00e9t\n1", "lat":30.25, "lng":120.16,
	  "flow_vph":0, "occupancy":0, "interval_s":30, "speed_kmh":null, "lane":2,
	  "extra":{"a":[1,2,{"b":null}],"c":"}"}, "source":null } `
	ev, err := DecodeEvent([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "dét\n1" || ev.Lane != "2" || engine.Has(ev.SpeedKmh) || ev.Source != "" {
		t.Errorf("decoded %+v", ev)
	}
}

func TestDecodeBatchLines(t *testing.T) {
	body := specExamples[0] + "\r\n\n" + `{"kind":"probe"}` + "\n" + specExamples[1]
	var ok []int
	var bad []LineError
	err := DecodeLines([]byte(body), func(line int, raw []byte, ev engine.Event, err error) {
		if err != nil {
			bad = append(bad, LineError{Line: line, Err: err})
			return
		}
		ok = append(ok, line)
	})
	if err != nil || len(ok) != 2 || ok[0] != 1 || ok[1] != 4 || len(bad) != 1 || bad[0].Line != 3 {
		t.Errorf("ok %v bad %v err %v", ok, bad, err)
	}
	// JSON array: elements count as lines.
	arr := "[" + specExamples[0] + ", {\"kind\":1}," + specExamples[2] + "]"
	ok, bad = nil, nil
	err = DecodeLines([]byte(arr), func(line int, raw []byte, ev engine.Event, err error) {
		if err != nil {
			bad = append(bad, LineError{Line: line, Err: err})
			return
		}
		ok = append(ok, line)
	})
	if err != nil || len(ok) != 2 || len(bad) != 1 || bad[0].Line != 2 {
		t.Errorf("array: ok %v bad %v err %v", ok, bad, err)
	}
	for _, notBatch := range []string{"[" + specExamples[0], "[1,]", "[] x"} {
		if err := DecodeLines([]byte(notBatch), func(int, []byte, engine.Event, error) {}); err == nil {
			t.Errorf("%q: no error for a broken array", notBatch)
		}
	}
}

func realSeeds(f *testing.F) {
	for _, l := range specExamples {
		f.Add([]byte(l))
	}
	f.Add([]byte(strings.Join(specExamples, "\n")))
	f.Add([]byte("[" + strings.Join(specExamples, ",") + "]"))
	// Real records of the shared data, to seed the fuzzer with field shapes from the wild.
	dir := os.Getenv("CITYBRAIN_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data")
	}
	if data, err := os.ReadFile(filepath.Join(dir, "incidents", "austin-2025-12-07_to_14.ndjson")); err == nil {
		lines := bytes.SplitN(data, []byte("\n"), 4)
		for _, l := range lines[:3] {
			f.Add(l)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	realSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		err := DecodeLines(body, func(line int, raw []byte, ev engine.Event, err error) {
			n++
			if line < 1 {
				t.Fatalf("line %d", line)
			}
			if err != nil {
				return
			}
			if vErr := Validate(&ev); vErr != nil {
				t.Fatalf("accepted an invalid event: %v", vErr)
			}
			// Whatever is accepted survives the encoder.
			again, err := DecodeEvent(AppendJSON(nil, &ev))
			if err != nil || !sameEvent(ev, again) {
				t.Fatalf("round trip of %+v: %v %+v", ev, err, again)
			}
		})
		_ = err
	})
}

func BenchmarkDecodeProbe(b *testing.B) {
	var body []byte
	for i := 0; i < 1000; i++ {
		body = append(body, specExamples[0]...)
		body = append(body, '\n')
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		DecodeBatch(body, func(engine.Event) {}, func(LineError) { b.Fatal("rejected") })
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
}
