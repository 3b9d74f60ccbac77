package replay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
)

// Format is an export file format. Every format carries the events in the engine schema (engine.Schema) and
// keeps the log's batch boundaries, so that a file read back gives the engine the same batches as the log:
// lateness is judged per batch, so the boundaries are part of "the same input".
type Format string

// The export formats.
const (
	// FormatArrow is an Arrow IPC file (random access, one record batch per log batch).
	FormatArrow Format = "arrow"
	// FormatParquet is a Parquet file written by Arrow's pqarrow; small log batches share a row group and
	// their sizes are kept in the key-value metadata MetaBatchRows.
	FormatParquet Format = "parquet"
	// FormatNDJSON is the wire format of spec/events.md, one event a line; an empty line ends a batch.
	FormatNDJSON Format = "ndjson"
)

// MetaBatchRows is the Parquet key-value metadata key holding the row counts of the log batches, in order,
// comma-separated. A reader without it (a foreign file) takes each row group in slices of MaxReadBatch rows.
const MetaBatchRows = "citybrain.batch_rows"

// MaxReadBatch bounds the rows of one batch read from a file that does not record batch boundaries.
const MaxReadBatch = 8192

// parquetRowGroupRows is the size at which the Parquet writer starts a new row group (at a batch boundary).
const parquetRowGroupRows = 64 << 10

// ParseFormat parses arrow, parquet or ndjson.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatArrow, FormatParquet, FormatNDJSON:
		return f, nil
	case "ipc", "feather":
		return FormatArrow, nil
	case "jsonl", "json":
		return FormatNDJSON, nil
	}
	return "", fmt.Errorf("cannot use format %q: use arrow, parquet or ndjson", s)
}

// FormatOf picks the format of a file by its extension (.arrow/.ipc/.feather, .parquet/.pq,
// .ndjson/.jsonl/.json, optionally followed by nothing else).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".arrow", ".ipc", ".feather", ".arrows":
		return FormatArrow, nil
	case ".parquet", ".pq":
		return FormatParquet, nil
	case ".ndjson", ".jsonl", ".json":
		return FormatNDJSON, nil
	}
	return "", fmt.Errorf("cannot tell the format of %s from its extension: use .arrow, .parquet or .ndjson", path)
}

// ContentType is the media type of an export in format f.
func (f Format) ContentType() string {
	switch f {
	case FormatArrow:
		return "application/vnd.apache.arrow.file"
	case FormatParquet:
		return "application/vnd.apache.parquet"
	default:
		return "application/x-ndjson"
	}
}

// Ext is the usual file extension of format f, with the dot.
func (f Format) Ext() string { return "." + string(f) }

// BatchWriter writes engine-schema batches to a file in one format. Write does not keep rec. Close writes
// what the format needs at the end (footer, metadata); it does not close the underlying writer.
type BatchWriter interface {
	Write(rec arrow.Record) error
	Close() error
}

// NewWriter returns a writer of format f on w, allocating from mem.
func NewWriter(w io.Writer, f Format, mem memory.Allocator) (BatchWriter, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	switch f {
	case FormatArrow:
		ws, ok := w.(io.WriteSeeker)
		if !ok {
			ws = &posWriter{w: w}
		}
		fw, err := ipc.NewFileWriter(ws, ipc.WithSchema(AnalystSchema), ipc.WithAllocator(mem))
		if err != nil {
			return nil, fmt.Errorf("cannot start Arrow IPC file: %w", err)
		}
		return &arrowWriter{fw: fw, mem: mem}, nil
	case FormatParquet:
		props := parquet.NewWriterProperties(parquet.WithAllocator(mem), parquet.WithCompression(compress.Codecs.Zstd),
			parquet.WithMaxRowGroupLength(1<<40), parquet.WithDictionaryDefault(true))
		// pqarrow closes a sink that is an io.Closer; the caller owns w, so hide its Close.
		fw, err := pqarrow.NewFileWriter(AnalystSchema, struct{ io.Writer }{w}, props,
			pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem), pqarrow.WithStoreSchema()))
		if err != nil {
			return nil, fmt.Errorf("cannot start Parquet file: %w", err)
		}
		return &parquetWriter{fw: fw, mem: mem}, nil
	case FormatNDJSON:
		return &ndjsonWriter{w: bufio.NewWriterSize(w, 256<<10)}, nil
	}
	return nil, fmt.Errorf("cannot write format %q: use arrow, parquet or ndjson", f)
}

// posWriter lets the Arrow IPC file writer, which only asks for the current position, write to a stream.
type posWriter struct {
	w   io.Writer
	pos int64
}

func (p *posWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.pos += int64(n)
	return n, err
}

