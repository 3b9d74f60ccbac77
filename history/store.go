// Package history keeps the city's recent past at a glance: every minute of event time, the engine's 1-minute
// window of every cell (engine.Aggregates), rolled up to a coarser resolution, and the positions of the active
// incidents. GET /api/v1/history (api/history.go) answers from it; ranges older than what the store holds are
// recomputed from the event log by running a fresh engine over it (Backfill).
package history

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// Config sizes a store.
type Config struct {
	Step time.Duration // sample interval in event time (default 1 min: the engine's shortest window)
	Keep time.Duration // how much event time the store holds (default 26 h)
	Res  int           // resolution of the stored cells (default 8: cells of about 0.7 km²)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return Config{Step: time.Minute, Keep: 26 * time.Hour, Res: 8} }

// Source is what a store samples: a live engine.
type Source interface {
	Aggregates(w int) []engine.Aggregate
	ActiveIncidentsAt() [][2]float64
	Status() engine.Status
}

// agg is one stored cell in one slot: additive sums.
type agg struct {
	speedSum, speedW, tpiW float32 // tpiW = Σ TPI × samples over the base cells
	samples, events        uint32
}

type slot struct {
	cells []uint64 // sorted
	aggs  []agg
	inc   [][2]float32 // active incidents (lat, lng) at the end of the slot
}

// Store holds the samples. It is safe for concurrent use.
type Store struct {
	cfg     Config
	mu      sync.RWMutex
	slots   map[int64]*slot // by slot start (ms)
	last    int64           // newest slot start
	centers sync.Map        // stored cell → [2]float64 centre
}

// New returns an empty store.
func New(cfg Config) *Store {
	d := DefaultConfig()
	if cfg.Step <= 0 {
		cfg.Step = d.Step
	}
	if cfg.Keep <= 0 {
		cfg.Keep = d.Keep
	}
	if cfg.Res <= 0 {
		cfg.Res = d.Res
	}
	return &Store{cfg: cfg, slots: map[int64]*slot{}}
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

func (s *Store) stepMs() int64 { return s.cfg.Step.Milliseconds() }

// Sample records the slot that ends at event time end (ms, a multiple of the step) from src's 1-minute
// window. A slot already held is replaced.
func (s *Store) Sample(end int64, src Source) {
	s.put(end-s.stepMs(), s.build(src.Aggregates(0), src.ActiveIncidentsAt()))
}

func (s *Store) build(aggs []engine.Aggregate, inc [][2]float64) *slot {
	byCell := map[uint64]*agg{}
	for i := range aggs {
		a := &aggs[i]
		c := a.Cell
		if geo.Res(c) > s.cfg.Res {
			c = geo.ParentFast(c, s.cfg.Res)
		}
		g := byCell[c]
		if g == nil {
			g = &agg{}
			byCell[c] = g
		}
		g.speedSum += float32(a.SpeedSum)
		g.speedW += float32(a.SpeedW)
		g.tpiW += float32(a.TPI * float64(a.Samples))
		g.samples += a.Samples
		g.events += a.Events
	}
	sl := &slot{cells: make([]uint64, 0, len(byCell))}
	for c := range byCell {
		sl.cells = append(sl.cells, c)
	}
	sort.Slice(sl.cells, func(i, j int) bool { return sl.cells[i] < sl.cells[j] })
	sl.aggs = make([]agg, len(sl.cells))
	for i, c := range sl.cells {
		sl.aggs[i] = *byCell[c]
	}
	for _, p := range inc {
		sl.inc = append(sl.inc, [2]float32{float32(p[0]), float32(p[1])})
	}
	return sl
}

func (s *Store) put(start int64, sl *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots[start] = sl
	if start > s.last {
		s.last = start
	}
	cut := s.last - s.cfg.Keep.Milliseconds()
	for k := range s.slots {
		if k < cut {
			delete(s.slots, k)
		}
	}
}

// Has reports whether the slot starting at start (ms) is held.
func (s *Store) Has(start int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.slots[start]
	return ok
}

// Span returns the oldest and newest slot starts held (ok false when empty).
func (s *Store) Span() (oldest, newest int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.slots) == 0 {
		return 0, 0, false
	}
	oldest = math.MaxInt64
	for k := range s.slots {
		oldest = min(oldest, k)
	}
	return oldest, s.last, true
}

// Slots returns the number of slots held.
func (s *Store) Slots() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.slots)
}

