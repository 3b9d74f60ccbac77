// Package gtfsrt turns GTFS-realtime VehiclePositions and TripUpdates (official MobilityData Go bindings) plus an
// optional static GTFS feed into `transit` events of wire format version 1.
//
// A vehicle with a position gives one event per snapshot: route name and mode from the static routes.txt (mode
// from route_type, see ModeOf), delay_s from its trip's TripUpdate, speed from position.speed, else from its
// previous position (one kept per vehicle, bounded), else 0 when it is STOPPED_AT a stop, else the scheduled
// speed of its current segment. A trip with a TripUpdate but no vehicle position gives an event at its next
// stop's position with the scheduled speed of the segment ending there, marked with Source+"/schedule".
package gtfsrt

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/MobilityData/gtfs-realtime-bindings/golang/gtfs"
	"google.golang.org/protobuf/proto"

	"citybrain/engine"
	"citybrain/ingest"
	"citybrain/ingest/skipped"
)

// MaxFeedBytes bounds one protobuf feed message.
const MaxFeedBytes = 64 << 20

// Options configure a Decoder.
type Options struct {
	Source      string // wire source; default "gtfs-rt"
	IDPrefix    string // prepended to vehicle ids, e.g. "ct-"
	Mode        string // mode for routes the static feed does not know (bus, tram, metro); "" skips them
	MaxVehicles int    // vehicles remembered for speed; default 100000
	// MaxGap is the longest time between two positions of a vehicle that still gives a speed; default 10 min.
	MaxGap time.Duration
}

type lastPos struct {
	ts       int64 // ms
	lat, lng float64
	speed    float64 // km/h given at ts, NaN when unknown
}

// Decoder converts snapshots of one agency's feeds. It keeps the last position of each vehicle (bounded by
// MaxVehicles; entries older than MaxGap are evicted first) and is owned by one goroutine.
type Decoder struct {
	st   *Static // may be nil
	opts Options
	last map[string]lastPos

	Skipped skipped.Log // entities not turned into events, by reason
	Emitted int
	// Forgotten counts vehicles whose last position was not kept because the table was full.
	Forgotten int
}

// NewDecoder returns a Decoder using the static feed st (nil: route ids as names, opts.Mode as mode, no
// schedule).
func NewDecoder(st *Static, opts Options) (*Decoder, error) {
	if opts.Source == "" {
		opts.Source = "gtfs-rt"
	}
	if opts.Mode != "" && opts.Mode != "bus" && opts.Mode != "tram" && opts.Mode != "metro" {
		return nil, fmt.Errorf("cannot decode GTFS-realtime (mode %q): mode must be bus, tram or metro", opts.Mode)
	}
	if opts.MaxVehicles <= 0 {
		opts.MaxVehicles = 100000
	}
	if opts.MaxGap <= 0 {
		opts.MaxGap = 10 * time.Minute
	}
	return &Decoder{st: st, opts: opts, last: map[string]lastPos{}}, nil
}

// Feed is one decoded feed message and the name (file or URL) used in messages.
type Feed struct {
	Name string
	Msg  *gtfs.FeedMessage
}

// ReadFeed reads and parses one GTFS-realtime FeedMessage (at most MaxFeedBytes) from r.
func ReadFeed(r io.Reader, name string) (Feed, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFeedBytes+1))
	if err != nil {
		return Feed{}, fmt.Errorf("cannot read GTFS-realtime feed %s: %w", name, err)
	}
	if len(b) > MaxFeedBytes {
		return Feed{}, fmt.Errorf("cannot read GTFS-realtime feed %s: larger than %d bytes", name, MaxFeedBytes)
	}
	return ParseFeed(b, name)
}

// ParseFeed parses one GTFS-realtime FeedMessage.
func ParseFeed(b []byte, name string) (Feed, error) {
	m := new(gtfs.FeedMessage)
	if err := proto.Unmarshal(b, m); err != nil {
		return Feed{}, fmt.Errorf("cannot parse GTFS-realtime feed %s (%d bytes): %w", name, len(b), err)
	}
	return Feed{Name: name, Msg: m}, nil
}

