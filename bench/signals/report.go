package signals

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Stat is a mean and sample standard deviation over seeds.
type Stat struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	N    int     `json:"n"`
}

func statOf(xs []float64) Stat {
	var s Stat
	for _, x := range xs {
		if !math.IsNaN(x) {
			s.Mean += x
			s.N++
		}
	}
	if s.N == 0 {
		return s // N == 0: no value (JSON has no NaN)
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		for _, x := range xs {
			if !math.IsNaN(x) {
				s.SD += (x - s.Mean) * (x - s.Mean)
			}
		}
		s.SD = math.Sqrt(s.SD / float64(s.N-1))
	}
	return s
}

// Summary is one method on one scenario and scale, over seeds.
type Summary struct {
	Scenario  string  `json:"scenario"`
	Scale     float64 `json:"scale"`
	Method    string  `json:"method"`
	Seeds     []int   `json:"seeds"`
	TimeLossS Stat    `json:"time_loss_s"`
	TravelS   Stat    `json:"travel_s"`
	Arrived   Stat    `json:"arrived"`
	Teleports Stat    `json:"teleports"`
	Waiting   Stat    `json:"waiting"` // never inserted
	EVTravelS Stat    `json:"ev_travel_s"`
	WallS     Stat    `json:"wall_s"`
}

// Summarize groups runs by scenario, scale and method (in first-seen order).
func Summarize(rs []Result) []Summary {
	type key struct {
		sc, m string
		x     float64
	}
	var order []key
	groups := map[key][]Result{}
	for _, r := range rs {
		k := key{r.Scenario, r.Method, r.Scale}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		s := Summary{Scenario: k.sc, Scale: k.x, Method: k.m}
		col := func(f func(Result) float64) Stat {
			xs := make([]float64, len(g))
			for i, r := range g {
				xs[i] = f(r)
			}
			return statOf(xs)
		}
		for _, r := range g {
			s.Seeds = append(s.Seeds, r.Seed)
		}
		s.TimeLossS = col(func(r Result) float64 { return r.MeanTimeLossS })
		s.TravelS = col(func(r Result) float64 { return r.MeanTravelS })
		s.Arrived = col(func(r Result) float64 { return float64(r.Arrived) })
		s.Teleports = col(func(r Result) float64 { return float64(r.Teleports) })
		s.Waiting = col(func(r Result) float64 { return float64(r.Waiting) })
		s.EVTravelS = col(func(r Result) float64 {
			if r.EVTravelS < 0 {
				return math.NaN()
			}
			return r.EVTravelS
		})
		s.WallS = col(func(r Result) float64 { return r.WallS })
		out = append(out, s)
	}
	return out
}

// Table renders summaries as one Markdown table per scenario and scale: each method's mean ± sd over seeds,
// the change in time loss against fixed time and against the better of SUMO's actuated and delay-based
// controllers, and arrivals as a share of the fixed-time run's.
func Table(ss []Summary) string {
	type key struct {
		sc string
		x  float64
	}
	var order []key
	groups := map[key][]Summary{}
	for _, s := range ss {
		k := key{s.Scenario, s.Scale}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].sc != order[j].sc {
			return order[i].sc < order[j].sc
		}
		return order[i].x < order[j].x
	})
	var b strings.Builder
	for _, k := range order {
		g := groups[k]
		var fixed, best *Summary
		for i := range g {
			switch g[i].Method {
			case Fixed:
				fixed = &g[i]
			case Actuated, DelayBased:
				if best == nil || g[i].TimeLossS.Mean < best.TimeLossS.Mean {
					best = &g[i]
				}
			}
		}
		fmt.Fprintf(&b, "\n**%s, demand ×%g** (%d seeds)\n\n", k.sc, k.x, len(g[0].Seeds))
		b.WriteString("| method | time loss s | vs fixed | vs best SUMO adaptive | travel s | arrived | arrived / fixed | teleports | never inserted | EV travel s |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range g {
			vf, vb, af := "", "", ""
			if fixed != nil && s.Method != Fixed {
				vf = fmt.Sprintf("%+.1f%%", Change(fixed.TimeLossS.Mean, s.TimeLossS.Mean))
			}
			if best != nil && s.Method != best.Method && s.Method != Fixed && s.Method != Actuated && s.Method != DelayBased {
				vb = fmt.Sprintf("%+.1f%% (%s)", Change(best.TimeLossS.Mean, s.TimeLossS.Mean), best.Method)
			}
			if fixed != nil && fixed.Arrived.Mean > 0 {
				af = fmt.Sprintf("%.1f%%", 100*s.Arrived.Mean/fixed.Arrived.Mean)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Method, pm(s.TimeLossS, 1), vf, vb,
				pm(s.TravelS, 1), pm(s.Arrived, 0), af, pm(s.Teleports, 0), pm(s.Waiting, 0), pm(s.EVTravelS, 0))
		}
	}
	return b.String()
}

func pm(s Stat, prec int) string {
	if s.N == 0 {
		return "–"
	}
	if s.N < 2 {
		return fmt.Sprintf("%.*f", prec, s.Mean)
	}
	return fmt.Sprintf("%.*f ± %.*f", prec, s.Mean, prec, s.SD)
}

// Change is the relative change of b against a in percent (NaN when a is 0).
func Change(a, b float64) float64 {
	if a == 0 {
		return math.NaN()
	}
	return 100 * (b - a) / a
}
