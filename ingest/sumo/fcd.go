package sumo

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
)

// FCDOptions configures ReadFCD. The zero value is usable except for Start.
type FCDOptions struct {
	// Start is the wall-clock time of simulation second 0: an event's ts is Start + the timestep's time.
	// Required (a zero Start is an error: SUMO times alone are not dates).
	Start time.Time
	// Source is the events' source; default "sumo".
	Source string
	// IDPrefix is prepended to vehicle ids (to keep several simulations apart); default none.
	IDPrefix string
	// Penetration is the share of ordinary vehicles that report as probes, in (0, 1]; 0 means 1 (all).
	// The choice is deterministic: a vehicle is a probe when a hash of its id falls below the rate, so the
	// same vehicles report on every run and a higher rate is a superset of a lower one. Transit vehicles
	// (AVL-equipped fleets) always report.
	Penetration float64
	// Interval is the sample interval in simulated seconds: each vehicle reports at most once per Interval,
	// at a phase derived from its id so that reports spread over the interval like a real fleet's.
	// 0 reports every timestep.
	Interval float64
	// TransitTypes maps SUMO vType ids to a transit mode ("bus", "tram", "metro"). A type not listed is
	// transit when its id contains "bus" (mode bus) or "tram" (mode tram), case-insensitively; map a type
	// to "" to force it to be an ordinary probe.
	TransitTypes map[string]string
	// Lines maps a vehicle id, or the flow id of a flow vehicle ("flow.3" → "flow"), to its transit line,
	// e.g. from ReadVehicleLines on the route files. A transit vehicle with no known line gets its id without
	// a trailing repetition index ("bus_130_0" → "bus_130", "line4.12" → "line4") as its route.
	Lines map[string]string
	// UTMZone corrects SUMO's heading for grid convergence: SUMO's angle is measured in the projected network
	// (0 = grid north, clockwise), which in UTM differs from true north by up to a few degrees. 0 uses the
	// standard zone for the vehicle's longitude (what netconvert picks for OSM imports); a negative value
	// reports SUMO's angle unchanged. Use UTMZoneOf on the net's projParameter for other zones.
	UTMZone int
	// Net, when non-nil, positions every point from its lane and pos attributes instead of x/y: use it for FCD
	// written without --fcd-output.geo (x/y in metres). Points on lanes it cannot place are skipped.
	Net Positioner
	// Truth, when non-nil, is called for every event before it is emitted with the SUMO lane id and lane
	// position that the point truly had (empty lane / NaN pos when the file does not have them): the ground
	// truth for measuring map matching.
	Truth func(e *engine.Event, lane string, posM float64)
	// OnSkip, when non-nil, is called for every point that is skipped for a reason other than sampling (a lane
	// that Net cannot place), e.g. with (*skipped.Log).Add.
	OnSkip func(where, reason, detail string)
}

// FCDStats counts what ReadFCD saw.
type FCDStats struct {
	Timesteps  int     // <timestep> elements
	Points     int     // <vehicle> elements
	Probes     int     // probe events emitted
	Transit    int     // transit events emitted
	SampledOut int     // points dropped by Penetration or Interval
	Unplaced   int     // points that Net could not place
	Persons    int     // <person>/<container> elements (ignored)
	LastTime   float64 // time of the last timestep, simulated seconds
}

