package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
)

// ReadIPC reads the record batches of the Arrow IPC stream data, which must have the engine schema, and
// passes each to fn (which must Retain a record it keeps after returning). It is the one reader of Arrow
// bytes that came from outside the process or from the log, and it trusts nothing in them:
//   - before anything is allocated for a message, the lengths its framing and metadata claim (metadata,
//     body, and every vector and string count inside the flatbuffer metadata) are checked against the
//     bytes received (CheckIPCFraming);
//   - batches are decoded with an allocator capped at maxAlloc bytes outstanding (a compressed buffer that
//     claims to inflate to more is refused, not allocated);
//   - every batch's structure (column lengths, buffer sizes, string offsets, UTF-8) is checked before fn
//     sees it (CheckRecord), so no later reader indexes out of range;
//   - a panic inside the Arrow library while decoding becomes an error.
//
// The batches' buffers come from the Go heap, not from an allocator of the caller's: when a malformed
// stream makes the Arrow library fail halfway through a batch, it leaves the buffers it had allocated
// unreleased (fuzzing found it), and only the garbage collector can take those back. An error names the
// message or batch that is wrong.
func ReadIPC(data []byte, maxAlloc int64, fn func(arrow.Record) error) (err error) {
	if err := CheckIPCFraming(data); err != nil {
		return err
	}
	capped := &cappedAllocator{mem: memory.NewGoAllocator(), limit: maxAlloc}
	var fnErr error
	defer func() {
		if v := recover(); v != nil {
			if fnErr != nil { // fn panicked: not ours to hide
				panic(v)
			}
			err = fmt.Errorf("cannot read Arrow IPC stream: %v", v)
		}
	}()
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(capped))
	if err != nil {
		return fmt.Errorf("cannot read Arrow IPC stream: %w", err)
	}
	defer r.Release()
	if err := engine.CheckSchema(r.Schema()); err != nil {
		return err
	}
	for n := 1; r.Next(); n++ {
		rec := r.Record()
		if err := CheckRecord(rec); err != nil {
			return fmt.Errorf("cannot read Arrow IPC stream: batch %d: %w", n, err)
		}
		if err := fn(rec); err != nil {
			fnErr = err
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("cannot read Arrow IPC stream: %w", err)
	}
	return nil
}

// ErrAllocCap is the error of a decode that needed more memory than its cap.
var ErrAllocCap = errors.New("the stream needs more memory than its cap")

// cappedAllocator refuses (panics with ErrAllocCap, which ReadIPC turns into an error) an allocation that
// would take the bytes it has outstanding past limit.
type cappedAllocator struct {
	mem   memory.Allocator
	limit int64
	used  atomic.Int64
}

func (a *cappedAllocator) take(n int64) {
	if n < 0 || a.used.Add(n) > a.limit {
		a.used.Add(-n)
		panic(fmt.Errorf("%w (%d bytes asked, %d in use, cap %d)", ErrAllocCap, n, a.used.Load(), a.limit))
	}
}

func (a *cappedAllocator) Allocate(size int) []byte {
	a.take(int64(size))
	return a.mem.Allocate(size)
}

func (a *cappedAllocator) Reallocate(size int, b []byte) []byte {
	a.take(int64(size - len(b)))
	return a.mem.Reallocate(size, b)
}

func (a *cappedAllocator) Free(b []byte) {
	a.used.Add(-int64(len(b)))
	a.mem.Free(b)
}

// ipcContinuation marks an IPC message (Arrow format ≥ 0.15).
const ipcContinuation = 0xFFFFFFFF

// IPCMessage is where one message of an Arrow IPC stream sits in its bytes.
type IPCMessage struct {
	Meta, MetaLen int // the flatbuffer metadata
	Body, BodyLen int
	BodyLenAt     int // where the metadata's bodyLength field is (-1: absent)
}

