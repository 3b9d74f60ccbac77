package eval

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Clearance: issue 12 asks the fusion for "a cleared time when traffic recovers". A detected blockage's
// clearance is what a commander sees of it: the incidents that match it, cleared when the last of them is;
// open while any of them is. Against the blockage's end (the blocker removed; its queue still has to
// discharge), a clearance more than clearEarlyS before it is an incident shown over while the road is still
// blocked, and one more than clearLateS after it (or an incident still open that long after) is one left on
// the map after the road reopened.
const (
	clearEarlyS = 60.0
	clearLateS  = 300.0
)

// setClearance fills each detected truth's ClearLagS (or OpenAfterS) from the detections that match it.
func setClearance(res []TruthResult, dets []Detection, dataEnd time.Time) {
	type seen struct {
		open    bool
		cleared time.Time
	}
	by := map[string]*seen{}
	for _, d := range dets {
		for _, id := range d.Matches {
			s := by[id]
			if s == nil {
				s = &seen{}
				by[id] = s
			}
			switch {
			case d.ClearedAt == nil:
				s.open = true
			case d.ClearedAt.After(s.cleared):
				s.cleared = *d.ClearedAt
			}
		}
	}
	for i := range res {
		tr := &res[i]
		s := by[tr.ID]
		if !tr.Detected || s == nil {
			continue
		}
		if s.open {
			x := math.Round(dataEnd.Sub(tr.End).Seconds())
			tr.OpenAfterS = &x
			continue
		}
		x := math.Round(s.cleared.Sub(tr.End).Seconds())
		tr.ClearLagS = &x
	}
}

// clearanceCounts sums the clearances of some detected truths.
type clearanceCounts struct {
	detected, early, onTime, late, undecided int
	lags                                     []float64
}

func (c *clearanceCounts) add(tr *TruthResult) {
	if !tr.Scored || !tr.Detected {
		return
	}
	c.detected++
	switch {
	case tr.ClearLagS != nil:
		lag := *tr.ClearLagS
		c.lags = append(c.lags, lag)
		switch {
		case lag < -clearEarlyS:
			c.early++
		case lag > clearLateS:
			c.late++
		default:
			c.onTime++
		}
	case tr.OpenAfterS != nil && *tr.OpenAfterS > clearLateS:
		c.late++
	default:
		c.undecided++
	}
}

func (c *clearanceCounts) row(name string) string {
	med := "–"
	if len(c.lags) > 0 {
		_, m, _ := stats(c.lags)
		med = fmt.Sprintf("%.0f s", m)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %d | %s |\n", name, c.detected, frac(c.early, c.detected), frac(c.onTime, c.detected),
		frac(c.late, c.detected), c.undecided, med)
}

// clearanceTable renders the clearance of the detected blockages: per city for all evidence at 15 %
// probes, and the corpus for every variant.
func clearanceTable(scs []*Scenario, cities []string) string {
	by := map[string]*clearanceCounts{}
	get := func(k string) *clearanceCounts {
		if by[k] == nil {
			by[k] = &clearanceCounts{}
		}
		return by[k]
	}
	for _, sc := range scs {
		if sc.Source == "demo" {
			continue
		}
		for i := range sc.Truths {
			get(sc.Source + "/" + sc.Variant).add(&sc.Truths[i])
			get(corpusKey + "/" + sc.Variant).add(&sc.Truths[i])
		}
	}
	if len(by) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Clearance of the detected blockages (the incidents matching one, cleared when the last is; against the blockage's end: early = shown cleared over %.0f s before the road reopened, on time = within −%.0f s … +%.0f s, late = cleared later or still open %.0f s after; undecided = open when the data ended less than %.0f s after; lag = cleared − end, median)\n\n",
		clearEarlyS, clearEarlyS, clearLateS, clearLateS, clearLateS)
	b.WriteString("| city / variant | detected | early | on time | late | undecided | median lag |\n|---|---|---|---|---|---|---|\n")
	for _, c := range cities {
		if cc := by[c+"/"+VarAll]; cc != nil {
			b.WriteString(cc.row(c + " / " + VarAll))
		}
	}
	for _, v := range []string{VarAll, VarAll5, VarTraffic, VarTraffic5} {
		if cc := by[corpusKey+"/"+v]; cc != nil {
			b.WriteString(cc.row(corpusKey + " / " + v))
		}
	}
	b.WriteString("\n")
	return b.String()
}
