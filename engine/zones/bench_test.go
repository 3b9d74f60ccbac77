package zones_test

import (
	"testing"
	"time"

	"citybrain/bench"
)

// TestZoneLoadShort runs the make-bench zones workload briefly: 1,000 zones must be built and judged without
// error and fire alerts (the figures themselves are for make bench).
func TestZoneLoadShort(t *testing.T) {
	r := bench.ZoneLoad(1000, 200*time.Millisecond, 9)
	if r.EventsPerSec <= 0 || r.AlertsFired == 0 || r.BytesPerZone <= 0 {
		t.Fatalf("zone load: %+v", r)
	}
	t.Logf("1,000 zones: %.0f events/s, %.0f bytes/zone, %d alerts", r.EventsPerSec, r.BytesPerZone, r.AlertsFired)
}

func BenchmarkZones10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r := bench.ZoneLoad(10_000, 2*time.Second, 9)
		b.ReportMetric(r.EventsPerSec, "events/s")
		b.ReportMetric(r.EventsPerCPUSec, "events/cpu-s")
		b.ReportMetric(r.BytesPerZone, "B/zone")
	}
}
