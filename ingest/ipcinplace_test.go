package ingest_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/ingest"
)

// readBoth reads data with ReadIPC and ReadIPCInPlace and fails t unless both answer alike: the same error
// (or none) and equal batches, each passing CheckRecord. It returns the batches read.
func readBoth(t testing.TB, data []byte) int {
	t.Helper()
	var copied, inPlace []arrow.Record
	defer func() {
		for _, r := range append(copied, inPlace...) {
			r.Release()
		}
	}()
	keep := func(dst *[]arrow.Record) func(arrow.Record) error {
		return func(rec arrow.Record) error {
			if err := ingest.CheckRecord(rec); err != nil {
				t.Fatalf("a batch that fails CheckRecord was passed on: %v", err)
			}
			rec.Retain()
			*dst = append(*dst, rec)
			return nil
		}
	}
	errCopied := ingest.ReadIPC(data, 16<<20, keep(&copied))
	errInPlace := ingest.ReadIPCInPlace(data, 16<<20, keep(&inPlace))
	if fmt.Sprint(errCopied) != fmt.Sprint(errInPlace) {
		t.Fatalf("ReadIPC: %v; ReadIPCInPlace: %v", errCopied, errInPlace)
	}
	if errCopied != nil {
		return 0
	}
	if len(copied) != len(inPlace) {
		t.Fatalf("ReadIPC read %d batches, ReadIPCInPlace %d", len(copied), len(inPlace))
	}
	for i := range copied {
		if copied[i].NumRows() != inPlace[i].NumRows() || copied[i].NumCols() != inPlace[i].NumCols() {
			t.Fatalf("batch %d: %d×%d copied, %d×%d in place", i+1, copied[i].NumRows(), copied[i].NumCols(), inPlace[i].NumRows(), inPlace[i].NumCols())
		}
		for c := 0; c < int(copied[i].NumCols()); c++ {
			// Equal values, or the same values printed (a NaN, which never equals itself, prints as NaN).
			if a, b := copied[i].Column(c), inPlace[i].Column(c); !array.Equal(a, b) && fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("batch %d, column %s differs:\ncopied   %v\nin place %v", i+1, copied[i].ColumnName(c), a, b)
			}
		}
	}
	return len(copied)
}

// ReadIPCInPlace answers as ReadIPC does, on real streams (plain and compressed, several batches, nulls,
// empty batches), misaligned views of them, and thousands of corruptions of their bytes; and the plain
// streams are read in place, not copied.
func TestReadIPCInPlaceAgrees(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	evs := probeEvents(50)
	for _, k := range engine.Kinds {
		e := engine.NewEvent(k)
		e.TS, e.ID, e.Lat, e.Lng = 1795737600000, "x-"+k.String(), 30.25, 120.16
		e.SpeedKmh, e.Type, e.Text, e.Value, e.Severity = 12, "crash", "a note ✓", 1.5, 2
		evs = append(evs, e)
	}
	var streams [][]byte
	for _, opts := range [][]ipc.Option{nil, {ipc.WithZstd()}, {ipc.WithLZ4()}} {
		streams = append(streams, ipcStream(t, mem, evs, opts...), ipcStream(t, mem, evs[:1], opts...), ipcStream(t, mem, nil, opts...))
	}
	// Several batches in one stream.
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(engine.Schema), ipc.WithAllocator(mem))
	for _, part := range [][]engine.Event{evs[:10], evs[10:], evs[:0]} {
		bb := engine.NewBatchBuilder(mem)
		for i := range part {
			bb.Append(&part[i], 1)
		}
		rec := bb.NewRecord()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		bb.Release()
	}
	w.Close()
	streams = append(streams, buf.Bytes())
	for i, s := range streams {
		readBoth(t, s)
		// The same bytes one byte off a word boundary.
		off := append(make([]byte, 1, len(s)+1), s...)[1:]
		readBoth(t, off)
		if i == 0 && testing.AllocsPerRun(5, func() { ingest.ReadIPCInPlace(s, 16<<20, func(arrow.Record) error { return nil }) }) > 400 {
			t.Errorf("a plain stream of %d rows was not read in place", len(evs))
		}
	}
	rng := rand.New(rand.NewPCG(13, 3))
	read := 0
	for i := 0; i < 3000; i++ {
		s := bytes.Clone(streams[rng.IntN(len(streams))])
		for k := 0; k <= rng.IntN(3); k++ {
			p := rng.IntN(len(s))
			switch rng.IntN(3) {
			case 0:
				s[p] = byte(rng.IntN(256))
			case 1:
				if p+8 <= len(s) {
					binary.LittleEndian.PutUint64(s[p:], []uint64{0, 1, 7, 1 << 31, 1 << 62, ^uint64(0)}[rng.IntN(6)])
				}
			default:
				s = s[:p]
			}
		}
		read += readBoth(t, s)
	}
	t.Logf("3000 corrupted streams: %d batches read alike by both readers", read)
}

// FuzzReadIPCInPlace: whatever the bytes, the in-place reader answers as ReadIPC does.
func FuzzReadIPCInPlace(f *testing.F) {
	arrowSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { readBoth(t, data) })
}

// BenchmarkReadIPC: a 5,000-row stream of probes read by the copying reader and in place.
func BenchmarkReadIPC(b *testing.B) {
	data := ipcStream(b, memory.NewGoAllocator(), probeEvents(5000))
	for _, name := range []string{"copied", "inplace"} {
		read := ingest.ReadIPC
		if name == "inplace" {
			read = ingest.ReadIPCInPlace
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := read(data, 16<<20, func(arrow.Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "events/s")
		})
	}
}