type tuInfo struct {
	where   string
	tu      *gtfs.TripUpdate
	ts      int64 // ms
	delay   float64
	vehicle string
}

// Snapshot converts feeds fetched together (e.g. the VehiclePositions and TripUpdates files of one poll) and calls
// emit with each event: first one per vehicle position, then one per trip update without a position. The event
// is passed by value: the callee owns it. Entities that give no event are counted in d.Skipped with their feed
// and entity; Snapshot returns only emit's error.
func (d *Decoder) Snapshot(feeds []Feed, emit func(engine.Event) error) error {
	tus := map[string]*tuInfo{}
	var tuOrder []string
	type vp struct {
		where string
		v     *gtfs.VehiclePosition
		hdrTS uint64
	}
	var vps []vp
	for _, f := range feeds {
		hdrTS := f.Msg.GetHeader().GetTimestamp()
		for i, ent := range f.Msg.GetEntity() {
			where := f.Name + " entity " + strconv.Itoa(i+1) + " (id " + strconv.Quote(ent.GetId()) + ")"
			if ent.GetIsDeleted() {
				d.Skipped.Add(where, "entity is_deleted", "")
				continue
			}
			used := false
			if v := ent.GetVehicle(); v != nil {
				vps = append(vps, vp{where, v, hdrTS})
				used = true
			}
			if tu := ent.GetTripUpdate(); tu != nil {
				used = true
				tid := tu.GetTrip().GetTripId()
				if tid == "" {
					d.Skipped.Add(where, "trip update without trip_id", "")
				} else {
					ts := int64(tu.GetTimestamp())
					if ts == 0 {
						ts = int64(hdrTS)
					}
					if _, dup := tus[tid]; !dup {
						tuOrder = append(tuOrder, tid)
					}
					tus[tid] = &tuInfo{where: where, tu: tu, ts: ts * 1000, delay: math.NaN(), vehicle: tu.GetVehicle().GetId()}
				}
			}
			if !used {
				if ent.GetAlert() != nil {
					d.Skipped.Add(where, "alert entity (no transit event)", "")
				} else {
					d.Skipped.Add(where, "entity without vehicle or trip_update", "")
				}
			}
		}
	}
	for _, tid := range tuOrder {
		info := tus[tid]
		info.delay = d.tripDelay(info)
	}
	covered := map[string]bool{}
	for _, p := range vps {
		if err := d.vehicle(p.where, p.v, p.hdrTS, tus, covered, emit); err != nil {
			return err
		}
	}
	for _, tid := range tuOrder {
		info := tus[tid]
		if covered["t:"+tid] || (info.vehicle != "" && covered["v:"+info.vehicle]) {
			continue
		}
		if err := d.tripOnly(tid, info, emit); err != nil {
			return err
		}
	}
	d.evict()
	return nil
}

