package sumo

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
)

// Detector is one e1 induction loop definition (<e1Detector> or <inductionLoop> in an additional file).
type Detector struct {
	ID   string
	Lane string  // SUMO lane id
	Pos  float64 // metres from the lane start; negative counts from the lane end (SUMO's convention)
	Freq float64 // aggregation period in seconds (0 when not given)
	File string  // the output file the definition names
}

// Site is a placed detector: its lane and WGS84 position.
type Site struct {
	Lane     string
	Lat, Lng float64
}

// ReadDetectors streams a SUMO additional file and returns its e1 detectors (<e1Detector>, <inductionLoop>)
// in file order. Commented-out definitions are not detectors.
func ReadDetectors(r io.Reader) ([]Detector, error) {
	const what = "detector definitions"
	s := newScanner(r, what)
	var out []Detector
	seen := map[string]bool{}
	for {
		tok, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok || (t.Name.Local != "e1Detector" && t.Name.Local != "inductionLoop") {
			continue
		}
		d := Detector{Pos: math.NaN()}
		for _, a := range t.Attr {
			var err error
			switch a.Name.Local {
			case "id":
				d.ID = a.Value
			case "lane":
				d.Lane = a.Value
			case "pos":
				d.Pos, err = num("pos", a.Value)
			case "freq", "period":
				d.Freq, err = simTime(a.Name.Local, a.Value)
			case "file":
				d.File = a.Value
			}
			if err != nil {
				return out, s.fail(&t, "%w", err)
			}
		}
		switch {
		case d.ID == "":
			return out, s.fail(&t, "attribute id: %w", errMissing)
		case d.Lane == "":
			return out, s.fail(&t, "attribute lane: %w", errMissing)
		case math.IsNaN(d.Pos):
			return out, s.fail(&t, "attribute pos: %w", errMissing)
		case seen[d.ID]:
			return out, s.fail(&t, "duplicate detector id %q", d.ID)
		}
		seen[d.ID] = true
		out = append(out, d)
	}
}

// PlaceDetectors positions each detector on the network. It fails naming the first detector whose lane the
// network does not have (a detector file that does not belong to the network).
func PlaceDetectors(defs []Detector, net Positioner) (map[string]Site, error) {
	sites := make(map[string]Site, len(defs))
	for _, d := range defs {
		lat, lng, ok := net.LanePosition(d.Lane, d.Pos)
		if !ok {
			return sites, fmt.Errorf("cannot place detector (%s on lane %q at %g m): the network has no such lane position", d.ID, d.Lane, d.Pos)
		}
		sites[d.ID] = Site{Lane: d.Lane, Lat: lat, Lng: lng}
	}
	return sites, nil
}

// E1Options configures ReadE1.
type E1Options struct {
	// Start is the wall-clock time of simulation second 0. Required.
	Start time.Time
	// Sites positions detectors by id (PlaceDetectors). Readings of detectors not in Sites are skipped and
	// counted in E1Stats.Unplaced.
	Sites map[string]Site
	// Source is the events' source; default "sumo".
	Source string
	// IDPrefix is prepended to detector ids; default none.
	IDPrefix string
	// StampAtBegin stamps an interval's event at its begin. By default ts is the interval's end: the moment
	// a real loop controller reports the reading, so a live replay never has readings from the future.
	StampAtBegin bool
	// OnSkip, when non-nil, is called for every interval that is skipped (a detector not in Sites, a
	// zero-length interval), e.g. with (*skipped.Log).Add.
	OnSkip func(where, reason, detail string)
}

// E1Stats counts what ReadE1 saw.
type E1Stats struct {
	Intervals  int // <interval> elements
	Detectors  int // detector events emitted
	Unplaced   int // intervals of detectors not in Sites
	ZeroLength int // intervals with end <= begin (skipped)
}

