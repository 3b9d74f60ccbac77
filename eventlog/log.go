// Package eventlog is the durable, ordered event log: a NATS JetStream stream of Arrow record batches and
// operator actions, its consumer, and the dead-letter log of rejected events. It stores and delivers; it
// does not interpret events (the engine does).
package eventlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
	"citybrain/ingest"
)

// Names of the streams and subjects of the log.
const (
	EventsStream  = "CITYBRAIN_EVENTS"
	EventsSubject = "citybrain.log.events"
	DeadStream    = "CITYBRAIN_DEAD"
	DeadSubject   = "citybrain.log.dead"

	// HeaderRows carries the number of events in a log message.
	HeaderRows = "Cb-Rows"
	// HeaderHash carries the hash of the body a batch came in (ingest.BatchID.Hash), to tell a retry from
	// another batch sent with the same idempotency key.
	HeaderHash = "Cb-Body-Hash"
	// HeaderType marks log messages that are not event batches: "action" is an operator action (JSON of
	// engine.Action), kept in the same ordered log so restarts and replays see it where it happened.
	HeaderType = "Cb-Type"
	TypeAction = "action"
	// TypeZone is a zone action (JSON of zones.Action): zones drawn, changed or deleted by an operator.
	TypeZone = "zone"
	// TypeDispatch is a dispatch or signal-plan decision (JSON of dispatch.Action).
	TypeDispatch = "dispatch"
)

// Config sets the retention of the log.
type Config struct {
	MaxAge   time.Duration // events older than this are dropped from the log (0: kept until MaxBytes)
	MaxBytes int64         // the log's size limit; the oldest messages go first (0: unlimited)
	Replicas int           // JetStream replicas (1 on a single server)
	// Duplicates is the window in which a message id is remembered for deduplication.
	Duplicates time.Duration
	Mem        memory.Allocator
	// Existing opens streams that must already exist and leaves their settings alone (the export and replay
	// tools: they must not reset a server's retention to their defaults).
	Existing bool
	// Partitions > 0 lays the log out in partitions (eventlog/partition.go, a cluster); 0 is the single
	// process's one subject. DistrictRes is the H3 resolution of the districts events are keyed by.
	Partitions  int
	DistrictRes int
	// Layout is what the batches written depend on (their cells' resolution) and the bucket of the engine
	// that writes them, recorded in the stream's metadata. Opening a log recorded with another resolution or
	// schema is refused (its cells would mix resolutions); the bucket is recorded (snapshots check theirs).
	// Zero: not checked (tools).
	Layout Layout
}

// DefaultDistrictRes keys events by their cell's parent at H3 resolution 6 (about 36 km²).
const DefaultDistrictRes = 6

// Stream metadata keys recording a partitioned layout, so readers of an existing log find it.
const (
	metaPartitions  = "citybrain.partitions"
	metaDistrictRes = "citybrain.district_res"
)

// Layout is recorded in the event stream's metadata.
type Layout struct {
	Res    int
	Bucket time.Duration
}

// Metadata keys of the event stream.
const (
	MetaRes    = "citybrain.res"
	MetaBucket = "citybrain.bucket"
	MetaSchema = "citybrain.schema"
)

func (l Layout) metadata() map[string]string {
	return map[string]string{MetaRes: strconv.Itoa(l.Res), MetaBucket: l.Bucket.String(), MetaSchema: engine.SchemaVersion}
}

// layoutOf reads a stream's recorded layout (ok false for a log from before layouts were recorded).
func layoutOf(md map[string]string) (l Layout, schema string, ok bool) {
	res, err := strconv.Atoi(md[MetaRes])
	if err != nil {
		return Layout{}, "", false
	}
	b, _ := time.ParseDuration(md[MetaBucket])
	return Layout{Res: res, Bucket: b}, md[MetaSchema], true
}

