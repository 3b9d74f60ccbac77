package eval

import (
	"fmt"
	"sort"
	"strings"
)

// summarise fills the groups (per source and variant, and per class within them, summed over seeds) and the
// targets of issue 4.
func (r *Report) summarise() {
	r.Groups = map[string]Metrics{}
	keys := map[string]bool{}
	for _, sc := range r.Scenarios {
		base := sc.Source + "-" + strings.SplitN(strings.TrimPrefix(sc.Name, sc.Source+"-"), "/", 2)[0]
		if sc.Source == "demo" {
			base = "demo"
		}
		keys[base+"/"+sc.Variant] = true
		for _, tr := range sc.Truths {
			if tr.Scored {
				keys[base+"/"+sc.Variant+"/"+tr.Class] = true
			}
		}
	}
	for k := range keys {
		parts := strings.Split(k, "/")
		in := func(sc *Scenario) bool {
			base := sc.Source + "-" + strings.SplitN(strings.TrimPrefix(sc.Name, sc.Source+"-"), "/", 2)[0]
			if sc.Source == "demo" {
				base = "demo"
			}
			return base == parts[0] && sc.Variant == parts[1]
		}
		var runs []*Scenario
		for _, sc := range r.Scenarios {
			if in(sc) {
				runs = append(runs, sc)
			}
		}
		if len(parts) == 2 {
			r.Groups[k] = merge(runs, func(*Scenario, *TruthResult) bool { return true }, func(*Scenario) bool { return true })
		} else {
			class := parts[2]
			r.Groups[k] = merge(runs, func(_ *Scenario, t *TruthResult) bool { return t.Class == class }, func(*Scenario) bool { return false })
		}
	}
	r.Targets = nil
	pick := func(src string, variants ...string) []*Scenario {
		var out []*Scenario
		for _, sc := range r.Scenarios {
			if sc.Source != src {
				continue
			}
			for _, v := range variants {
				if sc.Variant == v {
					out = append(out, sc)
				}
			}
		}
		return out
	}
	video := func(_ *Scenario, t *TruthResult) bool { return t.VideoEvidence }
	noFA := func(*Scenario) bool { return false }
	for _, src := range []string{"bologna", "demo"} {
		runs := pick(src, "video", "all")
		if len(runs) == 0 {
			continue
		}
		m := merge(runs, video, noFA)
		over := src + " (variants with video), true incidents with video evidence"
		r.Targets = append(r.Targets,
			Target{Name: "with video: detection rate", Bar: "≥ 95%", Value: pct(m.DetectionRate, m.Truths), Met: m.Truths > 0 && m.DetectionRate >= 0.95, Over: over, Detail: m},
			Target{Name: "with video: mean time to detect", Bar: "≤ 60 s", Value: fmt.Sprintf("%.0f s (worst %.0f s)", m.MeanTTDS, m.WorstTTDS), Met: m.Detected > 0 && m.MeanTTDS <= 60, Over: over, Detail: m})
	}
	if runs := pick("bologna", "traffic"); len(runs) > 0 {
		m := merge(runs, func(_ *Scenario, t *TruthResult) bool { return t.Class == "full_closure" }, noFA)
		r.Targets = append(r.Targets, Target{Name: "traffic data alone: full closures detected within 180 s", Bar: "≥ 85%",
			Value: pct(m.Within180Rate, m.Truths), Met: m.Truths > 0 && m.Within180Rate >= 0.85, Over: "bologna-blockages/traffic, full closures", Detail: m})
	}
	if sc := r.first("bologna-baseline/all/"); sc != nil {
		m := sc.Metrics
		r.Targets = append(r.Targets, Target{Name: "false alarms on the whole Bologna scenario", Bar: "< 1 per hour",
			Value: fmt.Sprintf("%.2f per hour (%d in %.2f h)", m.FalseAlarmsPH, m.FalseAlarms, m.Hours), Met: m.FalseAlarmsPH < 1,
			Over: sc.Name + " (no incidents; traffic, cameras with their false alarms)", Detail: m})
	}
}

func (r *Report) first(prefix string) *Scenario {
	for _, sc := range r.Scenarios {
		if strings.HasPrefix(sc.Name, prefix) {
			return sc
		}
	}
	return nil
}

func pct(rate float64, n int) string {
	if n == 0 {
		return "n/a (no such incidents)"
	}
	return fmt.Sprintf("%.0f%% (%d/%d)", 100*rate, int(rate*float64(n)+0.5), n)
}

// Table renders the report as markdown: scenarios, groups, targets.
func (r *Report) Table() string {
	var b strings.Builder
	head := "| %s | truths | detected | ≤ 180 s | false alarms (per h) | TTD mean / median / worst (s) | location error mean / worst (m) |\n|---|---|---|---|---|---|---|\n"
	row := func(name string, m Metrics) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d (%.2f/h over %.2f h) | %s | %s |\n", name, m.Truths, pct(m.DetectionRate, m.Truths),
			pct(m.Within180Rate, m.Truths), m.FalseAlarms, m.FalseAlarmsPH, m.Hours, ttd(m), loc(m))
	}
	fmt.Fprintf(&b, head, "scenario")
	for _, sc := range r.Scenarios {
		row(sc.Name, sc.Metrics)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, head, "group (summed over seeds)")
	keys := make([]string, 0, len(r.Groups))
	for k := range r.Groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := r.Groups[k]
		if strings.Count(k, "/") == 2 {
			m.FalseAlarms, m.Hours, m.FalseAlarmsPH = 0, 0, 0 // false alarms belong to the whole run, not a class
		}
		row(k, m)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\n| target | bar | measured | met | over |\n|---|---|---|---|---|\n")
		for _, t := range r.Targets {
			met := "**no**"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Name, t.Bar, t.Value, met, t.Over)
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\n%s\n", s)
	}
	return b.String()
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