// ReadFCD streams SUMO floating car data (<fcd-export><timestep time><vehicle id x y angle type speed pos
// lane .../>) from r and emits one probe or transit event per sampled point. Speeds are converted from m/s to
// km/h; heading_deg is SUMO's angle (0 = north, clockwise) corrected to true north (see UTMZone). It returns
// at the end of the input, at the first *ParseError, or at the first error of emit (wrapped in *EmitError).
func ReadFCD(r io.Reader, opt FCDOptions, emit func(engine.Event) error) (FCDStats, error) {
	var st FCDStats
	const what = "FCD output"
	if opt.Start.IsZero() {
		return st, fmt.Errorf("cannot read %s (options): Start, the wall-clock time of simulation second 0, is required", what)
	}
	if opt.Penetration < 0 || opt.Penetration > 1 || math.IsNaN(opt.Penetration) {
		return st, fmt.Errorf("cannot read %s (options): Penetration %g is outside [0, 1]", what, opt.Penetration)
	}
	if opt.Interval < 0 || math.IsNaN(opt.Interval) || math.IsInf(opt.Interval, 0) {
		return st, fmt.Errorf("cannot read %s (options): Interval %g must be a finite number >= 0", what, opt.Interval)
	}
	pen := opt.Penetration
	if pen == 0 {
		pen = 1
	}
	source := opt.Source
	if source == "" {
		source = "sumo"
	}
	startMs := opt.Start.UnixMilli()

	s := newScanner(r, what)
	rootSeen, inStep := false, false
	stepTime, prevTime := 0.0, math.Inf(-1)
	for {
		tok, err := s.next()
		if err == io.EOF {
			if !rootSeen {
				return st, &ParseError{What: what, Line: s.elemLine(), Err: errors.New("no <fcd-export> element (empty input?)")}
			}
			return st, nil
		}
		if err != nil {
			return st, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if !rootSeen {
				if name != "fcd-export" {
					return st, s.fail(&t, "root element is <%s>, not <fcd-export>: not SUMO FCD output (--fcd-output)", name)
				}
				rootSeen = true
				continue
			}
			switch name {
			case "timestep":
				if inStep {
					return st, s.fail(&t, "<timestep> inside another <timestep>")
				}
				tm, ok, err := attrTime(&t, "time")
				if err != nil {
					return st, s.fail(&t, "%w", err)
				}
				if !ok {
					return st, s.fail(&t, "attribute time: %w", errMissing)
				}
				inStep = true
				prevTime, stepTime = stepTime, tm
				if st.Timesteps == 0 {
					prevTime = math.Inf(-1)
				}
				st.Timesteps++
				st.LastTime = tm
			case "vehicle":
				if !inStep {
					return st, s.fail(&t, "<vehicle> outside a <timestep>")
				}
				st.Points++
				if err := fcdVehicle(s, &t, &opt, &st, pen, source, startMs, stepTime, prevTime, emit); err != nil {
					return st, err
				}
			case "person", "container":
				st.Persons++
			}
		case xml.EndElement:
			if t.Name.Local == "timestep" {
				inStep = false
			}
		}
	}
}

// fcdVehicle turns one <vehicle> of a timestep into an event, when it is sampled.
func fcdVehicle(s *scanner, t *xml.StartElement, opt *FCDOptions, st *FCDStats, pen float64, source string,
	startMs int64, stepTime, prevTime float64, emit func(engine.Event) error) error {
	var id, typ, lane string
	x, y, speed, angle, pos := math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	for _, a := range t.Attr {
		var err error
		switch a.Name.Local {
		case "id":
			id = a.Value
		case "type":
			typ = a.Value
		case "lane":
			lane = a.Value
		case "x":
			x, err = num("x", a.Value)
		case "y":
			y, err = num("y", a.Value)
		case "speed":
			speed, err = num("speed", a.Value)
		case "angle":
			angle, err = num("angle", a.Value)
		case "pos":
			pos, err = num("pos", a.Value)
		}
		if err != nil {
			return s.fail(t, "%w", err)
		}
	}
	if id == "" {
		return s.fail(t, "attribute id: %w", errMissing)
	}
	if math.IsNaN(speed) {
		return s.fail(t, "attribute speed: %w", errMissing)
	}
	if speed < 0 {
		if speed > -0.01 { // printed rounding of a stopped vehicle
			speed = 0
		} else {
			return s.fail(t, "attribute speed=%g: negative speed", speed)
		}
	}
	mode := TransitMode(opt.TransitTypes, typ)
	if mode == "" && pen < 1 && unit(hash64(id, 0)) >= pen {
		st.SampledOut++
		return nil
	}
	if opt.Interval > 0 {
		phase := unit(hash64(id, 0x9e3779b97f4a7c15)) * opt.Interval
		if math.Floor((stepTime+phase)/opt.Interval) == math.Floor((prevTime+phase)/opt.Interval) {
			st.SampledOut++
			return nil
		}
	}
	var lat, lng float64
	if opt.Net != nil {
		if lane == "" || math.IsNaN(pos) {
			return s.fail(t, "attributes lane and pos are required to place points on the network")
		}
		var ok bool
		if lat, lng, ok = opt.Net.LanePosition(lane, pos); !ok {
			st.Unplaced++
			if opt.OnSkip != nil {
				opt.OnSkip(fmt.Sprintf("%s line %d", s.what, s.elemLine()), "lane not on the network",
					fmt.Sprintf("vehicle %s lane %s pos %g", id, lane, pos))
			}
			return nil
		}
	} else {
		if math.IsNaN(x) || math.IsNaN(y) {
			return s.fail(t, "attributes x and y: %w", errMissing)
		}
		if x < -180 || x > 180 || y < -90 || y > 90 {
			return s.fail(t, "x=%g y=%g are not longitude/latitude: run sumo with --fcd-output.geo true, or set Net", x, y)
		}
		lat, lng = y, x
	}

	var ev engine.Event
	if mode != "" {
		ev = engine.NewEvent(engine.KindTransit)
		ev.Mode = mode
		ev.Route = routeOf(opt.Lines, id)
	} else {
		ev = engine.NewEvent(engine.KindProbe)
	}
	ev.TS = startMs + int64(math.Round(stepTime*1000))
	ev.ID = opt.IDPrefix + id
	ev.Lat, ev.Lng = lat, lng
	ev.Source = source
	ev.SpeedKmh = round(speed*3.6, 1e3)
	if !math.IsNaN(angle) && mode == "" {
		ev.HeadingDeg = TrueHeading(angle, lat, lng, opt.UTMZone)
	}
	if err := ingest.Validate(&ev); err != nil {
		return s.fail(t, "event is not valid: %w", err)
	}
	if opt.Truth != nil {
		opt.Truth(&ev, lane, pos)
	}
	if mode != "" {
		st.Transit++
	} else {
		st.Probes++
	}
	if err := emit(ev); err != nil {
		return &EmitError{What: s.what, Line: s.elemLine(), ID: id, Err: err}
	}
	return nil
}