// checkLayout refuses a log recorded with another resolution or schema than want.
func checkLayout(md map[string]string, want Layout) error {
	got, schema, ok := layoutOf(md)
	if !ok || want.Res == 0 {
		return nil
	}
	if schema != "" && schema != engine.SchemaVersion {
		return fmt.Errorf("cannot open the log: it holds batches of schema %s, this program writes %s: use a data directory of this version", schema, engine.SchemaVersion)
	}
	if got.Res != want.Res {
		return fmt.Errorf("cannot open the log: its cells are at H3 resolution %d (--res %d), this run has --res %d: start with --res %d, or give a new --data", got.Res, got.Res, want.Res, got.Res)
	}
	return nil
}

// DefaultConfig keeps a week of events, up to 20 GiB.
func DefaultConfig() Config {
	return Config{MaxAge: 7 * 24 * time.Hour, MaxBytes: 20 << 30, Replicas: 1, Duplicates: 2 * time.Minute,
		Mem: memory.DefaultAllocator}
}

// Log is the durable, ordered event log. Safe for concurrent use.
type Log struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	dead   jetstream.Stream
	mem    memory.Allocator
	maxMsg int
	// parts and districtRes describe a partitioned log (partition.go); parts is 0 for the single process.
	parts, districtRes int
	layout             Layout // as recorded in the stream's metadata
	offlineStore       string // the store directory read directly by range readers (fileread.go); "" : none
	maxBytes           int64  // the events stream's size limit as the server holds it (-1: none)
}

// Open creates or updates the streams of the log on the server behind nc.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	if cfg.Mem == nil {
		cfg.Mem = memory.DefaultAllocator
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cannot open JetStream: %w", err)
	}
	if cfg.Existing {
		events, err := js.Stream(ctx, EventsStream)
		if err != nil {
			return nil, fmt.Errorf("cannot open stream %s (is this a CityBrain data directory with events?): %w", EventsStream, err)
		}
		dead, err := js.Stream(ctx, DeadStream)
		if err != nil {
			return nil, fmt.Errorf("cannot open stream %s: %w", DeadStream, err)
		}
		l := &Log{nc: nc, js: js, events: events, dead: dead, mem: cfg.Mem, maxMsg: max(int(nc.MaxPayload())-4096, 64<<10)}
		md := events.CachedInfo().Config.Metadata
		if err := checkLayout(md, cfg.Layout); err != nil {
			return nil, err
		}
		l.layout, _, _ = layoutOf(md)
		l.parts, _ = strconv.Atoi(md[metaPartitions])
		l.districtRes, _ = strconv.Atoi(md[metaDistrictRes])
		return l, nil
	}
	if old, err := js.Stream(ctx, EventsStream); err == nil {
		md := old.CachedInfo().Config.Metadata
		if err := checkLayout(md, cfg.Layout); err != nil {
			return nil, err
		}
		if lay, _, ok := layoutOf(md); ok && cfg.Layout.Res == 0 {
			cfg.Layout = lay // a tool's open keeps what the log recorded
		}
	}
	if cfg.Partitions < 0 || cfg.Partitions > MaxPartitions {
		return nil, fmt.Errorf("cannot open the log: %d partitions (1..%d, or 0 for one process)", cfg.Partitions, MaxPartitions)
	}
	if cfg.DistrictRes == 0 {
		cfg.DistrictRes = DefaultDistrictRes
	}
	scfg := jetstream.StreamConfig{
		Name: EventsStream, Subjects: []string{EventsSubject}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxAge: cfg.MaxAge,
		MaxBytes: orUnlimited(cfg.MaxBytes), Replicas: cfg.Replicas, Duplicates: cfg.Duplicates,
		Description: "CityBrain accepted events as Arrow IPC record batches (schema " + engine.SchemaVersion + ")",
	}
	if cfg.Layout.Res != 0 {
		scfg.Metadata = cfg.Layout.metadata()
	}
	if cfg.Partitions > 0 {
		scfg.Subjects = []string{PartInPrefix + ".*", BroadcastSubject}
		scfg.SubjectTransform = PartitionTransform(cfg.Partitions)
		if scfg.Metadata == nil {
			scfg.Metadata = map[string]string{}
		}
		scfg.Metadata[metaPartitions], scfg.Metadata[metaDistrictRes] = strconv.Itoa(cfg.Partitions), strconv.Itoa(cfg.DistrictRes)
	}
	// The server reserves each stream's size limit on its disk: where the disk cannot hold the configured
	// limit (JetStream takes at most 3/4 of the disk free when it starts), the log gets what fits, halving
	// down to minLogBytes, rather than not starting at all (Log.MaxBytes says what it got).
	events, err := createFitting(ctx, js, scfg, true)
	if err != nil {
		return nil, fmt.Errorf("cannot create stream %s: %w", EventsStream, err)
	}
	maxBytes := events.CachedInfo().Config.MaxBytes
	dead, err := createFitting(ctx, js, jetstream.StreamConfig{
		Name: DeadStream, Subjects: []string{DeadSubject}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxAge: cfg.MaxAge,
		MaxBytes: orUnlimited(maxBytes / 10), Replicas: cfg.Replicas, Duplicates: cfg.Duplicates,
		Description: "CityBrain rejected events with their reasons",
	}, false)
	if err != nil {
		return nil, fmt.Errorf("cannot create stream %s: %w", DeadStream, err)
	}
	maxMsg := int(nc.MaxPayload()) - 4096
	if maxMsg < 64<<10 {
		maxMsg = 64 << 10
	}
	l := &Log{nc: nc, js: js, events: events, dead: dead, mem: cfg.Mem, maxMsg: maxMsg, layout: cfg.Layout, maxBytes: maxBytes}
	if cfg.Partitions > 0 {
		l.parts, l.districtRes = cfg.Partitions, cfg.DistrictRes
	}
	return l, nil
}

