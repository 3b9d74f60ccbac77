package eventlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// The block fast path of a RangeReader: when the log's server is the embedded one of this process, on a data
// directory this process owns (the directory locked: `citybrain replay --data`, `citybrain export`, and a
// running `citybrain run` whose planners replay and export), the messages are read straight from the
// JetStream file store's message blocks instead of through the server, a consumer and the client (which copy
// every message twice and take ~45 % of a replay's CPU). It is only an accelerator: it is used when the
// stream has no gaps (every sequence from its first to its last is held), blocks are neither encrypted nor
// compressed, and every record reads cleanly in sequence; at the first thing it does not expect (a gap, a
// record it cannot read or only part of, another subject, the end of what is on disk) the reader goes on
// through the server from that sequence, so what a reader returns is the same either way
// (TestFileReaderAgrees). A running server appends to its last block and starts new ones while a reader reads:
// the reader reads the blocks it listed when it started, up to the last whole record on disk (the server
// writes records in order, so the bytes below the file's size are written), then goes through the server
// (TestFileReaderAgreesWhileTheServerWrites).

// JetStream file store record layout (nats-server filestore.go): rl uint32 (bit 31: has headers), seq uint64
// (bit 63: erased, bit 62: tombstone), ts int64, subject length uint16, subject, [headers length uint32,
// headers], message, 8-byte checksum.
const (
	fsHdrSize   = 22
	fsHashSize  = 8
	fsHasHdrBit = 1 << 31
	fsErasedBit = 1 << 63
	fsTombBit   = 1 << 62
	fsMaxRecord = 32 << 20
)

// errFileStore is a surprise of the file path: the reader goes on through the server.
var errFileStore = errors.New("file store read stops")

// SetOfflineStore tells the log that storeDir is the JetStream store directory of the server behind it, the
// embedded server of this process, which owns the directory (no other process writes to it; the server may,
// by appending). Range readers then read the events stream's message blocks directly when they can.
func (l *Log) SetOfflineStore(storeDir string) { l.offlineStore = storeDir }

// fileSource yields the events stream's messages from its message blocks, in sequence order from next. Each
// message's body is read into a buffer of its own, which Go allocates on a word boundary, so the Arrow
// batches in it are read in place without the aligning copy a view into the block would need (records
// in a block start anywhere).
type fileSource struct {
	blocks []string // block files in index order
	bi     int      // next block to read
	f      *os.File // the block being read (nil: none open)
	br     *bufio.Reader
	hdr    []byte // scratch for a record's header, subject and NATS headers
	next   uint64 // the sequence wanted next
}

// openFileSource returns the file source of the events stream under storeDir from sequence first, or nil when
// the store is not one it reads (several accounts, encrypted or compressed blocks, no blocks).
func openFileSource(storeDir string, first uint64) *fileSource {
	dirs, _ := filepath.Glob(filepath.Join(storeDir, "jetstream", "*", "streams", EventsStream, "msgs"))
	if len(dirs) != 1 {
		return nil
	}
	ents, err := os.ReadDir(dirs[0])
	if err != nil {
		return nil
	}
	type blk struct {
		idx  uint64
		path string
	}
	var blks []blk
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".key") {
			return nil // encrypted
		}
		if n, ok := strings.CutSuffix(name, ".blk"); ok {
			idx, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				return nil
			}
			blks = append(blks, blk{idx, filepath.Join(dirs[0], name)})
		}
	}
	if len(blks) == 0 {
		return nil
	}
	sort.Slice(blks, func(i, j int) bool { return blks[i].idx < blks[j].idx })
	if meta, err := os.ReadFile(filepath.Join(filepath.Dir(dirs[0]), "meta.inf")); err != nil ||
		bytes.Contains(meta, []byte(`"compression":"s2"`)) {
		return nil
	}
	fs := &fileSource{next: first}
	for _, b := range blks {
		fs.blocks = append(fs.blocks, b.path)
	}
	return fs
}

