package window

import (
	"math"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Raw retention keeps, per shard and event-time bucket, a narrow projection of every event in column chunks:
//
//	ts     uint32   ms after the bucket's start
//	cell   uint32   index into the shard's cell table
//	kind   uint8
//	speed  float32  NaN when absent
//	id     uint32   index into the shard's id table (vehicle, camera, detector, unit, sensor, caller)
//	link   int32    matched road link, -1 none
//	off    uint16   position along the link, 1/65535 of its length
//
// 23 bytes an event, plus the shard's tables of the cells and ids seen within the retention.
// Everything else about an event stays in the log, where replays and exports read it. While the watermark
// has not passed a bucket its chunk grows in ordinary slices; when it has, the chunk is sealed: its columns
// are copied into one exact-size buffer of the raw allocator (Config.RawMem, else Mem: the Go heap in the
// product), so a retained event costs its bytes (and, on the Go heap, the collector's headroom for them) and
// no growing slices' spare room.

// RawBytesPerEvent is what one retained event costs in a sealed chunk, dictionaries aside.
const RawBytesPerEvent = 4 + 4 + 1 + 4 + 4 + 4 + 2

// rawCols are the columns of a chunk: growing slices while it is open, views into its buffer once sealed.
type rawCols struct {
	ts    []uint32
	cell  []uint32
	kind  []uint8
	speed []float32
	id    []uint32
	link  []int32
	off   []uint16
}

// rawChunk is one shard's raw events of one bucket. Owned by the shard goroutine.
type rawChunk struct {
	n int
	rawCols
	buf *memory.Buffer // once sealed: every column in one allocation
}

func (c *rawChunk) add(ts, cell uint32, k uint8, speed float32, id uint32, link int32, off float32) {
	c.ts = append(c.ts, ts)
	c.cell = append(c.cell, cell)
	c.kind = append(c.kind, k)
	c.speed = append(c.speed, speed)
	c.id = append(c.id, id)
	c.link = append(c.link, link)
	c.off = append(c.off, uint16(math.Round(float64(off)*math.MaxUint16)))
	c.n++
}

// bytes is what the chunk holds in memory (for the gauge and the budget).
func (c *rawChunk) bytes() int64 {
	if c.buf != nil {
		return int64(c.buf.Len())
	}
	return int64(4*cap(c.ts) + 4*cap(c.cell) + cap(c.kind) + 4*cap(c.speed) + 4*cap(c.id) + 4*cap(c.link) +
		2*cap(c.off))
}

// seal copies the columns into one buffer of mem and returns the growing slices (emptied) for the next open
// chunk.
func (c *rawChunk) seal(mem memory.Allocator) rawCols {
	if c.buf != nil {
		return rawCols{}
	}
	spare := rawCols{ts: c.ts[:0], cell: c.cell[:0], kind: c.kind[:0], speed: c.speed[:0], id: c.id[:0],
		link: c.link[:0], off: c.off[:0]}
	n := c.n
	pad := func(x int) int { return (x + 7) &^ 7 }
	size := 5*pad(4*n) + pad(2*n) + pad(n)
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(size)
	b := buf.Bytes()
	at := 0
	take := func(sz int) []byte { s := b[at : at+sz : at+sz]; at += pad(sz); return s }
	ts := arrow.Uint32Traits.CastFromBytes(take(4 * n))
	cell := arrow.Uint32Traits.CastFromBytes(take(4 * n))
	speed := arrow.Float32Traits.CastFromBytes(take(4 * n))
	id := arrow.Uint32Traits.CastFromBytes(take(4 * n))
	link := arrow.Int32Traits.CastFromBytes(take(4 * n))
	off := arrow.Uint16Traits.CastFromBytes(take(2 * n))
	kind := take(n)
	copy(ts, c.ts)
	copy(cell, c.cell)
	copy(speed, c.speed)
	copy(id, c.id)
	copy(link, c.link)
	copy(off, c.off)
	copy(kind, c.kind)
	c.rawCols = rawCols{ts: ts, cell: cell, kind: kind, speed: speed, id: id, link: link, off: off}
	c.buf = buf
	return spare
}

func (c *rawChunk) release() {
	if c.buf != nil {
		c.buf.Release()
		c.buf = nil
	}
	c.rawCols = rawCols{}
}

// rawBucket keeps the raw events of one shard and bucket: sealed chunks, and the open one taking events
// until the watermark passes the bucket (late events after that open a new chunk).
type rawBucket struct {
	open   *rawChunk
	sealed []*rawChunk
}

func (rb *rawBucket) release() (rows, bytes int64) {
	for _, c := range rb.sealed {
		rows += int64(c.n)
		bytes += c.bytes()
		c.release()
	}
	if c := rb.open; c != nil {
		rows += int64(c.n)
		bytes += c.bytes()
	}
	rb.sealed, rb.open = nil, nil
	return rows, bytes
}

// internTable interns the ids or cells of retained events: a chunk stores an index. A key last seen in a
// bucket that has been released is referenced by no chunk any more; sweep frees it and its slot is reused.
// The zero key marks a free slot (no event has an empty id or cell 0). Owned by the shard goroutine.
type internTable[K comparable] struct {
	ix   map[K]uint32
	keys []K
	last []int64 // start of the newest bucket the key was retained in
	free []uint32
	size func(K) int // bytes a key holds beyond its slot (strings), nil: none
	// gen changes whenever a slot may be freed or renumbered (sweep, compact): an index a caller kept from
	// intern (a cell's, in its cellState) holds while gen is what it was.
	gen uint32
}

// internKept is intern for a key whose index ix the caller kept from an intern under generation gen: when
// the table has not been swept or compacted since, the index holds and no lookup is needed. It returns the
// index and the generation to keep.
func (t *internTable[K]) internKept(k K, bucket int64, ix, gen uint32) (uint32, uint32) {
	if gen == t.gen+1 {
		t.last[ix] = max(t.last[ix], bucket)
		return ix, gen
	}
	return t.intern(k, bucket, nil), t.gen + 1
}

func (t *internTable[K]) intern(k K, bucket int64, clone func(K) K) uint32 {
	if i, ok := t.ix[k]; ok {
		t.last[i] = max(t.last[i], bucket)
		return i
	}
	if t.ix == nil {
		t.ix = map[K]uint32{}
	}
	if clone != nil {
		k = clone(k)
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.keys[i], t.last[i] = k, bucket
	} else {
		i = uint32(len(t.keys))
		t.keys = append(t.keys, k)
		t.last = append(t.last, bucket)
	}
	t.ix[k] = i
	return i
}

// sweep frees the keys whose newest bucket starts before before, and gives back the free slots at the end
// of the table.
func (t *internTable[K]) sweep(before int64) {
	t.gen++
	var zero K
	for i, k := range t.keys {
		if k != zero && t.last[i] < before {
			delete(t.ix, k)
			t.keys[i] = zero
		}
	}
	n := len(t.keys)
	for n > 0 && t.keys[n-1] == zero {
		n--
	}
	if cap(t.keys) > 2*n+64 {
		t.keys = append([]K(nil), t.keys[:n]...)
		t.last = append([]int64(nil), t.last[:n]...)
	} else {
		t.keys, t.last = t.keys[:n], t.last[:n]
	}
	t.free = t.free[:0]
	for i, k := range t.keys {
		if k == zero {
			t.free = append(t.free, uint32(i))
		}
	}
	if len(t.ix) == 0 {
		t.ix = nil // a map keeps its buckets: a fresh one
	}
}

// sparse reports whether most of the table's slots are free: a key in a late slot keeps the slots before it
// (sweep only gives back the free slots at the end), so a table that held a burst's keys would keep their
// size for as long as one of the last is retained. compact then renumbers it.
func (t *internTable[K]) sparse() bool { return len(t.keys) > 64 && len(t.ix) < len(t.keys)/4 }

// compact renumbers the keys in use into the first slots and returns the old index → new index map (the
// chunks' columns are rewritten with it); the slices are reallocated to their size.
func (t *internTable[K]) compact() []uint32 {
	t.gen++
	var zero K
	remap := make([]uint32, len(t.keys))
	keys, last := make([]K, 0, len(t.ix)), make([]int64, 0, len(t.ix))
	for i, k := range t.keys {
		if k == zero {
			continue
		}
		remap[i] = uint32(len(keys))
		t.ix[k] = uint32(len(keys))
		keys, last = append(keys, k), append(last, t.last[i])
	}
	t.keys, t.last, t.free = keys, last, nil
	return remap
}

// bytes estimates the table's memory: the keys, the slices and the map.
func (t *internTable[K]) bytes() int64 {
	var zero K
	var n int64
	if t.size != nil {
		for _, k := range t.keys {
			if k != zero {
				n += int64(t.size(k))
			}
		}
	}
	ks := int64(unsafe.Sizeof(zero))
	return n + int64(cap(t.keys))*ks + int64(cap(t.last))*8 + int64(cap(t.free))*4 + int64(len(t.ix))*(ks+24)
}

func cloneString(s string) string { return string([]byte(s)) } // s points into an Arrow buffer

// rawAdd retains one event of the bucket starting at start (shard goroutine). cs is the event's cell, which
// keeps the cell's index in the cell table.
func (s *shard) rawAdd(start, t int64, cell uint64, cs *cellState, k uint8, speed float32, id string, link int32, off float32) {
	rb := s.lastRaw
	if rb == nil || s.lastRawStart != start {
		rb = s.raw[start]
		if rb == nil {
			rb = &rawBucket{}
			s.raw[start] = rb
		}
		s.lastRaw, s.lastRawStart = rb, start
	}
	if rb.open == nil {
		rb.open = &rawChunk{}
		if n := len(s.rawSpare); n > 0 { // the slices of a sealed chunk: no growing again
			rb.open.rawCols, s.rawSpare = s.rawSpare[n-1], s.rawSpare[:n-1]
		}
	}
	cs.rawCell, cs.rawGen = s.rawCells.internKept(cell, start, cs.rawCell, cs.rawGen)
	rb.open.add(uint32(t-start), cs.rawCell, k, speed, s.rawIDs.intern(id, start, cloneString), link, off)
	s.rawRows.Add(1)
}

// seal seals rb's open chunk.
func (s *shard) seal(rb *rawBucket) {
	c := rb.open
	if c == nil {
		return
	}
	rb.open = nil
	if spare := c.seal(s.w.cfg.RawMem); cap(spare.ts) > 0 && len(s.rawSpare) < 8 {
		s.rawSpare = append(s.rawSpare, spare)
	}
	rb.sealed = append(rb.sealed, c)
	s.rawSealed.Add(c.bytes())
}

// releaseRaw releases the raw buckets that end at or before before, and frees the ids no chunk refers to.
func (s *shard) releaseRaw(before int64) {
	released := false
	for start, rb := range s.raw {
		if start+s.w.bucketMs > before {
			continue
		}
		for _, c := range rb.sealed {
			s.rawSealed.Add(-c.bytes())
		}
		rows, _ := rb.release()
		s.rawRows.Add(-rows)
		delete(s.raw, start)
		if rb == s.lastRaw {
			s.lastRaw = nil
		}
		released = true
	}
	if released {
		oldest := int64(math.MaxInt64)
		for start := range s.raw {
			oldest = min(oldest, start)
		}
		s.rawIDs.sweep(oldest)
		s.rawCells.sweep(oldest)
		if s.rawIDs.sparse() || s.rawCells.sparse() {
			s.compactRaw()
		}
	}
}

// compactRaw renumbers the id and cell tables and rewrites the retained chunks' indexes (sealed chunks are
// views of their buffer, which the shard owns): O(retained events), run only when a table is three quarters
// free, so at most once per shrink of the retained set by four.
func (s *shard) compactRaw() {
	ids, cells := s.rawIDs.compact(), s.rawCells.compact()
	for _, rb := range s.raw {
		chunks := rb.sealed
		if rb.open != nil {
			chunks = append(chunks[:len(chunks):len(chunks)], rb.open)
		}
		for _, c := range chunks {
			for i, v := range c.id[:c.n] {
				c.id[i] = ids[v]
			}
			for i, v := range c.cell[:c.n] {
				c.cell[i] = cells[v]
			}
		}
	}
}

// rawBytes is the memory of the shard's raw retention: sealed chunks, open chunks and the id table (shard
// goroutine).
func (s *shard) rawBytes() int64 {
	n := s.rawSealed.Load() + s.rawIDs.bytes() + s.rawCells.bytes()
	for _, rb := range s.raw {
		if rb.open != nil {
			n += rb.open.bytes()
		}
	}
	return n
}

// RawSchema is the schema of RawRecords: the narrow projection of a retained event.
var RawSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "kind", Type: arrow.PrimitiveTypes.Uint8},
	{Name: "cell", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "speed_kmh", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "id", Type: arrow.BinaryTypes.String},
	{Name: "link", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "link_offset", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
}, nil)

