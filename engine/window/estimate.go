package window

import (
	"math"
	"sync"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// A window's raw speed is the time-weighted mean of the probe fixes in it: an honest sample, but of a few
// vehicles. On a link in five minutes that is one or two cars at 15 % probes, and one car that stood
// through a red light, or one that crossed on green, says little of what the drivers there lived (the
// corpus of docs/incidents.md: relative error 0.60 with one probe vehicle, 0.17 with six or more). The
// estimate shrinks that sample toward what it shares information with, each weighted by its evidence:
//   - the same place over the ten minutes before the window (a queue builds and drains over minutes, and
//     the window before has its own probes);
//   - for a link, the cell it lies in, over the same window (many more vehicles, on the same streets).
//
// The blend is a weighted mean of logarithms (errors are relative: a queue at 5 km/h read at 10 is as wrong
// as a street at 40 read at 80), so one fast passing car does not outvote a standing queue. Weights are in
// vehicle-minutes of probe evidence; the constants were chosen on the SUMO corpus (seven cities; chosen
// leave-one-city-out instead, every city's link error moves by at most 0.015, its cell error by 0.003) and
// do not depend on a city.
const (
	// evidenceFixes is the speed weight of one vehicle-minute of evidence: a probe fix every 5 s.
	evidenceFixes = 12
	// A link's history counts as linkHistK vehicle-minutes at most, approached as h/(h+linkHistSat) for h
	// vehicle-minutes of history.
	linkHistK   = 1.0
	linkHistSat = 1.0
	// The link's cell counts as linkCellK vehicle-minutes once it holds linkCellFull vehicle-minutes.
	linkCellK    = 0.25
	linkCellFull = 5.0
	// A cell's history: cellHistK × h/(h+cellHistSat) vehicle-minutes. A cell pools many links, so its
	// history stays informative longer than a link's.
	cellHistK   = 5.0
	cellHistSat = 5.0
	// A cell's siblings (the other cells of its parent, pooled) count as cellSibK vehicle-minutes once
	// they hold cellSibFull vehicle-minutes of probes: the neighbourhood's speed in the same window, what a
	// cell seen by one or two probes leans on.
	cellSibK    = 0.25
	cellSibFull = 1.0
	// logFloorKmh bounds the logarithm of a standing queue's speed.
	logFloorKmh = 1.0
)

// Estimate is the engine's reading of a speed: the window's sample blended with its priors.
type Estimate struct {
	Kmh float64 // NaN: no observation in the window itself
	// Evidence is the estimate's weight in vehicle-minutes: the window's own probes plus its priors'
	// weights.
	Evidence float64
	// Own is the part of Evidence from the window's own observations.
	Own float64
}

// Confidence is how much the estimate is worth, 0..1: Evidence / (Evidence + 1), so one vehicle-minute of
// evidence is 0.5, five are 0.83 (on the corpus the relative error falls from 0.6 with one probe vehicle to
// under 0.2 with five).
func (e Estimate) Confidence() float64 {
	if math.IsNaN(e.Kmh) || e.Evidence <= 0 {
		return 0
	}
	return e.Evidence / (e.Evidence + 1)
}

// blend is the weighted mean of logarithms of the parts with a positive weight and a speed, and their plain
// weighted mean (what a standing queue reads: the logarithms' floor would read logFloorKmh).
type blend struct{ logSum, sum, w float64 }

func (b *blend) add(kmh, w float64) {
	if w <= 0 || math.IsNaN(kmh) {
		return
	}
	b.logSum += w * math.Log(math.Max(kmh, logFloorKmh))
	b.sum += w * kmh
	b.w += w
}

// kmh is the blend's speed: the geometric mean, or the plain one at or under the logarithms' floor.
func (b *blend) kmh() float64 {
	if k := math.Exp(b.logSum / b.w); k > logFloorKmh {
		return k
	}
	return b.sum / b.w
}

// probeFixes is the probe evidence of st in fixes: probe fixes, and transit fixes at half weight. Priors are
// weighed by it alone: a detector's readings of the same place before say nothing new about the vehicles
// it did not see, and smoothing them only delays what the detector reports (a place seen by detectors
// alone reads its sample).
func probeFixes(st *schema.WindowStats) float64 {
	return float64(st.Kinds[schema.KindProbe]) + 0.5*float64(st.Kinds[schema.KindTransit])
}

// history is the part of window i of ws before window i: window i+1 less window i (windows end together),
// with its probe evidence in vehicle-minutes, or nothing for the longest window.
func history(ws *[len(schema.Windows)]schema.WindowStats, i int) (kmh, vehMin float64) {
	if i+1 >= len(ws) {
		return math.NaN(), 0
	}
	sw := ws[i+1].SpeedW - ws[i].SpeedW
	probes := probeFixes(&ws[i+1]) - probeFixes(&ws[i])
	if sw <= 1e-9 || probes <= 0 {
		return math.NaN(), 0
	}
	return (ws[i+1].SpeedSum - ws[i].SpeedSum) / sw, probes / evidenceFixes
}

// estimate blends window i of ws with its history (weight k·h/(h+sat)) and the given prior.
func estimate(ws *[len(schema.Windows)]schema.WindowStats, i int, histK, histSat float64, prior, priorW float64) Estimate {
	own, ok := ws[i].Speed()
	if !ok {
		return Estimate{Kmh: math.NaN()}
	}
	n := ws[i].SpeedW / evidenceFixes
	var b blend
	b.add(own, n)
	if h, hw := history(ws, i); hw > 0 {
		b.add(h, histK*hw/(hw+histSat))
	}
	b.add(prior, priorW)
	if b.w <= n {
		return Estimate{Kmh: own, Evidence: n, Own: n} // no prior: the sample itself
	}
	return Estimate{Kmh: b.kmh(), Evidence: b.w, Own: n}
}

// Pool is the speed sums of a group of places over one window, and their probe evidence in fixes.
type Pool struct {
	SpeedSum, SpeedW float64
	Probes           float64 // probeFixes
}

func (p *Pool) add(st *schema.WindowStats) {
	p.SpeedSum += st.SpeedSum
	p.SpeedW += st.SpeedW
	p.Probes += probeFixes(st)
}

func (p *Pool) addPool(o *Pool) {
	p.SpeedSum += o.SpeedSum
	p.SpeedW += o.SpeedW
	p.Probes += o.Probes
}

// Speed is the pool's weighted mean speed (NaN: no speed observation).
func (p *Pool) Speed() float64 {
	if p.SpeedW <= 1e-9 {
		return math.NaN()
	}
	return p.SpeedSum / p.SpeedW
}

// Estimate is window i's speed estimate of the cell: its sample blended with its own ten minutes before and
// its siblings' speed over the same window (cellSibK once they hold cellSibFull vehicle-minutes of probes).
func (v *CellView) Estimate(i int) Estimate {
	sib := &v.Siblings[i]
	return estimate(&v.W, i, cellHistK, cellHistSat, sib.Speed(), cellSibK*math.Min(1, sib.Probes/evidenceFixes/cellSibFull))
}

// Estimate is window i's speed estimate of the link: its sample blended with its ten minutes before and its
// cell's (ls.Cell) speed over the same window.
func (ls *LinkStats) Estimate(i int) Estimate {
	cell := &ls.Cell[i]
	cw := 0.0
	ck, ok := cell.Speed()
	if ok {
		cw = linkCellK * math.Min(1, probeFixes(cell)/evidenceFixes/linkCellFull)
	}
	return estimate(&ls.W, i, linkHistK, linkHistSat, ck, cw)
}

// LinkCell is the base cell a link's speed prior is read from: the cell of its geometry's midpoint.
func LinkCell(l *geo.Link, res int) uint64 {
	p, _ := l.PointAt(l.GeomLengthM() / 2)
	c, err := geo.CellOf(p.Lat, p.Lng, res)
	if err != nil {
		return 0
	}
	return c
}

// LinkCells is LinkCell of every link of a network, by link index, computed on first use (a zero LinkCells is
// ready; it serves one network and resolution).
type LinkCells struct {
	once  sync.Once
	cells []uint64
}

// Of returns LinkCell of every link of net at res, by link index (read-only).
func (t *LinkCells) Of(net *geo.Network, res int) []uint64 {
	t.once.Do(func() {
		links := net.Links()
		t.cells = make([]uint64, len(links))
		for i, l := range links {
			t.cells[i] = LinkCell(l, res)
		}
	})
	return t.cells
}

// AttachCells sets each link's Cell to the windows of its LinkCell's view (cellOf gives the cell of
// links[i], view a cell's base view, nil when it has none).
func AttachCells(links []LinkStats, cellOf func(i int) uint64, view func(uint64) *CellView) {
	for i := range links {
		if v := view(cellOf(i)); v != nil {
			links[i].Cell = v.W
		}
	}
}
