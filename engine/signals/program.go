package signals

import "strings"

// ProgramPhase is one phase of a signal program: a state character per link index (SUMO's: G green with
// priority, g green yielding, y amber, r red, ...) and its durations (MinS/MaxS 0 when not given).
type ProgramPhase struct {
	State      string
	DurS       float64
	MinS, MaxS float64
}

func (p ProgramPhase) green() bool { return strings.ContainsAny(p.State, "Gg") }

func (p ProgramPhase) amber() bool { return strings.ContainsAny(p.State, "yYu") }

// Program is a signal's program with the incoming lane each link index controls ("" none) and, when known,
// the link it leads to (To, parallel to Lanes; nil or "" unknown).
type Program struct {
	Phases []ProgramPhase
	Lanes  []string
	To     []string
}

// Adjustable reports whether the program gives some green adjustable durations (minDur < maxDur): an
// engineer's stage plan, whose main greens are those phases.
func (p *Program) Adjustable() bool {
	for _, ph := range p.Phases {
		if ph.MinS > 0 && ph.MaxS > ph.MinS && ph.green() {
			return true
		}
	}
	return false
}

// Main reports whether phase i is a main green a controller chooses among. In an adjustable program the main
// greens are the adjustable phases; otherwise a main green has green, no amber and lasts at least 5 s together
// with the phases after it that show the same state (programs cut into short pieces repeat a state). The
// other phases are transitions (ambers, all-reds, short clearance greens), which controllers keep.
func (p *Program) Main(i int) bool { return p.main(i, p.Adjustable()) }

func (p *Program) main(i int, adjustable bool) bool {
	ph := p.Phases[i]
	if !ph.green() || ph.amber() {
		return false
	}
	if adjustable {
		return ph.MaxS > ph.MinS
	}
	if i > 0 && p.Phases[i-1].State == ph.State {
		return false // a continuation of the run that starts before it
	}
	run := 0.0
	for j := i; j < len(p.Phases) && p.Phases[j].State == ph.State; j++ {
		run += p.Phases[j].DurS
	}
	return run >= 5
}

// Mains lists the main greens in program order.
func (p *Program) Mains() []int {
	var out []int
	adj := p.Adjustable()
	for i := range p.Phases {
		if p.main(i, adj) {
			out = append(out, i)
		}
	}
	return out
}

// GreenLanes lists the incoming lanes phase i serves (green or yielding green), in link order.
func (p *Program) GreenLanes(i int) []string {
	seen := map[string]bool{}
	var ls []string
	for li := 0; li < len(p.Phases[i].State) && li < len(p.Lanes); li++ {
		if c := p.Phases[i].State[li]; c != 'G' && c != 'g' {
			continue
		}
		if l := p.Lanes[li]; l != "" && !seen[l] {
			seen[l] = true
			ls = append(ls, l)
		}
	}
	return ls
}

// FixedSequence reports whether the program's order must be kept: it gives adjustable durations, serves some
// lane only in transitional phases, or has short clearance greens or all-red phases between its main greens.
// Such programs run cyclically (each main green held or ended, the transitions as programmed); default
// programs of greens and ambers only (netconvert's) may choose main greens freely.
func (p *Program) FixedSequence() bool {
	if p.Adjustable() {
		return true
	}
	inMain := map[string]bool{}
	main := make([]bool, len(p.Phases))
	for i := range p.Phases {
		if main[i] = p.main(i, false); main[i] {
			for _, l := range p.GreenLanes(i) {
				inMain[l] = true
			}
		}
	}
	for i, ph := range p.Phases {
		for _, l := range p.GreenLanes(i) {
			if !inMain[l] {
				return true // served only in a transition
			}
		}
		if !main[i] && ph.green() && !ph.amber() && (i == 0 || p.Phases[i-1].State != ph.State) {
			return true // a short clearance green
		}
		if !ph.green() && !ph.amber() {
			return true // all red
		}
	}
	return false
}

// Stages lists the program's main greens as decision stages over lanes (the incoming lanes, indexed by the
// stages): each main green's lanes, with the share of each lane's movements it lets go and the links they
// lead to (a shared lane whose left turn waits for another stage is served only in part), the lanes the
// transitional phases after it serve before the next main green, and, in an adjustable program, its minimum
// and maximum.
func (p *Program) Stages() (lanes []string, stages []Stage, mains []int) {
	idx := map[string]int{}
	index := func(ls []string) []int {
		var out []int
		for _, l := range ls {
			i, ok := idx[l]
			if !ok {
				i = len(lanes)
				idx[l] = i
				lanes = append(lanes, l)
			}
			out = append(out, i)
		}
		return out
	}
	mains = p.Mains()
	n := len(p.Phases)
	adj := p.Adjustable()
	moves := map[string]int{} // links per incoming lane
	for _, l := range p.Lanes {
		if l != "" {
			moves[l]++
		}
	}
	for k, m := range mains {
		st := Stage{Lanes: index(p.GreenLanes(m))}
		for j := m; j < n && p.Phases[j].State == p.Phases[m].State; j++ {
			st.GreenS += p.Phases[j].DurS
		}
		green := map[string]int{}
		to := map[string][]string{}
		for li, c := range p.Phases[m].State {
			if li < len(p.Lanes) && p.Lanes[li] != "" && (c == 'G' || c == 'g') {
				green[p.Lanes[li]]++
				if li < len(p.To) && p.To[li] != "" {
					to[p.Lanes[li]] = append(to[p.Lanes[li]], p.To[li])
				}
			}
		}
		for _, l := range st.Lanes {
			st.Share = append(st.Share, float64(green[lanes[l]])/float64(max(1, moves[lanes[l]])))
			st.GreenTo = append(st.GreenTo, to[lanes[l]])
		}
		next := mains[(k+1)%len(mains)]
		for j := (m + 1) % n; j != next; j = (j + 1) % n {
			st.Between = append(st.Between, index(p.GreenLanes(j))...)
			st.LostS += p.Phases[j].DurS
		}
		if adj {
			st.MinS, st.MaxS = p.Phases[m].MinS, p.Phases[m].MaxS
		}
		stages = append(stages, st)
	}
	return lanes, stages, mains
}