// minLogBytes is the least size limit createFitting gives a stream before it gives up.
const minLogBytes = 64 << 20

// createFitting creates or updates the stream of cfg; when the server cannot reserve its size limit on its
// disk (noRoom: JetStream error 10047, or a cluster's 10005 for insufficient storage), it tries again with half
// the limit, and again, down to minLogBytes. When it had to shrink and room is wanted for another stream, it
// takes one more half, so the next one fits too.
func createFitting(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, leaveRoom bool) (jetstream.Stream, error) {
	shrunk := false
	for {
		st, err := js.CreateOrUpdateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		if err == nil && shrunk && leaveRoom && cfg.MaxBytes/2 >= minLogBytes {
			leaveRoom = false
			cfg.MaxBytes /= 2
			continue
		}
		if err == nil || !errors.As(err, &apiErr) || !noRoom(apiErr) || cfg.MaxBytes <= 0 || cfg.MaxBytes/2 < minLogBytes {
			return st, err
		}
		cfg.MaxBytes /= 2
		shrunk = true
	}
}

// noRoom reports whether the server refused a stream for want of disk to reserve its size limit: a single
// server's "insufficient storage" (JetStream error 10047), or a cluster finding no peers with room for the
// stream's replicas (10005, "no suitable peers for placement", naming insufficient storage; the same 10005
// for other reasons, too few peers or tags, is not shrunk away).
func noRoom(e *jetstream.APIError) bool {
	return e.ErrorCode == 10047 || e.ErrorCode == 10005 && strings.Contains(e.Description, "insufficient storage")
}

// MaxBytes is the events stream's size limit as the server holds it (-1: none): less than Config.MaxBytes
// when the disk could not hold that much.
func (l *Log) MaxBytes() int64 { return l.maxBytes }

// Layout is the layout recorded in the log (zero for a log from before layouts were recorded).
func (l *Log) Layout() Layout { return l.layout }

