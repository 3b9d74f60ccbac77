package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"citybrain/engine/detect"
)

// Gradient-boosted trees for the blockage detector (logistic loss, depth-limited trees on quantile bins,
// positives weighted, then Platt scaling of the summed score on the unweighted training rows, so the
// probability means what it says).
const (
	gbRounds   = 80
	gbDepth    = 3
	gbRate     = 0.1
	gbLambda   = 1.0
	gbMinLeaf  = 60 // rows in a leaf
	gbBins     = 32
	gbPosShare = 0.2 // positives' total weight relative to the negatives'
)

type gbData struct {
	x    [][detect.NumFeatures]float64
	y    []float64
	w    []float64
	rel  []float64 // each row's weight in the Platt scaling: 1, a partial closure's row the partial weight
	bins [][detect.NumFeatures]uint8
	cuts [detect.NumFeatures][]float64 // bin b holds values <= cuts[b] (the last bin: the rest)
}

// fitOn reports whether the trees are fitted on a row: past the gate, not near a blockage (label −1), and not a
// partial closure's. A partial closure squeezes its traffic at one point (corpus c6: pacers over 50 m, traffic
// recovering past them), so most of its link's rows read as ordinary traffic; as positives they teach the trees
// that ordinary rows may be blockages, which lifts the training cities' false alarms and so the operating point
// the calibration keeps, and the full closures are lost at it (issue 12, session 16, engineer c6: on c6 the
// held-out models fitted with them find 15/84 full closures in the engine, without them 24/84). Partial closures
// are still scored, and still counted by the calibration when found. With a partial weight (TrainOptions.Partial)
// they are fitted on too, at that weight (partialRow).
func fitOn(row *Row) bool {
	return row.Label >= 0 && gate(&row.X) && !partialRow(row)
}

// partialRow reports whether a row is a partial closure's positive.
func partialRow(row *Row) bool { return row.Label == 1 && row.Class == ClassPartial }

// gbCollect is the rows the trees are fitted on (fitOn) and their weights: the positives weigh gbPosShare of the
// negatives in all, and with partial > 0 a partial closure's positive rows past the gate are fitted on too, each
// weighing partial times a full closure's. A full closure's feeder positives are fitted on by the recipe fd
// (nil: each as a row of the closed link; Feeders): at its weight, or not at all (weight 0, as near rows).
func gbCollect(runs []*corpusRun, partial float64, fd *Feeders) (*gbData, error) {
	d := &gbData{}
	var npos, nneg float64
	var rel []float64 // each row's weight relative to its class's unit
	fw, _, _ := feederWeights(runs, fd)
	for k, r := range runs {
		for i := range r.rows {
			row := &r.rows[i]
			part := partial > 0 && partialRow(row) && gate(&row.X)
			if !fitOn(row) && !part {
				continue
			}
			w := 1.0
			if fw != nil {
				w = fw[k][i]
			}
			if w == 0 {
				continue
			}
			d.x = append(d.x, row.X)
			switch {
			case part:
				d.y = append(d.y, 1)
				rel = append(rel, partial)
				npos += partial
			case row.Label == 1:
				d.y = append(d.y, 1)
				rel = append(rel, w)
				npos += w
			default:
				d.y = append(d.y, 0)
				rel = append(rel, 1)
				nneg++
			}
		}
	}
	if npos == 0 || nneg == 0 {
		return nil, errors.New("cannot train the detector: the rows hold no positives or no negatives")
	}
	wPos := gbPosShare * nneg / npos
	d.rel = rel
	d.w = make([]float64, len(d.y))
	for i, y := range d.y {
		d.w[i] = rel[i]
		if y == 1 {
			d.w[i] = wPos * rel[i]
		}
	}
	// Quantile cut points per feature from the distinct values (a sample of at most 50,000 rows).
	step := max(1, len(d.x)/50_000)
	for f := 0; f < detect.NumFeatures; f++ {
		var vals []float64
		for i := 0; i < len(d.x); i += step {
			vals = append(vals, d.x[i][f])
		}
		sort.Float64s(vals)
		var cuts []float64
		for b := 1; b < gbBins; b++ {
			c := vals[b*(len(vals)-1)/gbBins]
			if len(cuts) == 0 || c > cuts[len(cuts)-1] {
				cuts = append(cuts, c)
			}
		}
		d.cuts[f] = cuts
	}
	d.bins = make([][detect.NumFeatures]uint8, len(d.x))
	for i := range d.x {
		for f := 0; f < detect.NumFeatures; f++ {
			d.bins[i][f] = uint8(sort.SearchFloat64s(d.cuts[f], d.x[i][f]))
		}
	}
	return d, nil
}

