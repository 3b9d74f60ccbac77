// Package replay runs planners' replay sessions (the same engine code reading an older part of the event log, or an
// exported file, at any speed) and writes exports (Arrow IPC, Parquet, NDJSON). The live log itself is package
// eventlog.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/eventlog"
)

// Spec describes a replay session.
type Spec struct {
	// From and To bound the replay in event time; zero is the start or the end of the source. The session
	// stops (finished) when the event clock reaches To.
	From, To time.Time
	// File, when set, is an exported file (arrow, parquet or ndjson by extension) to replay instead of the log.
	File string
	// Speed is the multiple of real time (event time per wall-clock time): 1 plays as it happened, 60 an hour
	// a minute; 0 plays as fast as possible.
	Speed float64
	// Warmup is the event time before From fed as fast as possible so that the windows are full at From
	// (0: the longest window, 15 min; negative: none).
	Warmup time.Duration
	// Paused creates the session paused; otherwise it plays at once.
	Paused bool
	// Owner is who created the session (the planner's name): the manager bounds sessions per owner.
	Owner string
	// OnDelta receives the session engine's deltas with sequence numbers that stay contiguous across seeks
	// (a backward seek first sends one delta with Reset set, removing every cell; Session.Engine is then the
	// new engine). Called from the engine's tick goroutine, and from the session's for the reset.
	OnDelta func(*engine.Delta)
	// OnTyped receives the operator actions other than incident actions (zones, ...) read from the log in the
	// replayed range, in log order with the batches (eventlog.Log.AppendTyped), from the session's goroutine.
	OnTyped func(typ string, data []byte)
	// OnRestart is called when the session builds its engine (at start, and afresh on a backward seek),
	// before that engine's first delta: state kept beside the engine starts over too.
	OnRestart func()
	// OnClose is called once when the session closes (by Close, the manager or idle expiry).
	OnClose func()
	// Active, when set, tells the manager the session is watched (websocket clients), so it does not expire.
	Active func() bool
}

// Session states.
const (
	StatePaused   = "paused"
	StatePlaying  = "playing"
	StateFinished = "finished"
	StateClosed   = "closed"
	StateFailed   = "failed"
)

// Info is a session's state as the API shows it.
type Info struct {
	ID     string  `json:"id"`
	State  string  `json:"state"`
	Speed  float64 `json:"speed"`
	Source string  `json:"source"` // "log" or "file:NAME"
	From   string  `json:"from,omitempty"`
	To     string  `json:"to,omitempty"`
	// Position is the session's event clock (the newest event time applied).
	Position string `json:"position,omitempty"`
	Events   uint64 `json:"events"`
	Batches  uint64 `json:"batches"`
	// EventsPerSecond and RealTimeMultiple measure the replay's speed over the time it has played.
	EventsPerSecond  float64 `json:"events_per_second"`
	RealTimeMultiple float64 `json:"real_time_multiple"`
	PlayedSeconds    float64 `json:"played_seconds"`
	Seeks            int     `json:"seeks"`
	Error            string  `json:"error,omitempty"`
	Created          string  `json:"created"`
}

// Source opens the batches a session replays from the start; called again on every backward seek.
type Source func(ctx context.Context) (BatchReader, error)

// Session replays a source through its own engine (engine.New with the live configuration and its own
// allocator), paced by the events' own time × speed. One goroutine owns the engine and the reader; the
// methods send it commands. Stop (Close) is safe to call twice.
type Session struct {
	id      string
	spec    Spec
	ecfg    engine.Config
	open    Source
	source  string
	created time.Time

	cmds    chan command
	done    chan struct{}
	eng     atomic.Pointer[engine.Engine]
	info    atomic.Pointer[Info]
	touched atomic.Int64 // unix nanos of the last API call

	// Owned by the run goroutine.
	reader        BatchReader
	next          arrow.Record // peeked batch, not yet applied
	nextHi        int64
	state         string
	speed         float64
	clock         int64 // newest event time applied (ms), minTime before any
	startClock    int64 // clock when play started (for the real-time multiple)
	ffUntil       int64 // feed without pacing while clock < ffUntil
	anchorEvt     int64
	anchorWall    time.Time
	events        uint64
	batches       uint64
	applySeq      uint64
	played        time.Duration
	playedFrom    time.Time // when the current playing stretch began
	playedEvtFrom int64
	playedEvt     int64 // event time covered while playing
	seeks         int
	err           error
	deltaBase     uint64
	lastDelta     atomic.Uint64

	decMu     sync.Mutex
	decisions []Decision // operator decisions read so far (guarded by decMu), the newest MaxDecisions
}

