package ingest

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
)

// A schema message whose flatbuffer claims 2^31 custom-metadata entries (or field-name bytes) in a few hundred
// bytes is refused before the Arrow library reads it: the library allocates by the claimed count, and an
// out-of-memory is not recoverable (FuzzLogMessage found it through the log consumer).
func TestReadIPCRefusesLyingVectorCounts(t *testing.T) {
	md := arrow.NewMetadata([]string{"k"}, []string{"v"})
	schema := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: arrow.PrimitiveTypes.Int64}}, &md)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	msgs, err := IPCMessages(good)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("the schema-only stream: %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	meta := good[m.Meta : m.Meta+m.MetaLen]
	fw := fbWalker{b: meta}
	root, _ := fw.u32(0)
	header, err := fw.ref(int64(root), 2)
	if err != nil || header == 0 {
		t.Fatalf("no schema header: %v", err)
	}
	for _, c := range []struct {
		name  string
		where func() int64
		want  string
	}{
		{"schema metadata", func() int64 { v, _ := fw.ref(header, 2); return v }, "custom_metadata claims"},
		{"fields", func() int64 { v, _ := fw.ref(header, 1); return v }, "fields claims"},
		{"field name", func() int64 {
			fields, _ := fw.ref(header, 1)
			u, _ := fw.u32(fields + 4)
			name, _ := fw.ref(fields+4+int64(u), 0)
			return name
		}, "a field name claims"},
	} {
		at := c.where()
		if at <= 0 {
			t.Fatalf("%s: not found in the metadata", c.name)
		}
		bad := bytes.Clone(good)
		binary.LittleEndian.PutUint32(bad[m.Meta+int(at):], 1<<31)
		err := ReadIPC(bad, 1<<20, func(arrow.Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s claiming 2^31 entries: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// The untouched stream passes the framing and metadata checks (ReadIPC then refuses its schema).
	if err := CheckIPCFraming(good); err != nil {
		t.Errorf("a well-formed stream: %v", err)
	}
}
