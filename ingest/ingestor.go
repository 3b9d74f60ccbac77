package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/geo"
)

// DeadLetter is a rejected event with its reason, as kept on the dead-letter log.
type DeadLetter struct {
	ReceivedAt time.Time `json:"received_at"`
	Via        string    `json:"via"` // http, nats:<subject>, file:<name>
	Line       int       `json:"line"`
	Error      string    `json:"error"`
	Raw        string    `json:"raw"`
}

// Sink is where accepted batches and rejected events go: the durable log. Append returns only once the
// batch is stored (the acknowledgement); it must not keep rec after returning.
type Sink interface {
	// Append returns ErrDuplicate (with the sequence) when id.ID was stored before with the same id.Hash
	// (a retry), and ErrKeyReused when it was stored with another hash.
	Append(ctx context.Context, rec arrow.Record, id BatchID) (uint64, error)
	// AppendDead stores rejected events; letters carrying the same (id, line) as ones stored before are
	// stored once.
	AppendDead(ctx context.Context, letters []DeadLetter, id BatchID) error
}

// BatchID identifies a batch on the log so that a retry is stored once.
type BatchID struct {
	// ID is the log's message id: the caller's idempotency key scoped to the door and caller it came
	// through, or, without a key, the hash of door, caller and body. Empty: no deduplication (in-process
	// sources, which do not retry).
	ID string
	// Hash is the hash of the batch's body: a key used again for another body is refused (ErrKeyReused).
	Hash string
}

// Config configures an Ingestor.
type Config struct {
	Res        int   // base H3 resolution assigned to events
	MaxBody    int64 // bytes of a request body as sent (compressed or not)
	MaxDecoded int64 // bytes of a body after gzip
	MaxErrors  int   // line errors listed in an answer (all are counted and dead-lettered)
	// MaxAhead is how far ahead of the wall clock an event time may be when it arrives through a door
	// (HTTP, NATS); negative: no bound (tests that feed a fixed future).
	MaxAhead time.Duration
	// MaxInFlight bounds the decoded bytes held by all batches being ingested at once (bodies buffered,
	// events built); a batch that would pass it is refused with ErrBusy (retry) instead of allocating.
	MaxInFlight int64
	Mem         memory.Allocator
	// Now is the wall clock (default time.Now).
	Now func() time.Time
	// Admit, when set, is asked before a batch from a door (Ingest, IngestArrow, IngestReader) is read: an
	// error (wrapping ErrSlowDown) refuses it before anything is allocated, and the door tells the producer
	// to retry later (HTTP 429 with Retry-After, a NATS "slow down" answer). The memory governor of
	// system uses it when the engine lags or the process is over its memory budget. In-process sources
	// (IngestEvents) are not asked.
	Admit func() error
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Res: geo.DefaultRes, MaxBody: 32 << 20, MaxDecoded: 256 << 20, MaxErrors: 100,
		MaxAhead: 5 * time.Minute, MaxInFlight: 512 << 20, Mem: memory.DefaultAllocator, Now: time.Now}
}

