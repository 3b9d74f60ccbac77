package eval

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"
	"slices"

	"citybrain/engine/detect"
)

// fitVersion names the fitting code (fitTrees, fitLR, calibrate, proxyDetections and their constants): bump
// it with any change to what they return for the same rows, so the models cached under the old code are
// fitted again. The rows themselves (the detector's features and the labels) are in the key, so a change to
// the detector refits on its own; so is whether the detector's gate (detect.Gate) lets each row through, so
// a change to the gate alone refits too.
const fitVersion = 4 // 4: the trees are not fitted on partial closures' rows (fitOn)

// filled is opt with its defaults, as fitModel uses it.
func (opt TrainOptions) filled() TrainOptions {
	if opt.PosShare == 0 {
		opt.PosShare = 0.2
	}
	if opt.L2 == 0 {
		opt.L2 = 1
	}
	if opt.MaxFalsePerH == 0 {
		opt.MaxFalsePerH = 0.5
	}
	if opt.SpareCities > 0 && opt.CapFalsePerH == 0 {
		opt.CapFalsePerH = 1
	}
	return opt
}

// trainingKey is a hash of everything a model fitted and calibrated on runs depends on: the fitting code's
// version, the options, and per run its city, seed, density, length, road network, truths and rows (the
// features, labels, whether the gate passes each, and what the proxy fusion reads).
func trainingKey(runs []*corpusRun, opt TrainOptions) string {
	h := sha256.New()
	opt = opt.filled()
	fmt.Fprintf(h, "citybrain loco model v%d %d %q %g %g %g\n", fitVersion, detect.NumFeatures, opt.Kind, opt.PosShare, opt.L2, opt.MaxFalsePerH)
	if opt.CalibrateHeavy {
		fmt.Fprintf(h, "calibrated on the heavier runs too\n")
	}
	// The default calibration keeps the keys every model so far was cached under.
	if opt.CrossFit {
		fmt.Fprintf(h, "calibrated on cross-fitted probabilities\n")
	}
	if opt.SpareCities > 0 {
		fmt.Fprintf(h, "spare %d cities within %g\n", opt.SpareCities, opt.CapFalsePerH)
	}
	if len(opt.Ignore) > 0 {
		fmt.Fprintf(h, "ignoring %q\n", opt.Ignore)
	}
	if opt.Partial > 0 {
		fmt.Fprintf(h, "partial closures' rows at %g\n", opt.Partial)
	}
	if fd := opt.Feeders; !fd.isDefault() {
		fmt.Fprintf(h, "feeders' positives at %g, only where the closed link has no row %v\n", fd.Weight, fd.Empty)
	}
	var buf []byte
	f64 := func(x float64) { buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x)) }
	i64 := func(x int64) { buf = binary.LittleEndian.AppendUint64(buf, uint64(x)) }
	str := func(s string) { i64(int64(len(s))); buf = append(buf, s...) }
	flush := func(h hash.Hash) { h.Write(buf); buf = buf[:0] }
	for _, r := range runs {
		str(r.city)
		i64(r.seed)
		buf = append(buf, boolByte(r.low))
		f64(r.endS)
		if r.load != 0 { // a heavier training-only run (the corpus's own runs keep their keys)
			str("load")
			f64(r.load)
		}
		links := r.net.Links()
		i64(int64(len(links)))
		for _, l := range links {
			str(l.ID)
			str(l.From)
			str(l.To)
			f64(l.GeomLengthM())
		}
		flush(h)
		i64(int64(len(r.truths)))
		for _, t := range r.truths {
			str(t.ID)
			str(t.Link)
			str(t.Class)
			i64(t.Start.UnixMilli())
			i64(t.End.UnixMilli())
			f64(t.Lat)
			f64(t.Lng)
		}
		i64(int64(len(r.rows)))
		for i := range r.rows {
			row := &r.rows[i]
			i64(int64(row.Link))
			i64(row.T)
			for _, x := range row.X {
				f64(x)
			}
			f64(row.HeadM)
			buf = append(buf, byte(row.Label), boolByte(row.Young), boolByte(gate(&row.X)))
			str(row.Class)
			if len(buf) > 1<<16 {
				flush(h)
			}
		}
		flush(h)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// fitCached returns the model fitModel fits on runs with opt, read from dir when a model was fitted there on
// the same rows with the same options and code before (reused true), else fitted and written there. An
// unreadable or damaged cached model is fitted again; dir "" caches nothing.
func fitCached(ctx context.Context, dir string, runs []*corpusRun, opt TrainOptions) (m *detect.Model, reused bool, err error) {
	var path string
	if dir != "" {
		path = filepath.Join(dir, "loco-"+trainingKey(runs, opt)[:32]+".json")
		if data, err := os.ReadFile(path); err == nil {
			if m, err := detect.ParseModel(data); err == nil {
				return m, true, nil
			}
		}
	}
	m, err = fitModelIn(ctx, dir, runs, opt)
	if err != nil {
		return nil, false, err
	}
	// The file's name hashes the rows; its content says which cities they are (a held-out model is read
	// against the one city missing here).
	m.TrainedOn = runCities(runs)
	if path == "" {
		return m, false, nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode the model: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("cannot cache the model (%s): %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".loco-*")
	if err != nil {
		return nil, false, fmt.Errorf("cannot cache the model (%s): %w", dir, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return nil, false, fmt.Errorf("cannot cache the model (%s): %w", path, werr)
	}
	return m, false, nil
}

// runCities lists the cities of runs once each, sorted.
func runCities(runs []*corpusRun) []string {
	var cs []string
	for _, r := range runs {
		cs = append(cs, r.city)
	}
	slices.Sort(cs)
	return slices.Compact(cs)
}
