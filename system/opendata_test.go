package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"citybrain/geo"
)

// openDay is a day of probes: 4 vehicles in each of 3 cells every minute from 08:00 to 08:20 (UTC), a crash
// reported by a caller, then one probe the next day so the day is complete.
func openDay(net *geo.Network) []byte {
	var b bytes.Buffer
	var pts [][2]float64 // midpoints of three links far apart
	for i := 0; len(pts) < 3; i += len(net.Links()) / 3 {
		p, _ := net.Links()[i].PointAt(net.Links()[i].GeomLengthM() / 2)
		pts = append(pts, [2]float64{p.Lat, p.Lng})
	}
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for m := 0; m <= 20; m++ {
		for pi, p := range pts {
			for v := 0; v < 4; v++ {
				fmt.Fprintf(&b, `{"kind":"probe","ts":%d,"id":"veh-%d-%d","lat":%f,"lng":%f,"speed_kmh":%d}`+"\n",
					t0.Add(time.Duration(m)*time.Minute+time.Duration(v)*time.Second).UnixMilli(), pi, v, p[0], p[1], 20+5*v)
			}
		}
	}
	fmt.Fprintf(&b, `{"kind":"report","ts":%d,"id":"call-122-555-0100","lat":30.2506,"lng":120.1702,"type":"crash","severity":4,"text":"my plate is ZJ-A12345"}`+"\n", t0.Add(10*time.Minute).UnixMilli())
	fmt.Fprintf(&b, `{"kind":"video","ts":%d,"id":"cam-0412","lat":30.2504,"lng":120.1699,"type":"crash","confidence":0.9}`+"\n", t0.Add(10*time.Minute+5*time.Second).UnixMilli())
	fmt.Fprintf(&b, `{"kind":"probe","ts":%d,"id":"veh-late","lat":30.2528,"lng":120.1675,"speed_kmh":30}`+"\n", time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC).UnixMilli())
	return b.Bytes()
}

func getBody(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	return do(t, "GET", url, token, nil)
}

// A day's open data: the catalogue lists it, its Parquet files read back (Arrow's Parquet reader here;
// DuckDB in the web tests when present) with the expected columns and rows, and no file carries a vehicle,
// caller or camera id; the public role reads open data and nothing else; the API is rate-limited.
func TestOpenDataDay(t *testing.T) {
	dir := t.TempDir()
	authPath := filepath.Join(dir, "auth.json")
	os.WriteFile(authPath, []byte(`{"tokens":[{"name":"feed","role":"feed","token":"feedtok"},{"name":"anyone","role":"public","token":"pubtok"}]}`), 0o600)
	cfg := testConfig(t, dir)
	cfg.AuthFile = authPath
	cfg.OpenDataPerMinute = 40 // bursts of 10
	cfg.Network = geo.GenerateWestLake(1)
	s := start(t, cfg)
	base := "http://" + s.Addr()
	if code, out := post(t, s, "application/x-ndjson", openDay(cfg.Network), map[string]string{"Authorization": "Bearer feedtok"}); code != 200 {
		t.Fatalf("post: %d %v", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Engine.Status().Watermark < time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC).UnixMilli() || len(s.Engine.Incidents()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("engine never caught up: %+v", s.Engine.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}

	if code, _ := getBody(t, base+"/api/v1/opendata", ""); code != 401 {
		t.Fatalf("catalogue without token under auth config: %d, want 401", code)
	}
	if code, _ := getBody(t, base+"/api/v1/incidents", "pubtok"); code != 403 {
		t.Fatalf("public token on the operational API: %d, want 403", code)
	}
	code, body := getBody(t, base+"/api/v1/opendata", "pubtok")
	if code != 200 {
		t.Fatalf("catalogue: %d %s", code, body)
	}
	var cat struct {
		Datasets []struct {
			ID    string `json:"dct:identifier"`
			Dists []struct {
				URL string `json:"dcat:downloadURL"`
			} `json:"dcat:distribution"`
		} `json:"dcat:dataset"`
	}
	json.Unmarshal(body, &cat)
	urls := map[string]bool{}
	for _, d := range cat.Datasets {
		for _, x := range d.Dists {
			urls[strings.TrimPrefix(x.URL, base)] = true
		}
	}
	for _, want := range []string{"/api/v1/opendata/cells/2026-11-27.parquet", "/api/v1/opendata/incidents/2026-11-27.geojson", "/api/v1/opendata/links/2026-11-27.parquet"} {
		if !urls[want] {
			t.Fatalf("catalogue lacks %s: %s", want, body)
		}
	}

	files := map[string][]byte{}
	for _, p := range []string{"cells/2026-11-27.parquet", "links/2026-11-27.parquet", "incidents/2026-11-27.parquet", "cells/2026-11-27.geojson", "incidents/2026-11-27.geojson"} {
		code, data := getBody(t, base+"/api/v1/opendata/"+p, "pubtok")
		if code != 200 {
			t.Fatalf("%s: %d %s", p, code, data)
		}
		files[p] = data
		for _, id := range []string{"veh-", "call-122", "555-0100", "ZJ-A12345", "cam-0412"} {
			if bytes.Contains(data, []byte(id)) {
				t.Fatalf("%s carries %q", p, id)
			}
		}
	}
	// Read the Parquet files back.
	cells := readParquet(t, files["cells/2026-11-27.parquet"])
	if cells["cell"] == 0 || cells["rows"] < 3*4 || cells["tpi"] == 0 {
		t.Fatalf("cells file: %v", cells)
	}
	inc := readParquet(t, files["incidents/2026-11-27.parquet"])
	if inc["rows"] != 1 || inc["evidence_kinds"] == 0 {
		t.Fatalf("incidents file: %v", inc)
	}
	links := readParquet(t, files["links/2026-11-27.parquet"])
	if links["rows"] == 0 {
		t.Fatalf("links file: %v", links)
	}
	// The day is complete: its history is cached on disk.
	if _, err := os.Stat(filepath.Join(dir, "opendata", "cells", "2026-11-27.parquet")); err != nil {
		t.Fatalf("complete day not cached: %v", err)
	}
	if os.Getenv("CITYBRAIN_OPENDATA_OUT") != "" { // for the DuckDB read-back (scripts/opendata-duckdb.mjs)
		os.WriteFile(os.Getenv("CITYBRAIN_OPENDATA_OUT"), files["cells/2026-11-27.parquet"], 0o644)
	}
	// Rate limit: a burst of requests meets 429 with Retry-After.
	limited := false
	for i := 0; i < 30 && !limited; i++ {
		code, _ := getBody(t, base+"/api/v1/opendata", "pubtok")
		limited = code == 429
	}
	if !limited {
		t.Fatal("no 429 after 30 quick requests at 40 a minute")
	}
}

// readParquet returns the row count ("rows") and, per column, 1 when present.
func readParquet(t *testing.T, data []byte) map[string]int {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parquet: %v", err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	out := map[string]int{"rows": int(tbl.NumRows())}
	for i := 0; i < int(tbl.NumCols()); i++ {
		out[tbl.Schema().Field(i).Name] = 1
	}
	return out
}
