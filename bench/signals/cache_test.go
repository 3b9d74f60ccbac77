package signals

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCacheKeyPortable: a built-in scenario written under two working directories keys the same run the same
// way (two concurrent experiments, each with its own --work, share one cache), a scenario given by a path
// outside the working directory keys on that path, and a cache written under the old absolute-path key is
// still found and carried over to the portable key.
func TestCacheKeyPortable(t *testing.T) {
	o := Defaults()
	o.fill() // as RunCached keys it
	a := &Scenario{Name: "grid", Config: "/tmp/wa/grid/grid.sumocfg", Work: "/tmp/wa/grid", EndS: 600}
	b := &Scenario{Name: "grid", Config: "/tmp/wb/grid/grid.sumocfg", Work: "/tmp/wb/grid", EndS: 600}
	if cacheKey(a, CityBrain, o) != cacheKey(b, CityBrain, o) {
		t.Fatalf("same run under two work dirs: keys %s, %s", cacheKey(a, CityBrain, o), cacheKey(b, CityBrain, o))
	}
	if cacheKey(a, Fixed, o) != cacheKey(b, Fixed, o) {
		t.Fatal("baseline keys differ between work dirs")
	}
	c := &Scenario{Name: "grid", Config: "/data/other/grid.sumocfg", Work: "/tmp/wa/grid", EndS: 600}
	if cacheKey(a, CityBrain, o) == cacheKey(c, CityBrain, o) {
		t.Fatal("a scenario outside the work dir keys like the built-in one")
	}
	o2 := o
	o2.Control.MinGreenS++
	if cacheKey(a, CityBrain, o) == cacheKey(a, CityBrain, o2) {
		t.Fatal("the controller's tuning does not key the run")
	}
	if cacheKey(a, Fixed, o) != cacheKey(a, Fixed, o2) {
		t.Fatal("the controller's tuning keys a baseline run")
	}

	dir := t.TempDir()
	want := Result{Scenario: "grid", Method: Fixed, Seed: 1, Scale: 1, MeanTimeLossS: 42}
	js, _ := json.Marshal(want)
	if err := os.WriteFile(filepath.Join(dir, legacyCacheKey(a, Fixed, o)+".json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	got, hit, err := RunCached(t.Context(), a, Fixed, o, dir)
	if err != nil || !hit || got.MeanTimeLossS != 42 {
		t.Fatalf("legacy cache entry: hit %v, %+v, %v", hit, got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheKey(a, Fixed, o)+".json")); err != nil {
		t.Fatalf("legacy entry not carried over to the portable key: %v", err)
	}
}
