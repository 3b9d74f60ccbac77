package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/geo"
)

// TestNetworkSummaryWarnsWithoutSignals loads the demo city written as GeoJSON lines (the map writer's output has
// no signals) through run's loader: the summary warns that no junction is signalised. With a
// highway=traffic_signals point on each of the demo city's signalised junctions the same file loads with all of
// them signalised and no warning.
func TestNetworkSummaryWarnsWithoutSignals(t *testing.T) {
	city := geo.GenerateWestLake(1)
	want := 0
	for _, nd := range city.Nodes() {
		if nd.Signalised {
			want++
		}
	}
	if lines := networkSummary("demo", city); len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("(%d signalised)", want)) {
		t.Fatalf("demo city summary = %q, want one line with %d signalised", lines, want)
	}

	dir := t.TempDir()
	roads := string(city.GeoJSON(city.BBox(), 18))
	plain := filepath.Join(dir, "roads.geojson")
	if err := os.WriteFile(plain, []byte(roads), 0o644); err != nil {
		t.Fatal(err)
	}
	net, err := loadNetwork(plain)
	if err != nil {
		t.Fatal(err)
	}
	lines := networkSummary(plain, net)
	if len(lines) != 2 || !strings.Contains(lines[0], "(0 signalised)") || !strings.Contains(lines[1], "no signalised junction") ||
		!strings.Contains(lines[1], "far fewer closures") {
		t.Fatalf("GeoJSON without signals: summary = %q, want the no-signal warning", lines)
	}

	var b strings.Builder
	b.WriteString(strings.TrimSuffix(roads, "]}"))
	for _, nd := range city.Nodes() {
		if nd.Signalised {
			fmt.Fprintf(&b, `,{"type":"Feature","properties":{"highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[%.7f,%.7f]}}`, nd.Lng, nd.Lat)
		}
	}
	b.WriteString("]}")
	signals := filepath.Join(dir, "roads-signals.geojson")
	if err := os.WriteFile(signals, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if net, err = loadNetwork(signals); err != nil {
		t.Fatal(err)
	}
	if lines := networkSummary(signals, net); len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("(%d signalised)", want)) {
		t.Fatalf("GeoJSON with signal points: summary = %q, want one line with %d signalised", lines, want)
	}
}