// Result is the answer to one batch (spec/events.md "Bad input").
type Result struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"-"`
	Seq      uint64      `json:"-"` // log sequence of the stored batch
}

// Stats are the ingest counters since start.
type Stats struct {
	Accepted [8]atomic.Uint64 // by engine.Kind
	Rejected atomic.Uint64
	Batches  atomic.Uint64
	Failed   atomic.Uint64 // batches that could not be stored (the client was told to retry)
	Bytes    atomic.Uint64
	LastSeq  atomic.Uint64 // log sequence of the newest batch stored (the engine's backlog is measured from it)
}

// Ingestor turns batches into Arrow records in the engine schema and appends them to the sink. Safe for
// concurrent use; it keeps no state beyond a batch except counters.
type Ingestor struct {
	cfg    Config
	sink   Sink
	stats  Stats
	cells  *geo.CellCache
	budget *budget
}

// New returns an Ingestor writing to sink.
func New(cfg Config, sink Sink) *Ingestor {
	d := DefaultConfig()
	if cfg.Res == 0 {
		cfg.Res = d.Res
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = d.MaxBody
	}
	if cfg.MaxDecoded <= 0 {
		cfg.MaxDecoded = d.MaxDecoded
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = d.MaxErrors
	}
	if cfg.Mem == nil {
		cfg.Mem = d.Mem
	}
	if cfg.MaxAhead == 0 {
		cfg.MaxAhead = d.MaxAhead
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = d.MaxInFlight
	}
	if cfg.Now == nil {
		cfg.Now = d.Now
	}
	return &Ingestor{cfg: cfg, sink: sink, cells: geo.NewCellCache(cfg.Res), budget: newBudget(cfg.MaxInFlight)}
}

// Config returns the configuration in use (defaults filled in).
func (in *Ingestor) Config() Config { return in.cfg }

// RejectMessage dead-letters a whole message that holds no readable batch (a subject that names no kind, a
// stream that cannot be read) and counts it as one rejected event.
func (in *Ingestor) RejectMessage(ctx context.Context, via string, data []byte, reason error) error {
	in.stats.Rejected.Add(1)
	if len(data) > MaxDeadRaw {
		data = data[:MaxDeadRaw]
	}
	id := BatchID{ID: bodyID(via, "", data)}
	err := in.sink.AppendDead(ctx, []DeadLetter{{ReceivedAt: in.cfg.Now().UTC(), Via: via, Error: reason.Error(), Raw: string(data)}}, id)
	if err != nil {
		return fmt.Errorf("cannot store rejected message: %w", err)
	}
	return nil
}

// Stats returns the live counters.
func (in *Ingestor) Stats() *Stats { return &in.stats }

// Errors of Ingest that callers map to answers.
var (
	// ErrNoEvents is returned for a body that holds no event at all.
	ErrNoEvents = errors.New("the batch holds no events")
	// ErrDuplicate is what a Sink returns when a batch's message id was stored before.
	ErrDuplicate = errors.New("duplicate message id: the batch was stored before")
	// ErrKeyReused is returned for an idempotency key already used for another batch (HTTP 409).
	ErrKeyReused = errors.New("the idempotency key was used for another batch")
	// ErrStore wraps a failure to store: nothing of the batch was acknowledged and a retry is safe.
	ErrStore = errors.New("cannot store the batch")
	// ErrBusy is returned when the batch would take the decoded bytes in flight past Config.MaxInFlight.
	ErrBusy = errors.New("too many bytes being ingested at once")
	// ErrTooLarge is returned for a body over Config.MaxBody or, decoded, Config.MaxDecoded.
	ErrTooLarge = errors.New("the batch is over the size limit")
	// ErrSlowDown is returned when Config.Admit refuses a batch: nothing of it was read, retry it later.
	ErrSlowDown = errors.New("slow down")
)

// admit asks Config.Admit whether a batch may come in now.
func (in *Ingestor) admit() error {
	if in.cfg.Admit == nil {
		return nil
	}
	return in.cfg.Admit()
}

// Ingest decodes a JSON batch (NDJSON or array) that is all in memory (NATS messages, files), stores the
// rejected events on the dead-letter log and then the accepted ones as one batch on the log, and returns
// only after both are stored. via names the door and caller ("http:alice", "nats:citybrain.in.probe");
// want, when not KindUnknown, is the only kind accepted (NATS subjects citybrain.in.<kind>); key is the
// caller's idempotency key (may be empty): a retry is stored once, and a key reused for another body is
// ErrKeyReused.
func (in *Ingestor) Ingest(ctx context.Context, body []byte, via string, want engine.Kind, key string) (Result, error) {
	return in.ingest(ctx, body, via, want, key, "")
}

// ingest is Ingest of a body whose hash (as batchID takes it) the caller computed while reading it (empty:
// not known).
func (in *Ingestor) ingest(ctx context.Context, body []byte, via string, want engine.Kind, key, hash string) (Result, error) {
	if err := in.admit(); err != nil {
		return Result{}, err
	}
	in.stats.Bytes.Add(uint64(len(body)))
	if int64(len(body)) > in.cfg.MaxDecoded {
		return Result{}, fmt.Errorf("%w: %d bytes, the limit is %d: split the batch", ErrTooLarge, len(body), in.cfg.MaxDecoded)
	}
	lease := lease{b: in.budget}
	defer lease.release()
	if err := lease.grow(int64(len(body))); err != nil {
		return Result{}, err
	}
	b := in.newBatch(via, want)
	defer b.Release()
	b.bb.Reserve(rowsIn(body))
	err := eachObject(body, func(line int, raw []byte) { b.addRaw(line, raw) })
	if err != nil {
		return Result{}, err
	}
	if b.res.Accepted == 0 && b.res.Rejected == 0 {
		return b.res, ErrNoEvents
	}
	return b.store(ctx, nil, batchIDOf(via, key, hash, body))
}

// rowsIn estimates the events of a JSON body to reserve the batch's columns for: its lines (NDJSON), at most
// one per 48 bytes (a smaller object is not a valid event) and 65,536.
func rowsIn(body []byte) int {
	return min(bytes.Count(body, []byte{'\n'})+1, len(body)/48+1, 1<<16)
}

// batchID is the BatchID of a body that came through via with the caller's key (see BatchID).
func batchID(via, key string, body []byte) BatchID {
	h := sha256.Sum256(body)
	return batchIDOfHash(via, key, hex.EncodeToString(h[:16]))
}

// batchIDOf is batchID of body, or batchIDOfHash when its hash is known (not empty).
func batchIDOf(via, key, hash string, body []byte) BatchID {
	if hash == "" {
		return batchID(via, key, body)
	}
	return batchIDOfHash(via, key, hash)
}

// bodyHash is the hash batchID takes of a body, from a hash.Hash (sha256) that read all of it.
func bodyHash(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)[:16]) }

// batchIDOfHash is batchID for a body whose hash is known.
func batchIDOfHash(via, key, hash string) BatchID {
	if key == "" {
		return BatchID{ID: bodyID(via, hash, nil), Hash: hash}
	}
	k := sha256.Sum256([]byte(via + "\x00" + key))
	return BatchID{ID: "k-" + hex.EncodeToString(k[:20]), Hash: hash}
}

// bodyID is the message id of a body without a key: the hash of door, caller and body (hash, when
// known, is the body's).
func bodyID(via, hash string, body []byte) string {
	if hash == "" {
		h := sha256.Sum256(body)
		hash = hex.EncodeToString(h[:16])
	}
	k := sha256.Sum256([]byte(via + "\x00" + hash))
	return "b-" + hex.EncodeToString(k[:20])
}

// store appends the dead letters, then the accepted record, and counts them. The order makes the answer
// exactly true: when storing fails, no event of the batch was accepted (letters already stored are stored
// once again on the retry, by their ids).
func (in *Ingestor) store(ctx context.Context, rec arrow.Record, dead []DeadLetter, id BatchID, res *Result) error {
	if len(dead) > 0 {
		if err := in.sink.AppendDead(ctx, dead, id); err != nil {
			in.stats.Failed.Add(1)
			return fmt.Errorf("%w (rejected events): %v", ErrStore, err)
		}
	}
	if rec.NumRows() > 0 {
		seq, err := in.sink.Append(ctx, rec, id)
		switch {
		case errors.Is(err, ErrDuplicate):
			// A retry of a batch already in the log (the client did not get the first answer): it is
			// answered as accepted again, but counted once, when it was first stored.
			res.Seq = seq
			return nil
		case errors.Is(err, ErrKeyReused):
			return err
		case err != nil:
			in.stats.Failed.Add(1)
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
		res.Seq = seq
		for cur := in.stats.LastSeq.Load(); seq > cur && !in.stats.LastSeq.CompareAndSwap(cur, seq); cur = in.stats.LastSeq.Load() {
		}
	}
	countKinds(rec, &in.stats)
	in.stats.Rejected.Add(uint64(res.Rejected))
	in.stats.Batches.Add(1)
	return nil
}

// IngestEvents validates and stores events produced in-process (the demo city, file adapters run inside
// the server). Invalid events are dead-lettered like any other input; line numbers are indexes from 1. The
// bound on event times ahead of the wall clock does not apply: the demo city runs ahead of it on purpose
// (--demo-speed), and in-process sources are the program's own.
func (in *Ingestor) IngestEvents(ctx context.Context, events []engine.Event, via string) (Result, error) {
	b := in.newBatch(via, engine.KindUnknown)
	b.trusted = true
	defer b.Release()
	for i := range events {
		b.add(i+1, nil, &events[i], Validate(&events[i]))
	}
	if b.res.Accepted == 0 && b.res.Rejected == 0 {
		return b.res, ErrNoEvents
	}
	return b.store(ctx, nil, BatchID{})
}
