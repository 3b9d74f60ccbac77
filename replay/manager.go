package replay

import (
	"context"
	"errors"
	"io"

	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/apache/arrow/go/v17/arrow"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"citybrain/engine"
	"citybrain/eventlog"
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Log    *eventlog.Log // the live log (nil: only file replays)
	Engine engine.Config // the live engine's configuration; every session engine uses it (own allocator)
	// MaxSessions bounds the sessions open at once (default 4): each has its own engine and memory.
	MaxSessions int
	// MaxPerOwner bounds the sessions of one owner (Spec.Owner) open at once (default 2), so one planner
	// cannot take them all.
	MaxPerOwner int
	// Idle closes a session nobody has touched (API call) or watched (Spec.Active) for this long (default
	// 10 min).
	Idle time.Duration
	// FileDir is the only directory API-created sessions may read files from (names relative to it); empty
	// refuses file replays over the API.
	FileDir string
}

// Manager holds the replay sessions: a bounded number, closed after idling. Safe for concurrent use.
type Manager struct {
	cfg      ManagerConfig
	mu       sync.Mutex
	sessions map[string]*Session
	owners   map[string]int // sessions open (or starting) by owner
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// NewManager returns a manager and starts its idle janitor; Stop it.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 4
	}
	if cfg.MaxPerOwner <= 0 {
		cfg.MaxPerOwner = min(2, cfg.MaxSessions)
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Minute
	}
	m := &Manager{cfg: cfg, sessions: map[string]*Session{}, owners: map[string]int{}, stop: make(chan struct{})}
	m.wg.Add(1)
	go m.janitor()
	return m
}

// EngineConfig is the configuration session engines use.
func (m *Manager) EngineConfig() engine.Config { return m.cfg.Engine }

// ErrTooMany is returned by Create when MaxSessions are open.
var ErrTooMany = fmt.Errorf("cannot create replay: too many sessions open (close one, or wait for idle ones to expire)")

// Create opens a session over the log (spec.File empty) or over the file spec.File, a name under FileDir.
func (m *Manager) Create(spec Spec) (*Session, error) {
	var open Source
	source := "log"
	res := m.cfg.Engine.Res
	switch {
	case spec.File != "":
		if m.cfg.FileDir == "" {
			return nil, fmt.Errorf("cannot replay file %q: no import directory is configured", spec.File)
		}
		name := filepath.Clean(spec.File)
		if filepath.IsAbs(name) || name == "." || strings.HasPrefix(name, "..") {
			return nil, fmt.Errorf("cannot replay file %q: give a name inside the import directory", spec.File)
		}
		path := filepath.Join(m.cfg.FileDir, name)
		source = "file:" + name
		open = hidePath(FileSource(path, res), path, name)
	case m.cfg.Log != nil:
		open = LogSource(m.cfg.Log, spec)
	default:
		return nil, fmt.Errorf("cannot replay the log: this process has none")
	}
	return m.CreateFrom(spec, source, open)
}

// CreateFrom opens a session over any source (the command line's files use it).
func (m *Manager) CreateFrom(spec Spec, source string, open Source) (*Session, error) {
	m.mu.Lock()
	if len(m.sessions) >= m.cfg.MaxSessions {
		m.mu.Unlock()
		return nil, ErrTooMany
	}
	if m.owners[spec.Owner] >= m.cfg.MaxPerOwner {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %s has %d open, the most one planner may have (close one)", ErrTooMany, ownerName(spec.Owner), m.owners[spec.Owner])
	}
	id := newID()
	m.sessions[id] = nil // reserve the slot while the session starts
	m.owners[spec.Owner]++
	m.mu.Unlock()
	userClose := spec.OnClose
	var closeOnce sync.Once
	release := func() {
		closeOnce.Do(func() {
			m.mu.Lock()
			delete(m.sessions, id)
			if m.owners[spec.Owner]--; m.owners[spec.Owner] <= 0 {
				delete(m.owners, spec.Owner)
			}
			m.mu.Unlock()
		})
	}
	spec.OnClose = func() {
		release()
		if userClose != nil {
			userClose()
		}
	}
	s, err := NewSession(id, spec, m.cfg.Engine, source, open)
	if err != nil {
		release()
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, open := m.sessions[id]; open { // not closed already
		m.sessions[id] = s
	}
	return s, nil
}

func ownerName(o string) string {
	if o == "" {
		return "an anonymous caller"
	}
	return o
}

// hidePath makes the errors of open name the file as the caller gave it (name), not by its path on the
// server: API callers learn nothing of the server's directories.
func hidePath(open Source, path, name string) Source {
	return func(ctx context.Context) (BatchReader, error) {
		r, err := open(ctx)
		if err != nil {
			return nil, errors.New(strings.ReplaceAll(err.Error(), path, name))
		}
		return r, nil
	}
}

// FileSource reads an exported file; cells are recomputed at res when the file has another resolution.
func FileSource(path string, res int) Source {
	return func(ctx context.Context) (BatchReader, error) { return OpenFile(path, res, nil) }
}

// LogSource reads the messages of the log that can hold events of [From − Warmup, To).
func LogSource(l *eventlog.Log, spec Spec) Source {
	return func(ctx context.Context) (BatchReader, error) {
		from := spec.From
		if !from.IsZero() && spec.Warmup > 0 {
			from = from.Add(-spec.Warmup)
		} else if !from.IsZero() && spec.Warmup == 0 {
			from = from.Add(-engine.Windows[len(engine.Windows)-1])
		}
		first, last, ok, err := l.SeqRange(ctx, from, spec.To, 0)
		if err != nil {
			return nil, err
		}
		if !ok {
			return emptyReader{}, nil
		}
		return l.NewRangeReader(ctx, first, last)
	}
}

// Get returns the session with id.
func (m *Manager) Get(id string) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s != nil {
		s.touch()
	}
	return s, s != nil
}

// List returns the sessions' states, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	var out []Info
	for _, s := range m.sessions {
		if s != nil {
			out = append(out, s.Info())
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Created < out[j].Created || out[i].Created == out[j].Created && out[i].ID < out[j].ID
	})
	return out
}

// Close closes the session with id; false when there is none.
func (m *Manager) Close(id string) bool {
	s, ok := m.Get(id)
	if ok {
		s.Close()
	}
	return ok
}

// Stop closes every session and the janitor. Safe to call twice.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.mu.Lock()
		var all []*Session
		for _, s := range m.sessions {
			if s != nil {
				all = append(all, s)
			}
		}
		m.mu.Unlock()
		for _, s := range all {
			s.Close()
		}
	})
}

func (m *Manager) janitor() {
	defer m.wg.Done()
	t := time.NewTicker(max(m.cfg.Idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		var idle []*Session
		m.mu.Lock()
		for _, s := range m.sessions {
			if s == nil {
				continue
			}
			if s.spec.Active != nil && s.spec.Active() {
				s.touch()
				continue
			}
			if time.Duration(now-s.touched.Load()) > m.cfg.Idle {
				idle = append(idle, s)
			}
		}
		m.mu.Unlock()
		for _, s := range idle {
			s.Close()
		}
	}
}

func newID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// emptyReader is a source with nothing in it.
type emptyReader struct{}

func (emptyReader) Next(context.Context) (arrow.Record, error) { return nil, io.EOF }
func (emptyReader) Close() error                               { return nil }
