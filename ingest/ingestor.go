package ingest

import (
	"context"
	"errors"
	"fmt"
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
	// Append returns ErrDuplicate (with the sequence) when msgID was stored before: a retry.
	Append(ctx context.Context, rec arrow.Record, msgID string) (uint64, error)
	AppendDead(ctx context.Context, letters []DeadLetter) error
}

// Config configures an Ingestor.
type Config struct {
	Res        int   // base H3 resolution assigned to events
	MaxBody    int64 // bytes of a request body as sent (compressed or not)
	MaxDecoded int64 // bytes of a body after gzip
	MaxErrors  int   // line errors listed in an answer (all are counted and dead-lettered)
	Mem        memory.Allocator
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Res: geo.DefaultRes, MaxBody: 32 << 20, MaxDecoded: 256 << 20, MaxErrors: 100,
		Mem: memory.DefaultAllocator}
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
}

// Ingestor turns batches into Arrow records in the engine schema and appends them to the sink. Safe for
// concurrent use; it keeps no state beyond a batch except counters.
type Ingestor struct {
	cfg   Config
	sink  Sink
	stats Stats
	cells *geo.CellCache
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
	return &Ingestor{cfg: cfg, sink: sink, cells: geo.NewCellCache(cfg.Res)}
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
	err := in.sink.AppendDead(ctx, []DeadLetter{{ReceivedAt: time.Now().UTC(), Via: via, Error: reason.Error(), Raw: string(data)}})
	if err != nil {
		return fmt.Errorf("cannot store rejected message: %w", err)
	}
	return nil
}

// Stats returns the live counters.
func (in *Ingestor) Stats() *Stats { return &in.stats }

// ErrNoEvents is returned for a body that holds no event at all.
var ErrNoEvents = errors.New("the batch holds no events")

// Ingest decodes a JSON batch (NDJSON or array), stores the accepted events as one batch on the log and the
// rejected ones on the dead-letter log, and returns only after both are stored. want, when not
// KindUnknown, is the only kind accepted (NATS subjects citybrain.in.<kind>). msgID deduplicates retries.
func (in *Ingestor) Ingest(ctx context.Context, body []byte, via string, want engine.Kind, msgID string) (Result, error) {
	b := in.newBatch(via, want)
	defer b.Release()
	err := DecodeLines(body, func(line int, raw []byte, ev engine.Event, err error) {
		b.add(line, raw, &ev, err)
	})
	in.stats.Bytes.Add(uint64(len(body)))
	if err != nil {
		return Result{}, err
	}
	if b.res.Accepted == 0 && b.res.Rejected == 0 {
		return b.res, ErrNoEvents
	}
	return b.store(ctx, nil, msgID)
}

// ErrDuplicate is what a Sink returns when a batch's message id was stored before.
var ErrDuplicate = errors.New("duplicate message id: the batch was stored before")

// store appends the accepted record and the dead letters, and counts them.
func (in *Ingestor) store(ctx context.Context, rec arrow.Record, dead []DeadLetter, msgID string, res *Result) error {
	if rec.NumRows() > 0 {
		seq, err := in.sink.Append(ctx, rec, msgID)
		if errors.Is(err, ErrDuplicate) {
			// A retry of a batch already in the log (the client did not get the first answer): it is
			// answered as accepted again, but counted once, when it was first stored.
			res.Seq = seq
			return nil
		}
		if err != nil {
			in.stats.Failed.Add(1)
			return fmt.Errorf("cannot store batch: %w", err)
		}
		res.Seq = seq
	}
	if len(dead) > 0 {
		if err := in.sink.AppendDead(ctx, dead); err != nil {
			in.stats.Failed.Add(1)
			return fmt.Errorf("cannot store rejected events: %w", err)
		}
	}
	countKinds(rec, &in.stats)
	in.stats.Rejected.Add(uint64(res.Rejected))
	in.stats.Batches.Add(1)
	return nil
}

// IngestEvents validates and stores events produced in-process (the demo city, file adapters run inside
// the server). Invalid events are dead-lettered like any other input; line numbers are indexes from 1.
func (in *Ingestor) IngestEvents(ctx context.Context, events []engine.Event, via string) (Result, error) {
	b := in.newBatch(via, engine.KindUnknown)
	defer b.Release()
	for i := range events {
		b.add(i+1, nil, &events[i], Validate(&events[i]))
	}
	if b.res.Accepted == 0 && b.res.Rejected == 0 {
		return b.res, ErrNoEvents
	}
	return b.store(ctx, nil, "")
}
