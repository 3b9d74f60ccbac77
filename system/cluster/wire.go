package cluster

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/engine"
)

// Subjects of what engine nodes publish (under citybrain.out.>, which the account layout of docs/security.md
// gives to the service's own users only).
const (
	// OutPrefix + ".<k>" carries partition k's frames: every delta of its engine.
	OutPrefix = "citybrain.out.p"
	// StatePrefix + ".<k>" is the request subject for partition k's full state (answered by its owner).
	StatePrefix = "citybrain.out.state"

	hdrFrame = "Cb-Frame" // frame id, the same on every chunk of one frame
	hdrChunk = "Cb-Chunk" // i/n
	// maxFrame bounds an assembled frame (a partition's full state): 256 MiB.
	maxFrame = 256 << 20
)

// OutSubject is partition k's frame subject.
func OutSubject(k int) string { return OutPrefix + "." + strconv.Itoa(k) }

// StateSubject is partition k's full-state request subject.
func StateSubject(k int) string { return StatePrefix + "." + strconv.Itoa(k) }

// LinkPart is one partition's share of a road link's state: shares from several partitions add up exactly
// like the engine's shards do (engine.LinkStats).
type LinkPart struct {
	ID        string
	UpdatedAt int64
	W         [len(engine.Windows)]engine.WindowStats
}

// Frame is what an engine node publishes for a partition: a delta of one tick, or (Full) the whole state.
type Frame struct {
	Partition int
	Node      string
	Epoch     uint64 // the lease revision with which Node took the partition
	Seq       uint64 // frames of this (Node, Epoch), from 1; a full state carries the seq of the last delta
	Full      bool
	Status    engine.Status
	Events    map[engine.Kind]uint64
	Late      map[engine.Kind]uint64
	Changed   []*engine.CellView
	Removed   []uint64
	Incidents []engine.Incident // Full: every visible incident; a delta: those that changed
	Units     []engine.Unit     // every unit of the partition (nil: unchanged)
	Assets    []engine.Event    // every asset of the partition (nil: unchanged)
	Links     []LinkPart        // every link share with data (nil: unchanged)
	Results   map[string]string // operator actions carried out since the last frame: id → error ("" ok)
	// Visible holds the ids of every visible incident (heartbeat frames), so api nodes drop the ones the
	// engine no longer shows; nil: not sent.
	Visible    map[string]struct{}
	HasVisible bool // Visible was sent (gob drops an empty map)
}

// EncodeFrame encodes f (gob: the engine's views carry NaN, which JSON cannot).
func EncodeFrame(f *Frame) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(f); err != nil {
		return nil, fmt.Errorf("cannot encode frame of partition %d: %w", f.Partition, err)
	}
	return b.Bytes(), nil
}

// DecodeFrame decodes a frame.
func DecodeFrame(data []byte) (*Frame, error) {
	var f Frame
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&f); err != nil {
		return nil, fmt.Errorf("cannot decode frame (%d bytes): %w", len(data), err)
	}
	return &f, nil
}

// publishChunks publishes data on subject in chunks that fit the connection's payload limit.
func publishChunks(nc *nats.Conn, subject, id string, data []byte) error {
	size := max(int(nc.MaxPayload())-8192, 64<<10)
	n := max(1, (len(data)+size-1)/size)
	for i := 0; i < n; i++ {
		m := nats.NewMsg(subject)
		m.Data = data[i*size : min(len(data), (i+1)*size)]
		m.Header.Set(hdrFrame, id)
		m.Header.Set(hdrChunk, strconv.Itoa(i)+"/"+strconv.Itoa(n))
		if err := nc.PublishMsg(m); err != nil {
			return fmt.Errorf("cannot publish %s: %w", subject, err)
		}
	}
	return nil
}

// assembler joins chunks into frames, one frame in progress per subject.
type assembler struct {
	mu      sync.Mutex
	pending map[string]*partial
}

type partial struct {
	id    string
	next  int
	n     int
	data  []byte
	start time.Time
}

var errChunk = errors.New("chunk out of order")

// add returns the whole frame once its last chunk arrives (nil before).
func (a *assembler) add(m *nats.Msg) ([]byte, error) {
	id, ch := m.Header.Get(hdrFrame), m.Header.Get(hdrChunk)
	i, n, ok := parseChunk(ch)
	if id == "" || !ok {
		return nil, fmt.Errorf("cannot read frame on %s: header %s=%q %s=%q", m.Subject, hdrFrame, id, hdrChunk, ch)
	}
	if n == 1 {
		return m.Data, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending = map[string]*partial{}
	}
	p := a.pending[m.Subject]
	if i == 0 {
		p = &partial{id: id, n: n, start: time.Now()}
		a.pending[m.Subject] = p
	}
	if p == nil || p.id != id || p.next != i || p.n != n {
		delete(a.pending, m.Subject)
		return nil, fmt.Errorf("cannot read frame %s on %s: %w", id, m.Subject, errChunk)
	}
	if len(p.data)+len(m.Data) > maxFrame {
		delete(a.pending, m.Subject)
		return nil, fmt.Errorf("cannot read frame %s on %s: larger than %d bytes", id, m.Subject, maxFrame)
	}
	p.data = append(p.data, m.Data...)
	p.next++
	if p.next < p.n {
		return nil, nil
	}
	delete(a.pending, m.Subject)
	return p.data, nil
}

func parseChunk(s string) (i, n int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || n > maxFrame/(64<<10)+1 || i < 0 || i >= n {
		return 0, 0, false
	}
	return i, n, true
}
