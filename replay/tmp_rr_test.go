package replay

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestTmpRangeSpeed(t *testing.T) {
	mem := memory.NewGoAllocator()
	l := openTestLog(t, mem)
	events := testEvents(12000, time.Now().UnixMilli())
	sizes := make([]int, 1200)
	for i := range sizes {
		sizes[i] = 10
	}
	st := time.Now()
	appendEvents(t, l, mem, events, sizes)
	t.Logf("append %v", time.Since(st))
	st = time.Now()
	rr, _ := l.NewRangeReader(context.Background(), 1, 0)
	n := 0
	for {
		rec, err := rr.Next(context.Background())
		if err != nil {
			break
		}
		n++
		rec.Release()
	}
	t.Logf("range read %d in %v", n, time.Since(st))
	st = time.Now()
	liveRun(t, l, mem)
	t.Logf("getmsg read %v", time.Since(st))
}
