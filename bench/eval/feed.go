package eval

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"citybrain/engine"
	"citybrain/engine/detect"
	"citybrain/geo"
	"citybrain/ingest"
)

// target is a running CityBrain the evaluation feeds: the whole system over HTTP (harness), or the engine
// behind the real ingest decoder in this process (direct, the default: the same code from the decoder on,
// without the log and the network in between, so a corpus re-scores in minutes). Both see the same NDJSON.
type target interface {
	// send posts one batch and returns once the engine has applied it and published its views.
	send(ctx context.Context, body []byte) (accepted, rejected int, err error)
	detections(ctx context.Context) ([]Detection, error)
	// speeds reads the 5-minute window of every link and every cell with a speed.
	speeds(ctx context.Context) (links map[string]linkReading, cells map[uint64]reading, err error)
	stop() error
}

// engineConfig is the engine configuration `citybrain run --network` uses (system.Start): free-flow speeds
// per cell from the network's links.
func engineConfig(net *geo.Network, model *detect.Model) engine.Config {
	ecfg := engine.DefaultConfig()
	ecfg.Tick = Tick
	ecfg.DetectorModel = model
	if net != nil {
		ecfg.Network = net
		ff := net.CellFreeFlowKmh(ecfg.Res)
		ecfg.FreeFlow = func(cell uint64) (float64, bool) { v, ok := ff[cell]; return v, ok && v > 0 }
	}
	return ecfg
}

// direct is the engine fed through ingest.Ingestor in this process: each batch is decoded, validated and
// celled exactly as POST /api/v1/events does, then applied as the log consumer would, then a tick is run.
type direct struct {
	e   *engine.Engine
	in  *ingest.Ingestor
	seq uint64
	bb  geo.BBox
}

func newDirect(net *geo.Network, model *detect.Model) *direct {
	d := &direct{e: engine.New(engineConfig(net, model))}
	d.in = ingest.New(ingest.DefaultConfig(), d)
	d.bb = geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}
	return d
}

// Append is the ingest sink: the engine applies the batch as the log consumer would.
func (d *direct) Append(_ context.Context, rec arrow.Record, _ ingest.BatchID) (uint64, error) {
	d.seq++
	return d.seq, d.e.Apply(d.seq, rec)
}

func (d *direct) AppendDead(context.Context, []ingest.DeadLetter, ingest.BatchID) error { return nil }

func (d *direct) send(ctx context.Context, body []byte) (int, int, error) {
	res, err := d.in.Ingest(ctx, body, "eval", engine.KindUnknown, "")
	if err != nil {
		return 0, 0, fmt.Errorf("cannot ingest a batch: %w", err)
	}
	d.e.Flush()
	return res.Accepted, res.Rejected, nil
}

func (d *direct) detections(context.Context) ([]Detection, error) {
	var out []Detection
	for _, in := range d.e.Incidents() {
		det := Detection{ID: in.ID, Type: in.Type, Status: in.Status, Lat: in.Lat, Lng: in.Lng, Score: in.Score,
			DetectedAt: time.UnixMilli(in.DetectedAt).UTC()}
		if in.ClearedAt > 0 {
			c := time.UnixMilli(in.ClearedAt).UTC()
			det.ClearedAt = &c
		}
		seen := map[string]bool{}
		for _, e := range in.Evidence {
			if !seen[e.Kind] {
				seen[e.Kind] = true
				det.Kinds = append(det.Kinds, e.Kind)
			}
		}
		out = append(out, det)
	}
	return out, nil
}

// reading is a published 5-minute speed and its confidence.
type reading struct {
	Kmh, Conf float64
}

// linkReading is a link's reading and the number of observations behind it, with the readings a router could
// read instead (scored as forecasts of the next window: speedScore.at's link-next kinds).
type linkReading struct {
	reading
	Samples float64
	Sample  float64 // the 5-minute window's raw probe sample (NaN: none)
	Est1    float64 // the 1-minute window's estimate (NaN: none, or not read)
}