// fileMsg is one message of the stream.
type fileMsg struct {
	seq  uint64
	hdr  nats.Header
	data []byte
}

// fileReadBuf is the read buffer of a block: records smaller than it are copied out of it, larger bodies
// are read straight into their own buffer.
const fileReadBuf = 64 << 10

// read returns the message with sequence fs.next; errFileStore (wrapped) when it cannot; ok false past the
// last block.
func (fs *fileSource) read() (m fileMsg, ok bool, err error) {
	le := binary.LittleEndian
	for {
		if fs.f == nil {
			if fs.bi >= len(fs.blocks) {
				return m, false, nil
			}
			f, err := os.Open(fs.blocks[fs.bi])
			if err != nil {
				return m, false, fmt.Errorf("%w: %v", errFileStore, err)
			}
			fs.bi++
			fs.f = f
			if fs.br == nil {
				fs.br = bufio.NewReaderSize(f, fileReadBuf)
			} else {
				fs.br.Reset(f)
			}
		}
		name := fs.blocks[fs.bi-1]
		var rh [fsHdrSize]byte
		if n, err := io.ReadFull(fs.br, rh[:]); err != nil {
			if n == 0 && err == io.EOF {
				fs.closeBlock()
				continue
			}
			return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
		}
		rl := le.Uint32(rh[:])
		hasHdr := rl&fsHasHdrBit != 0
		rl &^= fsHasHdrBit
		seq := le.Uint64(rh[4:])
		slen := int(le.Uint16(rh[20:]))
		dlen := int(rl) - fsHdrSize
		shlen := slen
		if hasHdr {
			shlen += 4
		}
		if rl > fsMaxRecord || dlen < fsHashSize || shlen > dlen-fsHashSize {
			return m, false, fmt.Errorf("%w: a record it cannot read in %s", errFileStore, name)
		}
		if seq&(fsTombBit|fsErasedBit) != 0 || seq < fs.next {
			// A tombstone, an erased message, or one before the range (or written again).
			if _, err := fs.br.Discard(dlen); err != nil {
				return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
			}
			continue
		}
		if seq > fs.next {
			return m, false, fmt.Errorf("%w: message %d missing from the blocks", errFileStore, fs.next)
		}
		// Subject and the length of the headers.
		fs.hdr = append(fs.hdr[:0], make([]byte, shlen)...)
		if _, err := io.ReadFull(fs.br, fs.hdr); err != nil {
			return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
		}
		if string(fs.hdr[:slen]) != EventsSubject {
			return m, false, fmt.Errorf("%w: message %d is on %q", errFileStore, seq, fs.hdr[:slen])
		}
		rest := dlen - fsHashSize - shlen // headers and body
		if hasHdr {
			hl := int(le.Uint32(fs.hdr[slen:]))
			if hl > rest {
				return m, false, fmt.Errorf("%w: message %d has headers past its end", errFileStore, seq)
			}
			fs.hdr = append(fs.hdr[:0], make([]byte, hl)...)
			if _, err := io.ReadFull(fs.br, fs.hdr); err != nil {
				return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
			}
			if m.hdr, err = nats.DecodeHeadersMsg(fs.hdr); err != nil {
				return m, false, fmt.Errorf("%w: message %d: %v", errFileStore, seq, err)
			}
			rest -= hl
		}
		// A buffer of its own (the batches read in place keep it), on a word boundary (Go's allocations of
		// 16 bytes and more are; smaller ones may not be).
		body := make([]byte, rest, max(rest, 16))
		if _, err := io.ReadFull(fs.br, body); err != nil {
			return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
		}
		if _, err := fs.br.Discard(fsHashSize); err != nil {
			return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, name)
		}
		m.seq, m.data = seq, body
		fs.next = seq + 1
		return m, true, nil
	}
}

// closeBlock closes the block being read.
func (fs *fileSource) closeBlock() {
	if fs.f != nil {
		fs.f.Close()
		fs.f = nil
	}
}

// close closes what the source holds open. Safe to call twice.
func (fs *fileSource) close() { fs.closeBlock() }