func (d *Decoder) vehicle(where string, v *gtfs.VehiclePosition, hdrTS uint64, tus map[string]*tuInfo, covered map[string]bool, emit func(engine.Event) error) error {
	tid := v.GetTrip().GetTripId()
	vid := v.GetVehicle().GetId()
	if vid == "" {
		vid = v.GetVehicle().GetLabel()
	}
	if vid == "" && tid != "" {
		vid = "trip-" + tid
	}
	if vid == "" {
		d.Skipped.Add(where, "vehicle position without vehicle id, label or trip_id", "")
		return nil
	}
	if tid != "" {
		covered["t:"+tid] = true
	}
	covered["v:"+v.GetVehicle().GetId()] = true
	pos := v.GetPosition()
	if pos == nil || (pos.GetLatitude() == 0 && pos.GetLongitude() == 0) {
		d.Skipped.Add(where, "vehicle position without position", vid)
		return nil
	}
	ts := int64(v.GetTimestamp())
	if ts == 0 {
		ts = int64(hdrTS)
	}
	if ts == 0 {
		d.Skipped.Add(where, "no timestamp (vehicle and header)", vid)
		return nil
	}
	ts *= 1000
	ev := engine.NewEvent(engine.KindTransit)
	ev.TS = ts
	ev.ID = d.opts.IDPrefix + vid
	ev.Lat, ev.Lng = float64(pos.GetLatitude()), float64(pos.GetLongitude())
	ev.Source = d.opts.Source
	routeID := v.GetTrip().GetRouteId()
	if routeID == "" && d.st != nil {
		routeID, _ = d.st.RouteOf(tid)
	}
	var reason string
	if ev.Route, ev.Mode, reason = d.route(routeID); reason != "" {
		d.Skipped.Add(where, reason, routeID)
		return nil
	}
	if pos.Bearing != nil {
		ev.HeadingDeg = math.Mod(float64(pos.GetBearing())+360, 360)
	}
	prev, hadPrev := d.last[ev.ID]
	if hadPrev && prev.ts == ts {
		d.Skipped.Add(where, "unchanged position (same timestamp as the previous snapshot)", vid)
		return nil
	}
	switch {
	case pos.Speed != nil && pos.GetSpeed() >= 0 && !math.IsInf(float64(pos.GetSpeed()), 0):
		ev.SpeedKmh = float64(pos.GetSpeed()) * 3.6
	case hadPrev && ts > prev.ts && time.Duration(ts-prev.ts)*time.Millisecond <= d.opts.MaxGap:
		ev.SpeedKmh = haversineM(prev.lat, prev.lng, ev.Lat, ev.Lng) / (float64(ts-prev.ts) / 1000) * 3.6
	case v.CurrentStatus != nil && v.GetCurrentStatus() == gtfs.VehiclePosition_STOPPED_AT:
		ev.SpeedKmh = 0
	default:
		if s, ok := d.scheduledSpeed(tid, v.GetStopId(), v.GetCurrentStopSequence()); ok {
			ev.SpeedKmh = s
		} else if info := tus[tid]; info != nil && d.st != nil && d.st.trips[tid] != nil {
			// The position names no stop: use the segment to the next stop of the trip's update.
			if stu := nextStop(info.tu, ts/1000); stu != nil {
				idx := d.st.trips[tid].find(stu.GetStopId(), stu.GetStopSequence(), stu.StopSequence != nil)
				if s, ok := d.segmentSpeed(tid, idx); ok {
					ev.SpeedKmh = s
					ev.Source = d.opts.Source + "/schedule-speed"
				}
			}
		}
	}
	if info := tus[tid]; info != nil {
		ev.DelayS = info.delay
	}
	if !engine.Has(ev.SpeedKmh) {
		d.remember(ev.ID, lastPos{ts: ts, lat: ev.Lat, lng: ev.Lng, speed: math.NaN()})
		d.Skipped.Add(where, "no speed (feed has none, first position of the vehicle, no schedule)", vid)
		return nil
	}
	return d.finish(where, &ev, emit)
}

func (d *Decoder) finish(where string, ev *engine.Event, emit func(engine.Event) error) error {
	if err := ingest.Validate(ev); err != nil {
		d.Skipped.Add(where, "invalid event", err.Error())
		return nil
	}
	d.remember(ev.ID, lastPos{ts: ev.TS, lat: ev.Lat, lng: ev.Lng, speed: ev.SpeedKmh})
	d.Emitted++
	return emit(*ev)
}

