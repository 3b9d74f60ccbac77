package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/nats-io/nats.go"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
)

// PartitionConfig is one partition run by an engine node.
type PartitionConfig struct {
	K     int
	Node  string
	Epoch uint64 // the lease revision: frames carry it, so api nodes tell owners apart
	Log   *eventlog.Log
	NC    *nats.Conn
	Snaps *Snapshots
	// Engine is the engine configuration (OnDelta and SnapshotParts are set here).
	Engine engine.Config
	// SnapshotEvery is how often the partition's snapshot is stored (0: 30 s).
	SnapshotEvery time.Duration
	Logger        *log.Logger
}

// Partition is a partition owned by this node: an engine restored from the partition's last snapshot and fed
// by a consumer of the partition's subjects, publishing its deltas as frames.
type Partition struct {
	cfg     PartitionConfig
	eng     atomic.Pointer[engine.Engine]
	started time.Time

	restored   uint64 // snapshot sequence started from
	unreadable string // why the snapshot could not be read, when the partition was replayed from the log instead
	targetSeq  uint64 // the partition's newest message when taken: caught up once applied
	applied    atomic.Uint64
	pending    atomic.Uint64
	caughtAt   atomic.Int64 // unix ns when caught up (0: not yet)

	lastSnap    time.Time // consumer goroutine
	lastSnapSeq uint64    // consumer goroutine

	cancel context.CancelFunc
	done   chan error
	sub    *nats.Subscription

	frameMu   sync.Mutex // frame building and publishing (tick goroutine and heartbeat)
	frameSeq  uint64
	lastLinks time.Time
	actMu     sync.Mutex
	actions   []string // ids applied and not yet reported
	stopHB    chan struct{}
	hbDone    chan struct{}
	failed    atomic.Pointer[error]
}

// Failed returns why the partition's consumer stopped on its own (nil while it runs).
func (p *Partition) Failed() error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// StartPartition restores partition k and starts consuming it.
func StartPartition(ctx context.Context, cfg PartitionConfig) (*Partition, error) {
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 30 * time.Second
	}
	p := &Partition{cfg: cfg, started: time.Now(), stopHB: make(chan struct{}), hbDone: make(chan struct{})}
	st, err := cfg.Log.State(ctx)
	if err != nil {
		return nil, err
	}
	if p.targetSeq, err = cfg.Log.PartitionLast(ctx, cfg.K); err != nil {
		return nil, err
	}
	ecfg := cfg.Engine
	ecfg.OnDelta = p.onDelta
	ecfg.SnapshotParts = nil
	eng := engine.New(ecfg)
	from := uint64(1)
	seq, err := cfg.Snaps.Restore(ctx, cfg.K, eng, st.LastSeq)
	switch {
	case err == nil:
		from, p.restored, p.lastSnapSeq = seq+1, seq, seq
		p.applied.Store(seq)
	case errors.Is(err, engine.ErrNoSnapshot):
	case ctx.Err() != nil:
		eng.Stop()
		return nil, err
	default:
		// The snapshot is a shortcut, the log is the record. A snapshot that cannot be read (a damaged archive,
		// chunks its object store lost with a NATS node) must not keep the partition from starting anywhere:
		// every node that took it failed the same way and gave it back. Replay the partition from the log into
		// a fresh engine instead; its next snapshot replaces the unreadable one.
		eng.Stop()
		if cfg.Logger != nil {
			cfg.Logger.Printf("partition %d: %v; replaying it from the log instead", cfg.K, err)
		}
		eng = engine.New(ecfg)
		p.unreadable = err.Error()
	}
	p.eng.Store(eng)
	p.lastSnap = time.Now()
	if p.targetSeq <= p.applied.Load() {
		p.caughtAt.Store(time.Now().UnixNano())
	}
	if p.sub, err = cfg.NC.Subscribe(StateSubject(cfg.K), p.serveState); err != nil {
		eng.Stop()
		return nil, fmt.Errorf("cannot serve the state of partition %d: %w", cfg.K, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if cctx.Err() == nil { // ended on its own: the partition is dead, its owner must give it up
				if err == nil {
					err = errors.New("log consumer ended")
				}
				p.failed.Store(&err)
			}
			p.done <- err
		}()
		err = cfg.Log.ConsumePartition(cctx, cfg.K, from, eventlog.Handlers{
			Batch:  p.apply,
			Action: p.action,
			Bad: func(seq uint64, err error) {
				cfg.Logger.Printf("partition %d: skipping log message %d: %v", cfg.K, seq, err)
			},
			Progress: p.progress,
		})
	}()
	go p.heartbeat()
	return p, nil
}