func (p *posWriter) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekCurrent {
		return p.pos, nil
	}
	return p.pos, errors.New("cannot seek an export stream")
}

type arrowWriter struct {
	fw  *ipc.FileWriter
	mem memory.Allocator
}

func (a *arrowWriter) Write(rec arrow.Record) error {
	out, err := ToAnalyst(rec, a.mem)
	if err != nil {
		return err
	}
	defer out.Release()
	if err := a.fw.Write(out); err != nil {
		return fmt.Errorf("cannot write Arrow record batch (%d rows): %w", rec.NumRows(), err)
	}
	return nil
}

func (a *arrowWriter) Close() error {
	if err := a.fw.Close(); err != nil {
		return fmt.Errorf("cannot finish Arrow IPC file: %w", err)
	}
	return nil
}

type parquetWriter struct {
	fw        *pqarrow.FileWriter
	mem       memory.Allocator
	rows      int64 // rows in the current buffered row group
	sizes     []byte
	n         int
	decisions []byte // JSON array of the operator decisions in the range (MetaDecisions), nil: none
}

// MetaDecisions is the Parquet key-value metadata key of an export's operator decisions (a JSON array of
// Decision, at most MaxDecisions of them, the newest).
const MetaDecisions = "citybrain.decisions"

// setDecisions keeps the decisions to write at Close.
func (p *parquetWriter) setDecisions(js []byte) { p.decisions = js }

func (p *parquetWriter) Write(rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if p.rows >= parquetRowGroupRows {
		p.fw.NewBufferedRowGroup()
		p.rows = 0
	}
	out, err := ToAnalyst(rec, p.mem)
	if err != nil {
		return err
	}
	defer out.Release()
	if err := p.fw.WriteBuffered(out); err != nil {
		return fmt.Errorf("cannot write Parquet rows (%d): %w", rec.NumRows(), err)
	}
	p.rows += rec.NumRows()
	if p.n > 0 {
		p.sizes = append(p.sizes, ',')
	}
	p.sizes = strconv.AppendInt(p.sizes, rec.NumRows(), 10)
	p.n++
	return nil
}

func (p *parquetWriter) Close() error {
	if err := p.fw.AppendKeyValueMetadata(MetaBatchRows, string(p.sizes)); err != nil {
		p.fw.Close()
		return fmt.Errorf("cannot write Parquet metadata: %w", err)
	}
	if p.decisions != nil {
		if err := p.fw.AppendKeyValueMetadata(MetaDecisions, string(p.decisions)); err != nil {
			p.fw.Close()
			return fmt.Errorf("cannot write Parquet metadata: %w", err)
		}
	}
	if err := p.fw.Close(); err != nil {
		return fmt.Errorf("cannot finish Parquet file: %w", err)
	}
	return nil
}

type ndjsonWriter struct {
	w   *bufio.Writer
	buf []byte
	ev  engine.Event
}

func (n *ndjsonWriter) Write(rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		engine.ReadEvent(rec, i, &n.ev)
		n.buf = ingest.AppendJSON(n.buf[:0], &n.ev)
		n.buf = append(n.buf, '\n')
		if _, err := n.w.Write(n.buf); err != nil {
			return fmt.Errorf("cannot write NDJSON: %w", err)
		}
	}
	if err := n.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("cannot write NDJSON: %w", err)
	}
	return nil
}

func (n *ndjsonWriter) Close() error {
	if err := n.w.Flush(); err != nil {
		return fmt.Errorf("cannot write NDJSON: %w", err)
	}
	return nil
}

// BatchReader yields engine-schema batches in order. Next returns io.EOF after the last batch; the caller
// releases each record it gets. Close releases what the reader holds; it is safe to call twice.
type BatchReader interface {
	Next(ctx context.Context) (arrow.Record, error)
	Close() error
}

// OpenFile opens an exported file (format by extension) for reading batches. Cells are checked against the
// base resolution res and recomputed with geo.CellOf when the file was written at another resolution (or, for
// NDJSON, always computed).
func OpenFile(path string, res int, mem memory.Allocator) (BatchReader, error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	return OpenFileFormat(path, f, res, mem)
}

// OpenFileFormat is OpenFile with the format given.
func OpenFileFormat(path string, f Format, res int, mem memory.Allocator) (BatchReader, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if res <= 0 {
		res = geo.DefaultRes
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open export %s: %w", path, err)
	}
	var r BatchReader
	switch f {
	case FormatArrow:
		r, err = newArrowReader(fh, mem)
	case FormatParquet:
		r, err = newParquetReader(fh, mem)
	case FormatNDJSON:
		return &ndjsonReader{f: fh, sc: newLineScanner(fh), mem: mem, res: res}, nil
	default:
		err = fmt.Errorf("cannot read format %q", f)
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("cannot read export %s: %w", path, err)
	}
	return &recelling{r: r, res: res, mem: mem}, nil
}