// tripOnly emits a trip update without a vehicle position at its next stop.
func (d *Decoder) tripOnly(tid string, info *tuInfo, emit func(engine.Event) error) error {
	where := info.where
	if d.st == nil {
		d.Skipped.Add(where, "trip update without vehicle position and no static GTFS for stop positions", tid)
		return nil
	}
	if info.ts == 0 {
		d.Skipped.Add(where, "no timestamp (trip update and header)", tid)
		return nil
	}
	stu := nextStop(info.tu, info.ts/1000)
	if stu == nil {
		d.Skipped.Add(where, "trip update without stop time updates", tid)
		return nil
	}
	p, ok := d.st.Stops[stu.GetStopId()]
	idx := -1
	if tr := d.st.trips[tid]; tr != nil {
		idx = tr.find(stu.GetStopId(), stu.GetStopSequence(), stu.StopSequence != nil)
		if !ok && idx >= 0 {
			p, ok = d.st.Stops[tr.stops[idx].stop]
		}
	}
	if !ok {
		d.Skipped.Add(where, "next stop not in static stops.txt", stu.GetStopId())
		return nil
	}
	vid := info.vehicle
	if vid == "" {
		vid = "trip-" + tid
	}
	ev := engine.NewEvent(engine.KindTransit)
	ev.TS = info.ts
	ev.ID = d.opts.IDPrefix + vid
	ev.Lat, ev.Lng = p.Lat, p.Lng
	ev.Source = d.opts.Source + "/schedule"
	routeID := info.tu.GetTrip().GetRouteId()
	if routeID == "" {
		routeID, _ = d.st.RouteOf(tid)
	}
	var reason string
	if ev.Route, ev.Mode, reason = d.route(routeID); reason != "" {
		d.Skipped.Add(where, reason, routeID)
		return nil
	}
	if prev, had := d.last[ev.ID]; had && prev.ts == ev.TS {
		d.Skipped.Add(where, "unchanged trip update (same timestamp as the previous snapshot)", vid)
		return nil
	}
	s, ok := d.segmentSpeed(tid, idx)
	if !ok {
		d.Skipped.Add(where, "no scheduled speed for the segment to the next stop", tid)
		return nil
	}
	ev.SpeedKmh = s
	ev.DelayS = info.delay
	return d.finish(where, &ev, emit)
}

// route returns the wire route name and mode of a route id, or a skip reason.
func (d *Decoder) route(routeID string) (name, mode, reason string) {
	if d.st != nil {
		if r, ok := d.st.Routes[routeID]; ok {
			if r.Mode == "" {
				return "", "", "route_type " + strconv.Itoa(r.Type) + " has no wire mode (ferry, aerial lift, funicular, ...)"
			}
			return r.Name, r.Mode, ""
		}
	}
	if routeID == "" {
		return "", "", "no route (trip descriptor has no route_id and the trip is not in the static feed)"
	}
	if d.opts.Mode == "" {
		return "", "", "route not in the static feed and no default mode"
	}
	return routeID, d.opts.Mode, ""
}

// nextStop returns the first stop time update whose time is at or after ts (seconds), else the last one.
func nextStop(tu *gtfs.TripUpdate, ts int64) *gtfs.TripUpdate_StopTimeUpdate {
	stus := tu.GetStopTimeUpdate()
	if len(stus) == 0 {
		return nil
	}
	for _, s := range stus {
		t := s.GetArrival().GetTime()
		if t == 0 {
			t = s.GetDeparture().GetTime()
		}
		if t >= ts {
			return s
		}
	}
	return stus[len(stus)-1]
}

// tripDelay returns the delay in seconds of a trip update at its next stop, or NaN.
func (d *Decoder) tripDelay(info *tuInfo) float64 {
	tu := info.tu
	if tu.Delay != nil {
		return float64(tu.GetDelay())
	}
	stu := nextStop(tu, info.ts/1000)
	if stu == nil {
		return math.NaN()
	}
	for _, ev := range []*gtfs.TripUpdate_StopTimeEvent{stu.GetArrival(), stu.GetDeparture()} {
		if ev != nil && ev.Delay != nil {
			return float64(ev.GetDelay())
		}
	}
	if d.st == nil {
		return math.NaN()
	}
	tr := d.st.trips[tu.GetTrip().GetTripId()]
	if tr == nil {
		return math.NaN()
	}
	idx := tr.find(stu.GetStopId(), stu.GetStopSequence(), stu.StopSequence != nil)
	if idx < 0 {
		return math.NaN()
	}
	sched, actual := tr.stops[idx].arr, stu.GetArrival().GetTime()
	if actual == 0 {
		sched, actual = tr.stops[idx].dep, stu.GetDeparture().GetTime()
	}
	if actual == 0 || sched < 0 {
		return math.NaN()
	}
	return d.delay(tu.GetTrip().GetStartDate(), sched, actual)
}

