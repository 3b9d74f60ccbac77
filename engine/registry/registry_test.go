package registry

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/schema"
)

// batch is a record of events of kind k with the given ids, at ts.
func batch(t testing.TB, k schema.Kind, ids []string, ts int64) arrow.Record {
	t.Helper()
	bb := schema.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for _, id := range ids {
		e := schema.NewEvent(k)
		e.TS, e.ID, e.Lat, e.Lng = ts, id, 30.25, 120.15
		switch k {
		case schema.KindUnit:
			e.UnitType, e.Status = "ambulance", "available"
		case schema.KindSensor:
			e.Type, e.Value, e.Unit = "water_level", 1, "m"
		}
		bb.Append(&e, 0)
	}
	return bb.NewRecord()
}

func ids(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, from+i)
	}
	return out
}

func track(t testing.TB, r *Registry, rec arrow.Record) {
	r.Track(rec)
	rec.Release()
}

// A full table forgets the unit (asset) updated longest ago, not one updated recently.
func TestFullTablesForgetTheLeastRecentlyUpdated(t *testing.T) {
	r := newRegistry(1000, 1000)
	track(t, r, batch(t, schema.KindUnit, ids("u", 0, 1000), 1000))
	track(t, r, batch(t, schema.KindSensor, ids("s", 0, 1000), 1000))
	track(t, r, batch(t, schema.KindUnit, []string{"u0"}, 2000)) // u0 is the most recent now
	track(t, r, batch(t, schema.KindSensor, []string{"s0"}, 2000))
	track(t, r, batch(t, schema.KindUnit, ids("new", 0, 50), 3000))
	track(t, r, batch(t, schema.KindSensor, ids("new", 0, 50), 3000))
	if len(r.units) != 1000 || len(r.assets) != 1000 {
		t.Fatalf("%d units, %d assets, want 1000 each", len(r.units), len(r.assets))
	}
	if _, ok := r.units["u0"]; !ok {
		t.Error("the unit updated last was forgotten")
	}
	if _, ok := r.assets[assetKey{schema.KindSensor, "s0"}]; !ok {
		t.Error("the sensor updated last was forgotten")
	}
	for i := 1; i <= 50; i++ {
		if _, ok := r.units[fmt.Sprintf("u%d", i)]; ok {
			t.Errorf("u%d (updated longest ago) is still there", i)
			break
		}
	}
	if _, ok := r.units["u51"]; !ok {
		t.Error("u51 was forgotten before its turn")
	}
}

// Table row 7 of issue 15: 5,000 new unit ids once the table was full cost 7.8 s of CPU in the engine's
// apply path, a scan of the whole table per eviction. Now an eviction is O(1): 5,000 new ids cost about the
// same against a full table of 100,000 as against one of 1,000 (measured in the same run, best of 3).
func TestEvictionCostDoesNotGrowWithTheTable(t *testing.T) {
	cost := func(size int) time.Duration {
		best := time.Duration(1 << 62)
		for try := 0; try < 3; try++ {
			r := newRegistry(size, size)
			for i := 0; i < size; i += 10_000 {
				track(t, r, batch(t, schema.KindUnit, ids("u", i, min(10_000, size-i)), 1000))
			}
			recs := make([]arrow.Record, 50)
			for i := range recs {
				recs[i] = batch(t, schema.KindUnit, ids(fmt.Sprintf("new%d-", try), i*100, 100), 2000)
			}
			runtime.GC()
			gc := debug.SetGCPercent(-1) // the collector's scans of a larger heap are not the eviction's cost
			t0 := time.Now()
			for _, rec := range recs {
				r.Track(rec)
			}
			best = min(best, time.Since(t0))
			debug.SetGCPercent(gc)
			for _, rec := range recs {
				rec.Release()
			}
			if len(r.units) != size {
				t.Fatalf("table of %d holds %d", size, len(r.units))
			}
		}
		return best
	}
	small, large := cost(1000), cost(100_000)
	t.Logf("5,000 evicting inserts: %v into a full table of 1,000, %v into one of 100,000", small, large)
	if large > 10*small {
		t.Errorf("evictions cost %.0f× more in a table 100× larger: they scan the table", float64(large)/float64(small))
	}
}
