package eval

import (
	"fmt"
	"sort"
	"strings"
)

// The bars of issue 12, per city.
const (
	barTrafficFull    = 0.85 // full closures found from traffic alone within FastS
	barTrafficPartial = 0.50 // partial closures within SlowS
	barFalsePerH      = 1.0
	barAllFound       = 0.95
	barAllTTD         = 90.0
	barMAPE           = 0.15
)

// group keys: SOURCE/VARIANT, and SOURCE/VARIANT/class:C, /pos:P, /cam:covered|uncovered. SOURCE "corpus" sums
// the SUMO cities.
const corpusKey = "corpus"

// summarise fills the groups, the speed sums and the targets.
func (r *Report) summarise() {
	r.Groups = map[string]Metrics{}
	r.Speed = map[string]SpeedMetrics{}
	bySV := map[string][]*Scenario{}
	for _, sc := range r.Scenarios {
		bySV[sc.Source+"/"+sc.Variant] = append(bySV[sc.Source+"/"+sc.Variant], sc)
		if sc.Source != "demo" {
			bySV[corpusKey+"/"+sc.Variant] = append(bySV[corpusKey+"/"+sc.Variant], sc)
		}
	}
	all := func(*Scenario, *TruthResult) bool { return true }
	yes := func(*Scenario) bool { return true }
	no := func(*Scenario) bool { return false }
	for key, runs := range bySV {
		r.Groups[key] = merge(runs, all, yes)
		facets := map[string]func(*TruthResult) bool{}
		for _, sc := range runs {
			for i := range sc.Truths {
				tr := &sc.Truths[i]
				class, pos := tr.Class, tr.Position
				facets["class:"+class] = func(t *TruthResult) bool { return t.Class == class }
				if pos != "" {
					facets["pos:"+pos] = func(t *TruthResult) bool { return t.Position == pos }
				}
			}
		}
		if strings.Contains(key, "/"+VarAll) {
			facets["cam:covered"] = func(t *TruthResult) bool { return t.Camera != "" }
			facets["cam:uncovered"] = func(t *TruthResult) bool { return t.Camera == "" }
		}
		for name, f := range facets {
			r.Groups[key+"/"+name] = merge(runs, func(_ *Scenario, t *TruthResult) bool { return f(t) }, no)
		}
		kinds := map[string][]speedPair{}
		for _, sc := range runs {
			for k, ps := range sc.speedPairs {
				kinds[k] = append(kinds[k], ps...)
			}
		}
		for k, ps := range kinds {
			r.Speed[key+"/"+k] = speedMetrics(ps)
		}
	}
	r.Targets = nil
	for _, city := range r.cityOrder() {
		for _, low := range []bool{false, true} {
			tv, av, pct := VarTraffic, VarAll, "15 %"
			if low {
				tv, av, pct = VarTraffic5, VarAll5, "5 %"
			}
			if m, ok := r.Groups[city+"/"+tv+"/class:"+ClassFull]; ok {
				// Counted from when each became full (its last lane closed, Truth.Full); the count from the first
				// lane, the bar's before session 17, is shown beside it.
				r.Targets = append(r.Targets, Target{City: city, Name: "traffic only (" + pct + "): full closures within 180 s of being full", Bar: "≥ 85 %",
					Value: fullFrac(m), Met: m.Truths > 0 && m.Within180FullRate >= barTrafficFull})
			}
			if m, ok := r.Groups[city+"/"+tv+"/class:"+ClassPartial]; ok {
				r.Targets = append(r.Targets, Target{City: city, Name: "traffic only (" + pct + "): partial closures within 300 s", Bar: "≥ 50 %",
					Value: frac(m.Within300, m.Truths), Met: m.Truths > 0 && m.Within300Rate >= barTrafficPartial})
			}
			if m, ok := r.Groups[city+"/"+tv]; ok {
				r.Targets = append(r.Targets, Target{City: city, Name: "traffic only (" + pct + "): false alarms", Bar: "≤ 1 per hour",
					Value: fmt.Sprintf("%.2f/h", m.FalseAlarmsPH), Met: m.FalseAlarmsPH <= barFalsePerH})
			}
			if m, ok := r.Groups[city+"/"+av]; ok {
				r.Targets = append(r.Targets,
					Target{City: city, Name: "all evidence (" + pct + "): found", Bar: "≥ 95 %", Value: frac(m.Detected, m.Truths), Met: m.Truths > 0 && m.DetectionRate >= barAllFound},
					Target{City: city, Name: "all evidence (" + pct + "): mean time to detect", Bar: "≤ 90 s", Value: fmt.Sprintf("%.0f s", m.MeanTTDS), Met: m.Detected > 0 && m.MeanTTDS <= barAllTTD},
					Target{City: city, Name: "all evidence (" + pct + "): false alarms", Bar: "≤ 1 per hour", Value: fmt.Sprintf("%.2f/h", m.FalseAlarmsPH), Met: m.FalseAlarmsPH <= barFalsePerH})
			}
			for _, k := range []string{"cell", "link"} {
				if s, ok := r.Speed[city+"/"+tv+"/"+k]; ok {
					r.Targets = append(r.Targets, Target{City: city, Name: k + " speed MAPE (" + pct + ")", Bar: "≤ 0.15",
						Value: fmt.Sprintf("%.2f", s.MAPE), Met: s.Units > 0 && s.MAPE <= barMAPE})
				}
			}
		}
	}
}

