package geo

import (
	"math"
	"time"
)

// MatcherConfig tunes a Matcher. Zero fields take the defaults in parentheses.
type MatcherConfig struct {
	RadiusM         float64       // search radius for candidate links (50 m)
	Candidates      int           // candidate links per fix (8)
	SigmaM          float64       // position noise, standard deviation (8 m)
	HeadingSigmaDeg float64       // heading noise of a reported heading (30°); derived headings use 1.5x
	BetaM           float64       // scale of |route distance - straight distance| in the transition (10 m)
	MaxGap          time.Duration // a longer gap between fixes restarts the vehicle's track (60 s)
	IdleTimeout     time.Duration // vehicles not seen for this long (in fix time) are forgotten (5 min)
	MaxVehicles     int           // hard bound on tracked vehicles; the least recently seen go first (1,000,000)
}

func (c MatcherConfig) withDefaults() MatcherConfig {
	def := func(v *float64, d float64) {
		if !(*v > 0) {
			*v = d
		}
	}
	def(&c.RadiusM, 50)
	def(&c.SigmaM, 8)
	def(&c.HeadingSigmaDeg, 30)
	def(&c.BetaM, 10)
	if c.Candidates <= 0 {
		c.Candidates = 8
	}
	if c.MaxGap <= 0 {
		c.MaxGap = time.Minute
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxVehicles <= 0 {
		c.MaxVehicles = 1_000_000
	}
	return c
}

// Match is the link a fix was matched to.
type Match struct {
	LinkID     string
	OffsetM    float64 // along the link geometry from its start
	DistanceM  float64 // from the fix to the link
	Point      LatLng  // the fix snapped onto the link
	BearingDeg float64 // of the link where the fix was snapped
}

// hmmState is one candidate of a vehicle's last fix and its log score.
type hmmState struct {
	link  int32
	off   float64
	score float64
}

// track is one vehicle's matching state, also a node of the matcher's least-recently-seen list.
type track struct {
	id         string
	last       time.Time
	pos        LatLng
	states     []hmmState
	prev, next *track
}

// Matcher matches GPS fixes of many vehicles to links, online: each fix gets an answer at once.
//
// It runs the forward pass of a hidden Markov model per vehicle (Newson & Krumm 2009) with no lag: the hidden
// states are the candidate links near the fix, the emission scores distance (Gaussian, SigmaM) and heading
// (Gaussian on the angle to the link, HeadingSigmaDeg; from the fix or derived from the previous position),
// the transition scores how far the route distance (same link forward, or through one or two successor links)
// differs from the straight distance between fixes (exponential, BetaM). Each vehicle keeps only the scores of
// its last fix's candidates, so memory is bounded by Candidates per vehicle and MaxVehicles; vehicles idle for
// IdleTimeout are evicted.
//
// A Matcher is not safe for concurrent use: one goroutine (for example the shard that owns the vehicles) must
// own it. The Network it reads may be shared.
type Matcher struct {
	net      *Network
	cfg      MatcherConfig
	vehicles map[string]*track
	head     *track // least recently seen
	tail     *track // most recently seen
	search   *nearSearch
	cands    []Candidate
	next     []hmmState
}

// NewMatcher returns a matcher over net.
func NewMatcher(net *Network, cfg MatcherConfig) *Matcher {
	cfg = cfg.withDefaults()
	return &Matcher{net: net, cfg: cfg, vehicles: map[string]*track{}, search: newNearSearch(net),
		cands: make([]Candidate, 0, 64)}
}

// Len returns the number of vehicles tracked.
func (m *Matcher) Len() int { return len(m.vehicles) }

// Forget drops a vehicle's state.
func (m *Matcher) Forget(vehicleID string) {
	if t, ok := m.vehicles[vehicleID]; ok {
		m.unlink(t)
		delete(m.vehicles, vehicleID)
	}
}

// Evict forgets vehicles whose last fix is older than now minus IdleTimeout and returns how many went. Match
// calls it with each fix's time; call it directly when fixes stop arriving.
func (m *Matcher) Evict(now time.Time) int {
	n := 0
	cutoff := now.Add(-m.cfg.IdleTimeout)
	for m.head != nil && (m.head.last.Before(cutoff) || len(m.vehicles) > m.cfg.MaxVehicles) {
		t := m.head
		m.unlink(t)
		delete(m.vehicles, t.id)
		n++
	}
	return n
}

func (m *Matcher) unlink(t *track) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		m.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		m.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

func (m *Matcher) pushBack(t *track) {
	t.prev, t.next = m.tail, nil
	if m.tail != nil {
		m.tail.next = t
	} else {
		m.head = t
	}
	m.tail = t
}

// Match matches one fix of a vehicle at time ts. headingDeg is the reported heading (degrees clockwise from
// north), or NaN or a negative value when unknown. ok is false when no link lies within RadiusM (the vehicle's
// track then restarts at its next fix).
func (m *Matcher) Match(vehicleID string, ts time.Time, lat, lng, headingDeg float64) (Match, bool) {
	q := LatLng{lat, lng}
	t, seen := m.vehicles[vehicleID]
	if !seen {
		t = &track{id: vehicleID}
		m.vehicles[vehicleID] = t
		m.pushBack(t)
	} else {
		m.unlink(t)
		m.pushBack(t)
	}
	defer m.Evict(ts)
	if !q.valid() {
		t.states = t.states[:0]
		return Match{}, false
	}
	cont := seen && len(t.states) > 0 && ts.Sub(t.last) <= m.cfg.MaxGap && !ts.Before(t.last)
	moved := 0.0
	hSigma := m.cfg.HeadingSigmaDeg
	if seen {
		moved = DistanceM(t.pos, q)
	}
	if math.IsNaN(headingDeg) || headingDeg < 0 {
		headingDeg = math.NaN()
		// A heading derived from two noisy fixes is only as good as the move is long compared with the noise
		// (both fixes err by SigmaM): trust it accordingly, and not at all for a vehicle that barely moved.
		if cont && moved > m.cfg.SigmaM {
			headingDeg = BearingDeg(t.pos, q)
			hSigma = math.Max(1.5*m.cfg.HeadingSigmaDeg, math.Atan2(math.Sqrt2*m.cfg.SigmaM, moved)/deg)
		}
	}
	m.cands = m.search.run(m.cands, q, m.cfg.RadiusM, m.cfg.Candidates)
	t.last, t.pos = ts, q
	if len(m.cands) == 0 {
		t.states = t.states[:0]
		return Match{}, false
	}
	next := m.next[:0]
	best := 0
	for i, c := range m.cands {
		e := -0.5 * (c.DistanceM / m.cfg.SigmaM) * (c.DistanceM / m.cfg.SigmaM)
		if !math.IsNaN(headingDeg) {
			a := angleDiffDeg(headingDeg, c.BearingDeg) / hSigma
			e -= 0.5 * a * a
		}
		score := e
		if cont {
			tr := math.Inf(-1)
			for _, s := range t.states {
				tr = math.Max(tr, s.score+m.transition(s, c, moved))
			}
			score += tr
		}
		next = append(next, hmmState{link: c.Link.idx, off: c.OffsetM, score: score})
		if score > next[best].score {
			best = i
		}
	}
	top := next[best].score
	for i := range next {
		next[i].score -= top // keep scores near zero over long tracks
	}
	m.next, t.states = t.states[:0], next
	c := m.cands[best]
	return Match{LinkID: c.Link.ID, OffsetM: c.OffsetM, DistanceM: c.DistanceM, Point: c.Point,
		BearingDeg: c.BearingDeg}, true
}

// Transition log scores for moves the route search cannot explain.
const (
	backwardScore    = -6  // moving backwards along the same link by more than noise
	unreachableScore = -12 // no route within two links
)

// transition scores moving from state s to candidate c when the fixes are straight metres apart.
func (m *Matcher) transition(s hmmState, c Candidate, straight float64) float64 {
	from := m.net.links[s.link]
	to := c.Link
	route := math.NaN()
	switch {
	case from == to:
		if c.OffsetM >= s.off-2*m.cfg.SigmaM {
			route = math.Abs(c.OffsetM - s.off)
		} else {
			return backwardScore
		}
	default:
		rest := from.GeomLengthM() - s.off
		end := m.net.nodes[from.to]
		for _, li := range end.out {
			if li == to.idx {
				route = rest + c.OffsetM
				break
			}
		}
		if math.IsNaN(route) {
			for _, li := range end.out {
				mid := m.net.links[li]
				if mid.to == to.from && mid.from != mid.to {
					r := rest + mid.GeomLengthM() + c.OffsetM
					if math.IsNaN(route) || r < route {
						route = r
					}
				}
			}
		}
		if !math.IsNaN(route) && to.to == from.from && to.from == from.to {
			route += 2 * m.cfg.BetaM // a U-turn onto the reverse link: possible, not likely
		}
	}
	if math.IsNaN(route) {
		return unreachableScore
	}
	return -math.Abs(route-straight) / m.cfg.BetaM
}
