package ingest

import (
	"bytes"
	"context"
	"math"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/engine/schema"
)

// withIDs returns a batch of len(offs)-1 valid events whose id column is values cut at offs.
func withIDs(t *testing.T, values []byte, offs []int32) arrow.Record {
	return withStrings(t, schema.ColID, nil, values, offs)
}

// withStrings returns a batch of len(offs)-1 valid events whose column col is values cut at offs, with the
// validity bitmap valid (nil: no nulls).
func withStrings(t *testing.T, col int, valid []byte, values []byte, offs []int32) arrow.Record {
	t.Helper()
	mem := memory.NewGoAllocator()
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	n := len(offs) - 1
	for i := 0; i < n; i++ {
		ev := engine.Event{ID: "x", Kind: engine.KindProbe, TS: 1, Lat: 30, Lng: 120}
		bb.Append(&ev, 0x89283082803ffff)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	var bitmap *memory.Buffer
	nulls := 0
	if valid != nil {
		bitmap = memory.NewBufferBytes(valid)
		for i := 0; i < n; i++ {
			if valid[i/8]&(1<<(i%8)) == 0 {
				nulls++
			}
		}
	}
	d := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{bitmap,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)), memory.NewBufferBytes(values)}, nil, nulls, 0)
	defer d.Release()
	ids := array.MakeFromData(d)
	defer ids.Release()
	cols := append([]arrow.Array(nil), rec.Columns()...)
	cols[col] = ids
	return array.NewRecord(engine.Schema, cols, int64(n))
}

// A string cut inside a character is refused, though the column's bytes together are valid UTF-8: the check of
// a whole column at once looks at where each string starts.
func TestCheckRecordFindsAStringCutInsideACharacter(t *testing.T) {
	values := []byte("abcé") // é is 2 bytes: c3 a9
	rec := withIDs(t, values, []int32{0, 2, 4, 5})
	defer rec.Release()
	err := CheckRecord(rec)
	if err == nil || !strings.Contains(err.Error(), "row 2 is not valid UTF-8") {
		t.Fatalf("CheckRecord = %v, want row 2 not valid UTF-8", err)
	}
	ok := withIDs(t, values, []int32{0, 2, 3, 5})
	defer ok.Release()
	if err := CheckRecord(ok); err != nil {
		t.Fatalf("CheckRecord of whole characters = %v", err)
	}
}

// The bytes of a null row are not read: a null source whose slot holds a stray byte passes; the same row
// not null is named.
func TestCheckRecordSkipsTheBytesOfNullRows(t *testing.T) {
	values := []byte("cam\xffcam")
	offs := []int32{0, 3, 4, 7}
	rec := withStrings(t, schema.ColSource, []byte{0b101}, values, offs)
	defer rec.Release()
	if err := CheckRecord(rec); err != nil {
		t.Fatalf("CheckRecord with the stray byte in a null row = %v", err)
	}
	bad := withStrings(t, schema.ColSource, []byte{0b111}, values, offs)
	defer bad.Release()
	if err := CheckRecord(bad); err == nil || !strings.Contains(err.Error(), "column source: row 2 is not valid UTF-8") {
		t.Fatalf("CheckRecord with the stray byte in a row = %v", err)
	}
}

// stringsValid answers as a check of every string: random cuts of random bytes (mostly UTF-8, some not).
func TestStringsValidAgreesWithEveryString(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	pieces := []string{"a", "é", "水", "😀", "\xc3", "\xa9", "\xff", "", "bc"}
	for round := 0; round < 20000; round++ {
		var sb strings.Builder
		for k := rng.Intn(8); k > 0; k-- {
			p := pieces[rng.Intn(len(pieces))]
			if rng.Intn(10) > 0 && !utf8.ValidString(p) {
				p = "z"
			}
			sb.WriteString(p)
		}
		b := []byte(sb.String())
		offs := []int32{int32(rng.Intn(len(b) + 1))}
		for k := rng.Intn(5); k > 0; k-- {
			last := offs[len(offs)-1]
			offs = append(offs, last+int32(rng.Intn(len(b)-int(last)+1)))
		}
		if len(offs) < 2 {
			offs = append(offs, offs[0])
		}
		want := true
		for i := 1; i < len(offs); i++ {
			want = want && utf8.Valid(b[offs[i-1]:offs[i]])
		}
		if got := stringsValid(memory.NewBufferBytes(b), offs); got != want {
			t.Fatalf("stringsValid(%q, %v) = %v, want %v", b, offs, got, want)
		}
	}
}

