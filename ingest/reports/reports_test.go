package reports

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/internal/datadir"
)

func TestAustin(t *testing.T) {
	b, err := os.ReadFile(datadir.Path(t, "incidents/austin-2025-12-07_to_14.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := NewDecoder(Options{Name: "austin"})
	types := map[string]int{}
	var first engine.Event
	err = d.Decode(bytes.NewReader(b), func(e engine.Event) error {
		if d.Emitted == 1 {
			first = e
		}
		if err := ingest.Validate(&e); err != nil {
			t.Fatal(err)
		}
		types[e.Type]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 971 records: one at 0/0 and one with latitude 29959065 (a real data error) are skipped.
	if d.Emitted != 969 || d.Skipped.Count("no position (lat/lng 0/0)") != 1 || d.Skipped.Count("invalid event") != 1 || len(d.Unmapped) != 0 {
		t.Fatalf("%d emitted, %s, unmapped %v", d.Emitted, &d.Skipped, d.Unmapped)
	}
	if r, _ := d.Skipped.First("invalid event"); r.Where != "austin line 400" || !strings.Contains(r.Detail, "lat") {
		t.Fatalf("invalid event skip %+v, want line 400 naming lat", r)
	}
	// Counts by type from the source labels: 265+142+96+27+19+5+1 crashes less the skipped one, 228+102+42+35 hazards.
	if types["crash"] != 554 || types["hazard"] != 406 || types["road_closure"] != 5 || types["fire"] != 4 {
		t.Fatalf("types %v", types)
	}
	if first.Type != "crash" || first.Severity != 2 || first.Text != "Crash Service" || first.Lat != 30.262083 || first.Source != "austin-traffic" {
		t.Fatalf("first event %+v", first)
	}
}

func TestMappingFilesAndArray(t *testing.T) {
	m, err := ReadMappingCSV(strings.NewReader("source_type,type,severity\nFlooded Road,flood,4\n*,other,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMappingCSV(strings.NewReader("source_type,type,severity\nX,storm,4\n")); err == nil {
		t.Fatal("type storm accepted")
	}
	if _, err := ReadMappingJSON(strings.NewReader(`{"X":{"type":"crash","severity":9}}`)); err == nil {
		t.Fatal("severity 9 accepted")
	}
	in := `[{"traffic_report_id":"a","published_date_utc":"2025-12-07T01:24:00Z","issue_reported":"FLOODED  road","latitude":"30.1","longitude":"-97.7"},
{"traffic_report_id":"b","published_date_utc":"yesterday","issue_reported":"x","latitude":30,"longitude":-97}]`
	d, _ := NewDecoder(Options{Mapping: m})
	var evs []engine.Event
	if err := d.Decode(strings.NewReader(in), func(e engine.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "flood" || evs[0].Severity != 4 || evs[0].Lat != 30.1 {
		t.Fatalf("events %+v", evs)
	}
	if r, _ := d.Skipped.First("bad time (field published_date_utc)"); r.Where != "input element 2" {
		t.Fatalf("skips %s", &d.Skipped)
	}
}

func FuzzIncidents(f *testing.F) {
	f.Add([]byte(`[{"traffic_report_id":"a","published_date_utc":"2025-12-07T01:24:00Z","issue_reported":"x","latitude":"30.1","longitude":"-97.7"}]`))
	if p := datadir.Path(f, "incidents/austin-2025-12-07_to_14.ndjson"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.SplitN(b, []byte("\n"), 5)[:4] {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := NewDecoder(Options{})
		n := 0
		_ = d.Decode(bytes.NewReader(b), func(e engine.Event) error {
			n++
			if err := ingest.Validate(&e); err != nil {
				t.Fatalf("emitted an invalid event %+v: %v", e, err)
			}
			return nil
		})
		if n != d.Emitted {
			t.Fatalf("emitted %d, counted %d", n, d.Emitted)
		}
	})
}

func BenchmarkAustin(b *testing.B) {
	in, err := os.ReadFile(datadir.Path(b, "incidents/austin-2025-12-07_to_14.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	n := 0
	for b.Loop() {
		d, _ := NewDecoder(Options{})
		_ = d.Decode(bytes.NewReader(in), func(engine.Event) error { n++; return nil })
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