type arrowReader struct {
	f       *os.File
	fr      *ipc.FileReader
	i       int
	analyst bool // AnalystSchema: converted to the engine schema
	mem     memory.Allocator
}

func newArrowReader(f *os.File, mem memory.Allocator) (*arrowReader, error) {
	// Arrow v17's FileReader never releases the dictionaries it reads (Close leaves its memo), and it reads
	// them when it opens: open through the Go allocator (garbage collected) to see the schema, keep that reader
	// for a file with dictionaries (its batches are converted into mem), and reopen a plain one with mem.
	fr, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		return nil, fmt.Errorf("cannot open Arrow IPC file: %w", err)
	}
	analyst := isAnalyst(fr.Schema())
	if !analyst {
		if err := engine.CheckSchema(fr.Schema()); err != nil {
			fr.Close()
			return nil, err
		}
		fr.Close()
		if fr, err = ipc.NewFileReader(f, ipc.WithAllocator(mem)); err != nil {
			return nil, fmt.Errorf("cannot open Arrow IPC file: %w", err)
		}
	}
	return &arrowReader{f: f, fr: fr, analyst: analyst, mem: mem}, nil
}

func (a *arrowReader) Next(ctx context.Context) (arrow.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.i >= a.fr.NumRecords() {
		return nil, io.EOF
	}
	rec, err := a.fr.RecordAt(a.i)
	if err != nil {
		return nil, fmt.Errorf("cannot read Arrow record batch %d: %w", a.i, err)
	}
	a.i++
	if a.analyst {
		defer rec.Release()
		return FromAnalyst(rec, a.mem)
	}
	return rec, nil
}

func (a *arrowReader) Close() error {
	if a.fr != nil {
		a.fr.Close()
		a.fr = nil
	}
	return a.f.Close()
}

type parquetReader struct {
	f     *os.File
	pf    *file.Reader
	fr    *pqarrow.FileReader
	mem   memory.Allocator
	sizes []int64 // remaining batch sizes (nil: none recorded)
	rg    int     // next row group
	cur   arrow.Record
	off   int64

	schema  *arrow.Schema // the file's
	analyst bool          // AnalystSchema: row groups are converted to the engine schema
}

func newParquetReader(f *os.File, mem memory.Allocator) (*parquetReader, error) {
	pf, err := file.NewParquetReader(f, file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		return nil, fmt.Errorf("cannot open Parquet file: %w", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: MaxReadBatch}, mem)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("cannot open Parquet file: %w", err)
	}
	sc, err := fr.Schema()
	analyst := err == nil && isAnalyst(sc)
	if err == nil && !analyst {
		err = engine.CheckSchema(sc)
	}
	if err != nil {
		pf.Close()
		return nil, err
	}
	p := &parquetReader{f: f, pf: pf, fr: fr, mem: mem, schema: sc, analyst: analyst}
	if kv := pf.MetaData().KeyValueMetadata(); kv != nil {
		if s := kv.FindValue(MetaBatchRows); s != nil && *s != "" {
			var total int64
			for _, part := range strings.Split(*s, ",") {
				n, err := strconv.ParseInt(part, 10, 64)
				if err != nil || n <= 0 {
					pf.Close()
					return nil, fmt.Errorf("cannot read Parquet metadata %s: bad size %q", MetaBatchRows, part)
				}
				p.sizes = append(p.sizes, n)
				total += n
			}
			if total != pf.NumRows() {
				p.sizes = nil // written by something else: ignore
			}
		}
	}
	return p, nil
}

