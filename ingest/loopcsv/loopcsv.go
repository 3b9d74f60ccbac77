// Package loopcsv turns wide loop-detector speed tables (METR-LA / PeMS-BAY style: one column per sensor, one row
// per aggregation interval, speeds in mph or km/h) plus a sensor-location file into `detector` events of wire
// format version 1.
//
// Such tables hold only speed. The wire format requires flow_vph and occupancy for a detector event, so both are
// estimated from the speed with Greenshields' fundamental diagram (see Estimate and docs/feeds.md) and the
// events are marked with a source ending in "/est" so that consumers can tell measured from estimated values.
package loopcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // start times are given in a named zone (METR-LA: America/Los_Angeles)

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/skipped"
)

// MphToKmh converts miles per hour to kilometres per hour.
const MphToKmh = 1.609344

// LatLng is a sensor position.
type LatLng struct{ Lat, Lng float64 }

// Diagram is Greenshields' linear speed-density model, per lane: v = Vf (1 - k/Kj).
type Diagram struct {
	FreeFlowKmh float64 // Vf, the free-flow speed; speeds at or above it mean density 0
	JamDensity  float64 // Kj, vehicles per km per lane at standstill
	EffLengthM  float64 // effective vehicle length seen by the loop (vehicle + loop), for occupancy = k * L
}

// DefaultDiagram suits urban freeways: Vf 113 km/h (70 mph, the highest speed in METR-LA), Kj 120 veh/km/lane,
// effective length 6 m (4.5 m car + 1.5 m loop).
var DefaultDiagram = Diagram{FreeFlowKmh: 70 * MphToKmh, JamDensity: 120, EffLengthM: 6}

// Estimate returns the flow (veh/h per lane) and occupancy (0..1) that the diagram gives for speed v (km/h).
func (d Diagram) Estimate(v float64) (flowVph, occupancy float64) {
	if v >= d.FreeFlowKmh {
		return 0, 0
	}
	if v < 0 {
		v = 0
	}
	k := d.JamDensity * (1 - v/d.FreeFlowKmh) // veh/km/lane
	occ := k * d.EffLengthM / 1000
	if occ > 1 {
		occ = 1
	}
	return k * v, occ
}

// Options configure a Decoder.
type Options struct {
	Name      string            // input name for messages
	Start     time.Time         // time of the first data row (used when the table has no time column)
	Interval  time.Duration     // aggregation interval (row spacing), > 0
	Locations map[string]LatLng // sensor id -> position (see LoadLocations)
	Mph       bool              // speeds are in mph (METR-LA, PeMS); false: km/h
	Source    string            // wire source; default "metr-la/est"
	IDPrefix  string            // prepended to sensor ids
	Diagram   Diagram           // zero value: DefaultDiagram
	// KeepZero keeps speed 0 readings; by default they are skipped, because in METR-LA and PeMS a 0 is a missing
	// reading, not a standstill.
	KeepZero bool
	// Location of wall-clock times in a time column (default UTC).
	Location *time.Location
}

// Decoder converts one wide table. It keeps the header and the locations: state bounded by the table width.
// It is owned by one goroutine.
type Decoder struct {
	opts    Options
	Skipped skipped.Log // readings not turned into events, by reason
	Emitted int
}