// Mem is the allocator the log decodes batches with.
func (l *Log) Mem() memory.Allocator { return l.mem }

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// EncodeRecord writes rec as an Arrow IPC stream (schema and one batch).
func EncodeRecord(rec arrow.Record, mem memory.Allocator) ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeRecordTo(&buf, rec, mem); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeRecordTo is EncodeRecord into buf (emptied first).
func encodeRecordTo(buf *bytes.Buffer, rec arrow.Record, mem memory.Allocator) error {
	buf.Reset()
	// Room for the whole stream at once: growing it step by step cleared and copied it again each time.
	buf.Grow(ipcSize(rec))
	w := ipc.NewWriter(buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		w.Close()
		return fmt.Errorf("cannot encode record batch (%d rows): %w", rec.NumRows(), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("cannot close IPC stream: %w", err)
	}
	return nil
}

// encodeBufs keeps appendTo's encoding buffers between batches: a batch's IPC stream is hundreds of KB, and a
// fresh buffer each time was allocated and cleared (bytes.Buffer.Grow: 0.34 s of 25.6 s in the NATS JSON
// ingest profile). The NATS client copies a message's data into its own write buffer before PublishMsg
// waits for the answer, so a buffer is free again when PublishMsg returns.
var encodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf bounds the buffers kept: a rare huge batch's buffer is left to the collector.
const maxPooledBuf = 8 << 20

// ipcSize estimates the bytes of rec as an IPC stream: its buffers (each padded to 8 bytes) and room for the
// schema and batch metadata.
func ipcSize(rec arrow.Record) int {
	n := 0
	for _, col := range rec.Columns() {
		n += dataSize(col.Data())
	}
	// A slice of a record (a half of one too large for a message) shares its buffers: count its share.
	if rec.NumCols() > 0 {
		if b := rec.Column(0).Data().Buffers(); len(b) > 1 && b[1] != nil {
			if w, ok := rec.Column(0).DataType().(arrow.FixedWidthDataType); ok {
				if bw := w.BitWidth() / 8; bw > 0 {
					if rows := b[1].Len() / bw; rows > int(rec.NumRows()) {
						n = int(float64(n) * float64(rec.NumRows()) / float64(rows))
					}
				}
			}
		}
	}
	return min(n+16<<10, 256<<20)
}

func dataSize(d arrow.ArrayData) int {
	n := 0
	for _, b := range d.Buffers() {
		if b != nil {
			n += (b.Len() + 7) &^ 7
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

// DecodeRecords reads every record batch of the IPC stream data (ingest.ReadIPCInPlace: lengths checked
// against the bytes, structure checked, never a panic; the columns are views into data, which must not change
// while a record lives), checks the schema and passes each to fn, which must Retain a record it keeps after
// returning.
func DecodeRecords(data []byte, fn func(arrow.Record) error) error {
	return ingest.ReadIPCInPlace(data, max(16*int64(len(data)), 1<<20), fn)
}

// Append writes rec to the log and returns once JetStream has stored it (the acknowledgement). A record too
// large for one message is split by rows. msgID, when not empty, deduplicates retries within the duplicates
// window (parts get the suffix "/k"). It returns the sequence of the last message written.
func (l *Log) Append(ctx context.Context, rec arrow.Record, id ingest.BatchID) (uint64, error) {
	if l.parts > 0 {
		return l.appendPartitioned(ctx, rec, id.ID, id.Hash)
	}
	return l.appendTo(ctx, EventsSubject, rec, id.ID, id.Hash)
}

// appendTo stores rec on subject, split by rows when too large for one message.
func (l *Log) appendTo(ctx context.Context, subject string, rec arrow.Record, msgID, hash string) (uint64, error) {
	if rec.NumRows() == 0 {
		return 0, nil
	}
	buf := encodeBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			encodeBufs.Put(buf)
		}
	}()
	if err := encodeRecordTo(buf, rec, l.mem); err != nil {
		return 0, err
	}
	data := buf.Bytes()
	if len(data) > l.maxMsg && rec.NumRows() > 1 {
		half := rec.NumRows() / 2
		a, b := rec.NewSlice(0, half), rec.NewSlice(half, rec.NumRows())
		defer a.Release()
		defer b.Release()
		idA, idB := msgID, msgID
		if msgID != "" {
			idA, idB = msgID+"/0", msgID+"/1"
		}
		_, errA := l.appendTo(ctx, subject, a, idA, hash)
		if errA != nil && !errors.Is(errA, ingest.ErrDuplicate) {
			return 0, errA // ErrKeyReused among them
		}
		seq, errB := l.appendTo(ctx, subject, b, idB, hash)
		if errB != nil && !errors.Is(errB, ingest.ErrDuplicate) {
			return 0, errB
		}
		if errA != nil && errB != nil {
			return seq, errB // both halves were stored before
		}
		return seq, nil
	}
	msg := newPartMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderRows, strconv.FormatInt(rec.NumRows(), 10))
	if hash != "" {
		msg.Header.Set(HeaderHash, hash)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	alignBody(msg, msgID)
	ack, err := l.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return 0, fmt.Errorf("cannot append %d events to the log: %w", rec.NumRows(), err)
	}
	if ack.Duplicate {
		if hash != "" {
			stored, err := l.events.GetMsg(ctx, ack.Sequence)
			if err != nil {
				return 0, fmt.Errorf("cannot read log message %d to compare a retried batch: %w", ack.Sequence, err)
			}
			if h := stored.Header.Get(HeaderHash); h != "" && h != hash {
				return ack.Sequence, ingest.ErrKeyReused
			}
		}
		return ack.Sequence, ingest.ErrDuplicate
	}
	return ack.Sequence, nil
}

// HeaderPad pads the headers of a batch to a multiple of 8 bytes (alignBody).
const HeaderPad = "Cb-Pad"

// alignBody pads msg's headers (with the one msgID will add) to a multiple of 8 bytes. A reader's copy of a
// message starts on a word (the NATS client copies each message into its own allocation), so its body does
// too, and the Arrow buffers in it are read in place (ingest.ReadIPCInPlace) instead of being copied once to
// align them. The size counted is the NATS client's: "NATS/1.0\r\n", "Key: Value\r\n" per value, "\r\n".
func alignBody(msg *nats.Msg, msgID string) {
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(textproto.TrimString(v)) + 4
		}
	}
	if msgID != "" {
		n += len(jetstream.MsgIDHeader) + len(msgID) + 4
	}
	pad := (8 - (n+len(HeaderPad)+4)%8) % 8
	if pad == 0 {
		pad = 8 // a header value is never empty
	}
	msg.Header.Set(HeaderPad, strings.Repeat("x", pad))
}