// Decision is an operator decision a replay met in the log, where it was made: an incident action, a
// dispatch or signal-plan decision, a zone change (Type as the log's Cb-Type: action, dispatch, zone).
type Decision struct {
	Seq  uint64          `json:"log_seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"decision"`
}

// MaxDecisions bounds the decisions a session keeps to show.
const MaxDecisions = 1000

func (s *Session) noteDecision(seq uint64, typ string, data []byte) {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if !json.Valid(data) {
		return
	}
	if s.decisions = append(s.decisions, Decision{Seq: seq, Type: typ, Data: append(json.RawMessage(nil), data...)}); len(s.decisions) > MaxDecisions {
		s.decisions = s.decisions[len(s.decisions)-MaxDecisions:]
	}
}

// Decisions returns the operator decisions the session has read from the log up to its position, oldest
// first (a backward seek starts them again).
func (s *Session) Decisions() []Decision {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	return append([]Decision(nil), s.decisions...)
}

const noTime = -1 << 62

type command struct {
	op    string // play, pause, seek, speed, close
	at    time.Time
	speed float64
	reply chan error
}

// ErrClosed is returned by the methods of a closed session.
var ErrClosed = errors.New("the replay session is closed")

// NewSession starts a session reading from open. ecfg is the live engine configuration (its OnDelta and
// Mem are replaced). The session is paused or playing as spec says.
func NewSession(id string, spec Spec, ecfg engine.Config, source string, open Source) (*Session, error) {
	if err := checkSpeed(spec.Speed); err != nil {
		return nil, fmt.Errorf("cannot create replay: %w", err)
	}
	if !spec.From.IsZero() && !spec.To.IsZero() && !spec.From.Before(spec.To) {
		return nil, fmt.Errorf("cannot create replay: from %s is not before to %s", spec.From.Format(time.RFC3339), spec.To.Format(time.RFC3339))
	}
	if spec.Warmup == 0 {
		spec.Warmup = engine.Windows[len(engine.Windows)-1]
	}
	s := &Session{id: id, spec: spec, ecfg: ecfg, open: open, source: source, created: time.Now().UTC(),
		cmds: make(chan command), done: make(chan struct{}), speed: spec.Speed, clock: noTime}
	s.touch()
	if err := s.restart(context.Background()); err != nil {
		s.stopEngine()
		return nil, err
	}
	s.state = StatePlaying
	if spec.Paused {
		s.state = StatePaused
	} else {
		s.startPlaying()
	}
	s.publish()
	go s.run()
	return s, nil
}

// ID is the session's id.
func (s *Session) ID() string { return s.id }

// Engine is the session's current engine (a seek backwards replaces it).
func (s *Session) Engine() *engine.Engine { return s.eng.Load() }

// Info returns the session's state.
func (s *Session) Info() Info { return *s.info.Load() }

// Done is closed when the session has closed.
func (s *Session) Done() <-chan struct{} { return s.done }

func (s *Session) touch() { s.touched.Store(time.Now().UnixNano()) }

// Play resumes (or starts) playing.
func (s *Session) Play() error { return s.send(command{op: "play"}) }

// Pause pauses; the state stays as it is.
func (s *Session) Pause() error { return s.send(command{op: "pause"}) }

// Seek moves to event time at (clamped to [From, To]): forward by fast-forwarding, backward by restarting
// the session's engine from the start of the source and fast-forwarding to at.
func (s *Session) Seek(at time.Time) error { return s.send(command{op: "seek", at: at}) }

// SetSpeed changes the speed (0: as fast as possible).
func (s *Session) SetSpeed(x float64) error {
	if err := checkSpeed(x); err != nil {
		return fmt.Errorf("cannot set speed: %w", err)
	}
	return s.send(command{op: "speed", speed: x})
}