// Observe samples src when its event clock has passed a step boundary since the last sample, by at most
// maxLag; call it often (Run does, every interval). It returns whether it sampled.
func (s *Store) Observe(src Source, lastEnd *int64) bool {
	now := src.Status().Now
	if now <= 0 {
		return false
	}
	end := now - now%s.stepMs()
	if end <= *lastEnd {
		return false
	}
	*lastEnd = end
	if now-end > maxLag.Milliseconds() {
		// The clock ran past the boundary faster than we looked (catch-up after a start, a bulk load): the
		// window now holds the next minute's events, not this one's. Leave the slot to the log (Backfiller).
		return false
	}
	s.Sample(end, src)
	return true
}

// maxLag is how far past a step boundary the engine's clock may be for the live window to stand for the
// step that ended there (the engine's windows move in 10-s buckets).
const maxLag = 10 * time.Second

// Run samples src every interval of wall-clock time until stop is closed.
func (s *Store) Run(stop <-chan struct{}, src Source, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastEnd int64
	// The slot in progress when the process starts is only partly in the windows: do not sample it.
	if now := src.Status().Now; now > 0 {
		lastEnd = now - now%s.stepMs()
	}
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.Observe(src, &lastEnd)
		}
	}
}

// Metrics a query can ask for.
const (
	MetricTPI       = "tpi"       // sample-weighted mean TPI (0..10)
	MetricSpeed     = "speed"     // weighted mean speed, km/h
	MetricIncidents = "incidents" // most incidents active at once during the step
	MetricEvents    = "events"    // events received
)

// Query selects a history.
type Query struct {
	Metric    string
	From, To  int64 // ms, [From, To)
	Step      time.Duration
	BBox      geo.BBox
	Res       int                 // group by cells at this resolution (< 0: one series for the whole area)
	Cells     map[uint64]struct{} // when set, only these stored cells (an area given as cells)
	MaxSeries int                 // when grouping, keep the series with the most samples (default 60)
}

// Point is one step of a series: V is NaN where there was no data.
type Point struct {
	T int64
	V float64
	N uint32 // speed samples (tpi, speed), events or incident count
}

// Series is the history of one area.
type Series struct {
	Key      string // "all", or the H3 cell of a group
	Lat, Lng float64
	Points   []Point
	Samples  uint64
}

// Result is a query's answer.
type Result struct {
	Series  []Series
	Missing [][2]int64 // ranges [from, to) of the query the store holds no sample for
}

// ErrBadQuery wraps the errors of invalid queries.
var ErrBadQuery = errors.New("bad history query")

type acc struct {
	speedSum, speedW, tpiW float64
	samples, events        uint64
	inc                    uint32
	slots                  int
}