// AppendAction writes an operator action to the log (deduplicated by its id) and returns its sequence.
// A partitioned log needs the incident's district: AppendActionTo.
func (l *Log) AppendAction(ctx context.Context, a engine.Action) (uint64, error) {
	if l.parts > 0 {
		return 0, fmt.Errorf("cannot append action on %s: a partitioned log needs the incident's district", a.IncidentID)
	}
	return l.appendAction(ctx, EventsSubject, a)
}

func (l *Log) appendAction(ctx context.Context, subject string, a engine.Action) (uint64, error) {
	data, err := json.Marshal(&a)
	if err != nil {
		return 0, fmt.Errorf("cannot encode action: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderType, TypeAction)
	ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithMsgID("action-"+a.ID))
	if err != nil {
		return 0, fmt.Errorf("cannot append action on %s to the log: %w", a.IncidentID, err)
	}
	return ack.Sequence, nil
}

// AppendTyped writes an operator action of another type than incident actions (TypeZone, ...) to the log,
// deduplicated by typ and id, and returns its sequence. data is the action's JSON; the log does not read it.
func (l *Log) AppendTyped(ctx context.Context, typ, id string, data []byte) (uint64, error) {
	msg := nats.NewMsg(l.typedSubject())
	msg.Data = data
	msg.Header.Set(HeaderType, typ)
	ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(typ+"-"+id))
	if err != nil {
		return 0, fmt.Errorf("cannot append %s action %s to the log: %w", typ, id, err)
	}
	return ack.Sequence, nil
}

// Handlers receive what Consume and ReadAll find in the log, in log order. Batch must Retain a record it
// keeps after returning; Action may be nil (actions are then skipped); Typed gets the other operator actions
// (AppendTyped) with their type and JSON, and may be nil; Bad, when set, gets messages that cannot be
// decoded (they can only come from a foreign publisher) and they are skipped.
type Handlers struct {
	Batch  func(seq uint64, rec arrow.Record) error
	Action func(seq uint64, a engine.Action) error
	Typed  func(seq uint64, typ string, data []byte) error
	Bad    func(seq uint64, err error)
	// Progress, when set, is told after each message of a live consumer (ConsumeAll, ConsumePartition) how
	// many messages of its subjects are still pending behind it: 0 when caught up.
	Progress func(seq, pending uint64)
}