// cityOrder lists the SUMO cities of the report in corpus order, then those outside the corpus.
func (r *Report) cityOrder() []string {
	seen := map[string]bool{}
	for _, sc := range r.Scenarios {
		seen[sc.Source] = true
	}
	var out []string
	for _, n := range allCityNames() {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// fullFrac is full closures found within 180 s of being full, and in brackets within 180 s of their first lane.
func fullFrac(m Metrics) string {
	if m.Truths == 0 {
		return "–"
	}
	return fmt.Sprintf("%s [first lane %d]", frac(m.Within180Full, m.Truths), m.Within180)
}

func frac(n, of int) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d (%.0f %%)", n, of, 100*float64(n)/float64(of))
}

func pct(rate float64, n int) string {
	if n == 0 {
		return "n/a (no such incidents)"
	}
	return fmt.Sprintf("%.0f%% (%d/%d)", 100*rate, int(rate*float64(n)+0.5), n)
}

// Table renders the report as markdown: the per-city table at 15 % and 5 % probes, the targets, detection by
// closure type, position and camera coverage, and every group.
func (r *Report) Table() string {
	var b strings.Builder
	cities := r.cityOrder()
	if len(cities) > 0 {
		rows := append(append([]string(nil), cities...), corpusKey)
		for _, low := range []bool{false, true} {
			tv, av, pctS := VarTraffic, VarAll, "15 %"
			if low {
				tv, av, pctS = VarTraffic5, VarAll5, "5 %"
			}
			if _, ok := r.Groups[corpusKey+"/"+tv]; !ok {
				continue
			}
			fmt.Fprintf(&b, "Probes on %s of vehicles (each city scored on its own; nothing is fitted per city)\n\n", pctS)
			b.WriteString("| city | traffic: full ≤ 180 s of being full [of the first lane] | traffic: partial ≤ 300 s | traffic: false/h | all: found | all: mean TTD | all: false/h | all: dup | cell MAPE | link MAPE (probe-sample floor; with an oracle prior) | square MAPE from links (from the centre's cell) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, c := range rows {
				full, part, tr := r.Groups[c+"/"+tv+"/class:"+ClassFull], r.Groups[c+"/"+tv+"/class:"+ClassPartial], r.Groups[c+"/"+tv]
				al := r.Groups[c+"/"+av]
				fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s | %s | %.2f | %d | %s | %s | %s |\n", c, fullFrac(full), frac(part.Within300, part.Truths),
					tr.FalseAlarmsPH, frac(al.Detected, al.Truths), ttdMean(al), al.FalseAlarmsPH, al.Duplicates,
					mape(r.Speed[c+"/"+tv+"/cell"]), mape(r.Speed[c+"/"+tv+"/link"])+" ("+mape(r.Speed[c+"/"+tv+"/link-sample"])+"; "+mape(r.Speed[c+"/"+tv+"/link-prior-oracle"])+")", mape(r.Speed[c+"/"+tv+"/square"])+" ("+mape(r.Speed[c+"/"+tv+"/square-cell"])+")")
			}
			b.WriteString("\n")
		}
		b.WriteString(sweepTable(r.Sweep, cities))
		b.WriteString(pairedTable(r.AgainstTruths, r.SweepTruths, cities, r.Against))
		b.WriteString(lossTable(r.SweepTruths, r.Observable, r.Scenarios, cities))
		b.WriteString(observableTable(r.Observable, cities))
		b.WriteString(evidenceBoundTable(r.Scenarios, r.Observable, cities))
		b.WriteString(clearanceTable(r.Scenarios, cities))
		if len(r.Targets) > 0 {
			met := 0
			var missed []string
			for _, t := range r.Targets {
				if t.Met {
					met++
				} else {
					missed = append(missed, fmt.Sprintf("%s %s: %s (bar %s)", t.City, t.Name, t.Value, t.Bar))
				}
			}
			fmt.Fprintf(&b, "Targets met: %d of %d. Missed:\n", met, len(r.Targets))
			for _, m := range missed {
				fmt.Fprintf(&b, "- %s\n", m)
			}
			b.WriteString("\n")
		}
		b.WriteString("Detection by closure type, position and camera coverage (all cities, summed over seeds)\n\n")
		head := "| %s | truths | detected | ≤ 180 s | ≤ 180 s of being full | ≤ 300 s | TTD mean / median / worst (s) | location error mean / worst (m) |\n|---|---|---|---|---|---|---|---|\n"
		fmt.Fprintf(&b, head, "group")
		var keys []string
		for k := range r.Groups {
			if strings.HasPrefix(k, corpusKey+"/") && strings.Count(k, "/") == 2 {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			m := r.Groups[k]
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", k, m.Truths, pct(m.DetectionRate, m.Truths), pct(m.Within180Rate, m.Truths),
				pct(m.Within180FullRate, m.Truths), pct(m.Within300Rate, m.Truths), ttd(m), loc(m))
		}
		b.WriteString("\nSpeed (vehicle-seconds truth, 300 s windows; error relative to max(truth, 5 km/h); units with ≥ 150 vehicle-seconds)\n\n")
		b.WriteString("| group | units | covered | MAPE | MAPE where truth < 15 km/h (n) | median est/truth |\n|---|---|---|---|---|---|\n")
		var sk []string
		for k := range r.Speed {
			sk = append(sk, k)
		}
		sort.Strings(sk)
		for _, k := range sk {
			s := r.Speed[k]
			fmt.Fprintf(&b, "| %s | %d | %.0f %% | %.3f | %.3f (%d) | %.2f |\n", k, s.Units, 100*s.Covered, s.MAPE, s.QueueMAPE, s.QueueN, s.Ratio)
		}
		b.WriteString("\n")
	}
	b.WriteString(healthTable(r.Health))
	head := "| %s | truths | detected | ≤ 180 s | false alarms (per h) | duplicates | TTD mean / median / worst (s) | location error mean / worst (m) |\n|---|---|---|---|---|---|---|---|\n"
	fmt.Fprintf(&b, head, "source/variant (summed over seeds)")
	var keys []string
	for k := range r.Groups {
		if strings.Count(k, "/") == 1 && !strings.HasPrefix(k, corpusKey) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := r.Groups[k]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d (%.2f/h over %.2f h) | %d | %s | %s |\n", k, m.Truths, pct(m.DetectionRate, m.Truths),
			pct(m.Within180Rate, m.Truths), m.FalseAlarms, m.FalseAlarmsPH, m.Hours, m.Duplicates, ttd(m), loc(m))
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\n%s\n", s)
	}
	return b.String()
}

func ttdMean(m Metrics) string {
	if m.Detected == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f s", m.MeanTTDS)
}

func mape(s SpeedMetrics) string {
	if s.Units == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", s.MAPE)
}

func ttd(m Metrics) string {
	if m.Detected == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", m.MeanTTDS, m.MedianTTDS, m.WorstTTDS)
}

func loc(m Metrics) string {
	if m.Detected == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f / %.0f", m.MeanLocErrM, m.WorstLocErrM)
}
