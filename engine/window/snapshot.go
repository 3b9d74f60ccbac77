package window

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// The window room's part of an engine snapshot: two Arrow IPC files (zstd),
//
//	aggs.arrow   one row per (cell or link, bucket): the window sums
//	cells.arrow  one row per cell: learned free-flow histogram, newest event, incident score
//
// Raw events are not kept (they are a cache of the log), nor map-matcher tracks (vehicles are matched afresh
// from their next fix).

var aggSchema = arrow.NewSchema([]arrow.Field{
	{Name: "table", Type: arrow.PrimitiveTypes.Uint8}, // 0 cell, 1 link
	{Name: "owner", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "start", Type: arrow.PrimitiveTypes.Int64},
	{Name: "speed_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "speed_w", Type: arrow.PrimitiveTypes.Float64},
	{Name: "samples", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "events", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "flow_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "flow_n", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "occ_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "kinds", Type: &arrow.FixedSizeBinaryType{ByteWidth: 4 * int(schema.NumKinds)}},
	{Name: "stop_head", Type: arrow.PrimitiveTypes.Float32},
}, nil)

// aggSchemaV1 is aggSchema before stop_head; such snapshots still load (their buckets have no queue head).
var aggSchemaV1 = arrow.NewSchema(aggSchema.Fields()[:11], nil)

var cellSchema = arrow.NewSchema([]arrow.Field{
	{Name: "cell", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "hist", Type: &arrow.FixedSizeBinaryType{ByteWidth: 4 * speedBins}},
	{Name: "hist_n", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "last_ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "incident", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// shardDump is a shard's state as records (built by the shard goroutine; the receiver releases them).
type shardDump struct {
	aggs, cells arrow.Record
	evalEnd     int64
}

type dumpReq struct{ reply chan shardDump }

type restoreReq struct {
	cells map[uint64]*cellState
	links map[int32]*linkState
	eval  int64
	done  chan struct{}
}

func (s *shard) dump() shardDump {
	ab := array.NewRecordBuilder(s.w.cfg.Mem, aggSchema)
	defer ab.Release()
	cb := array.NewRecordBuilder(s.w.cfg.Mem, cellSchema)
	defer cb.Release()
	appendAgg := func(table uint8, owner uint64, a *agg) {
		ab.Field(0).(*array.Uint8Builder).Append(table)
		ab.Field(1).(*array.Uint64Builder).Append(owner)
		ab.Field(2).(*array.Int64Builder).Append(a.start)
		ab.Field(3).(*array.Float64Builder).Append(a.SpeedSum)
		ab.Field(4).(*array.Float64Builder).Append(a.SpeedW)
		ab.Field(5).(*array.Uint32Builder).Append(a.Samples)
		ab.Field(6).(*array.Uint32Builder).Append(a.Events)
		ab.Field(7).(*array.Float64Builder).Append(a.FlowSum)
		ab.Field(8).(*array.Uint32Builder).Append(a.FlowN)
		ab.Field(9).(*array.Float64Builder).Append(a.OccSum)
		var k [4 * schema.NumKinds]byte
		for i, n := range a.Kinds {
			binary.LittleEndian.PutUint32(k[4*i:], n)
		}
		ab.Field(10).(*array.FixedSizeBinaryBuilder).Append(k[:])
		ab.Field(11).(*array.Float32Builder).Append(a.stopHead)
	}
	for _, c := range slices.Sorted(maps.Keys(s.cells)) {
		cs := s.cells[c]
		for i := range cs.aggs {
			appendAgg(0, c, &cs.aggs[i])
		}
		cb.Field(0).(*array.Uint64Builder).Append(c)
		var h [4 * speedBins]byte
		for i, n := range cs.hist {
			binary.LittleEndian.PutUint32(h[4*i:], n)
		}
		cb.Field(1).(*array.FixedSizeBinaryBuilder).Append(h[:])
		cb.Field(2).(*array.Uint32Builder).Append(cs.histN)
		cb.Field(3).(*array.Int64Builder).Append(cs.lastTS)
		cb.Field(4).(*array.Float64Builder).Append(cs.incident)
	}
	for _, l := range slices.Sorted(maps.Keys(s.links)) {
		ls := s.links[l]
		for i := range ls.aggs {
			appendAgg(1, uint64(l), &ls.aggs[i])
		}
	}
	return shardDump{aggs: ab.NewRecord(), cells: cb.NewRecord(), evalEnd: s.lastEvalEnd}
}

func (s *shard) restore(r *restoreReq) {
	clear(s.cellMemo[:])
	for c, cs := range r.cells {
		s.cells[c] = cs
		s.dirty[c] = struct{}{}
		if cs.incident != 0 {
			s.scored[c] = true
		}
	}
	for l, ls := range r.links {
		s.links[l] = ls
		s.dirtyLinks[l] = struct{}{}
	}
	s.lastEvalEnd = max(s.lastEvalEnd, r.eval)
	s.lastTickBucket = -1
	close(r.done)
}

// Dump is the shards' state as records, taken on the tick goroutine between two ticks (Set.Dump); encode it
// with Encode after, then Release it.
type Dump struct {
	parts   []shardDump
	EvalEnd int64 // bucket end up to which the traffic rule has measured
	mem     memory.Allocator
}

// Dump has every shard dump its state through its own goroutine (tick goroutine); false if the engine
// stopped first.
func (w *Set) Dump() (*Dump, bool) {
	reply := make(chan shardDump, len(w.shards))
	d := &Dump{mem: w.cfg.Mem}
	for _, s := range w.shards {
		if !s.in.Push(shardMsg{dump: &dumpReq{reply: reply}}, w.stop) {
			return nil, false
		}
	}
	for range w.shards {
		select {
		case p := <-reply:
			d.parts = append(d.parts, p)
			d.EvalEnd = max(d.EvalEnd, p.evalEnd)
		case <-w.stop:
			d.Release()
			return nil, false
		}
	}
	return d, true
}

// Encode returns aggs.arrow and cells.arrow.
func (d *Dump) Encode() (aggs, cells []byte, err error) {
	var aggRecs, cellRecs []arrow.Record
	for _, p := range d.parts {
		aggRecs = append(aggRecs, p.aggs)
		cellRecs = append(cellRecs, p.cells)
	}
	if aggs, err = ipcFile(aggSchema, aggRecs, d.mem); err != nil {
		return nil, nil, err
	}
	if cells, err = ipcFile(cellSchema, cellRecs, d.mem); err != nil {
		return nil, nil, err
	}
	return aggs, cells, nil
}

// Release frees the dump's records. Safe on nil.
func (d *Dump) Release() {
	if d == nil {
		return
	}
	for _, p := range d.parts {
		p.aggs.Release()
		p.cells.Release()
	}
	d.parts = nil
}

// Restore loads a snapshot's aggs.arrow and cells.arrow into a fresh set (before any Dispatch); every shard
// receives its part through its own goroutine. evalEnd is the dump's EvalEnd.
func (w *Set) Restore(aggsData, cellsData []byte, evalEnd int64) error {
	cells := make([]map[uint64]*cellState, len(w.shards))
	links := make([]map[int32]*linkState, len(w.shards))
	for i := range w.shards {
		cells[i], links[i] = map[uint64]*cellState{}, map[int32]*linkState{}
	}
	var nLinks int32 = -1
	if w.cfg.Network != nil {
		nLinks = int32(len(w.cfg.Network.Links()))
	}
	err := readIPCFile(cellsData, []*arrow.Schema{cellSchema}, w.cfg.Mem, func(r arrow.Record) error {
		cc := r.Column(0).(*array.Uint64)
		hist := r.Column(1).(*array.FixedSizeBinary)
		for i := 0; i < int(r.NumRows()); i++ {
			c := cc.Value(i)
			cs := &cellState{histN: r.Column(2).(*array.Uint32).Value(i), lastTS: r.Column(3).(*array.Int64).Value(i),
				incident: r.Column(4).(*array.Float64).Value(i)}
			h := hist.Value(i)
			for k := range cs.hist {
				cs.hist[k] = binary.LittleEndian.Uint32(h[4*k:])
			}
			cells[w.shardOf(c)][c] = cs
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = readIPCFile(aggsData, []*arrow.Schema{aggSchema, aggSchemaV1}, w.cfg.Mem, func(r arrow.Record) error {
		for i := 0; i < int(r.NumRows()); i++ {
			a := agg{start: r.Column(2).(*array.Int64).Value(i)}
			a.SpeedSum = r.Column(3).(*array.Float64).Value(i)
			a.SpeedW = r.Column(4).(*array.Float64).Value(i)
			a.Samples = r.Column(5).(*array.Uint32).Value(i)
			a.Events = r.Column(6).(*array.Uint32).Value(i)
			a.FlowSum = r.Column(7).(*array.Float64).Value(i)
			a.FlowN = r.Column(8).(*array.Uint32).Value(i)
			a.OccSum = r.Column(9).(*array.Float64).Value(i)
			k := r.Column(10).(*array.FixedSizeBinary).Value(i)
			for j := range a.Kinds {
				a.Kinds[j] = binary.LittleEndian.Uint32(k[4*j:])
			}
			if r.NumCols() > 11 {
				a.stopHead = r.Column(11).(*array.Float32).Value(i)
			}
			owner := r.Column(1).(*array.Uint64).Value(i)
			switch r.Column(0).(*array.Uint8).Value(i) {
			case 0:
				cs := cells[w.shardOf(owner)][owner]
				if cs == nil {
					return fmt.Errorf("aggs.arrow row %d: cell %x has no cells.arrow row", i, owner)
				}
				cs.aggs = append(cs.aggs, a)
			case 1:
				if int32(owner) >= nLinks {
					continue // the network changed since the snapshot: link state is dropped
				}
				// A link's buckets may come from several shards of the old engine: merge by start.
				sh := int(owner) % len(w.shards)
				ls := links[sh][int32(owner)]
				if ls == nil {
					ls = &linkState{}
					links[sh][int32(owner)] = ls
				}
				tmp := cellState{aggs: ls.aggs}
				b := tmp.bucket(a.start)
				b.Add(&a.WindowStats)
				b.addHead(a.stopHead)
				ls.aggs = tmp.aggs
				ls.lastTS = max(ls.lastTS, a.start)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Cells get their centres back; every shard receives its part through its own goroutine.
	for i, s := range w.shards {
		for c, cs := range cells[i] {
			cs.lat, cs.lng = geo.Center(c)
		}
		done := make(chan struct{})
		if !s.in.Push(shardMsg{restore: &restoreReq{cells: cells[i], links: links[i], eval: evalEnd, done: done}}, w.stop) {
			return ErrStopped
		}
		<-done
	}
	return nil
}

// ErrStopped is returned when the engine stopped during a request to the shards.
var ErrStopped = errors.New("engine stopped")

func ipcFile(schema *arrow.Schema, recs []arrow.Record, mem memory.Allocator) ([]byte, error) {
	var buf seekBuffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem), ipc.WithZstd())
	if err != nil {
		return nil, fmt.Errorf("cannot write snapshot table: %w", err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			w.Close()
			return nil, fmt.Errorf("cannot write snapshot table: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cannot write snapshot table: %w", err)
	}
	return buf.b, nil
}

// seekBuffer is an in-memory io.WriteSeeker (the IPC file writer wants one).
type seekBuffer struct {
	b   []byte
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
		s.pos = int(off)
	case 1:
		s.pos += int(off)
	case 2:
		s.pos = len(s.b) + int(off)
	}
	if s.pos < 0 {
		return 0, errors.New("seek before start")
	}
	return int64(s.pos), nil
}

// readIPCFile reads a snapshot table whose schema is one of schemas (the current one first, then older ones
// still readable) and calls fn on each of its batches.
func readIPCFile(data []byte, schemas []*arrow.Schema, mem memory.Allocator, fn func(arrow.Record) error) error {
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return fmt.Errorf("cannot read snapshot table: %w", err)
	}
	defer r.Close()
	if !slices.ContainsFunc(schemas, r.Schema().Equal) {
		return fmt.Errorf("snapshot table has schema %s, want %s", r.Schema(), schemas[0])
	}
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			return fmt.Errorf("cannot read snapshot table batch %d: %w", i, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}
