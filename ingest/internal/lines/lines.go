// Package lines reads newline-separated records with a bound on the record length: a record longer than the
// bound is reported as such and skipped, not turned into a fatal error, so one bad line cannot stop a feed.
package lines

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reader reads lines. It is owned by one goroutine.
type Reader struct {
	br   *bufio.Reader
	max  int
	line int
	buf  []byte
}

// NewReader returns a Reader of r whose lines may be at most max bytes long.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next line without its line ending, its number (from 1) and whether it was longer than the
// bound (then line is nil and the rest of it was discarded). At the end it returns io.EOF. The returned slice is
// owned by the Reader and valid until the next call.
func (r *Reader) Next() (line []byte, n int, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.buf)+len(chunk) > r.max+2 { // +2: the line ending
			tooLong = true
		} else {
			r.buf = append(r.buf, chunk...)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && (len(r.buf) > 0 || tooLong) {
			break
		}
		return nil, r.line, false, err
	}
	r.line++
	if tooLong {
		return nil, r.line, true, nil
	}
	return bytes.TrimRight(r.buf, "\r\n"), r.line, false, nil
}
