package ingest

import (
	"encoding/binary"
	"fmt"
)

// checkMessageMeta walks the flatbuffer Message of one Arrow IPC message (Schema, RecordBatch or
// DictionaryBatch, with every nested Field, KeyValue and type table) and checks that each vector and string it
// holds fits in the metadata's bytes. The Arrow library trusts the counts a flatbuffer claims and allocates by
// them (make([]string, CustomMetadataLength()) and the like): a 2 KB message claiming 2^31 metadata entries
// would exhaust memory, which no recover can catch. So the counts are checked here, before the library reads
// the message. Offsets and scalars out of range only make the library panic, which ReadIPC recovers; they are
// checked where the walk needs them.
func checkMessageMeta(b []byte) error {
	w := fbWalker{b: b}
	root, err := w.u32(0)
	if err != nil {
		return err
	}
	return w.message(int64(root))
}

// fbWalker reads a flatbuffer with every position checked; budget bounds the tables visited (a vector of
// offsets may point many times at one table).
type fbWalker struct {
	b      []byte
	tables int
}

const (
	fbMaxTables = 1 << 16
	fbMaxDepth  = 64
)

func (w *fbWalker) bad(format string, a ...any) error {
	return fmt.Errorf("the message metadata is not a valid flatbuffer: "+format, a...)
}

func (w *fbWalker) u32(pos int64) (uint32, error) {
	if pos < 0 || pos+4 > int64(len(w.b)) {
		return 0, w.bad("offset %d outside its %d bytes", pos, len(w.b))
	}
	return binary.LittleEndian.Uint32(w.b[pos:]), nil
}

// field returns the position of field i of the table at t (0 when absent).
func (w *fbWalker) field(t int64, i int) (int64, error) {
	so, err := w.u32(t)
	if err != nil {
		return 0, err
	}
	vt := t - int64(int32(so))
	if vt < 0 || vt+4 > int64(len(w.b)) {
		return 0, w.bad("vtable at %d outside its %d bytes", vt, len(w.b))
	}
	vlen := int64(binary.LittleEndian.Uint16(w.b[vt:]))
	slot := int64(4 + 2*i)
	if slot+2 > vlen {
		return 0, nil
	}
	if vt+slot+2 > int64(len(w.b)) {
		return 0, w.bad("vtable at %d outside its %d bytes", vt, len(w.b))
	}
	off := int64(binary.LittleEndian.Uint16(w.b[vt+slot:]))
	if off == 0 {
		return 0, nil
	}
	return t + off, nil
}

// ref follows the offset field i of the table at t (0 when absent).
func (w *fbWalker) ref(t int64, i int) (int64, error) {
	p, err := w.field(t, i)
	if err != nil || p == 0 {
		return 0, err
	}
	u, err := w.u32(p)
	if err != nil {
		return 0, err
	}
	return p + int64(u), nil
}

// vector checks the vector in field i of the table at t, of elements of size elem, and returns where its
// elements start and how many there are (0, 0 when absent).
func (w *fbWalker) vector(t int64, i int, elem int64, what string) (int64, int64, error) {
	v, err := w.ref(t, i)
	if err != nil || v == 0 {
		return 0, 0, err
	}
	n32, err := w.u32(v)
	if err != nil {
		return 0, 0, err
	}
	n := int64(n32)
	if n*elem > int64(len(w.b))-(v+4) {
		return 0, 0, w.bad("%s claims %d entries in %d bytes", what, n, len(w.b))
	}
	return v + 4, n, nil
}

// tablesOf calls fn with each table of the vector of tables in field i of the table at t.
func (w *fbWalker) tablesOf(t int64, i int, what string, fn func(int64) error) error {
	at, n, err := w.vector(t, i, 4, what)
	if err != nil {
		return err
	}
	for k := int64(0); k < n; k++ {
		p := at + 4*k
		u, err := w.u32(p)
		if err != nil {
			return err
		}
		if err := fn(p + int64(u)); err != nil {
			return err
		}
	}
	return nil
}

func (w *fbWalker) enter(t int64) error {
	w.tables++
	if w.tables > fbMaxTables {
		return w.bad("more than %d tables", fbMaxTables)
	}
	if _, err := w.u32(t); err != nil {
		return err
	}
	return nil
}