// dispatch decodes one log message.
func (l *Log) dispatch(seq uint64, hdr nats.Header, data []byte, h Handlers) error {
	if typ := hdr.Get(HeaderType); typ != "" && typ != TypeAction {
		if h.Typed == nil {
			return nil
		}
		if err := h.Typed(seq, typ, data); err != nil {
			return &fnError{err}
		}
		return nil
	}
	if hdr != nil && hdr.Get(HeaderType) == TypeAction {
		if h.Action == nil {
			return nil
		}
		var a engine.Action
		if err := json.Unmarshal(data, &a); err != nil {
			if h.Bad != nil {
				h.Bad(seq, fmt.Errorf("cannot decode action: %w", err))
			}
			return nil
		}
		if err := h.Action(seq, a); err != nil {
			return &fnError{err}
		}
		return nil
	}
	err := DecodeRecords(data, func(rec arrow.Record) error {
		if err := h.Batch(seq, rec); err != nil {
			return &fnError{err}
		}
		return nil
	})
	var fe *fnError
	if err != nil && !errors.As(err, &fe) {
		if h.Bad != nil {
			h.Bad(seq, err)
		}
		return nil
	}
	return err
}

// AppendDead stores rejected events on the dead-letter log, one message each, and waits for every ack. With
// id.ID set, a letter stored before for the same batch and line (a retry) is stored once.
func (l *Log) AppendDead(ctx context.Context, letters []ingest.DeadLetter, id ingest.BatchID) error {
	futures := make([]jetstream.PubAckFuture, 0, len(letters))
	for i := range letters {
		if len(letters[i].Raw) > ingest.MaxDeadRaw {
			letters[i].Raw = letters[i].Raw[:ingest.MaxDeadRaw]
		}
		data, err := json.Marshal(&letters[i])
		if err != nil {
			return fmt.Errorf("cannot encode dead letter: %w", err)
		}
		var opts []jetstream.PublishOpt
		if id.ID != "" {
			opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("%s/dead/%d/%d", id.ID, letters[i].Line, i)))
		}
		f, err := l.js.PublishAsync(DeadSubject, data, opts...)
		if err != nil {
			return fmt.Errorf("cannot append to the dead-letter log: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("cannot append to the dead-letter log: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("cannot append to the dead-letter log: %w", ctx.Err())
		}
	}
	return nil
}

// PutAside keeps the log message seq, which its consumer cannot read (it can only come from a foreign
// publisher or a broken store), on the dead-letter log with the reason, once however often it is read.
func (l *Log) PutAside(ctx context.Context, seq uint64, reason error) error {
	raw := ""
	if m, err := l.events.GetMsg(ctx, seq); err == nil {
		raw = string(m.Data[:min(len(m.Data), ingest.MaxDeadRaw)])
	}
	letter := ingest.DeadLetter{ReceivedAt: time.Now().UTC(), Via: "log", Line: int(seq),
		Error: fmt.Sprintf("log message %d cannot be read: %v", seq, reason), Raw: raw}
	return l.AppendDead(ctx, []ingest.DeadLetter{letter}, ingest.BatchID{ID: fmt.Sprintf("log-%d", seq)})
}

// Dead returns up to limit of the newest dead letters, newest first, and the total stored.
func (l *Log) Dead(ctx context.Context, limit int) ([]ingest.DeadLetter, uint64, error) {
	info, err := l.dead.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read stream %s: %w", DeadStream, err)
	}
	var out []ingest.DeadLetter
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		m, err := l.dead.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			return out, info.State.Msgs, fmt.Errorf("cannot read dead letter %d: %w", seq, err)
		}
		var d ingest.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return out, info.State.Msgs, fmt.Errorf("cannot decode dead letter %d: %w", seq, err)
		}
		out = append(out, d)
	}
	return out, info.State.Msgs, nil
}

// DeadCount is the number of dead letters stored.
func (l *Log) DeadCount(ctx context.Context) (uint64, error) {
	info, err := l.dead.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot read stream %s: %w", DeadStream, err)
	}
	return info.State.Msgs, nil
}

