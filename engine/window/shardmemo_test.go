package window

import (
	"math/rand"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/geo"
)

// Dispatch's memo of cells' shards answers as shardOf, for cells that meet in one memo slot too: 20,000 cells
// of a 1.5° square asked in random order, again and again.
func TestDispatchShardIsShardOf(t *testing.T) {
	stop := make(chan struct{})
	s := New(Config{Res: 9, ShardRes: 5, Shards: 4, Bucket: 10 * time.Second, Retention: 15 * time.Minute,
		QueueLen: 64, DefaultFreeFlowKmh: 50, MinFreeFlowKmh: 20, MinFreeFlowSamples: 50, Mem: memory.DefaultAllocator}, nil, stop)
	defer func() { close(stop); s.Close() }()
	rng := rand.New(rand.NewSource(1))
	cells := make([]uint64, 20000)
	for i := range cells {
		cells[i], _ = geo.CellOf(29.5+rng.Float64()*1.5, 119.5+rng.Float64()*1.5, 9)
	}
	shards := map[int]bool{}
	for k := 0; k < 200000; k++ {
		c := cells[rng.Intn(len(cells))]
		if got, want := s.dispatchShard(c), s.shardOf(c); got != want {
			t.Fatalf("cell %x: memo %d, shardOf %d", c, got, want)
		}
		shards[s.shardOf(c)] = true
	}
	if len(shards) < 2 {
		t.Fatalf("the cells fell in %d shards: the test checks nothing", len(shards))
	}
}