// byteField reads the one-byte field i of the table at t (0 when absent).
func (w *fbWalker) byteField(t int64, i int) (byte, error) {
	p, err := w.field(t, i)
	if err != nil || p == 0 {
		return 0, err
	}
	if p >= int64(len(w.b)) {
		return 0, w.bad("field at %d outside its %d bytes", p, len(w.b))
	}
	return w.b[p], nil
}

func (w *fbWalker) keyValues(t int64, i int) error {
	return w.tablesOf(t, i, "custom_metadata", func(kv int64) error {
		if err := w.enter(kv); err != nil {
			return err
		}
		if _, _, err := w.vector(kv, 0, 1, "a metadata key"); err != nil {
			return err
		}
		_, _, err := w.vector(kv, 1, 1, "a metadata value")
		return err
	})
}

// Message: version 0, header_type 1, header 2, bodyLength 3, custom_metadata 4.
func (w *fbWalker) message(t int64) error {
	if err := w.enter(t); err != nil {
		return err
	}
	if err := w.keyValues(t, 4); err != nil {
		return err
	}
	kind, err := w.byteField(t, 1)
	if err != nil {
		return err
	}
	h, err := w.ref(t, 2)
	if err != nil || h == 0 {
		return err
	}
	switch kind {
	case 1:
		return w.schema(h)
	case 2: // DictionaryBatch: id 0, data 1, isDelta 2
		if err := w.enter(h); err != nil {
			return err
		}
		rb, err := w.ref(h, 1)
		if err != nil || rb == 0 {
			return err
		}
		return w.recordBatch(rb)
	case 3:
		return w.recordBatch(h)
	}
	return nil // tensors: the reader refuses them
}

// Schema: endianness 0, fields 1, custom_metadata 2, features 3.
func (w *fbWalker) schema(t int64) error {
	if err := w.enter(t); err != nil {
		return err
	}
	if err := w.keyValues(t, 2); err != nil {
		return err
	}
	if _, _, err := w.vector(t, 3, 8, "features"); err != nil {
		return err
	}
	return w.tablesOf(t, 1, "fields", func(f int64) error { return w.fieldTable(f, 1) })
}

// Field: name 0, nullable 1, type_type 2, type 3, dictionary 4, children 5, custom_metadata 6.
func (w *fbWalker) fieldTable(t int64, depth int) error {
	if depth > fbMaxDepth {
		return w.bad("fields nested deeper than %d", fbMaxDepth)
	}
	if err := w.enter(t); err != nil {
		return err
	}
	if _, _, err := w.vector(t, 0, 1, "a field name"); err != nil {
		return err
	}
	if err := w.keyValues(t, 6); err != nil {
		return err
	}
	typ, err := w.byteField(t, 2)
	if err != nil {
		return err
	}
	if tt, err := w.ref(t, 3); err != nil {
		return err
	} else if tt != 0 {
		if err := w.enter(tt); err != nil {
			return err
		}
		switch typ {
		case 10: // Timestamp: unit 0, timezone 1
			if _, _, err := w.vector(tt, 1, 1, "a time zone"); err != nil {
				return err
			}
		case 14: // Union: mode 0, typeIds 1
			if _, _, err := w.vector(tt, 1, 4, "union type ids"); err != nil {
				return err
			}
		}
	}
	if d, err := w.ref(t, 4); err != nil { // DictionaryEncoding: id 0, indexType 1, isOrdered 2, kind 3
		return err
	} else if d != 0 {
		if err := w.enter(d); err != nil {
			return err
		}
		if it, err := w.ref(d, 1); err != nil {
			return err
		} else if it != 0 {
			if err := w.enter(it); err != nil {
				return err
			}
		}
	}
	return w.tablesOf(t, 5, "children", func(c int64) error { return w.fieldTable(c, depth+1) })
}

// RecordBatch: length 0, nodes 1 (16-byte structs), buffers 2 (16-byte structs), compression 3,
// variadicBufferCounts 4.
func (w *fbWalker) recordBatch(t int64) error {
	if err := w.enter(t); err != nil {
		return err
	}
	if _, _, err := w.vector(t, 1, 16, "nodes"); err != nil {
		return err
	}
	if _, _, err := w.vector(t, 2, 16, "buffers"); err != nil {
		return err
	}
	if c, err := w.ref(t, 3); err != nil {
		return err
	} else if c != 0 {
		if err := w.enter(c); err != nil {
			return err
		}
	}
	_, _, err := w.vector(t, 4, 8, "variadic buffer counts")
	return err
}