func (d *direct) speeds(context.Context) (map[string]linkReading, map[uint64]reading, error) {
	links := map[string]linkReading{}
	for _, ls := range d.e.Links(d.bb) {
		if est := ls.Estimate(1); !math.IsNaN(est.Kmh) {
			sample, ok := ls.W[1].Speed()
			if !ok {
				sample = math.NaN()
			}
			links[ls.Link.ID] = linkReading{reading: reading{Kmh: est.Kmh, Conf: est.Confidence()}, Samples: float64(ls.W[1].Samples),
				Sample: sample, Est1: ls.Estimate(0).Kmh}
		}
	}
	cells := map[uint64]reading{}
	views, err := d.e.Cells(d.e.Config().Res, d.bb)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range views {
		if d := v.Derive(1); !math.IsNaN(d.SpeedKmh) {
			cells[v.Cell] = reading{Kmh: d.SpeedKmh, Conf: d.Confidence}
		}
	}
	return links, cells, nil
}

func (d *direct) stop() error { d.e.Stop(); return nil }

// feeder sends events in time order as NDJSON batches of BatchSpan event time, and calls atWindow with each
// multiple of SpeedWindowS since the scenario's start once everything before it is applied.
type feeder struct {
	t        target
	batchMs  int64
	end      int64 // exclusive end of the open batch
	buf      []byte
	n        int
	st       feedStats
	start    int64 // ms
	nextWin  int64 // ms
	atWindow func(ctx context.Context, at int64) error
}

func newFeeder(t target, start time.Time) *feeder {
	return &feeder{t: t, batchMs: BatchSpan.Milliseconds(), buf: make([]byte, 0, 1<<20), st: feedStats{ByKind: map[string]int{}},
		start: start.UnixMilli(), nextWin: start.UnixMilli() + SpeedWindowS*1000}
}

func (f *feeder) add(ctx context.Context, ev *engine.Event) error {
	if f.n > 0 && ev.TS >= f.end {
		if err := f.flush(ctx); err != nil {
			return err
		}
	}
	for ev.TS >= f.nextWin {
		if err := f.flush(ctx); err != nil {
			return err
		}
		if f.atWindow != nil {
			if err := f.atWindow(ctx, f.nextWin); err != nil {
				return err
			}
		}
		f.nextWin += SpeedWindowS * 1000
	}
	if f.n == 0 {
		f.end = (ev.TS/f.batchMs + 1) * f.batchMs
	}
	f.buf = ingest.AppendJSON(f.buf, ev)
	f.buf = append(f.buf, '\n')
	f.n++
	f.st.ByKind[ev.Kind.String()]++
	return nil
}

// feed adds every event (in order) and flushes the last batch.
func (f *feeder) feed(ctx context.Context, events []engine.Event) error {
	for i := range events {
		if err := f.add(ctx, &events[i]); err != nil {
			return err
		}
	}
	return f.flush(ctx)
}

func (f *feeder) flush(ctx context.Context) error {
	if f.n == 0 {
		return nil
	}
	acc, rej, err := f.t.send(ctx, f.buf)
	if err != nil {
		return err
	}
	f.st.Events += f.n
	f.st.Accepted += acc
	f.st.Rejected += rej
	f.st.Batches++
	f.buf, f.n = f.buf[:0], 0
	return nil
}

// speedScore compares the engine's speeds with the vehicle-seconds truth.
type speedScore struct {
	truth  map[obsKey]SpeedObs
	origin geo.LatLng
	res    int
	start  int64
	pairs  map[string][]speedPair // by unit kind: link, cell, square; link-sample: the probes' own truth; link-prior-oracle: the link reading with its true speed over the window before as a prior (priorOracle); square-cell: a square read from the cell holding its centre
	low    bool                   // the 5 % probe variant
	// squares: the links crossing each square and their share of length in it (nil without a network)
	squares map[string][]squareShare
}

type speedPair struct {
	Truth, Est, VehS float64
	Conf             float64 // the reading's confidence (NaN: none)
}