// Engine is the partition's engine.
func (p *Partition) Engine() *engine.Engine { return p.eng.Load() }

func (p *Partition) apply(seq uint64, rec arrow.Record) error {
	if err := p.eng.Load().Apply(seq, rec); err != nil {
		return err
	}
	p.applied.Store(seq)
	if time.Since(p.lastSnap) >= p.cfg.SnapshotEvery {
		p.snapshot()
	}
	return nil
}

func (p *Partition) action(seq uint64, a engine.Action) error {
	p.eng.Load().ApplyAction(seq, a)
	p.actMu.Lock()
	p.actions = append(p.actions, a.ID)
	p.actMu.Unlock()
	p.applied.Store(seq)
	return nil
}

func (p *Partition) progress(seq, pending uint64) {
	p.applied.Store(max(p.applied.Load(), seq))
	p.pending.Store(pending)
	if pending == 0 && p.caughtAt.Load() == 0 && seq >= p.targetSeq {
		p.caughtAt.Store(time.Now().UnixNano())
	}
}

// snapshot stores the partition's state (consumer goroutine, or after it stopped).
func (p *Partition) snapshot() {
	p.lastSnap = time.Now()
	if p.applied.Load() == p.lastSnapSeq {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seq, err := p.cfg.Snaps.Write(ctx, p.cfg.K, p.eng.Load())
	if err != nil {
		p.cfg.Logger.Printf("partition %d: %v", p.cfg.K, err)
		return
	}
	p.lastSnapSeq = seq
}

// Status is the partition's progress.
func (p *Partition) Status(last uint64) PartitionStatus {
	eng := p.eng.Load()
	st := PartitionStatus{Partition: p.cfg.K, Owner: p.cfg.Node, Epoch: p.cfg.Epoch, AppliedSeq: p.applied.Load(),
		LastSeq: max(last, p.applied.Load()), Lag: p.pending.Load(), Events: eng.Status().Events,
		Restored: p.restored, SnapshotError: p.unreadable, At: time.Now()}
	if last > 0 && st.AppliedSeq >= max(last, p.targetSeq) && st.Lag > 0 {
		// Everything of the partition is applied, yet the consumer's last pending count says more is to come:
		// the server's count for a consumer of two subjects can stay above what is left after the consumer
		// was recreated (TestClusterFailover saw a partition applied to its last message report 1 pending,
		// and so never caught up, for a minute after a NATS node's restart). What was applied decides.
		st.Lag = 0
		p.caughtAt.CompareAndSwap(0, time.Now().UnixNano())
	}
	if c := p.caughtAt.Load(); c != 0 {
		st.CaughtUp = true
		st.TookMs = time.Duration(c - p.started.UnixNano()).Milliseconds()
	}
	if st.CaughtUp && last > st.AppliedSeq && st.Lag == 0 {
		st.Lag = 1 // a message arrived after the last progress report
	}
	return st
}

// CaughtUp reports whether the partition has applied what its log held when it was taken.
func (p *Partition) CaughtUp() bool { return p.caughtAt.Load() != 0 }

// Stop stops consuming; clean stops (giving the partition back) store a last snapshot first.
func (p *Partition) Stop(clean bool) error {
	close(p.stopHB)
	<-p.hbDone
	if p.sub != nil {
		p.sub.Unsubscribe()
	}
	p.cancel()
	err := <-p.done
	if clean {
		p.snapshot()
	}
	p.eng.Load().Stop()
	return err
}

// onDelta publishes a tick's changes (engine tick goroutine).
func (p *Partition) onDelta(d *engine.Delta) {
	eng := p.eng.Load()
	if eng == nil {
		return
	}
	f := &Frame{Changed: d.Changed, Removed: d.Removed, Incidents: d.Incidents, Units: d.Units, Assets: d.Assets}
	p.publish(eng, f)
}

// heartbeat publishes a frame every second even when nothing changed: status, and the results of actions
// that changed no incident.
func (p *Partition) heartbeat() {
	defer close(p.hbDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stopHB:
			return
		case <-t.C:
			if eng := p.eng.Load(); eng != nil {
				f := &Frame{Visible: map[string]struct{}{}, HasVisible: true}
				for _, in := range eng.Incidents() {
					f.Visible[in.ID] = struct{}{}
				}
				p.publish(eng, f)
			}
		}
	}
}

