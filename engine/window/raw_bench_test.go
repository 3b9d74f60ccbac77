package window

import (
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

// BenchmarkRetain is raw retention alone: one event projected into its bucket's open chunk (ids and cells
// interned), and the chunk sealed into one allocator buffer every 4,096 events. It reports the bytes a
// sealed event costs, tables included.
func BenchmarkRetain(b *testing.B) {
	mem := memory.NewGoAllocator()
	s := &shard{w: &Set{cfg: Config{RawMem: mem}, bucketMs: 10_000}, raw: map[int64]*rawBucket{},
		rawIDs: internTable[string]{size: func(id string) int { return len(id) }}}
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = fmt.Sprintf("veh-%05d", i)
	}
	css := make([]cellState, 3000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		start := int64(i/4096) * 10_000
		s.rawAdd(start, start+int64(i%4096), uint64(0x89283082803ffff+(i%3000)<<12), &css[i%3000], 1, float32(i%80), ids[i%len(ids)], int32(i%6000), 0.5)
		if i%4096 == 4095 {
			s.seal(s.raw[start])
		}
	}
	b.StopTimer()
	if n := s.rawRows.Load(); n > 0 {
		b.ReportMetric(float64(s.rawBytes())/float64(n), "B/event")
	}
	s.releaseRaw(1 << 62)
}