// ReadE1 streams SUMO e1 induction loop output (<detector><interval begin end id nVehContrib flow occupancy
// speed .../>) from r and emits one detector event per interval: flow_vph = flow (veh/h), occupancy = occupancy
// / 100 (SUMO writes percent), speed_kmh = speed × 3.6 (absent when SUMO writes -1, no vehicle), interval_s =
// end - begin, lane = the detector's lane. It returns at the end of the input, at the first *ParseError, or at
// the first error of emit (wrapped in *EmitError).
func ReadE1(r io.Reader, opt E1Options, emit func(engine.Event) error) (E1Stats, error) {
	var st E1Stats
	const what = "e1 output"
	if opt.Start.IsZero() {
		return st, fmt.Errorf("cannot read %s (options): Start, the wall-clock time of simulation second 0, is required", what)
	}
	source := opt.Source
	if source == "" {
		source = "sumo"
	}
	startMs := opt.Start.UnixMilli()
	s := newScanner(r, what)
	rootSeen := false
	for {
		tok, err := s.next()
		if err == io.EOF {
			if !rootSeen {
				return st, &ParseError{What: what, Line: s.elemLine(), Err: errors.New("no <detector> element (empty input?)")}
			}
			return st, nil
		}
		if err != nil {
			return st, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !rootSeen {
			if t.Name.Local != "detector" {
				return st, s.fail(&t, "root element is <%s>, not <detector>: not SUMO e1 detector output", t.Name.Local)
			}
			rootSeen = true
			continue
		}
		if t.Name.Local != "interval" {
			continue
		}
		st.Intervals++
		if err := e1Interval(s, &t, &opt, &st, source, startMs, emit); err != nil {
			return st, err
		}
	}
}

// e1Interval turns one <interval> into a detector event.
func e1Interval(s *scanner, t *xml.StartElement, opt *E1Options, st *E1Stats, source string, startMs int64,
	emit func(engine.Event) error) error {
	var id string
	begin, end, flow, occ, speed, nVeh := math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	for _, a := range t.Attr {
		var err error
		switch a.Name.Local {
		case "id":
			id = a.Value
		case "begin":
			begin, err = simTime("begin", a.Value)
		case "end":
			end, err = simTime("end", a.Value)
		case "flow":
			flow, err = num("flow", a.Value)
		case "occupancy":
			occ, err = num("occupancy", a.Value)
		case "speed":
			speed, err = num("speed", a.Value)
		case "nVehContrib":
			nVeh, err = num("nVehContrib", a.Value)
		}
		if err != nil {
			return s.fail(t, "%w", err)
		}
	}
	switch {
	case id == "":
		return s.fail(t, "attribute id: %w", errMissing)
	case math.IsNaN(begin):
		return s.fail(t, "attribute begin: %w", errMissing)
	case math.IsNaN(end):
		return s.fail(t, "attribute end: %w", errMissing)
	case math.IsNaN(occ):
		return s.fail(t, "attribute occupancy: %w", errMissing)
	case math.IsNaN(speed):
		return s.fail(t, "attribute speed: %w", errMissing)
	}
	dur := end - begin
	if dur <= 0 {
		st.ZeroLength++
		if opt.OnSkip != nil {
			opt.OnSkip(fmt.Sprintf("%s line %d", s.what, s.elemLine()), "zero-length interval", fmt.Sprintf("detector %s begin %g end %g", id, begin, end))
		}
		return nil
	}
	if math.IsNaN(flow) { // SUMO before 1.? wrote no flow attribute
		if math.IsNaN(nVeh) {
			return s.fail(t, "attributes flow and nVehContrib: %w", errMissing)
		}
		flow = nVeh * 3600 / dur
	}
	site, ok := opt.Sites[id]
	if !ok {
		st.Unplaced++
		if opt.OnSkip != nil {
			opt.OnSkip(fmt.Sprintf("%s line %d", s.what, s.elemLine()), "detector not in the definitions", "detector "+id)
		}
		return nil
	}
	if flow < 0 {
		return s.fail(t, "attribute flow=%g: negative flow", flow)
	}
	if occ < 0 || occ > 100.5 { // SUMO rounds to 2 decimals: allow a hair over 100
		return s.fail(t, "attribute occupancy=%g: not a percentage in [0, 100]", occ)
	}
	ev := engine.NewEvent(engine.KindDetector)
	stamp := end
	if opt.StampAtBegin {
		stamp = begin
	}
	ev.TS = startMs + int64(math.Round(stamp*1000))
	ev.ID = opt.IDPrefix + id
	ev.Lat, ev.Lng = site.Lat, site.Lng
	ev.Source = source
	ev.FlowVph = flow
	ev.Occupancy = math.Min(round(occ/100, 1e6), 1)
	ev.IntervalS = dur
	ev.Lane = site.Lane
	switch {
	case speed >= 0:
		ev.SpeedKmh = round(speed*3.6, 1e3)
	case speed == -1:
		if flow > 0 {
			return s.fail(t, "speed=-1 (no vehicle) with flow=%g", flow)
		}
	default:
		return s.fail(t, "attribute speed=%g: negative speed other than -1 (no vehicle)", speed)
	}
	if err := ingest.Validate(&ev); err != nil {
		return s.fail(t, "event is not valid: %w", err)
	}
	st.Detectors++
	if err := emit(ev); err != nil {
		return &EmitError{What: s.what, Line: s.elemLine(), ID: id, Err: err}
	}
	return nil
}