func (p *Partition) publish(eng *engine.Engine, f *Frame) {
	p.frameMu.Lock()
	defer p.frameMu.Unlock()
	p.fill(eng, f, false)
	data, err := EncodeFrame(f)
	if err == nil {
		err = publishChunks(p.cfg.NC, OutSubject(p.cfg.K), p.frameID(f.Seq), data)
	}
	if err != nil {
		p.cfg.Logger.Printf("partition %d: %v", p.cfg.K, err)
	}
}

func (p *Partition) frameID(seq uint64) string {
	return p.cfg.Node + "-" + strconv.FormatUint(p.cfg.Epoch, 10) + "-" + strconv.FormatUint(seq, 10)
}

// fill sets the frame's header fields, status, links and action results (frameMu held).
func (p *Partition) fill(eng *engine.Engine, f *Frame, full bool) {
	f.Partition, f.Node, f.Epoch, f.Full = p.cfg.K, p.cfg.Node, p.cfg.Epoch, full
	if !full {
		p.frameSeq++
	}
	f.Seq = p.frameSeq
	f.Status = eng.Status()
	f.Events, f.Late = eng.KindCounts()
	if full || time.Since(p.lastLinks) >= time.Second {
		f.Links = linkParts(eng)
		if !full {
			p.lastLinks = time.Now()
		}
	}
	if full {
		return // results go to every api node with the deltas
	}
	p.actMu.Lock()
	rest := p.actions[:0]
	for _, id := range p.actions {
		if err, done := eng.ActionResult(id); done {
			if f.Results == nil {
				f.Results = map[string]string{}
			}
			f.Results[id] = ""
			if err != nil {
				f.Results[id] = err.Error()
			}
		} else {
			rest = append(rest, id)
		}
	}
	p.actions = rest
	p.actMu.Unlock()
}

func linkParts(eng *engine.Engine) []LinkPart {
	ls := eng.Links(geo.BBox{MinLat: -90, MinLng: -180, MaxLat: 90, MaxLng: 180})
	out := make([]LinkPart, 0, len(ls))
	for _, l := range ls {
		out = append(out, LinkPart{ID: l.Link.ID, UpdatedAt: l.UpdatedAt, W: l.W})
	}
	return out
}

// serveState answers a full-state request with the whole partition, in chunks to the reply subject.
func (p *Partition) serveState(m *nats.Msg) {
	eng := p.eng.Load()
	if m.Reply == "" || eng == nil {
		return
	}
	f := &Frame{Changed: eng.All(), Incidents: eng.Incidents(), Units: eng.Units(), Assets: eng.Assets()}
	p.frameMu.Lock()
	p.fill(eng, f, true)
	p.frameMu.Unlock()
	data, err := EncodeFrame(f)
	if err == nil {
		err = publishChunks(p.cfg.NC, m.Reply, p.frameID(f.Seq)+"-full", data)
	}
	if err != nil {
		p.cfg.Logger.Printf("partition %d: cannot answer a state request: %v", p.cfg.K, err)
	}
}