// NewDecoder checks opts and returns a Decoder.
func NewDecoder(opts Options) (*Decoder, error) {
	if opts.Interval <= 0 {
		return nil, fmt.Errorf("cannot decode loop CSV (interval %v): interval must be > 0", opts.Interval)
	}
	if opts.Diagram == (Diagram{}) {
		opts.Diagram = DefaultDiagram
	}
	if opts.Diagram.FreeFlowKmh <= 0 || opts.Diagram.JamDensity <= 0 || opts.Diagram.EffLengthM <= 0 {
		return nil, fmt.Errorf("cannot decode loop CSV (diagram %+v): every diagram parameter must be > 0", opts.Diagram)
	}
	if opts.Source == "" {
		opts.Source = "metr-la/est"
	}
	if opts.Name == "" {
		opts.Name = "input"
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	return &Decoder{opts: opts}, nil
}

var timeHeaders = map[string]bool{"": true, "time": true, "timestamp": true, "date": true, "datetime": true}

// Decode reads the table from r and calls emit with each event, row by row and column by column. The event is
// passed by value: the callee owns it. Readings that cannot be converted are counted in d.Skipped with their
// line and column; Decode returns an error when the header is unusable, r fails or emit returns one.
func (d *Decoder) Decode(r io.Reader, emit func(engine.Event) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("cannot read %s header: %w", d.opts.Name, err)
	}
	timeCol := timeHeaders[strings.ToLower(strings.TrimSpace(head[0]))]
	first := 0
	if timeCol {
		first = 1
	}
	ids := make([]string, len(head))
	pos := make([]LatLng, len(head))
	known := make([]bool, len(head))
	for i := first; i < len(head); i++ {
		id := strings.TrimSpace(head[i])
		ids[i] = d.opts.IDPrefix + id
		if len(ids[i]) == 0 || len(ids[i]) > 128 {
			return fmt.Errorf("cannot read %s header column %d: sensor id %q must give an event id of 1..128 bytes", d.opts.Name, i+1, id)
		}
		pos[i], known[i] = d.opts.Locations[id]
	}
	if len(head)-first == 0 {
		return fmt.Errorf("cannot read %s header: no sensor columns", d.opts.Name)
	}
	intervalS := d.opts.Interval.Seconds()
	dia := d.opts.Diagram
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && !errors.Is(err, csv.ErrFieldCount) {
			d.Skipped.Add(d.opts.Name+" line "+strconv.Itoa(pe.Line), "malformed CSV row", pe.Err.Error())
			continue
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return fmt.Errorf("cannot read %s after row %d: %w", d.opts.Name, row, err)
		}
		if len(rec) == 0 {
			continue
		}
		line, _ := cr.FieldPos(0) // safe: rec has a field
		where := d.opts.Name + " line " + strconv.Itoa(line)
		if len(rec) != len(head) {
			d.Skipped.Add(where, "row width differs from header", fmt.Sprintf("%d fields, header has %d", len(rec), len(head)))
			continue
		}
		var ts time.Time
		if timeCol {
			ts, err = parseRowTime(strings.TrimSpace(rec[0]), d.opts.Location)
			if err != nil {
				d.Skipped.Add(where, "bad time in column 1", trunc(rec[0]))
				continue
			}
		} else {
			ts = d.opts.Start.Add(time.Duration(row) * d.opts.Interval)
		}
		ms := ts.UnixMilli()
		for i := first; i < len(rec); i++ {
			if !known[i] {
				d.Skipped.Add(where+" column "+strconv.Itoa(i+1), "no location for sensor", ids[i])
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				if strings.TrimSpace(rec[i]) == "" {
					d.Skipped.Add(where+" column "+strconv.Itoa(i+1), "empty speed", ids[i])
				} else {
					d.Skipped.Add(where+" column "+strconv.Itoa(i+1), "bad speed", trunc(rec[i]))
				}
				continue
			}
			if v == 0 && !d.opts.KeepZero {
				d.Skipped.Add(where+" column "+strconv.Itoa(i+1), "speed 0 (missing reading)", ids[i])
				continue
			}
			if d.opts.Mph {
				v *= MphToKmh
			}
			ev := engine.NewEvent(engine.KindDetector)
			ev.TS = ms
			ev.ID = ids[i]
			ev.Lat, ev.Lng = pos[i].Lat, pos[i].Lng
			ev.Source = d.opts.Source
			ev.SpeedKmh = v
			ev.FlowVph, ev.Occupancy = dia.Estimate(v)
			ev.IntervalS = intervalS
			if err := ingest.Validate(&ev); err != nil {
				d.Skipped.Add(where+" column "+strconv.Itoa(i+1), "invalid event", err.Error())
				continue
			}
			d.Emitted++
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
}

func parseRowTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q", s)
}

// LoadLocations reads a sensor-location CSV with a header naming a sensor id column (sensor_id, id or station) and
// latitude (latitude, lat) and longitude (longitude, lng, lon) columns, e.g. METR-LA's sensor_locations.csv.
func LoadLocations(path string) (map[string]LatLng, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open sensor locations: %w", err)
	}
	defer f.Close()
	m, err := ReadLocations(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read sensor locations %s: %w", path, err)
	}
	return m, nil
}

// ReadLocations reads a sensor-location CSV (see LoadLocations).
func ReadLocations(r io.Reader) (map[string]LatLng, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot read header: %w", err)
	}
	idc, latc, lngc := -1, -1, -1
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "sensor_id", "id", "station", "station_id":
			idc = i
		case "latitude", "lat":
			latc = i
		case "longitude", "lng", "lon":
			lngc = i
		}
	}
	if idc < 0 || latc < 0 || lngc < 0 {
		return nil, fmt.Errorf("cannot find columns in header %q: need sensor_id, latitude, longitude", head)
	}
	m := map[string]LatLng{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		lat, err1 := strconv.ParseFloat(strings.TrimSpace(rec[latc]), 64)
		lng, err2 := strconv.ParseFloat(strings.TrimSpace(rec[lngc]), 64)
		if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180 || (lat == 0 && lng == 0) {
			return nil, fmt.Errorf("line %d: bad position %q,%q for sensor %q", line, rec[latc], rec[lngc], rec[idc])
		}
		m[strings.TrimSpace(rec[idc])] = LatLng{lat, lng}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
