package eval

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/sumo"
)

// fcdPoint is one vehicle at one simulation step, as SUMO writes it with --fcd-output.geo and the
// attributes x, y, angle, type, speed, pos, lane.
type fcdPoint struct {
	t                  float64
	id, typ, lane      string
	lat, lng, kmh, ang float64
	pos                float64
}

// readFCDFast streams SUMO's FCD of every vehicle, line by line, without an XML decoder: the corpus reads a
// few million points per run, and encoding/xml's cost per attribute was a third of the machine's time per
// run. It accepts only what SUMO writes (one element per line); anything else is an error naming the line.
func readFCDFast(r io.Reader, point func(*fcdPoint)) (int, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var p fcdPoint
	step := math.NaN()
	n, line := 0, 0
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return n, fmt.Errorf("cannot read FCD (line %d): longer than 1 MiB", line+1)
		}
		line++
		if len(b) > 0 {
			s := bytes.TrimSpace(b)
			switch {
			case bytes.HasPrefix(s, []byte("<timestep ")):
				v, ok := attrBytes(s, "time")
				f, perr := strconv.ParseFloat(string(v), 64)
				if !ok || perr != nil {
					return n, fmt.Errorf("cannot read FCD (line %d): timestep without a time: %.100q", line, s)
				}
				step = f
			case bytes.HasPrefix(s, []byte("<vehicle ")):
				if math.IsNaN(step) {
					return n, fmt.Errorf("cannot read FCD (line %d): vehicle outside a timestep", line)
				}
				p = fcdPoint{t: step, pos: math.NaN(), ang: math.NaN()}
				var okID, okX, okY, okS bool
				var v []byte
				if v, okID = attrBytes(s, "id"); okID {
					p.id = string(v)
				}
				if v, ok := attrBytes(s, "type"); ok {
					p.typ = string(v)
				}
				if v, ok := attrBytes(s, "lane"); ok {
					p.lane = string(v)
				}
				p.lng, okX = attrFloat(s, "x")
				p.lat, okY = attrFloat(s, "y")
				var ms float64
				ms, okS = attrFloat(s, "speed")
				if a, ok := attrFloat(s, "angle"); ok {
					p.ang = a
				}
				if a, ok := attrFloat(s, "pos"); ok {
					p.pos = a
				}
				if !okID || !okX || !okY || !okS {
					return n, fmt.Errorf("cannot read FCD (line %d): vehicle without id, x, y or speed: %.200q", line, s)
				}
				p.kmh = math.Round(math.Max(0, ms)*3.6*1e3) / 1e3
				n++
				point(&p)
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("cannot read FCD (line %d): %w", line, err)
		}
	}
}

func attrBytes(s []byte, name string) ([]byte, bool) {
	key := make([]byte, 0, len(name)+3)
	key = append(append(append(key, ' '), name...), '=', '"')
	i := bytes.Index(s, key)
	if i < 0 {
		return nil, false
	}
	rest := s[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

func attrFloat(s []byte, name string) (float64, bool) {
	v, ok := attrBytes(s, name)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// fixEvent is the event ingest/sumo.ReadFCD makes of a point (same kind and mode, route, heading corrected
// for the UTM grid convergence, rounding, validation).
func fixEvent(p *fcdPoint, zone int) (engine.Event, error) {
	var ev engine.Event
	mode := sumo.TransitMode(nil, p.typ)
	if mode != "" {
		ev = engine.NewEvent(engine.KindTransit)
		ev.Mode, ev.Route = mode, sumo.StripIndex(p.id)
	} else {
		ev = engine.NewEvent(engine.KindProbe)
	}
	ev.TS = simStart.UnixMilli() + int64(math.Round(p.t*1000))
	ev.ID, ev.Source = p.id, "sumo"
	ev.Lat, ev.Lng = p.lat, p.lng
	ev.SpeedKmh = p.kmh
	if !math.IsNaN(p.ang) && mode == "" {
		ev.HeadingDeg = sumo.TrueHeading(p.ang, p.lat, p.lng, zone)
	}
	return ev, ingest.Validate(&ev)
}
