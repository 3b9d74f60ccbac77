package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// The offline fast path of a RangeReader: when the log was opened on a data directory this process owns (the
// directory locked, its embedded server started by this process: `citybrain replay --data`, `citybrain export`),
// the messages are read straight from the JetStream file store's message blocks instead of through the
// embedded server, a consumer and the client (which copy every message twice and take ~45 % of a replay's
// CPU). It is only an accelerator: it is used when the stream has no gaps (every sequence from its first to its
// last is held), blocks are neither encrypted nor compressed, and every record reads cleanly in sequence; at the
// first thing it does not expect (a gap, a record it cannot read, another subject) the reader goes on through
// the server from that sequence, so what a reader returns is the same either way (TestFileReaderAgrees).

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

// SetOfflineStore tells the log that storeDir is the JetStream store directory of the server behind it, that
// this process owns it and nothing else writes to it while the log is open (offline tools). Range readers then
// read the events stream's message blocks directly when they can.
func (l *Log) SetOfflineStore(storeDir string) { l.offlineStore = storeDir }

// fileSource yields the events stream's messages from its message blocks, in sequence order from next.
type fileSource struct {
	blocks []string // block files in index order
	bi     int      // next block to read
	buf    []byte   // the block being read (fresh for every block: records decoded in place keep it)
	off    int
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

// read returns the message with sequence fs.next; errFileStore (wrapped) when it cannot; ok false past the
// last block.
func (fs *fileSource) read() (m fileMsg, ok bool, err error) {
	le := binary.LittleEndian
	for {
		if fs.off >= len(fs.buf) {
			if fs.bi >= len(fs.blocks) {
				return m, false, nil
			}
			buf, err := os.ReadFile(fs.blocks[fs.bi])
			if err != nil {
				return m, false, fmt.Errorf("%w: %v", errFileStore, err)
			}
			fs.bi++
			fs.buf, fs.off = buf, 0
			continue
		}
		b := fs.buf[fs.off:]
		if len(b) < fsHdrSize+fsHashSize {
			return m, false, fmt.Errorf("%w: a short record in %s", errFileStore, fs.blocks[fs.bi-1])
		}
		rl := le.Uint32(b)
		hasHdr := rl&fsHasHdrBit != 0
		rl &^= fsHasHdrBit
		seq := le.Uint64(b[4:])
		slen := int(le.Uint16(b[20:]))
		dlen := int(rl) - fsHdrSize
		shlen := slen
		if hasHdr {
			shlen += 4
		}
		if rl > fsMaxRecord || int(rl) > len(b) || dlen < fsHashSize || shlen > dlen-fsHashSize {
			return m, false, fmt.Errorf("%w: a record it cannot read in %s", errFileStore, fs.blocks[fs.bi-1])
		}
		fs.off += int(rl)
		if seq&(fsTombBit|fsErasedBit) != 0 || seq < fs.next {
			continue // a tombstone, an erased message, or one before the range (or written again)
		}
		if seq > fs.next {
			return m, false, fmt.Errorf("%w: message %d missing from the blocks", errFileStore, fs.next)
		}
		data := b[fsHdrSize : fsHdrSize+dlen-fsHashSize]
		if string(data[:slen]) != EventsSubject {
			return m, false, fmt.Errorf("%w: message %d is on %q", errFileStore, seq, data[:slen])
		}
		body := data[slen:]
		if hasHdr {
			hl := int(le.Uint32(body))
			if hl > len(body)-4 {
				return m, false, fmt.Errorf("%w: message %d has headers past its end", errFileStore, seq)
			}
			if m.hdr, err = nats.DecodeHeadersMsg(body[4 : 4+hl]); err != nil {
				return m, false, fmt.Errorf("%w: message %d: %v", errFileStore, seq, err)
			}
			body = body[4+hl:]
		}
		m.seq, m.data = seq, body
		fs.next = seq + 1
		return m, true, nil
	}
}