// idSink records the BatchID of every batch appended.
type idSink struct{ ids []BatchID }

func (s *idSink) Append(_ context.Context, _ arrow.Record, id BatchID) (uint64, error) {
	s.ids = append(s.ids, id)
	return uint64(len(s.ids)), nil
}
func (s *idSink) AppendDead(context.Context, []DeadLetter, BatchID) error { return nil }

// A body read from a reader (HTTP) is stored under the id a body given whole (NATS) gets: the hash taken
// while reading is the body's, with a key and without, Arrow and a JSON array.
func TestReadBodiesKeepTheirIDs(t *testing.T) {
	arrowData := arrowBody(t, 50, false)
	jsonData := []byte(`[{"kind":"probe","ts":1795737600000,"id":"v1","lat":30.2,"lng":120.1,"speed_kmh":20}]`)
	for _, c := range []struct {
		name  string
		body  []byte
		arrow bool
	}{{"arrow", arrowData, true}, {"json", jsonData, false}} {
		for _, key := range []string{"", "k1"} {
			whole, read := &idSink{}, &idSink{}
			var err error
			if c.arrow {
				_, err = New(Config{MaxAhead: -1}, whole).IngestArrow(context.Background(), c.body, "http:a", key)
			} else {
				_, err = New(Config{MaxAhead: -1}, whole).Ingest(context.Background(), c.body, "http:a", engine.KindUnknown, key)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := New(Config{MaxAhead: -1}, read).IngestReader(context.Background(), bytes.NewReader(c.body), -1, c.arrow, "http:a", engine.KindUnknown, key); err != nil {
				t.Fatal(err)
			}
			if len(whole.ids) != 1 || len(read.ids) != 1 || whole.ids[0] != read.ids[0] || whole.ids[0].Hash == "" {
				t.Errorf("%s, key %q: read %+v, whole %+v", c.name, key, read.ids, whole.ids)
			}
		}
	}
}

// inRange answers as get row by row: float32 and float64 columns, with nulls and without, NaN (absent),
// ±Inf and values either side of the bounds.
func TestNumberRangeAgreesWithRows(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	vals := []float64{0, 5, 10, 10.5, -1, math.NaN(), math.Inf(1), math.Inf(-1)}
	mem := memory.NewGoAllocator()
	for round := 0; round < 2000; round++ {
		n := 1 + rng.Intn(6)
		nulls := rng.Intn(2) == 0
		b32, b64 := array.NewFloat32Builder(mem), array.NewFloat64Builder(mem)
		for i := 0; i < n; i++ {
			if nulls && rng.Intn(3) == 0 {
				b32.AppendNull()
				b64.AppendNull()
				continue
			}
			v := vals[rng.Intn(len(vals))]
			b32.Append(float32(v))
			b64.Append(v)
		}
		for _, a := range []arrow.Array{b32.NewArray(), b64.NewArray()} {
			c := newNumCol(a)
			want := true
			for i := 0; i < n; i++ {
				if v, ok := c.get(i); ok && !(v >= 0 && v <= 10) {
					want = false
				}
			}
			if got := c.inRange(n, 0, 10); got != want {
				t.Fatalf("%s with %d nulls: inRange %v, rows %v", a, a.NullN(), got, want)
			}
			a.Release()
		}
		b32.Release()
		b64.Release()
	}
}
