package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"citybrain/engine/detect"
)

// TestCalibrationDump (opt-in: CALDUMP=1; CALDUMP_CACHE, _CITIES, _SEEDS as harnessConfig; CALDUMP_HEAVY=F
// and CALDUMP_HEAVYCAL=1 as eval's --heavy and --heavy-calibrate; run with -v, it prints to standard output):
// each held-out city's leave-one-city-out model (read from the cache's models when fitted there before)
// recalibrated on its training cities under variants of the operating-point rule, and the held-out city
// scored through the proxy fusion at 15 % and 5 % probes, per city and summed (cities over 1/h and at exactly
// 1/h). Variants: "main L", calibrate at limit L (the rule the models use at 0.5); "single L", the best single
// point; "nest<=LMAX T", the loosest limit L ≤ LMAX (1, 0.75, 0.5, 0.33, 0.25, 0.17) whose rule, chosen on the
// training cities but one, holds T (the limit itself, or the bar 1/h) on that one, for each ("1pt": single
// points only); "margin L", single points whose neighbour one threshold step lower holds L too; "D …", each
// training city held to the limit at each probe share on its own instead of both pooled (issue 12, session 12).
func TestCalibrationDump(t *testing.T) {
	if os.Getenv("CALDUMP") == "" {
		t.Skip("set CALDUMP=1")
	}
	cfg := harnessConfig(t, "CALDUMP", 1, 2, 3)
	if h := os.Getenv("CALDUMP_HEAVY"); h != "" {
		var err error
		if cfg.Heavy, err = strconv.ParseFloat(h, 64); err != nil {
			t.Fatalf("CALDUMP_HEAVY: %v", err)
		}
	}
	cfg.HeavyCalibrate = os.Getenv("CALDUMP_HEAVYCAL") != ""
	all := *cfg // every city is a training city; CALDUMP_CITIES are the ones held out
	all.Cities = CityNames()
	runs, err := loadCorpus(context.Background(), &all)
	if err != nil {
		t.Fatal(err)
	}
	limits := []float64{1.0, 0.75, 0.5, 0.33, 0.25, 0.17}
	type variant struct {
		name string
		op   func(tab *calTable) detect.Operating
		dens bool // limits held per training city and probe share
	}
	every := func(int) bool { return true }
	// nested: the loosest limit L ≤ lmax whose rule (single points only when !pairs), chosen on the training
	// cities but one, holds target(L) on that one, for each.
	nested := func(lmax float64, target func(L float64) float64, pairs bool) func(tab *calTable) detect.Operating {
		return func(tab *calTable) detect.Operating {
			pick := func(in func(int) bool, L float64) detect.Operating {
				if pairs {
					return tab.ruleIn(in, L)
				}
				return tab.choose(in, L, false)
			}
			for _, L := range limits {
				if L > lmax+1e-9 {
					continue
				}
				ok := tab.carries(every, target(L), func(in func(int) bool) detect.Operating { return pick(in, L) }, false)
				if ok {
					return pick(every, L)
				}
			}
			return pick(every, limits[len(limits)-1])
		}
	}
	// margin: single points whose neighbour one threshold step looser (same persistence) is within L too.
	margin := func(L float64) func(tab *calTable) detect.Operating {
		return func(tab *calTable) detect.Operating {
			within := withinFA(L)
			bestScore, best := -1.0, detect.Operating{Threshold: 0.99, Persist: 6}
		next:
			for _, p := range tab.firsts {
				ti := slices.Index(calThresholds, p.op.Threshold)
				var nb *calCand
				if ti > 0 {
					for _, q := range tab.firsts {
						if q.op.Persist == p.op.Persist && q.op.Threshold == calThresholds[ti-1] {
							nb = q
						}
					}
				}
				var sum proxyResult
				for c, q := range p.res {
					if !within(q) || (nb != nil && !within(nb.res[c])) {
						continue next
					}
					sum.add(q)
				}
				if s := float64(sum.fullFast+sum.partFast) / math.Max(1, float64(sum.full+sum.part)); s > bestScore {
					bestScore, best = s, p.op
				}
			}
			return best
		}
	}
	same := func(L float64) float64 { return L }
	bar := func(float64) float64 { return 1.0 }
	var vs []variant
	for _, L := range []float64{0.33, 0.5, 0.75, 1.0} {
		vs = append(vs, variant{name: fmt.Sprintf("main %.2f", L), op: func(tab *calTable) detect.Operating { return tab.rule(L) }})
	}
	for _, L := range []float64{0.5, 0.75, 1.0} {
		vs = append(vs, variant{name: fmt.Sprintf("single %.2f", L), op: func(tab *calTable) detect.Operating { return tab.choose(every, L, false) }})
	}
	vs = append(vs,
		variant{name: "nest<=1 L", op: nested(1.0, same, true)},
		variant{name: "nest<=1 L 1pt", op: nested(1.0, same, false)},
		variant{name: "nest<=1 bar", op: nested(1.0, bar, true)},
		variant{name: "nest<=1 bar 1pt", op: nested(1.0, bar, false)},
		variant{name: "nest<=.75 L", op: nested(0.75, same, true)},
		variant{name: "nest<=.75 bar", op: nested(0.75, bar, true)},
		variant{name: "nest<=.5 bar", op: nested(0.5, bar, true)},
		variant{name: "margin 0.5", op: margin(0.5)},
		variant{name: "margin 0.75", op: margin(0.75)},
		variant{name: "margin 1.0", op: margin(1.0)},
	)
	for _, v := range slices.Clone(vs) {
		v.name = "D " + v.name
		v.dens = true
		vs = append(vs, v)
	}
	type tot struct {
		ff, pf, fa, over, at1 int
		hours                 float64
	}
	tots := map[string]*tot{}
	for _, c := range cfg.Cities {
		tr, test := locoSplit(runs, c)
		m, _, err := fitCached(context.Background(), filepath.Join(cfg.cacheDir(), "models"), tr, cfg.trainOptions())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s: fitted model at %s\n", c, opString(m.Operating))
		tab := newCalTable(m, calibrationRuns(tr, cfg.trainOptions()), 1.0, false)
		tabD := newCalTable(m, calibrationRuns(tr, cfg.trainOptions()), 1.0, true)
		for _, v := range vs {
			if v.dens {
				tab, tabD = tabD, tab
			}
			mm := *m
			mm.Operating = v.op(tab)
			line := fmt.Sprintf("%-9s %-16s %-36s", c, v.name, opString(mm.Operating))
			for _, low := range []bool{false, true} {
				var tt []*corpusRun
				for _, r := range test {
					if r.low == low {
						tt = append(tt, r)
					}
				}
				p := proxyAll(tt, &mm, mm.Operating)
				line += fmt.Sprintf(" | %2d/%d %2d/%d %.2f", p.fullFast, p.full, p.partFast, p.part, float64(p.fa)/p.hours)
				k := v.name + "|" + probeShareName(low)
				x := tots[k]
				if x == nil {
					x = &tot{}
					tots[k] = x
				}
				x.ff += p.fullFast
				x.pf += p.partFast
				x.fa += p.fa
				x.hours += p.hours
				if float64(p.fa)/p.hours > 1+1e-9 {
					x.over++
				}
				if math.Abs(float64(p.fa)/p.hours-1) < 1e-9 {
					x.at1++
				}
			}
			fmt.Println(line)
			if v.dens {
				tab, tabD = tabD, tab
			}
		}
	}
	fmt.Println()
	for _, v := range vs {
		line := fmt.Sprintf("TOTAL %-16s", v.name)
		for _, low := range []bool{false, true} {
			x := tots[v.name+"|"+probeShareName(low)]
			line += fmt.Sprintf(" | %s full %2d partial %2d fa %.2f/h over1 %d at1 %d", probeShareName(low), x.ff, x.pf, float64(x.fa)/x.hours, x.over, x.at1)
		}
		fmt.Println(line)
	}
}
