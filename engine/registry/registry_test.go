package registry

import (
	"fmt"
	"testing"

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

// Table row 7 of issue 15: 5,000 new unit ids once the unit table was full cost 7.8 s of CPU in the engine's
// apply path, a scan of the whole table per eviction. An eviction now takes the back of an LRU list: the
// benchmark gives the cost of 5,000 evicting inserts into full tables of 1,000 and 100,000 (go test -run '^$'
// -bench EvictingInserts ./engine/registry/); TestFullTablesForgetTheLeastRecentlyUpdated checks the order.
func BenchmarkEvictingInserts(b *testing.B) {
	for _, size := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("table=%d", size), func(b *testing.B) {
			r := newRegistry(size, size)
			for i := 0; i < size; i += 10_000 {
				track(b, r, batch(b, schema.KindUnit, ids("u", i, min(10_000, size-i)), 1000))
			}
			recs := make([]arrow.Record, 50)
			for i := range recs {
				recs[i] = batch(b, schema.KindUnit, ids("new", i*100, 100), 2000)
			}
			defer func() {
				for _, rec := range recs {
					rec.Release()
				}
			}()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				r2 := newRegistry(size, size) // a full table again, sharing nothing with the last round
				for k, u := range r.units {
					r2.units[k] = u
				}
				for e := r.unitOrder.order.Back(); e != nil; e = e.Prev() {
					r2.unitOrder.touch(e.Value.(string))
				}
				b.StartTimer()
				for _, rec := range recs {
					r2.Track(rec)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*5000), "ns/evicting-insert")
		})
	}
}

// Several events of one asset in a batch: the asset keeps the newest (of equal times the last in the batch,
// as applying them one by one would), and none of them when it already holds a newer one.
func TestAssetKeepsNewestOfABatch(t *testing.T) {
	r := newRegistry(1000, 1000)
	bb := schema.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i, c := range []struct {
		id    string
		ts    int64
		value float64
	}{{"s1", 10, 1}, {"s2", 5, 2}, {"s1", 30, 3}, {"s1", 20, 4}, {"s2", 5, 5}, {"s1", 30, 6}, {"s3", 50, 7}, {"s1", 25, 8}} {
		e := schema.NewEvent(schema.KindSensor)
		e.TS, e.ID, e.Lat, e.Lng = c.ts, c.id, 30.25, 120.15+float64(i)*0.001
		e.Type, e.Value, e.Unit = "water_level", c.value, "m"
		bb.Append(&e, 0)
	}
	track(t, r, batch(t, schema.KindSensor, []string{"s3"}, 60)) // s3 already holds a newer event
	track(t, r, bb.NewRecord())
	for id, want := range map[string]float64{"s1": 6, "s2": 5, "s3": 1} {
		a, ok := r.assets[assetKey{schema.KindSensor, id}]
		if !ok || a.ev.Value != want {
			t.Errorf("%s holds %+v (%t), want value %v", id, a, ok, want)
		}
	}
}

// BenchmarkTrackAssets: a batch of 5,000 sensor and camera events from 200 assets (25 events each), as the
// log's batches of a busy minute hold them (go test -run '^$' -bench TrackAssets ./engine/registry/).
func BenchmarkTrackAssets(b *testing.B) {
	bb := schema.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i := 0; i < 5000; i++ {
		k := schema.KindSensor
		if i%2 == 1 {
			k = schema.KindVideo
		}
		e := schema.NewEvent(k)
		e.TS, e.ID, e.Lat, e.Lng = int64(1000+i), fmt.Sprintf("a%d", i%200), 30.25, 120.15
		e.Type, e.Value, e.Unit = "water_level", float64(i), "m"
		bb.Append(&e, 0)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		newRegistry(1000, 1000).Track(rec) // every event newer than what the registry holds, as live
	}
	b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "events/s")
}