func newSpeedScore(run *simRun, net *geo.Network, start time.Time, res int, low bool) *speedScore {
	s := &speedScore{truth: map[obsKey]SpeedObs{}, origin: run.Origin, res: res, start: start.UnixMilli(), pairs: map[string][]speedPair{}, low: low}
	for _, o := range run.Speed {
		s.truth[obsKey{o.Window, o.Unit}] = o
	}
	if net != nil {
		s.squares = squareLinks(net, run.Origin)
	}
	return s
}

// squareShare is the share of a link's length that lies in a square.
type squareShare struct {
	link  string
	share float64
}

// squareLinks lists, for every square "x,y" of the grid at origin, the links crossing it and the share of
// each one's length inside it (the geometry walked in 5-m steps).
func squareLinks(net *geo.Network, origin geo.LatLng) map[string][]squareShare {
	const stepM = 5
	cosLat := math.Cos(origin.Lat * math.Pi / 180)
	out := map[string][]squareShare{}
	for _, l := range net.Links() {
		length := l.GeomLengthM()
		n := max(1, int(length/stepM))
		count := map[[2]int]int{}
		var order [][2]int
		for i := 0; i < n; i++ {
			p, _ := l.PointAt((float64(i) + 0.5) * length / float64(n))
			x := (p.Lng - origin.Lng) * 111_320 * cosLat
			y := (p.Lat - origin.Lat) * 110_574
			k := [2]int{int(math.Floor(x / SquareM)), int(math.Floor(y / SquareM))}
			if count[k] == 0 {
				order = append(order, k)
			}
			count[k]++
		}
		for _, k := range order {
			sq := fmt.Sprintf("%d,%d", k[0], k[1])
			out[sq] = append(out[sq], squareShare{link: l.ID, share: float64(count[k]) / float64(n)})
		}
	}
	return out
}

// squareFromLinks reads a square from the published speeds of the links crossing it: their mean, each
// weighted by its observations times the share of its length inside the square (observations per metre
// stand for vehicle-seconds per metre: the probes are a sample of the vehicles). False when no link
// crossing the square has a reading.
func (s *speedScore) squareFromLinks(sq string, links map[string]linkReading) (float64, bool) {
	var sum, w float64
	for _, ls := range s.squares[sq] {
		r, ok := links[ls.link]
		if !ok || r.Samples <= 0 {
			continue
		}
		sum += r.Kmh * r.Samples * ls.share
		w += r.Samples * ls.share
	}
	if w <= 0 {
		return math.NaN(), false
	}
	return sum / w, true
}

// minVehS: a unit's window is scored when vehicles spent at least this long in it (half a vehicle present
// on average): below, the truth is one car's whim.
const minVehS = 150

// speedFloorKmh: errors are relative to max(truth, this), so a queue at 1 km/h read as 3 km/h is not a 200 %
// error.
const speedFloorKmh = 5