// CheckIPCFraming walks the messages of an Arrow IPC stream without decoding them and checks that each
// one's metadata and body fit in what was received.
func CheckIPCFraming(data []byte) error {
	_, err := IPCMessages(data)
	return err
}

// IPCMessages walks the framing of an Arrow IPC stream (continuation marker, metadata length, flatbuffer
// Message, body) and returns where each message is, checking every length against the bytes there are.
func IPCMessages(data []byte) ([]IPCMessage, error) {
	var out []IPCMessage
	pos := 0
	for n := 1; ; n++ {
		if pos == len(data) {
			return out, nil // a stream without the end-of-stream marker
		}
		if len(data)-pos < 4 {
			return out, fmt.Errorf("cannot read Arrow IPC stream: message %d: %d stray bytes at the end", n, len(data)-pos)
		}
		word := binary.LittleEndian.Uint32(data[pos:])
		pos += 4
		if word == ipcContinuation {
			if len(data)-pos < 4 {
				return out, fmt.Errorf("cannot read Arrow IPC stream: message %d: no length after the continuation marker", n)
			}
			word = binary.LittleEndian.Uint32(data[pos:])
			pos += 4
		}
		if word == 0 {
			return out, nil // end of stream
		}
		metaLen := int64(int32(word))
		if metaLen < 0 || metaLen > int64(len(data)-pos) {
			return out, fmt.Errorf("cannot read Arrow IPC stream: message %d claims %d bytes of metadata, %d bytes remain", n, metaLen, len(data)-pos)
		}
		bodyLen, at, err := messageBodyLength(data[pos : pos+int(metaLen)])
		if err != nil {
			return out, fmt.Errorf("cannot read Arrow IPC stream: message %d: %w", n, err)
		}
		if err := checkMessageMeta(data[pos : pos+int(metaLen)]); err != nil {
			return out, fmt.Errorf("cannot read Arrow IPC stream: message %d: %w", n, err)
		}
		m := IPCMessage{Meta: pos, MetaLen: int(metaLen), BodyLenAt: -1}
		if at >= 0 {
			m.BodyLenAt = pos + at
		}
		pos += int(metaLen)
		if bodyLen < 0 || bodyLen > int64(len(data)-pos) {
			return out, fmt.Errorf("cannot read Arrow IPC stream: message %d claims a body of %d bytes, %d bytes remain", n, bodyLen, len(data)-pos)
		}
		m.Body, m.BodyLen = pos, int(bodyLen)
		out = append(out, m)
		pos += int(bodyLen)
	}
}

// messageBodyLength reads the bodyLength field (slot 3) of an Arrow flatbuffer Message table, checking
// every offset against the buffer; at is the field's offset in b (-1 when absent).
func messageBodyLength(b []byte) (n int64, at int, err error) {
	bad := errors.New("the message metadata is not a valid flatbuffer")
	if len(b) < 4 {
		return 0, -1, bad
	}
	table := int64(binary.LittleEndian.Uint32(b))
	if table+4 > int64(len(b)) {
		return 0, -1, bad
	}
	vtable := table - int64(int32(binary.LittleEndian.Uint32(b[table:])))
	if vtable < 0 || vtable+4 > int64(len(b)) {
		return 0, -1, bad
	}
	vlen := int64(binary.LittleEndian.Uint16(b[vtable:]))
	const slot = 4 + 2*3 // bodyLength is field 3
	if slot+2 > vlen || vtable+slot+2 > int64(len(b)) {
		return 0, -1, nil // absent: no body
	}
	off := int64(binary.LittleEndian.Uint16(b[vtable+slot:]))
	if off == 0 {
		return 0, -1, nil
	}
	if table+off+8 > int64(len(b)) {
		return 0, -1, bad
	}
	return int64(binary.LittleEndian.Uint64(b[table+off:])), int(table + off), nil
}

