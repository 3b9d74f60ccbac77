package window

import (
	"math"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// Free-flow sources of a cell view.
const (
	FreeFlowDefault uint8 = iota // the configured default: too few samples to learn
	FreeFlowLearned              // 85th percentile of the cell's observed speeds
	FreeFlowNetwork              // speed limits of the road links crossing the cell
)

// FreeFlowSourceName is the API name of a free-flow source.
func FreeFlowSourceName(s uint8) string {
	switch s {
	case FreeFlowLearned:
		return "learned"
	case FreeFlowNetwork:
		return "network"
	default:
		return "default"
	}
}

// CellView is the published state of one cell: immutable once published (a new view replaces it).
type CellView struct {
	Cell           uint64
	Res            int
	Lat, Lng       float64
	FreeFlowKmh    float64
	FreeFlowSource uint8
	IncidentScore  float64
	UpdatedAt      int64 // event time (ms) of the newest event in the cell
	W              [len(schema.Windows)]schema.WindowStats
	// Siblings pools the windows of the other cells of the same parent (one resolution up) in the shard,
	// without the open bucket: the estimate's prior from the neighbourhood (see Estimate). Zero in a
	// rolled-up view.
	Siblings [len(schema.Windows)]Pool
}

// Derived are the values the API shows for one window of a view.
type Derived struct {
	SpeedKmh   float64 // the estimate (Estimate): NaN when the window holds no speed observation
	SampleKmh  float64 // the window's own observations alone (NaN: none)
	Congestion float64
	TPI        float64
	Level      string
	Confidence float64 // 0..1: Estimate.Confidence
	LowSamples bool    // fewer than MinSamples speed observations: the level is a weak estimate
}

// MinSamples is the number of speed observations below which a cell's level is flagged as a weak estimate.
const MinSamples = 3

// Derive computes the API values of window w of v.
func (v *CellView) Derive(w int) Derived {
	st := &v.W[w]
	sample, _ := st.Speed()
	est := v.Estimate(w)
	d := Derived{SpeedKmh: est.Kmh, SampleKmh: sample, Confidence: est.Confidence(), LowSamples: st.Samples < MinSamples}
	if !math.IsNaN(est.Kmh) {
		d.Congestion = Congestion(est.Kmh, v.FreeFlowKmh)
	}
	d.TPI = TPI(d.Congestion)
	d.Level = Level(d.TPI)
	return d
}

// Rollup groups base-resolution views into views at the coarser resolution res: sums add, free-flow speed is
// the speed-weight-weighted mean of the children (their plain mean where no child has speed data), the
// incident score is the children's maximum and UpdatedAt their newest.
func Rollup(views []*CellView, res int) []*CellView {
	type acc struct {
		v      *CellView
		ffW    float64
		ffSum  float64
		ffN    int
		ffPlan float64
	}
	groups := make(map[uint64]*acc)
	order := make([]uint64, 0)
	for _, c := range views {
		if c.Res <= res {
			// Already at or above the requested resolution.
			cp := *c
			groups[c.Cell] = &acc{v: &cp, ffSum: c.FreeFlowKmh, ffN: 1}
			order = append(order, c.Cell)
			continue
		}
		p := geo.ParentFast(c.Cell, res)
		a := groups[p]
		if a == nil {
			a = &acc{v: &CellView{Cell: p, Res: res, FreeFlowSource: c.FreeFlowSource}}
			groups[p] = a
			order = append(order, p)
		}
		for i := range c.W {
			a.v.W[i].Add(&c.W[i])
		}
		w := c.W[len(c.W)-1].SpeedW
		a.ffW += w
		a.ffSum += w * c.FreeFlowKmh
		a.ffPlan += c.FreeFlowKmh
		a.ffN++
		a.v.IncidentScore = math.Max(a.v.IncidentScore, c.IncidentScore)
		a.v.UpdatedAt = max(a.v.UpdatedAt, c.UpdatedAt)
		if c.FreeFlowSource < a.v.FreeFlowSource {
			a.v.FreeFlowSource = c.FreeFlowSource
		}
	}
	out := make([]*CellView, 0, len(order))
	for _, p := range order {
		a := groups[p]
		if a.v.Res == res && a.ffN > 0 && a.v.FreeFlowKmh == 0 {
			if a.ffW > 0 {
				a.v.FreeFlowKmh = a.ffSum / a.ffW
			} else {
				a.v.FreeFlowKmh = a.ffPlan / float64(a.ffN)
			}
			a.v.Lat, a.v.Lng = geo.Center(p)
		}
		out = append(out, a.v)
	}
	return out
}