// fitTrees fits the boosted trees and their Platt scaling; the features named in ignore are never split on, and
// partial closures' rows are fitted on at the weight partial (0: not at all; gbCollect), full closures' feeder
// positives by the recipe fd (nil: as the closed link's rows).
func fitTrees(ctx context.Context, runs []*corpusRun, ignore []string, partial float64, fd *Feeders) (*detect.Model, error) {
	d, err := gbCollect(runs, partial, fd)
	if err != nil {
		return nil, err
	}
	for _, name := range ignore {
		f := detect.FeatureIndex(name)
		if f < 0 {
			return nil, fmt.Errorf("cannot ignore the feature %q: the detector has no such feature", name)
		}
		d.cuts[f] = nil // one bin: gbGrow finds no split on it
	}
	n := len(d.y)
	var sp, sn float64
	for i := range d.y {
		if d.y[i] == 1 {
			sp += d.w[i]
		} else {
			sn += d.w[i]
		}
	}
	m := &detect.Model{Version: 2, Kind: "trees", Bias: math.Log(sp / sn), Operating: detect.Operating{Threshold: 0.5, Persist: 3}}
	for f := 0; f < detect.NumFeatures; f++ {
		m.Features = append(m.Features, detect.FeatureNames[f])
	}
	F := make([]float64, n)
	for i := range F {
		F[i] = m.Bias
	}
	g, h := make([]float64, n), make([]float64, n)
	idx := make([]int, n)
	for round := 0; round < gbRounds; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err // a SIGTERM does not wait for the fit
		}
		for i := range F {
			p := 1 / (1 + math.Exp(-F[i]))
			g[i] = d.w[i] * (p - d.y[i])
			h[i] = d.w[i] * math.Max(p*(1-p), 1e-6)
			idx[i] = i
		}
		var tr detect.Tree
		gbGrow(d, g, h, idx, 0, &tr)
		for i := range F {
			F[i] += evalBinned(&tr, d, i)
		}
		m.Trees = append(m.Trees, tr)
	}
	// Platt scaling on the unweighted rows (a partial closure's at its partial weight, a feeder positive at its
	// recipe's): p = σ(a·F + b).
	a, b := 1.0, 0.0
	for iter := 0; iter < 25; iter++ {
		var ga, gb, haa, hab, hbb float64
		for i := range F {
			p := 1 / (1 + math.Exp(-(a*F[i] + b)))
			r := d.rel[i] * (d.y[i] - p)
			ga += r * F[i]
			gb += r
			v := d.rel[i] * p * (1 - p)
			haa += v * F[i] * F[i]
			hab += v * F[i]
			hbb += v
		}
		haa += 1e-6
		hbb += 1e-6
		det := haa*hbb - hab*hab
		if det <= 0 {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		a, b = a+da, b+db
		if math.Abs(da)+math.Abs(db) < 1e-8 {
			break
		}
	}
	m.PlattA, m.PlattB = round6(a), round6(b)
	return m, nil
}

// gbGrow grows node (appended to tr) on rows idx at depth and returns its index.
func gbGrow(d *gbData, g, h []float64, idx []int, depth int, tr *detect.Tree) int {
	var G, H float64
	for _, i := range idx {
		G += g[i]
		H += h[i]
	}
	me := len(tr.Nodes)
	tr.Nodes = append(tr.Nodes, detect.Node{Feature: -1, Value: round6(-gbRate * G / (H + gbLambda))})
	if depth >= gbDepth || len(idx) < 2*gbMinLeaf {
		return me
	}
	bestGain, bestF, bestB := 0.0, -1, 0
	parent := G * G / (H + gbLambda)
	var hg, hh [gbBins]float64
	var hn [gbBins]int
	for f := 0; f < detect.NumFeatures; f++ {
		nb := len(d.cuts[f]) + 1
		if nb < 2 {
			continue
		}
		for b := 0; b < nb; b++ {
			hg[b], hh[b], hn[b] = 0, 0, 0
		}
		for _, i := range idx {
			b := d.bins[i][f]
			hg[b] += g[i]
			hh[b] += h[i]
			hn[b]++
		}
		var gl, hl float64
		nl := 0
		for b := 0; b < nb-1; b++ {
			gl += hg[b]
			hl += hh[b]
			nl += hn[b]
			if nl < gbMinLeaf || len(idx)-nl < gbMinLeaf {
				continue
			}
			gr, hr := G-gl, H-hl
			gain := gl*gl/(hl+gbLambda) + gr*gr/(hr+gbLambda) - parent
			if gain > bestGain {
				bestGain, bestF, bestB = gain, f, b
			}
		}
	}
	if bestF < 0 {
		return me
	}
	var left, right []int
	for _, i := range idx {
		if int(d.bins[i][bestF]) <= bestB {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	l := gbGrow(d, g, h, left, depth+1, tr)
	r := gbGrow(d, g, h, right, depth+1, tr)
	tr.Nodes[me] = detect.Node{Feature: bestF, Threshold: d.cuts[bestF][bestB], Left: l, Right: r}
	return me
}

// evalBinned evaluates tree tr on training row i (its raw features: the cut points are the thresholds).
func evalBinned(tr *detect.Tree, d *gbData, i int) float64 {
	k := 0
	for {
		nd := &tr.Nodes[k]
		if nd.Feature < 0 {
			return nd.Value
		}
		if d.x[i][nd.Feature] <= nd.Threshold {
			k = nd.Left
		} else {
			k = nd.Right
		}
	}
}