func (s *speedScore) at(ctx context.Context, t target, at int64) error {
	links, cells, err := t.speeds(ctx)
	if err != nil {
		return err
	}
	w := int32((at-s.start)/1000/SpeedWindowS) - 1
	cellCache := geo.NewCellCache(s.res)
	s.forecasts(w, links)
	for k, o := range s.truth {
		if k.w != w || o.VehS < minVehS || o.Unit[0] == 'P' || o.Unit[0] == 'Q' {
			continue
		}
		tr := o.SumKmh / o.VehS
		var est float64
		conf := math.NaN()
		var ok bool
		var kind string
		switch o.Unit[0] {
		case 'L':
			kind = "link"
			var r linkReading
			r, ok = links[o.Unit[2:]]
			est, conf = r.Kmh, r.Conf
			// The probe sample's own vehicle-seconds: what sampling alone allows.
			sample := "P:"
			if s.low {
				sample = "Q:"
			}
			if p, ok := s.truth[obsKey{w, sample + o.Unit[2:]}]; ok && p.VehS > 0 {
				s.pairs["link-sample"] = append(s.pairs["link-sample"], speedPair{Truth: tr, Est: p.SumKmh / p.VehS, VehS: o.VehS, Conf: math.NaN()})
			} else {
				s.pairs["link-sample"] = append(s.pairs["link-sample"], speedPair{Truth: tr, Est: math.NaN(), VehS: o.VehS, Conf: math.NaN()})
			}
			// The oracle prior: the reading blended with the link's true speed over the window before.
			po := math.NaN()
			if ok {
				po = r.Kmh
				if p, pok := s.truth[obsKey{w - 1, o.Unit}]; pok && p.VehS > 0 {
					po = priorOracle(r.Kmh, r.Conf, p.SumKmh/p.VehS)
				}
			}
			s.pairs["link-prior-oracle"] = append(s.pairs["link-prior-oracle"], speedPair{Truth: tr, Est: po, VehS: o.VehS, Conf: math.NaN()})
		case 'C':
			kind = "cell"
			c, err := geo.ParseCell(o.Unit[2:])
			if err != nil {
				continue
			}
			var r reading
			r, ok = cells[c]
			est, conf = r.Kmh, r.Conf
		case 'S':
			kind = "square"
			var x, y int
			if _, err := fmt.Sscanf(o.Unit[2:], "%d,%d", &x, &y); err != nil {
				continue
			}
			p := squareCentre(s.origin, x, y)
			c, err := cellCache.Cell(p.Lat, p.Lng)
			if err != nil {
				continue
			}
			cr, cellOK := cells[c]
			cellEst := cr.Kmh
			if !cellOK {
				cellEst = math.NaN()
			}
			s.pairs["square-cell"] = append(s.pairs["square-cell"], speedPair{Truth: tr, Est: cellEst, VehS: o.VehS, Conf: math.NaN()})
			est, ok = s.squareFromLinks(o.Unit[2:], links)
			if !ok {
				est, ok = cellEst, cellOK
			}
		}
		if !ok {
			est = math.NaN()
		}
		s.pairs[kind] = append(s.pairs[kind], speedPair{Truth: tr, Est: est, VehS: o.VehS, Conf: conf})
	}
	return nil
}

// oraclePriorVehMin is the weight, in vehicle-minutes of probe evidence, priorOracle gives the true speed of
// the window before: the best single weight for every city left out (offline, 2026-12-06, docs/incidents.md
// "Speeds, eighth pass"; the engine's own history prior weighs at most as much).
const oraclePriorVehMin = 1

// priorOracle is a link reading (kmh, published with confidence conf = evidence/(evidence+1)) blended, as the
// engine blends its priors (a weighted mean of logarithms, engine/window/estimate.go), with prev, the link's
// TRUE vehicle-seconds speed over the window before, weighted oraclePriorVehMin. No estimator can know prev:
// the pair "link-prior-oracle" says how far a perfect memory of the link's last five minutes would take the
// published speed, so how much of the link error a better prior could ever remove.
func priorOracle(kmh, conf, prev float64) float64 {
	if math.IsNaN(kmh) || math.IsNaN(prev) {
		return kmh
	}
	ev := 0.0
	if conf > 0 && conf < 1 {
		ev = conf / (1 - conf)
	}
	const floor = 1.0 // km/h: the logarithm of a standing queue, as the engine bounds it
	lg := (ev*math.Log(math.Max(kmh, floor)) + oraclePriorVehMin*math.Log(math.Max(prev, floor))) / (ev + oraclePriorVehMin)
	if k := math.Exp(lg); k > floor {
		return k
	}
	return (ev*kmh + oraclePriorVehMin*prev) / (ev + oraclePriorVehMin)
}

