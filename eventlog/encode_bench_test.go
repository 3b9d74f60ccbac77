package eventlog

import (
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
)

// BenchmarkEncodeRecord: a 2,000-probe batch (a NATS JSON batch of the bench harness) encoded as the IPC
// message the log stores, and a half of it (the split of a record too large for one message).
func BenchmarkEncodeRecord(b *testing.B) {
	mem := memory.NewGoAllocator()
	bb := engine.NewBatchBuilder(mem)
	for i := 0; i < 2000; i++ {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh, e.HeadingDeg = 1795737600000+int64(i)*10, "veh-1234", 30, 90
		e.Lat, e.Lng = 30.25+float64(i)*0.0001, 120.15
		bb.Append(&e, 0x8a2a1072b59ffff)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	bb.Release()
	half := rec.NewSlice(0, 1000)
	defer half.Release()
	for name, r := range map[string]arrow.Record{"whole": rec, "half": half} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				data, err := EncodeRecord(r, mem)
				if err != nil || len(data) == 0 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
