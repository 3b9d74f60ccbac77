package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/ingest"
)

// dataPath returns rel inside $CITYBRAIN_DATA, else ../../../shared/data from this package, or skips.
func dataPath(t *testing.T, rel string) string {
	t.Helper()
	base := os.Getenv("CITYBRAIN_DATA")
	if base == "" {
		base = filepath.Join("..", "..", "..", "shared", "data")
	}
	p := filepath.Join(base, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s unavailable (%v): set CITYBRAIN_DATA to the shared data directory", rel, err)
	}
	return p
}

// captureStdout runs fn with os.Stdout redirected and returns what it printed.
func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	ferr := fn()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatalf("feedMain: %v", ferr)
	}
	return string(out)
}

func TestFeedMainStdout(t *testing.T) {
	gt := dataPath(t, "gtfs/caltrain")
	ml := dataPath(t, "metr-la")
	inc := dataPath(t, "incidents/austin-2025-12-07_to_14.ndjson")
	ds := dataPath(t, "deepstream/parking-demo.json")
	cams := writeCameras(t, ds)
	cases := []struct {
		name string
		args []string
		min  int
	}{
		{"gtfs-rt", []string{"gtfs-rt", gt + "/ct-vehicle-positions.pb", gt + "/ct-trip-updates.pb", "--static", gt + "/ct.zip", "--id-prefix", "ct-"}, 19},
		{"incidents", []string{"incidents", inc}, 969}, // 2 records have a bad position
		{"deepstream", []string{"deepstream", ds, "--cameras", cams}, 100},
		{"metr-la", []string{"metr-la", ml + "/speed_2012-03-01_to_03-05_5min.csv", "--locations", ml + "/sensor_locations.csv", "--batch", "1000"}, 207 * 1440},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := captureStdout(t, func() error { return feedMain(c.args) })
			n := 0
			err := ingest.DecodeBatch([]byte(out), func(engine.Event) { n++ }, func(le ingest.LineError) { t.Errorf("line %d rejected by the ingest decoder: %v", le.Line, le.Err) })
			if err != nil {
				t.Fatal(err)
			}
			if n < c.min || n != strings.Count(out, "\n") {
				t.Fatalf("%d events decoded from %d lines, want at least %d", n, strings.Count(out, "\n"), c.min)
			}
		})
	}
}

func TestFeedMainErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope", "x"}, {"incidents"}, {"incidents", "/nonexistent.ndjson"}, {"incidents", "x", "--to", "ftp://h"}, {"metr-la", "x.csv"}} {
		if err := feedMain(args); err == nil {
			t.Errorf("feedMain(%q) = nil, want an error", args)
		}
	}
	if !bytes.Contains([]byte(feedUsage()), []byte("gtfs-rt")) {
		t.Error("usage does not list gtfs-rt")
	}
}

// writeCameras writes a cameras.csv fixture giving every camera of the DeepStream sample a made-up position
// around the sample's parking garage (the payload positions are placeholders).
func writeCameras(t *testing.T, sample string) string {
	t.Helper()
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out strings.Builder
	out.WriteString("id,lat,lng\n")
	for i, m := range regexp.MustCompile(`"sensor": \{"id": "([^"]+)"`).FindAllSubmatch(b, -1) {
		if id := string(m[1]); !seen[id] {
			seen[id] = true
			fmt.Fprintf(&out, "%s,%.6f,%.6f\n", id, 37.3710+float64(i%7)*0.0001, -121.9668+float64(i%5)*0.0001)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no sensor ids found in the DeepStream sample")
	}
	p := filepath.Join(t.TempDir(), "cameras.csv")
	if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