// forecasts scores the link readings published at the end of window w against the truth of window w+1: what a
// router reads now is the speed its vehicle will meet over the next minutes. Kinds: link-next (the published
// 5-minute estimate, what dispatch routes on), link-next-sample (the 5-minute raw probe sample), link-next-1m
// (the 1-minute window's estimate, else the 5-minute one). Only links whose 5-minute estimate exists are scored, so the three kinds
// cover the same link-windows where each has a reading.
func (s *speedScore) forecasts(w int32, links map[string]linkReading) {
	for k, o := range s.truth {
		if k.w != w+1 || o.VehS < minVehS || o.Unit[0] != 'L' {
			continue
		}
		r, ok := links[o.Unit[2:]]
		if !ok {
			continue
		}
		tr := o.SumKmh / o.VehS
		s.pairs["link-next"] = append(s.pairs["link-next"], speedPair{Truth: tr, Est: r.Kmh, VehS: o.VehS, Conf: r.Conf})
		s.pairs["link-next-sample"] = append(s.pairs["link-next-sample"], speedPair{Truth: tr, Est: r.Sample, VehS: o.VehS, Conf: math.NaN()})
		e1 := r.Est1
		if math.IsNaN(e1) {
			e1 = r.Kmh // no probe in the last minute: the 5-minute estimate
		}
		s.pairs["link-next-1m"] = append(s.pairs["link-next-1m"], speedPair{Truth: tr, Est: e1, VehS: o.VehS, Conf: math.NaN()})
	}
}

// SpeedMetrics sums a set of speed comparisons.
type SpeedMetrics struct {
	Units     int     `json:"units"`      // (unit, window) pairs with enough vehicle-seconds
	Covered   float64 `json:"covered"`    // share of them the engine had a reading for
	MAPE      float64 `json:"mape"`       // mean |est − truth| / max(truth, 5 km/h) over covered pairs
	QueueMAPE float64 `json:"queue_mape"` // the same where the truth is under 15 km/h
	QueueN    int     `json:"queue_n"`
	Ratio     float64 `json:"median_ratio"` // median est / truth (> 1: reads too fast)
	// ByConfidence is the MAPE of the readings in each band of the confidence the engine published with
	// them: a confidence worth the name has the error fall as it rises.
	ByConfidence []ConfidenceBand `json:"by_confidence,omitempty"`
}

// ConfidenceBand is the error of the readings whose confidence lies in [From, To).
type ConfidenceBand struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
	N    int     `json:"n"`
	MAPE float64 `json:"mape"`
}

// confidenceBands are the bands SpeedMetrics.ByConfidence reports.
var confidenceBands = [][2]float64{{0, 0.5}, {0.5, 0.8}, {0.8, 1.01}}

func speedMetrics(ps []speedPair) SpeedMetrics {
	var m SpeedMetrics
	var sum, qsum float64
	var ratios []float64
	covered := 0
	bandSum := make([]float64, len(confidenceBands))
	bandN := make([]int, len(confidenceBands))
	for _, p := range ps {
		m.Units++
		if math.IsNaN(p.Est) {
			continue
		}
		covered++
		e := math.Abs(p.Est-p.Truth) / math.Max(p.Truth, speedFloorKmh)
		sum += e
		for i, b := range confidenceBands {
			if p.Conf >= b[0] && p.Conf < b[1] {
				bandSum[i] += e
				bandN[i]++
			}
		}
		if p.Truth < 15 {
			qsum += e
			m.QueueN++
		}
		ratios = append(ratios, p.Est/math.Max(p.Truth, 1))
	}
	if m.Units > 0 {
		m.Covered = round3(float64(covered) / float64(m.Units))
	}
	if covered > 0 {
		m.MAPE = round3(sum / float64(covered))
		sort.Float64s(ratios)
		m.Ratio = round3(ratios[len(ratios)/2])
	}
	if m.QueueN > 0 {
		m.QueueMAPE = round3(qsum / float64(m.QueueN))
	}
	for i, b := range confidenceBands {
		if bandN[i] > 0 {
			m.ByConfidence = append(m.ByConfidence, ConfidenceBand{From: b[0], To: math.Min(1, b[1]), N: bandN[i], MAPE: round3(bandSum[i] / float64(bandN[i]))})
		}
	}
	return m
}