// Query answers q from the store.
func (s *Store) Query(q Query) (Result, error) {
	step := q.Step.Milliseconds()
	if step < s.stepMs() || step%s.stepMs() != 0 {
		return Result{}, fmt.Errorf("%w: step %s must be a multiple of %s", ErrBadQuery, q.Step, s.cfg.Step)
	}
	if q.To <= q.From {
		return Result{}, fmt.Errorf("%w: from must be before to", ErrBadQuery)
	}
	n := int((q.To - q.From + step - 1) / step)
	if n > 5000 {
		return Result{}, fmt.Errorf("%w: %d steps (at most 5000): use a larger step", ErrBadQuery, n)
	}
	switch q.Metric {
	case MetricTPI, MetricSpeed, MetricIncidents, MetricEvents:
	default:
		return Result{}, fmt.Errorf("%w: metric %q: use tpi, speed, incidents or events", ErrBadQuery, q.Metric)
	}
	groups := map[uint64][]acc{}
	var res Result
	s.mu.RLock()
	var missFrom int64 = -1
	first := q.From - ((q.From%s.stepMs())+s.stepMs())%s.stepMs()
	for t := first; t < q.To; t += s.stepMs() {
		sl := s.slots[t]
		if sl == nil {
			if missFrom < 0 {
				missFrom = t
			}
			continue
		}
		if missFrom >= 0 {
			res.Missing = append(res.Missing, [2]int64{max(missFrom, q.From), t})
			missFrom = -1
		}
		if t < q.From {
			continue
		}
		k := int((t - q.From) / step)
		if q.Metric == MetricIncidents {
			s.addIncidents(groups, sl, q, k, n)
			continue
		}
		for i, c := range sl.cells {
			if q.Cells != nil {
				if _, ok := q.Cells[c]; !ok {
					continue
				}
			}
			ll := s.center(c)
			if !q.BBox.Contains(ll[0], ll[1]) {
				continue
			}
			g := s.groupOf(c, q.Res)
			a := groups[g]
			if a == nil {
				a = make([]acc, n)
				groups[g] = a
			}
			x := &sl.aggs[i]
			b := &a[k]
			b.speedSum += float64(x.speedSum)
			b.speedW += float64(x.speedW)
			b.tpiW += float64(x.tpiW)
			b.samples += uint64(x.samples)
			b.events += uint64(x.events)
		}
	}
	s.mu.RUnlock()
	if missFrom >= 0 {
		res.Missing = append(res.Missing, [2]int64{max(missFrom, q.From), q.To})
	}
	for g, a := range groups {
		se := Series{Key: "all", Points: make([]Point, n)}
		if q.Res >= 0 {
			se.Key = geo.CellString(g)
			se.Lat, se.Lng = geo.Center(g)
		}
		for k := range a {
			p := Point{T: q.From + int64(k)*step, V: math.NaN()}
			b := &a[k]
			switch q.Metric {
			case MetricTPI:
				if b.samples > 0 {
					p.V, p.N = b.tpiW/float64(b.samples), uint32(b.samples)
				}
			case MetricSpeed:
				if b.speedW > 0 {
					p.V, p.N = b.speedSum/b.speedW, uint32(b.samples)
				}
			case MetricEvents:
				if b.events > 0 || b.slots > 0 {
					p.V, p.N = float64(b.events), uint32(b.events)
				}
			case MetricIncidents:
				if b.slots > 0 {
					p.V, p.N = float64(b.inc), b.inc
				}
			}
			se.Samples += b.samples + b.events + uint64(b.inc)
			se.Points[k] = p
		}
		res.Series = append(res.Series, se)
	}
	// Steps the store holds but where the area had nothing: events 0, incidents 0 (not unknown).
	if q.Metric == MetricEvents || q.Metric == MetricIncidents {
		s.zeroHeld(&res, q, step, n)
	}
	if q.Res < 0 && len(res.Series) == 0 {
		se := Series{Key: "all", Points: make([]Point, n)}
		for k := range se.Points {
			se.Points[k] = Point{T: q.From + int64(k)*step, V: math.NaN()}
		}
		res.Series = []Series{se}
		if q.Metric == MetricEvents || q.Metric == MetricIncidents {
			s.zeroHeld(&res, q, step, n)
		}
	}
	sort.Slice(res.Series, func(i, j int) bool {
		if res.Series[i].Samples != res.Series[j].Samples {
			return res.Series[i].Samples > res.Series[j].Samples
		}
		return res.Series[i].Key < res.Series[j].Key
	})
	maxS := q.MaxSeries
	if maxS <= 0 {
		maxS = 60
	}
	if len(res.Series) > maxS {
		res.Series = res.Series[:maxS]
	}
	return res, nil
}

// zeroHeld sets count metrics to 0 at steps the store holds where a series has no value.
func (s *Store) zeroHeld(res *Result, q Query, step int64, n int) {
	held := make([]bool, n)
	s.mu.RLock()
	for t := q.From - q.From%s.stepMs(); t < q.To; t += s.stepMs() {
		if t >= q.From && s.slots[t] != nil {
			held[(t-q.From)/step] = true
		}
	}
	s.mu.RUnlock()
	for i := range res.Series {
		for k := range res.Series[i].Points {
			if held[k] && math.IsNaN(res.Series[i].Points[k].V) {
				res.Series[i].Points[k].V = 0
			}
		}
	}
}

func (s *Store) addIncidents(groups map[uint64][]acc, sl *slot, q Query, k, n int) {
	counts := map[uint64]uint32{}
	for _, p := range sl.inc {
		lat, lng := float64(p[0]), float64(p[1])
		if !q.BBox.Contains(lat, lng) {
			continue
		}
		cell, err := geo.CellOf(lat, lng, s.cfg.Res)
		if err != nil {
			continue
		}
		if q.Cells != nil {
			if _, ok := q.Cells[cell]; !ok {
				continue
			}
		}
		counts[s.groupOf(cell, q.Res)]++
	}
	if q.Res < 0 {
		counts[0] += 0 // the whole area has a (possibly zero) count at every held step
	}
	for g, c := range counts {
		a := groups[g]
		if a == nil {
			a = make([]acc, n)
			groups[g] = a
		}
		a[k].inc = max(a[k].inc, c)
		a[k].slots++
	}
}

func (s *Store) groupOf(c uint64, res int) uint64 {
	if res < 0 {
		return 0
	}
	if res < s.cfg.Res {
		return geo.ParentFast(c, res)
	}
	return c
}

func (s *Store) center(c uint64) [2]float64 {
	if v, ok := s.centers.Load(c); ok {
		return v.([2]float64)
	}
	lat, lng := geo.Center(c)
	ll := [2]float64{lat, lng}
	s.centers.Store(c, ll)
	return ll
}