// loadRowGroup reads the next row group into one record.
func (p *parquetReader) loadRowGroup(ctx context.Context) error {
	if p.rg >= p.pf.NumRowGroups() {
		return io.EOF
	}
	cols := make([]int, engine.Schema.NumFields())
	for i := range cols {
		cols[i] = i
	}
	tbl, err := p.fr.ReadRowGroups(ctx, cols, []int{p.rg})
	if err != nil {
		return fmt.Errorf("cannot read Parquet row group %d: %w", p.rg, err)
	}
	defer tbl.Release()
	p.rg++
	arrs := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, c := range arrs {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range arrs {
		ch := tbl.Column(i).Data()
		if len(ch.Chunks()) == 1 {
			arrs[i] = ch.Chunk(0)
			arrs[i].Retain()
			continue
		}
		if arrs[i], err = array.Concatenate(ch.Chunks(), p.mem); err != nil {
			return fmt.Errorf("cannot assemble Parquet row group %d: %w", p.rg-1, err)
		}
	}
	if p.analyst {
		rec := array.NewRecord(p.schema, arrs, tbl.NumRows())
		defer rec.Release()
		if p.cur, err = FromAnalyst(rec, p.mem); err != nil {
			return fmt.Errorf("cannot read Parquet row group %d: %w", p.rg-1, err)
		}
	} else {
		p.cur = array.NewRecord(engine.Schema, arrs, tbl.NumRows())
	}
	p.off = 0
	return nil
}

func (p *parquetReader) Next(ctx context.Context) (arrow.Record, error) {
	for p.cur == nil || p.off >= p.cur.NumRows() {
		if p.cur != nil {
			p.cur.Release()
			p.cur = nil
		}
		if err := p.loadRowGroup(ctx); err != nil {
			return nil, err
		}
	}
	n := int64(MaxReadBatch)
	if p.sizes != nil {
		n = p.sizes[0]
		p.sizes = p.sizes[1:]
	}
	end := min(p.off+n, p.cur.NumRows())
	out := p.cur.NewSlice(p.off, end)
	p.off = end
	return out, nil
}

func (p *parquetReader) Close() error {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	if p.pf != nil {
		p.pf.Close() // closes f
		p.pf = nil
	}
	return nil
}

// ndjsonReader reads batches separated by empty lines (a file without them is read in batches of
// MaxReadBatch lines). Lines that do not decode are an error: an export holds only valid events.
type ndjsonReader struct {
	f    *os.File
	sc   *bufio.Scanner
	mem  memory.Allocator
	res  int
	line int
	done bool
}

func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	return sc
}

func (n *ndjsonReader) Next(ctx context.Context) (arrow.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	lines := 0
	for !n.done && lines < MaxReadBatch {
		if !n.sc.Scan() {
			n.done = true
			if err := n.sc.Err(); err != nil {
				return nil, fmt.Errorf("cannot read NDJSON after line %d: %w", n.line, err)
			}
			break
		}
		n.line++
		b := bytes.TrimSpace(n.sc.Bytes())
		if len(b) == 0 {
			if lines > 0 {
				break
			}
			continue
		}
		body.Write(b)
		body.WriteByte('\n')
		lines++
	}
	if lines == 0 {
		return nil, io.EOF
	}
	bb := engine.NewBatchBuilder(n.mem)
	defer bb.Release()
	first := n.line - lines
	var bad error
	err := ingest.DecodeBatch(body.Bytes(), func(ev engine.Event) {
		if bad != nil {
			return
		}
		cell, err := geo.CellOf(ev.Lat, ev.Lng, n.res)
		if err != nil {
			bad = err
			return
		}
		bb.Append(&ev, cell)
	}, func(le ingest.LineError) {
		if bad == nil {
			bad = fmt.Errorf("line near %d: %w", first+le.Line, le.Err)
		}
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		rec := bb.NewRecord()
		rec.Release()
		return nil, fmt.Errorf("cannot decode NDJSON export: %w", err)
	}
	return bb.NewRecord(), nil
}

func (n *ndjsonReader) Close() error {
	if n.f == nil {
		return nil
	}
	err := n.f.Close()
	n.f = nil
	return err
}

// recelling recomputes the cell column when a file's cells are not at the base resolution res.
type recelling struct {
	r     BatchReader
	res   int
	mem   memory.Allocator
	check bool // decided whether cells must be recomputed
	redo  bool
}

func (c *recelling) Next(ctx context.Context) (arrow.Record, error) {
	rec, err := c.r.Next(ctx)
	if err != nil || rec.NumRows() == 0 {
		return rec, err
	}
	if !c.check {
		c.check = true
		lat := rec.Column(engine.ColLat).(*array.Float64).Value(0)
		lng := rec.Column(engine.ColLng).(*array.Float64).Value(0)
		want, err := geo.CellOf(lat, lng, c.res)
		c.redo = err != nil || want != rec.Column(engine.ColCell).(*array.Uint64).Value(0)
	}
	if !c.redo {
		return rec, nil
	}
	defer rec.Release()
	bb := engine.NewBatchBuilder(c.mem)
	defer bb.Release()
	var ev engine.Event
	for i := 0; i < int(rec.NumRows()); i++ {
		engine.ReadEvent(rec, i, &ev)
		cell, err := geo.CellOf(ev.Lat, ev.Lng, c.res)
		if err != nil {
			out := bb.NewRecord()
			out.Release()
			return nil, fmt.Errorf("cannot compute the cell of event %s: %w", ev.ID, err)
		}
		bb.Append(&ev, cell)
	}
	return bb.NewRecord(), nil
}

func (c *recelling) Close() error { return c.r.Close() }