// CheckRecord checks the structure of a batch in the engine schema so that reading any row of it stays in
// range: every column as long as the batch, buffers as large as their values need, string offsets
// increasing and inside their data, strings valid UTF-8, no nulls where the schema has none.
func CheckRecord(rec arrow.Record) error {
	n := rec.NumRows()
	if n < 0 || n > 1<<31-1 {
		return fmt.Errorf("%d rows", n)
	}
	for c := 0; c < int(rec.NumCols()); c++ {
		col := rec.Column(c)
		name := rec.Schema().Field(c).Name
		if int64(col.Len()) != n {
			return fmt.Errorf("column %s holds %d values for %d rows", name, col.Len(), n)
		}
		d := col.Data()
		off, ln := int64(d.Offset()), int64(d.Len())
		if off < 0 {
			return fmt.Errorf("column %s has offset %d", name, off)
		}
		bufs := d.Buffers()
		hasBitmap := len(bufs) > 0 && bufs[0] != nil && bufs[0].Len() > 0
		if hasBitmap && int64(bufs[0].Len())*8 < off+ln {
			return fmt.Errorf("column %s: validity bitmap too short", name)
		}
		if col.NullN() != 0 {
			if !hasBitmap {
				return fmt.Errorf("column %s: %d nulls without a validity bitmap", name, col.NullN())
			}
			if !engine.Schema.Field(c).Nullable {
				return fmt.Errorf("column %s: %d nulls in a column that must have a value", name, col.NullN())
			}
		}
		switch a := col.(type) {
		case *array.String:
			if len(bufs) < 3 || bufs[1] == nil || int64(bufs[1].Len()) < (off+ln+1)*4 {
				return fmt.Errorf("column %s: offsets buffer too short", name)
			}
			offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[off : off+ln+1]
			dataLen := int64(0)
			if bufs[2] != nil {
				dataLen = int64(bufs[2].Len())
			}
			if offs[0] < 0 {
				return fmt.Errorf("column %s: negative string offset", name)
			}
			for i := 1; i < len(offs); i++ {
				if offs[i] < offs[i-1] {
					return fmt.Errorf("column %s: string offsets decrease at row %d", name, i-1)
				}
			}
			if int64(offs[ln]) > dataLen {
				return fmt.Errorf("column %s: strings end at byte %d of %d", name, offs[ln], dataLen)
			}
			if stringsValid(bufs[2], offs) {
				continue // every string valid, the null rows' too
			}
			for i := 0; i < a.Len(); i++ {
				if a.IsValid(i) && !utf8.ValidString(a.Value(i)) {
					return fmt.Errorf("column %s: row %d is not valid UTF-8", name, i+1)
				}
			}
		default:
			fw, ok := col.DataType().(arrow.FixedWidthDataType)
			if !ok {
				return fmt.Errorf("column %s has type %s", name, col.DataType())
			}
			width := int64(fw.BitWidth() / 8)
			if len(bufs) < 2 || (ln > 0 && (bufs[1] == nil || int64(bufs[1].Len()) < (off+ln)*width)) {
				return fmt.Errorf("column %s: values buffer too short", name)
			}
		}
	}
	return nil
}

// stringsValid reports whether every string of a column is valid UTF-8 (null rows' bytes included), checked all at once:
// the bytes from the first string's start to the last one's end are valid UTF-8 and every string after the
// first starts on a character (not on a continuation byte 10xxxxxx) or at that end. Then each string is whole
// characters of valid UTF-8, and the converse holds too, so it answers as a check of every string would,
// without a call per row. When it says no, the rows are checked one by one, the null ones skipped, which names
// the first wrong row. offs are the column's offsets (checked: increasing, inside values).
func stringsValid(values *memory.Buffer, offs []int32) bool {
	if len(offs) < 2 || offs[0] == offs[len(offs)-1] {
		return true
	}
	b := values.Bytes()
	end := offs[len(offs)-1]
	if !utf8.Valid(b[offs[0]:end]) {
		return false
	}
	for _, o := range offs[1 : len(offs)-1] {
		if o < end && b[o]&0xC0 == 0x80 {
			return false
		}
	}
	return true
}
