package ingest

import (
	"bytes"
	"encoding/binary"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/engine/schema"
)

// ReadIPCInPlace is ReadIPC without the copies: the batches' columns are views into data itself (no buffer
// allocated, no byte copied), so data must not change while any record passed to fn lives. It trusts nothing
// more than ReadIPC does: the framing and the flatbuffer counts are checked first (IPCMessages), every
// field node and buffer of every batch is checked against the body it points into, and every batch passes
// CheckRecord, all before fn sees the first batch. It takes the streams the engine writes (the engine schema,
// uncompressed record batches, aligned buffers); for anything else, or any doubt, it hands the whole stream to
// ReadIPC, whose errors name what is wrong. So it answers exactly as ReadIPC does, with the same records
// (TestReadIPCInPlaceAgrees, FuzzReadIPCInPlace).
func ReadIPCInPlace(data []byte, maxAlloc int64, fn func(arrow.Record) error) error {
	if len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%8 != 0 {
		// A view that does not start on a word (a message after its headers): one copy aligns every buffer.
		data = append(make([]byte, 0, len(data)), data...)
	}
	recs, ok := readInPlace(data)
	if !ok {
		return ReadIPC(data, maxAlloc, fn)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, rec := range recs {
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// Flatbuffer field slots of the IPC messages read here (format/Message.fbs).
const (
	fbMessageHeaderType = 1
	fbMessageHeader     = 2
	fbMessageBodyLength = 3
	fbBatchLength       = 0
	fbBatchNodes        = 1
	fbBatchBuffers      = 2
	fbBatchCompression  = 3
	fbBatchVariadic     = 4
	fbHeaderSchema      = 1
	fbHeaderRecordBatch = 3
)

// readInPlace builds every batch of data as views into it; false when the stream is not one it takes (or
// is broken: ReadIPC then names the fault).
func readInPlace(data []byte) (recs []arrow.Record, ok bool) {
	defer func() {
		if v := recover(); v != nil || !ok {
			for _, r := range recs {
				r.Release()
			}
			recs, ok = nil, false
		}
	}()
	msgs, err := IPCMessages(data)
	if err != nil || len(msgs) == 0 {
		return nil, false
	}
	// The schema message, read by the library (it allocates a few small things, no column buffer).
	first := msgs[0]
	if headerType(data[first.Meta:first.Meta+first.MetaLen]) != fbHeaderSchema {
		return nil, false
	}
	r, err := ipc.NewReader(bytes.NewReader(data[:first.Body+first.BodyLen]), ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		return nil, false
	}
	schemaOK := engine.CheckSchema(r.Schema()) == nil
	r.Release()
	if !schemaOK {
		return nil, false
	}
	for _, m := range msgs[1:] {
		rec, ok := batchInPlace(data[m.Meta:m.Meta+m.MetaLen], data[m.Body:m.Body+m.BodyLen])
		if !ok {
			return recs, false
		}
		recs = append(recs, rec)
		if CheckRecord(rec) != nil {
			return recs, false
		}
	}
	return recs, true
}

// headerType is the header_type of a Message flatbuffer (0 when it cannot be read).
func headerType(meta []byte) byte {
	w := fbWalker{b: meta}
	root, err := w.u32(0)
	if err != nil {
		return 0
	}
	t, _ := w.byteField(int64(root), fbMessageHeaderType)
	return t
}

// batchInPlace builds the record batch whose Message flatbuffer is meta and body is body, each column's
// buffers slices of body.
func batchInPlace(meta, body []byte) (arrow.Record, bool) {
	w := fbWalker{b: meta}
	root, err := w.u32(0)
	if err != nil {
		return nil, false
	}
	msg := int64(root)
	if t, err := w.byteField(msg, fbMessageHeaderType); err != nil || t != fbHeaderRecordBatch {
		return nil, false
	}
	rb, err := w.ref(msg, fbMessageHeader)
	if err != nil || rb == 0 {
		return nil, false
	}
	if c, err := w.ref(rb, fbBatchCompression); err != nil || c != 0 {
		return nil, false // compressed: the library inflates it
	}
	if _, n, err := w.vector(rb, fbBatchVariadic, 8, "variadic buffer counts"); err != nil || n != 0 {
		return nil, false
	}
	lenAt, err := w.field(rb, fbBatchLength)
	if err != nil || lenAt == 0 || lenAt+8 > int64(len(meta)) {
		return nil, false
	}
	rows := int64(binary.LittleEndian.Uint64(meta[lenAt:]))
	nodesAt, nNodes, err := w.vector(rb, fbBatchNodes, 16, "nodes")
	if err != nil || nNodes != int64(schema.NumCols) {
		return nil, false
	}
	bufsAt, nBufs, err := w.vector(rb, fbBatchBuffers, 16, "buffers")
	if err != nil {
		return nil, false
	}
	if rows < 0 || rows > 1<<31-1 {
		return nil, false
	}
	ib := int64(0)
	nextBuf := func(align uintptr) (*memory.Buffer, bool) {
		if ib >= nBufs {
			return nil, false
		}
		p := bufsAt + 16*ib
		ib++
		off, n := int64(binary.LittleEndian.Uint64(meta[p:])), int64(binary.LittleEndian.Uint64(meta[p+8:]))
		if off < 0 || n < 0 || off > int64(len(body)) || n > int64(len(body))-off {
			return nil, false
		}
		if n == 0 {
			return memory.NewBufferBytes(nil), true
		}
		b := body[off : off+n]
		if uintptr(unsafe.Pointer(&b[0]))%align != 0 {
			return nil, false // the library copies it into an aligned buffer
		}
		return memory.NewBufferBytes(b), true
	}
	cols := make([]arrow.Array, 0, schema.NumCols)
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, f := range engine.Schema.Fields() {
		p := nodesAt + 16*int64(i)
		length, nulls := int64(binary.LittleEndian.Uint64(meta[p:])), int64(binary.LittleEndian.Uint64(meta[p+8:]))
		if length != rows || nulls < 0 || nulls > length {
			return nil, false
		}
		// As the library loads them: no validity bitmap when no value is null, no values buffer for no rows.
		validity, ok := nextBuf(1)
		if !ok {
			return nil, false
		}
		if nulls == 0 {
			validity = nil
		}
		bufs := []*memory.Buffer{validity}
		switch dt := f.Type.(type) {
		case *arrow.StringType:
			offs, ok1 := nextBuf(4)
			vals, ok2 := nextBuf(1)
			if !ok1 || !ok2 {
				return nil, false
			}
			bufs = append(bufs, offs, vals)
		case arrow.FixedWidthDataType:
			vals, ok := nextBuf(uintptr(max(1, dt.BitWidth()/8)))
			if !ok {
				return nil, false
			}
			if length == 0 {
				vals = nil
			}
			bufs = append(bufs, vals)
		default:
			return nil, false
		}
		d := array.NewData(f.Type, int(length), bufs, nil, int(nulls), 0)
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}
	if ib != nBufs {
		return nil, false
	}
	return array.NewRecord(engine.Schema, cols, rows), true
}
