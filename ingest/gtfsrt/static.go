package gtfsrt

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // agency_timezone names a zone; schedules are in local time
)

// LatLng is a position in WGS84 degrees.
type LatLng struct{ Lat, Lng float64 }

// Route is what the static feed says about one route.
type Route struct {
	Name string // route_short_name, else route_long_name, else route_id
	Type int    // route_type
	Mode string // wire mode (bus, tram, metro) or "" when route_type has none (ferry, aerial lift, ...)
}

type stopTime struct {
	seq      uint32
	stop     string
	arr, dep int32 // seconds after "noon minus 12h" of the service day; -1 when absent
}

type trip struct {
	route string
	stops []stopTime // by stop_sequence
}

// Static is the part of a static GTFS feed the realtime adapter needs: route names and modes, stop positions and
// the stop times of each trip. It is read-only after LoadStatic and safe for concurrent use.
type Static struct {
	Loc    *time.Location // agency_timezone (UTC when absent)
	Routes map[string]Route
	Stops  map[string]LatLng
	trips  map[string]*trip
}

// ModeOf maps a GTFS route_type (basic or extended) to a wire mode. Heavy and commuter rail become "metro": the
// wire format has no rail mode, and both run on their own right of way like a metro. Ferries, aerial lifts,
// funiculars and taxis have no wire mode.
func ModeOf(routeType int) string {
	switch {
	case routeType == 0 || routeType == 5 || (routeType >= 900 && routeType < 1000):
		return "tram"
	case routeType == 1 || routeType == 2 || routeType == 12 || (routeType >= 100 && routeType < 200) || (routeType >= 400 && routeType < 500):
		return "metro"
	case routeType == 3 || routeType == 11 || (routeType >= 200 && routeType < 300) || (routeType >= 700 && routeType < 900):
		return "bus"
	}
	return ""
}

// LoadStatic reads the static GTFS zip at path.
func LoadStatic(path string) (*Static, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open static GTFS: %w", err)
	}
	defer zr.Close()
	st, err := ReadStatic(&zr.Reader)
	if err != nil {
		return nil, fmt.Errorf("cannot read static GTFS %s: %w", path, err)
	}
	return st, nil
}

// ReadStatic reads agency.txt, routes.txt, trips.txt, stops.txt and stop_times.txt from a static GTFS zip.
func ReadStatic(zr *zip.Reader) (*Static, error) {
	st := &Static{Loc: time.UTC, Routes: map[string]Route{}, Stops: map[string]LatLng{}, trips: map[string]*trip{}}
	if err := eachRow(zr, "agency.txt", false, func(r row) error {
		if tz := r.get("agency_timezone"); tz != "" && st.Loc == time.UTC {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return fmt.Errorf("agency_timezone %q: %w", tz, err)
			}
			st.Loc = loc
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRow(zr, "routes.txt", true, func(r row) error {
		id := r.get("route_id")
		t, err := strconv.Atoi(r.get("route_type"))
		if err != nil {
			return fmt.Errorf("route %q: route_type %q is not an integer", id, r.get("route_type"))
		}
		name := r.get("route_short_name")
		if name == "" {
			name = r.get("route_long_name")
		}
		if name == "" {
			name = id
		}
		st.Routes[id] = Route{Name: name, Type: t, Mode: ModeOf(t)}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRow(zr, "stops.txt", true, func(r row) error {
		lat, err1 := strconv.ParseFloat(r.get("stop_lat"), 64)
		lng, err2 := strconv.ParseFloat(r.get("stop_lon"), 64)
		if err1 != nil || err2 != nil {
			return nil // stations without position (generic nodes, boarding areas) are legal in GTFS
		}
		st.Stops[r.get("stop_id")] = LatLng{lat, lng}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRow(zr, "trips.txt", true, func(r row) error {
		st.trips[r.get("trip_id")] = &trip{route: r.get("route_id")}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRow(zr, "stop_times.txt", true, func(r row) error {
		tr := st.trips[r.get("trip_id")]
		if tr == nil {
			return nil
		}
		seq, err := strconv.ParseUint(r.get("stop_sequence"), 10, 32)
		if err != nil {
			return fmt.Errorf("stop_sequence %q is not an integer", r.get("stop_sequence"))
		}
		arr, dep := gtfsTime(r.get("arrival_time")), gtfsTime(r.get("departure_time"))
		if arr < 0 {
			arr = dep
		}
		if dep < 0 {
			dep = arr
		}
		tr.stops = append(tr.stops, stopTime{seq: uint32(seq), stop: r.get("stop_id"), arr: arr, dep: dep})
		return nil
	}); err != nil {
		return nil, err
	}
	for _, tr := range st.trips {
		sort.Slice(tr.stops, func(i, j int) bool { return tr.stops[i].seq < tr.stops[j].seq })
	}
	return st, nil
}

// RouteOf returns the route id of a trip in the static feed.
func (st *Static) RouteOf(tripID string) (string, bool) {
	if tr := st.trips[tripID]; tr != nil {
		return tr.route, true
	}
	return "", false
}

// gtfsTime parses H:MM:SS (hours may pass 24) into seconds, or -1.
func gtfsTime(s string) int32 {
	p := strings.Split(strings.TrimSpace(s), ":")
	if len(p) != 3 {
		return -1
	}
	h, e1 := strconv.Atoi(p[0])
	m, e2 := strconv.Atoi(p[1])
	sec, e3 := strconv.Atoi(p[2])
	if e1 != nil || e2 != nil || e3 != nil || h < 0 || m < 0 || m > 59 || sec < 0 || sec > 59 || h > 200 {
		return -1
	}
	return int32(h*3600 + m*60 + sec)
}

type row struct {
	col map[string]int
	rec []string
}

func (r row) get(name string) string {
	if i, ok := r.col[name]; ok && i < len(r.rec) {
		return strings.TrimSpace(r.rec[i])
	}
	return ""
}

// eachRow calls fn for each row of the CSV file name in zr; a missing optional file is no error.
func eachRow(zr *zip.Reader, name string, required bool, fn func(row) error) error {
	f, err := zr.Open(name)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot open %s: %w", name, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("cannot read %s header: %w", name, err)
	}
	r := row{col: map[string]int{}}
	for i, h := range head {
		r.col[strings.TrimSpace(h)] = i
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
		r.rec = rec
		if err := fn(r); err != nil {
			line, _ := cr.FieldPos(0)
			return fmt.Errorf("cannot use %s line %d: %w", name, line, err)
		}
	}
}