// RawRecords returns, in RawSchema, the sealed raw events of every shard whose bucket starts in [from, to);
// the caller must Release each record. Open buckets (not yet behind the watermark) are not included.
func (w *Set) RawRecords(from, to int64) []arrow.Record {
	var out []arrow.Record
	for _, s := range w.shards {
		reply := make(chan []arrow.Record, 1)
		if !s.in.Push(shardMsg{rawReq: &rawReq{from: from, to: to, reply: reply}}, w.stop) {
			return out
		}
		select {
		case recs := <-reply:
			out = append(out, recs...)
		case <-w.stop:
			return out
		}
	}
	return out
}

type rawReq struct {
	from, to int64
	reply    chan []arrow.Record
}

func (s *shard) raws(r *rawReq) []arrow.Record {
	var out []arrow.Record
	for start, rb := range s.raw {
		if start < r.from || start >= r.to {
			continue
		}
		for _, c := range rb.sealed {
			out = append(out, s.rawRecord(start, c))
		}
	}
	return out
}

// rawRecord materialises a sealed chunk in RawSchema.
func (s *shard) rawRecord(start int64, c *rawChunk) arrow.Record {
	b := array.NewRecordBuilder(s.w.cfg.Mem, RawSchema)
	defer b.Release()
	ts := b.Field(0).(*array.TimestampBuilder)
	kind := b.Field(1).(*array.Uint8Builder)
	cell := b.Field(2).(*array.Uint64Builder)
	speed := b.Field(3).(*array.Float32Builder)
	id := b.Field(4).(*array.StringBuilder)
	link := b.Field(5).(*array.Int32Builder)
	off := b.Field(6).(*array.Float32Builder)
	for i := 0; i < c.n; i++ {
		ts.Append(arrow.Timestamp(start + int64(c.ts[i])))
		kind.Append(c.kind[i])
		cell.Append(s.rawCells.keys[c.cell[i]])
		if v := c.speed[i]; v == v {
			speed.Append(v)
		} else {
			speed.AppendNull()
		}
		id.Append(s.rawIDs.keys[c.id[i]])
		if l := c.link[i]; l >= 0 {
			link.Append(l)
			off.Append(float32(c.off[i]) / math.MaxUint16)
		} else {
			link.AppendNull()
			off.AppendNull()
		}
	}
	return b.NewRecord()
}