// TransitMode is the transit mode of vType typ (types maps vType ids to modes, may be nil; otherwise a
// type named like a bus or a tram is one), or "" for an ordinary vehicle.
func TransitMode(types map[string]string, typ string) string {
	if m, ok := types[typ]; ok {
		return m
	}
	l := strings.ToLower(typ)
	switch {
	case strings.Contains(l, "bus"):
		return "bus"
	case strings.Contains(l, "tram"):
		return "tram"
	}
	return ""
}

// routeOf is the transit line of vehicle id.
func routeOf(lines map[string]string, id string) string {
	if l := lines[id]; l != "" {
		return l
	}
	base := StripIndex(id)
	if l := lines[base]; l != "" {
		return l
	}
	return base
}

// StripIndex removes a trailing repetition index: "bus_130_0" → "bus_130", "flow4.12" → "flow4". An id that
// is only an index stays as it is.
func StripIndex(id string) string {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	if i < len(id) && i > 1 && (id[i-1] == '_' || id[i-1] == '.') {
		return id[:i-1]
	}
	return id
}

// TrueHeading converts SUMO's angle (degrees, 0 = grid north, clockwise) to a bearing from true north in
// [0, 360): bearing = angle + γ, where γ is the UTM grid convergence at (lat, lng).
func TrueHeading(angle, lat, lng float64, zone int) float64 {
	if zone >= 0 {
		if zone == 0 {
			zone = int(math.Floor((lng+180)/6)) + 1
		}
		lon0 := float64(zone)*6 - 183
		rad := math.Pi / 180
		angle += math.Atan(math.Tan((lng-lon0)*rad)*math.Sin(lat*rad)) / rad
	}
	angle = math.Mod(angle, 360)
	if angle < 0 {
		angle += 360
	}
	angle = round(angle, 100) // SUMO writes 2 decimals; keep the wire short
	if angle >= 360 {
		angle = 0
	}
	return angle
}

// round rounds x to 1/scale (SUMO writes 2 decimals; unit conversions add float noise to the wire).
func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

// UTMZoneOf returns the UTM zone of a SUMO net's projParameter ("+proj=utm +zone=32 +ellps=WGS84 ..."), or
// -1 when the projection is not UTM (then FCDOptions.UTMZone = -1 leaves headings uncorrected).
func UTMZoneOf(projParameter string) int {
	if !strings.Contains(projParameter, "+proj=utm") {
		return -1
	}
	for _, f := range strings.Fields(projParameter) {
		if z, ok := strings.CutPrefix(f, "+zone="); ok {
			n := 0
			for _, c := range z {
				if c < '0' || c > '9' {
					return -1
				}
				n = n*10 + int(c-'0')
			}
			if n >= 1 && n <= 60 {
				return n
			}
		}
	}
	return -1
}

// ReadVehicleLines streams SUMO route files (<routes>) and returns the transit line of every <vehicle>,
// <trip> and <flow> that has a line attribute, keyed by its id: FCDOptions.Lines.
func ReadVehicleLines(r io.Reader) (map[string]string, error) {
	const what = "routes"
	s := newScanner(r, what)
	lines := map[string]string{}
	for {
		tok, err := s.next()
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch t.Name.Local {
		case "vehicle", "trip", "flow":
			var id, line string
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "id":
					id = a.Value
				case "line":
					line = a.Value
				}
			}
			if id != "" && line != "" {
				lines[id] = line
			}
		}
	}
}

// attrTime returns the SUMO time attribute name of t, and whether it was there.
func attrTime(t *xml.StartElement, name string) (float64, bool, error) {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			v, err := simTime(name, a.Value)
			return v, true, err
		}
	}
	return 0, false, nil
}