// delay compares an actual Unix time with a scheduled GTFS time of the service day; without a start_date it tries
// the local day of the actual time and the day before (trips past midnight) and keeps the smaller delay.
func (d *Decoder) delay(startDate string, sched int32, actual int64) float64 {
	dayStart := func(y int, m time.Month, day int) int64 {
		return time.Date(y, m, day, 12, 0, 0, 0, d.st.Loc).Add(-12 * time.Hour).Unix()
	}
	if t, err := time.ParseInLocation("20060102", startDate, d.st.Loc); err == nil {
		return float64(actual - (dayStart(t.Year(), t.Month(), t.Day()) + int64(sched)))
	}
	lt := time.Unix(actual, 0).In(d.st.Loc)
	best := math.NaN()
	for back := 0; back <= 1; back++ {
		y, m, day := lt.AddDate(0, 0, -back).Date()
		dl := float64(actual - (dayStart(y, m, day) + int64(sched)))
		if math.IsNaN(best) || math.Abs(dl) < math.Abs(best) {
			best = dl
		}
	}
	return best
}

// find returns the index of the stop time with sequence seq (when hasSeq) or stop id, or -1.
func (tr *trip) find(stopID string, seq uint32, hasSeq bool) int {
	if hasSeq {
		i := sort.Search(len(tr.stops), func(i int) bool { return tr.stops[i].seq >= seq })
		if i < len(tr.stops) && tr.stops[i].seq == seq {
			return i
		}
	}
	for i := range tr.stops {
		if tr.stops[i].stop == stopID {
			return i
		}
	}
	return -1
}

// scheduledSpeed is the scheduled speed of the segment ending at the vehicle's current stop.
func (d *Decoder) scheduledSpeed(tid, stopID string, seq uint32) (float64, bool) {
	if d.st == nil || tid == "" {
		return 0, false
	}
	tr := d.st.trips[tid]
	if tr == nil {
		return 0, false
	}
	return d.segmentSpeed(tid, tr.find(stopID, seq, seq != 0))
}

// segmentSpeed is the scheduled speed (km/h) from stop idx-1 to stop idx of a trip (idx 0: from 0 to 1).
func (d *Decoder) segmentSpeed(tid string, idx int) (float64, bool) {
	tr := d.st.trips[tid]
	if tr == nil || idx < 0 || len(tr.stops) < 2 {
		return 0, false
	}
	if idx == 0 {
		idx = 1
	}
	a, b := tr.stops[idx-1], tr.stops[idx]
	pa, ok1 := d.st.Stops[a.stop]
	pb, ok2 := d.st.Stops[b.stop]
	dt := b.arr - a.dep
	if !ok1 || !ok2 || a.dep < 0 || b.arr < 0 || dt <= 0 {
		return 0, false
	}
	return haversineM(pa.Lat, pa.Lng, pb.Lat, pb.Lng) / float64(dt) * 3.6, true
}

// remember keeps the last position of a vehicle within the bound.
func (d *Decoder) remember(id string, p lastPos) {
	if _, ok := d.last[id]; !ok && len(d.last) >= d.opts.MaxVehicles {
		d.Forgotten++
		return
	}
	d.last[id] = p
}

// evict forgets vehicles not seen within MaxGap of the newest position, when the table is over half full.
func (d *Decoder) evict() {
	if len(d.last) < d.opts.MaxVehicles/2 {
		return
	}
	var newest int64
	for _, p := range d.last {
		newest = max(newest, p.ts)
	}
	cut := newest - d.opts.MaxGap.Milliseconds()
	for id, p := range d.last {
		if p.ts < cut {
			delete(d.last, id)
		}
	}
}

func haversineM(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dlat, dlng := (lat2-lat1)*rad, (lng2-lng1)*rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlng/2)*math.Sin(dlng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}
