package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"citybrain/engine"
)

// maxLine bounds one NDJSON line of a streamed body: a longer line is rejected without being held.
const maxLine = 1 << 20

// IngestReader ingests a body read from r as it is decoded (an HTTP body, gzip inflated on the fly), with
// the answers and guarantees of Ingest (JSON) or IngestArrow (arrow true). NDJSON is decoded line by line, so
// what a body holds in memory follows the events it has accepted, not its size: a body that inflates to
// gigabytes of blank or broken lines holds one line at a time and ends in ErrTooLarge at MaxDecoded bytes. A
// JSON array or an Arrow stream is read whole first, into a buffer of size bytes when the caller knows the
// body's length (an HTTP Content-Length without Content-Encoding; -1 when unknown), so a body is not copied
// and cleared again at every doubling. Everything held counts against MaxInFlight (ErrBusy).
func (in *Ingestor) IngestReader(ctx context.Context, r io.Reader, size int64, arrow bool, via string, want engine.Kind, key string) (Result, error) {
	if err := in.admit(); err != nil {
		return Result{}, err
	}
	lease := lease{b: in.budget}
	defer lease.release()
	cr := &countingReader{r: r, limit: in.cfg.MaxDecoded, h: sha256.New()}
	br := bufio.NewReaderSize(cr, 64<<10)
	if !arrow {
		first, err := firstByte(br)
		if err != nil {
			return Result{}, err
		}
		if first != '[' {
			return in.ingestLines(ctx, br, cr, &lease, via, want, key)
		}
	}
	var buf bytes.Buffer
	if size > 0 && size < in.cfg.MaxDecoded {
		// One more byte than the body, so the read that meets its end does not grow the buffer; at most
		// presizeMax up front, so a Content-Length that lies holds no more than that before its bytes come.
		n := min(size+1, presizeMax)
		if err := lease.grow(n); err != nil {
			return Result{}, err
		}
		buf.Grow(int(n))
	}
	for {
		if buf.Available() == 0 {
			if err := lease.grow(int64(buf.Len()) + 64<<10); err != nil {
				return Result{}, err
			}
			buf.Grow(64 << 10)
		}
		n, err := br.Read(buf.AvailableBuffer()[:buf.Available()])
		buf.Write(buf.AvailableBuffer()[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, err
		}
	}
	// Every byte cr read is in buf now (EOF): its hash is the body's, which the ingest would compute again.
	if arrow {
		return in.ingestArrow(ctx, buf.Bytes(), via, key, bodyHash(cr.h))
	}
	return in.ingest(ctx, buf.Bytes(), via, want, key, bodyHash(cr.h))
}

// presizeMax bounds how much IngestReader allocates for a body before its bytes arrive.
const presizeMax = 4 << 20

// firstByte peeks the first byte that is not white space (0 at the end).
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
}

// ingestLines decodes NDJSON line by line from br (line numbers as DecodeLines gives them).
func (in *Ingestor) ingestLines(ctx context.Context, br *bufio.Reader, cr *countingReader, lease *lease, via string, want engine.Kind, key string) (Result, error) {
	b := in.newBatch(via, want)
	defer b.Release()
	var long []byte // a line longer than br's buffer, being gathered
	tooLong := false
	held := int64(0) // decoded bytes of accepted lines: what the batch builder holds, about
	line := 0
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				if len(long)+len(frag) > maxLine {
					tooLong, long = true, long[:0]
				} else {
					long = append(long, frag...)
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Result{}, err
		}
		if len(frag) > 0 || len(long) > 0 || tooLong {
			line++
			raw := frag
			if len(long) > 0 {
				raw = append(long, frag...)
			}
			raw = bytes.TrimRight(bytes.TrimSuffix(raw, []byte{'\n'}), "\r")
			switch {
			case tooLong:
				b.reject(line, nil, nil, fmt.Errorf("%w: line is longer than %d bytes", errSyntax, maxLine))
			case len(bytes.TrimSpace(raw)) == 0:
			default:
				if b.addRaw(line, raw) {
					held += int64(len(raw))
					if lerr := lease.grow(held); lerr != nil {
						return Result{}, lerr
					}
				}
			}
			long, tooLong = long[:0], false
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if b.res.Accepted == 0 && b.res.Rejected == 0 {
		return b.res, ErrNoEvents
	}
	return b.store(ctx, nil, batchIDOfHash(via, key, bodyHash(cr.h)))
}

// countingReader counts and hashes what it reads and fails with ErrTooLarge past limit.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	h     hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	if c.n > c.limit {
		return n, fmt.Errorf("%w: the decoded body passed %d bytes: split the batch", ErrTooLarge, c.limit)
	}
	return n, err
}