// State is the log's extent.
type State struct {
	FirstSeq, LastSeq, Msgs, Bytes uint64
}

// State returns the current extent of the event log.
func (l *Log) State(ctx context.Context) (State, error) {
	info, err := l.events.Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("cannot read stream %s: %w", EventsStream, err)
	}
	return State{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Msgs: info.State.Msgs,
		Bytes: info.State.Bytes}, nil
}

// Consume delivers every batch from sequence from (1: the whole log) in log order to fn until ctx ends,
// which is the only way it returns nil. fn must Retain a record it keeps after returning. A message that
// cannot be decoded is passed to bad and skipped. Operator actions are skipped: use ConsumeAll for them.
func (l *Log) Consume(ctx context.Context, from uint64, fn func(seq uint64, rec arrow.Record) error, bad func(seq uint64, err error)) error {
	return l.ConsumeAll(ctx, from, Handlers{Batch: fn, Bad: bad})
}

// ConsumeAll is Consume with every kind of log message.
func (l *Log) ConsumeAll(ctx context.Context, from uint64, h Handlers) error {
	return l.consume(ctx, l.allFilter(), from, h, 0) // every partition, in log order
}

// consume reads the messages of filters from sequence from in log order. maxResets bounds how often in a row
// the ordered consumer tries to recreate itself on the server after losing it (0: forever); past it, consume
// returns the error.
func (l *Log) consume(ctx context.Context, filters []string, from uint64, h Handlers, maxResets int, opts ...jetstream.PullMessagesOpt) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, MaxResetAttempts: maxResets}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	cons, err := l.js.OrderedConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return fmt.Errorf("cannot create consumer on %s: %w", EventsStream, err)
	}
	// Read ahead by bytes, not messages: 256 batches of Arrow (up to 8 MiB each) pass the client's 64 MiB of
	// pending bytes, the client drops messages and the ordered consumer starts over again and again.
	it, err := cons.Messages(append([]jetstream.PullMessagesOpt{jetstream.PullMaxBytes(readAhead)}, opts...)...)
	if err != nil {
		return fmt.Errorf("cannot consume %s: %w", EventsStream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		// Next watches ctx itself: it.Stop (above) can land while the ordered consumer recreates itself after
		// losing its server, stop the subscription being replaced, and leave Next waiting on the new one for
		// good (a cluster engine node's loop hung in Partition.Stop for minutes after a NATS node's restart).
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("cannot read %s: %w", EventsStream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("cannot read message metadata: %w", err)
		}
		if err := l.dispatch(md.Sequence.Stream, m.Headers(), m.Data(), h); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var fe *fnError
			if errors.As(err, &fe) {
				return fe.err
			}
			return err
		}
		if h.Progress != nil {
			h.Progress(md.Sequence.Stream, md.NumPending)
		}
	}
}

// fnError marks an error returned by a Consume callback (as opposed to a decoding error).
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// Read delivers the batches with sequences in [from, to] in order, then returns (a bounded read for exports
// and replays). Operator actions are skipped: use ReadAll for them.
func (l *Log) Read(ctx context.Context, from, to uint64, fn func(seq uint64, rec arrow.Record) error) error {
	return l.ReadAll(ctx, from, to, Handlers{Batch: fn})
}

// ReadAll is Read with every kind of log message. A message that cannot be decoded is an error unless
// h.Bad is set.
func (l *Log) ReadAll(ctx context.Context, from, to uint64, h Handlers) error {
	var badErr error
	if h.Bad == nil {
		h.Bad = func(seq uint64, err error) {
			if badErr == nil {
				badErr = fmt.Errorf("cannot decode log message %d: %w", seq, err)
			}
		}
	}
	for seq := max(from, 1); seq <= to; seq++ {
		m, err := l.events.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			return fmt.Errorf("cannot read log message %d: %w", seq, err)
		}
		if err := l.dispatch(seq, m.Header, m.Data, h); err != nil {
			var fe *fnError
			if errors.As(err, &fe) {
				return fe.err
			}
			return err
		}
		if badErr != nil {
			return badErr
		}
	}
	return nil
}