// MaxSpeed bounds a replay's speed (a million times real time plays a day in a tenth of a second).
const MaxSpeed = 1e6

func checkSpeed(x float64) error {
	if math.IsNaN(x) || x < 0 || x > MaxSpeed {
		return fmt.Errorf("speed %g must be a number from 0 (as fast as possible) to %g", x, float64(MaxSpeed))
	}
	return nil
}

// Close stops the session and releases everything it holds. Safe to call twice and concurrently.
func (s *Session) Close() {
	select {
	case s.cmds <- command{op: "close"}:
	case <-s.done:
	}
	<-s.done
}

// Stop is Close.
func (s *Session) Stop() { s.Close() }

func (s *Session) send(c command) error {
	s.touch()
	c.reply = make(chan error, 1)
	select {
	case s.cmds <- c:
	case <-s.done:
		return ErrClosed
	}
	select {
	case err := <-c.reply:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// WaitFinished waits until the session has played its whole range (or failed, or closed) or ctx ends.
func (s *Session) WaitFinished(ctx context.Context) (Info, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		in := s.Info()
		switch in.State {
		case StateFinished:
			return in, nil
		case StateFailed:
			return in, errors.New(in.Error)
		case StateClosed:
			return in, ErrClosed
		}
		select {
		case <-ctx.Done():
			return in, ctx.Err()
		case <-t.C:
		}
	}
}

// run is the session's goroutine: it owns the engine, the reader and every field marked so.
func (s *Session) run() {
	defer func() {
		s.releaseNext()
		if s.reader != nil {
			s.reader.Close()
		}
		s.stopEngine()
		if s.state != StateFailed {
			s.state = StateClosed
		}
		s.publish()
		// OnClose runs before done closes, so Close returns only when the session is gone from its
		// manager (a GET right after DELETE answers 404).
		if s.spec.OnClose != nil {
			s.spec.OnClose()
		}
		close(s.done)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		var timer <-chan time.Time
		var tm *time.Timer
		if s.state == StatePlaying {
			if s.next == nil {
				if !s.fetch(ctx) {
					s.finish()
					continue
				}
			}
			wait := s.due()
			if wait > 0 {
				tm = time.NewTimer(wait)
				timer = tm.C
			} else {
				// Apply without waiting, but let commands in now and then.
				select {
				case c := <-s.cmds:
					if s.handle(ctx, c) {
						return
					}
				default:
					s.applyNext()
				}
				continue
			}
		}
		select {
		case c := <-s.cmds:
			if tm != nil {
				tm.Stop()
			}
			if s.handle(ctx, c) {
				return
			}
		case <-timer:
			s.applyNext()
		}
	}
}

// handle carries out a command; true means close.
func (s *Session) handle(ctx context.Context, c command) bool {
	var err error
	switch c.op {
	case "close":
		return true
	case "play":
		if s.state == StatePaused {
			s.state = StatePlaying
			s.startPlaying()
		}
	case "pause":
		if s.state == StatePlaying {
			s.stopPlaying()
			s.state = StatePaused
		}
	case "speed":
		wasPlaying := s.state == StatePlaying
		if wasPlaying {
			s.stopPlaying()
		}
		s.speed = c.speed
		if wasPlaying {
			s.startPlaying()
		}
	case "seek":
		err = s.seek(ctx, c.at)
	}
	s.publish()
	if c.reply != nil {
		c.reply <- err
	}
	return false
}

func (s *Session) seek(ctx context.Context, at time.Time) error {
	t := at.UnixMilli()
	if !s.spec.From.IsZero() {
		t = max(t, s.spec.From.UnixMilli())
	}
	if !s.spec.To.IsZero() {
		t = min(t, s.spec.To.UnixMilli())
	}
	wasPlaying := s.state == StatePlaying
	if wasPlaying {
		s.stopPlaying()
	}
	s.seeks++
	if t < s.clock || s.state == StateFailed {
		if err := s.restart(ctx); err != nil {
			s.fail(err)
			return err
		}
	}
	s.ffUntil = t
	// Fast-forward now, so that the state at t is there when Seek returns.
	for s.clock < t {
		if s.next == nil && !s.fetch(ctx) {
			break
		}
		if s.nextHi > t && s.clock != noTime {
			break
		}
		s.applyNext()
	}
	if s.state == StateFinished || s.state == StateFailed {
		s.state = StatePaused
	}
	if eng := s.eng.Load(); eng != nil {
		eng.Flush()
	}
	if wasPlaying {
		s.state = StatePlaying
		s.startPlaying()
	}
	return nil
}

// restart stops the current engine (sending one delta that removes its cells), starts a new one and
// reopens the source.
func (s *Session) restart(ctx context.Context) error {
	s.releaseNext()
	if s.reader != nil {
		s.reader.Close()
		s.reader = nil
	}
	old := s.eng.Load()
	var reset *engine.Delta
	if old != nil {
		old.Stop()
		// One delta removes every cell of the old timeline and tells clients to drop its incidents, units and
		// assets (an incident that had not happened yet at the new position must go). It is sent once the
		// new engine is in place, so that a client resubscribing on it sees the new timeline.
		reset = &engine.Delta{Seq: s.lastDelta.Load() + 1, Watermark: old.Status().Watermark, Now: old.Status().Now, Reset: true}
		for _, v := range old.All() {
			reset.Removed = append(reset.Removed, v.Cell)
		}
		s.lastDelta.Store(reset.Seq)
	}
	s.deltaBase = s.lastDelta.Load()
	if s.spec.OnRestart != nil {
		s.spec.OnRestart()
	}
	cfg := s.ecfg
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	base := s.deltaBase
	cfg.OnDelta = func(d *engine.Delta) {
		out := *d
		out.Seq += base
		s.lastDelta.Store(out.Seq)
		if s.spec.OnDelta != nil {
			s.spec.OnDelta(&out)
		}
	}
	s.eng.Store(engine.New(cfg))
	if reset != nil && s.spec.OnDelta != nil {
		s.spec.OnDelta(reset)
	}
	s.clock, s.events, s.batches, s.applySeq = noTime, 0, 0, 0
	r, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.decMu.Lock()
	s.decisions = nil
	s.decMu.Unlock()
	if rr, ok := r.(*eventlog.RangeReader); ok {
		rr.OnAction = func(seq uint64, a engine.Action) error {
			s.eng.Load().ApplyAction(seq, a)
			if data, err := json.Marshal(&a); err == nil {
				s.noteDecision(seq, eventlog.TypeAction, data)
			}
			return nil
		}
		rr.OnTyped = func(seq uint64, typ string, data []byte) error {
			s.noteDecision(seq, typ, data)
			if s.spec.OnTyped != nil {
				s.spec.OnTyped(typ, data)
			}
			return nil
		}
		// Read and decode the log on the reader's goroutine while this one applies.
		rr.ReadAhead(readAheadBatches)
	}
	s.reader = r
	if !s.spec.From.IsZero() {
		s.ffUntil = s.spec.From.UnixMilli()
	}
	return nil
}

// readAheadBatches is how many batches a session's log reader decodes ahead of the apply (each up to a log
// message, 8 MiB at most).
const readAheadBatches = 4

func (s *Session) stopEngine() {
	if e := s.eng.Load(); e != nil {
		e.Stop()
	}
}

// fetch peeks the next batch; false at the end of the source (or on an error, which fails the session).
func (s *Session) fetch(ctx context.Context) bool {
	if s.reader == nil {
		return false
	}
	if !s.spec.To.IsZero() && s.clock >= s.spec.To.UnixMilli() {
		return false
	}
	for {
		rec, err := s.reader.Next(ctx)
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			s.fail(err)
			return false
		}
		if _, isLog := s.reader.(*eventlog.RangeReader); !isLog {
			// Files hold what was exported: keep [From − warm-up, To).
			from := time.Time{}
			if !s.spec.From.IsZero() && s.spec.Warmup > 0 {
				from = s.spec.From.Add(-s.spec.Warmup)
			} else if !s.spec.From.IsZero() {
				from = s.spec.From
			}
			out := FilterTime(rec, from, s.spec.To, s.ecfg.Mem)
			rec.Release()
			if out == nil {
				continue
			}
			rec = out
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		s.next = rec
		_, s.nextHi = eventlog.TSExtent(rec)
		return true
	}
}

func (s *Session) releaseNext() {
	if s.next != nil {
		s.next.Release()
		s.next = nil
	}
}

// due is how long to wait before applying the peeked batch.
func (s *Session) due() time.Duration {
	if s.speed == 0 || s.clock < s.ffUntil || s.nextHi <= s.anchorEvt {
		return 0
	}
	if s.anchorWall.IsZero() {
		s.reanchor()
	}
	at := s.anchorWall.Add(time.Duration(float64(time.Duration(s.nextHi-s.anchorEvt)*time.Millisecond) / s.speed))
	return time.Until(at)
}

func (s *Session) reanchor() {
	s.anchorWall = time.Now()
	s.anchorEvt = s.clock
	if s.anchorEvt == noTime {
		s.anchorEvt = s.nextHi
	}
}

func (s *Session) applyNext() {
	rec := s.next
	s.next = nil
	if rec == nil {
		return
	}
	defer rec.Release()
	wasFF := s.clock < s.ffUntil
	s.applySeq++
	seq := s.applySeq
	if rr, ok := s.reader.(*eventlog.RangeReader); ok {
		seq = rr.Seq()
	}
	if err := s.eng.Load().Apply(seq, rec); err != nil {
		s.fail(err)
		return
	}
	s.events += uint64(rec.NumRows())
	s.batches++
	if s.nextHi > s.clock {
		s.clock = s.nextHi
	}
	if wasFF && s.clock >= s.ffUntil {
		s.reanchor() // pacing starts here
		s.playedFrom, s.playedEvtFrom = time.Now(), s.clock
	}
	if s.batches%64 == 0 {
		s.publish()
	}
	if !s.spec.To.IsZero() && s.clock >= s.spec.To.UnixMilli() {
		s.finish()
	}
}

func (s *Session) finish() {
	if s.state != StatePlaying && s.state != StatePaused {
		return
	}
	s.stopPlaying()
	if s.err == nil {
		s.state = StateFinished
	}
	if e := s.eng.Load(); e != nil {
		e.Flush()
	}
	s.publish()
}

func (s *Session) fail(err error) {
	s.stopPlaying()
	s.err = err
	s.state = StateFailed
	s.publish()
}

func (s *Session) startPlaying() {
	s.anchorWall = time.Time{}
	s.playedFrom, s.playedEvtFrom = time.Now(), s.clock
	if s.startClock == 0 {
		s.startClock = s.clock
	}
}

func (s *Session) stopPlaying() {
	if s.playedFrom.IsZero() {
		return
	}
	s.played += time.Since(s.playedFrom)
	if s.clock != noTime && s.playedEvtFrom != noTime {
		s.playedEvt += s.clock - s.playedEvtFrom
	}
	s.playedFrom = time.Time{}
}

// publish stores the Info of the session for other goroutines.
func (s *Session) publish() {
	in := Info{ID: s.id, State: s.state, Speed: s.speed, Source: s.source, Events: s.events, Batches: s.batches,
		Seeks: s.seeks, Created: s.created.Format(time.RFC3339)}
	if !s.spec.From.IsZero() {
		in.From = s.spec.From.UTC().Format(time.RFC3339Nano)
	}
	if !s.spec.To.IsZero() {
		in.To = s.spec.To.UTC().Format(time.RFC3339Nano)
	}
	if s.clock != noTime {
		in.Position = time.UnixMilli(s.clock).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	played, evt := s.played, s.playedEvt
	if !s.playedFrom.IsZero() {
		played += time.Since(s.playedFrom)
		if s.clock != noTime && s.playedEvtFrom != noTime {
			evt += s.clock - s.playedEvtFrom
		}
	}
	in.PlayedSeconds = played.Seconds()
	if ms := played.Seconds() * 1000; ms >= 1 {
		in.EventsPerSecond = float64(s.events) / played.Seconds()
		in.RealTimeMultiple = float64(evt) / ms
	}
	if s.err != nil {
		in.Error = s.err.Error()
	}
	s.info.Store(&in)
}
