package eval

import (
	"fmt"
	"testing"
)

func drawTruths(n int) []Truth {
	out := make([]Truth, n)
	for i := range out {
		out[i] = Truth{ID: fmt.Sprintf("blk-%d", i+1), Class: ClassFull, Lat: 45, Lng: 11 + float64(i)*0.01,
			Start: simTime(600), End: simTime(3000)}
	}
	return out
}

// callDraw is what the hotline drew for one blockage: how many calls and when the first came.
func callDraw(t Truth) string {
	if t.FirstCallS == nil {
		return fmt.Sprintf("%d", t.Reports)
	}
	return fmt.Sprintf("%d@%.3f", t.Reports, *t.FirstCallS)
}

// The hotline's calls are drawn per city, seed and blockage: blockage k of a seed gets its own calls in each
// city (c3 drew them from the seed alone, so blk-8 of seed 2 had no call in any city), and a blockage's calls
// do not depend on the blockages before it.
func TestHotlineCallsAreDrawnPerCityAndBlockage(t *testing.T) {
	const n = 40
	draw := func(city string, seed int64, truths []Truth) map[string]string {
		hotlineCalls(city, seed, truths, 3600)
		out := map[string]string{}
		for _, tr := range truths {
			out[tr.ID] = callDraw(tr)
		}
		return out
	}
	a, again := draw("monaco", 2, drawTruths(n)), draw("monaco", 2, drawTruths(n))
	b, s3 := draw("grid", 2, drawTruths(n)), draw("monaco", 3, drawTruths(n))
	same, sameSeed, calls := 0, 0, 0
	for id, d := range a {
		if again[id] != d {
			t.Errorf("%s: two draws of the same city and seed differ: %s, %s", id, d, again[id])
		}
		if b[id] == d {
			same++
		}
		if s3[id] == d {
			sameSeed++
		}
		if d != "0" {
			calls++
		}
	}
	if same > n/10 || sameSeed > n/10 {
		t.Errorf("of %d blockages %d got the same calls in monaco and grid (seed 2), %d in monaco's seeds 2 and 3; want independent draws", n, same, sameSeed)
	}
	if calls < n*3/4 {
		t.Errorf("%d of %d full closures got a call; want about 90 %%", calls, n)
	}
	// Without blk-1 the others' calls are unchanged.
	rest := draw("monaco", 2, drawTruths(n)[1:])
	for id, d := range rest {
		if a[id] != d {
			t.Errorf("%s: its calls changed with blk-1 left out: %s, %s", id, a[id], d)
		}
	}
}

// A camera's planted false alarms are drawn per city and seed, and per camera.
func TestPlantedFalseAlarmsAreDrawnPerCityAndCamera(t *testing.T) {
	var cams []Camera
	for i := 0; i < 30; i++ {
		cams = append(cams, Camera{ID: fmt.Sprintf("cam-%d", i), Lat: 45, Lng: 11 + float64(i)*0.01})
	}
	times := func(city string, seed int64, cams []Camera) map[string]string {
		out := map[string]string{}
		for _, e := range plantedFalseAlarms(city, seed, cams, 3600) {
			out[e.ID] += fmt.Sprintf("%d,", e.TS)
		}
		return out
	}
	a, b, s3 := times("monaco", 2, cams), times("grid", 2, cams), times("monaco", 3, cams)
	if len(a) < 5 {
		t.Fatalf("only %d of 30 cameras planted a false alarm in an hour", len(a))
	}
	same, sameSeed := 0, 0
	for id, ts := range a {
		if b[id] == ts {
			same++
		}
		if s3[id] == ts {
			sameSeed++
		}
	}
	if same > 1 || sameSeed > 1 {
		t.Errorf("%d of %d cameras planted the same false alarms in monaco and grid (seed 2), %d in monaco's seeds 2 and 3", same, len(a), sameSeed)
	}
	rest := times("monaco", 2, cams[1:])
	for id, ts := range rest {
		if a[id] != ts {
			t.Errorf("%s: its false alarms changed with cam-0 left out", id)
		}
	}
}

// Which vehicles carry a probe is drawn per run: Bologna's own demand (the same vehicles every seed) had the
// same probe fleet on every seed, and vehicle k of every generated city was a probe alike.
func TestProbesAreDrawnPerCityAndSeed(t *testing.T) {
	fleet := func(city string, seed int64) (map[string]bool, int) {
		p := &processor{probe: drawSeed(city, seed, "probes")}
		out, low := map[string]bool{}, 0
		for i := 0; i < 20000; i++ {
			id := fmt.Sprint(i)
			if p.isProbe(id) {
				out[id] = true
				if p.lowProbe(id) {
					low++
				}
			}
		}
		return out, low
	}
	a, low := fleet("bologna", 1)
	if share := float64(len(a)) / 20000; share < 0.14 || share > 0.16 {
		t.Fatalf("probe share %.3f; want %.2f", share, ProbeShare)
	}
	if share := float64(low) / 20000; share < 0.045 || share > 0.055 {
		t.Errorf("low-penetration share %.3f; want %.2f", share, ProbeShareLow)
	}
	for _, other := range []struct {
		city string
		seed int64
	}{{"bologna", 2}, {"grid", 1}} {
		b, _ := fleet(other.city, other.seed)
		both := 0
		for id := range a {
			if b[id] {
				both++
			}
		}
		// Independent fleets share about ProbeShare of their vehicles.
		if f := float64(both) / float64(len(a)); f > 0.2 {
			t.Errorf("bologna seed 1 and %s seed %d share %.0f %% of their probe vehicles; want about %.0f %%", other.city, other.seed, 100*f, 100*ProbeShare)
		}
	}
}
