package signals

import (
	"strings"
)

// gateway is a signal's local controller as the experiment drives it over TraCI: it shows the main green it
// is asked for and moves between main greens only through safe transitions, as a street controller does
// whatever the central system asks. To the next main green in program order it plays the program's own
// transitional phases (ambers, all-reds, short clearance greens) with their durations; to any other it shows
// amber on the links that lose green for the program's amber time, then the program's all-red if it has one.
type gateway struct {
	tl       *TL
	mains    []int // phase indices of the main greens
	cur      int   // index into mains shown, or being moved to
	shown    string
	steps    []gwStep
	stepEnd  float64
	greenAt  float64 // when the current main green started
	switches int
	held     bool // under preemption: requests are ignored
	// cyclic: the program's order is kept; a request always moves to the next main green (for a single main
	// green: runs the cycle back to it).
	cyclic bool
}

type gwStep struct {
	state string
	dur   float64
}

func newGateway(tl *TL) *gateway {
	return &gateway{tl: tl, mains: tl.Mains(), cur: -1}
}

// start takes the signal over at the main green the program shows now (or its first main green).
func (g *gateway) start(phase int, now float64) {
	g.cur = 0
	for i, m := range g.mains {
		if m == phase {
			g.cur = i
		}
	}
	g.shown, g.greenAt = "", now
	g.steps = nil
}

// inTransition reports whether the signal is between main greens.
func (g *gateway) inTransition() bool { return len(g.steps) > 0 }

// elapsed is how long the current main green has been shown (0 in a transition).
func (g *gateway) elapsed(now float64) float64 {
	if g.inTransition() {
		return 0
	}
	return now - g.greenAt
}

// request moves to main green m (index into mains); ignored during a transition or when m is shown. A cyclic
// gateway moves to the next main green whatever m is.
func (g *gateway) request(m int, now float64) {
	if g.cyclic {
		m = (g.cur + 1) % len(g.mains)
	} else if m == g.cur {
		return
	}
	if g.inTransition() || m < 0 || m >= len(g.mains) {
		return
	}
	g.steps = g.transition(g.mains[g.cur], g.mains[m])
	g.cur = m
	g.stepEnd = now + g.steps[0].dur
	g.switches++
}

// transition lists the states between main greens a and b (phase indices), ending with b's green (no
// duration: it holds until the next request).
func (g *gateway) transition(a, b int) []gwStep {
	ph := g.tl.Phases
	n := len(ph)
	var out []gwStep
	next := a // a single main green is its own successor
	for k := 1; k < n; k++ {
		if j := (a + k) % n; g.tl.Main(j) {
			next = j
			break
		}
	}
	if next == b {
		run := true // the rest of a's run of identical states is a's green, already decided
		for k := 1; k < n; k++ {
			j := (a + k) % n
			if j == b {
				break
			}
			if run = run && ph[j].State == ph[a].State; run {
				continue
			}
			if ph[j].Dur > 0 {
				out = append(out, gwStep{ph[j].State, ph[j].Dur})
			}
		}
		return append(out, gwStep{ph[b].State, 0})
	}
	amberS, redS := 3.0, 0.0
	for k := 1; k < n; k++ {
		j := (a + k) % n
		if g.tl.Main(j) {
			break
		}
		switch {
		case ph[j].amber():
			amberS = ph[j].Dur
		case !ph[j].green():
			redS = ph[j].Dur
		}
	}
	from, to := ph[a].State, ph[b].State
	var amber strings.Builder
	lose := false
	for i := 0; i < len(from); i++ {
		var t byte = 'r'
		if i < len(to) {
			t = to[i]
		}
		switch {
		case isGreen(from[i]) && !isGreen(t):
			amber.WriteByte('y')
			lose = true
		case isGreen(from[i]):
			amber.WriteByte(from[i])
		default:
			amber.WriteByte('r')
		}
	}
	if lose {
		out = append(out, gwStep{amber.String(), amberS})
		if redS > 0 {
			out = append(out, gwStep{strings.Map(func(r rune) rune {
				if r == 'y' {
					return 'r'
				}
				return r
			}, amber.String()), redS})
		}
	}
	return append(out, gwStep{to, 0})
}

func isGreen(c byte) bool { return c == 'G' || c == 'g' }

// advance moves through the transition and returns the state to show when it changed.
func (g *gateway) advance(now float64) (string, bool) {
	for len(g.steps) > 1 && now >= g.stepEnd {
		g.steps = g.steps[1:]
		g.stepEnd = now + g.steps[0].dur
	}
	want := g.tl.Phases[g.mains[g.cur]].State
	if len(g.steps) > 0 {
		want = g.steps[0].state
		if len(g.steps) == 1 {
			g.steps, g.greenAt = nil, now
		}
	}
	if want == g.shown {
		return "", false
	}
	g.shown = want
	return want, true
}
