// Package deepstream turns NVIDIA DeepStream nvmsgconv payloads (full schema: one object per message; minimal
// schema: many objects per frame) into `video` events of wire format version 1.
//
// Mapping (DefaultMapping, overridable with a JSON file): full-schema event types entry, moving and exit add the
// object to its camera's vehicle_count window (distinct object ids per camera per Interval); stopped becomes a
// stalled_vehicle event; parked, empty and reset are parking-spot or tracker states with no wire type and are
// skipped with that reason. Any wire video type may be the target of an event type. An object with a `person`
// part becomes a pedestrian event. See docs/feeds.md for the whole table.
//
// Camera position: the override table (Options.Cameras, from a cameras.csv of id,lat,lng) first, because an
// operator's survey beats a payload that DeepStream fills from a static config; then sensor.location, then
// place.location. A 0/0 position counts as absent (DeepStream's default); a camera with no position is skipped
// with a reason that names the --cameras file.
package deepstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/engine/evtime"
	"citybrain/ingest"
	"citybrain/ingest/internal/lines"
	"citybrain/ingest/skipped"
)

// MaxLine is the longest message line accepted.
const MaxLine = 4 << 20

// Action is what a DeepStream event type becomes: ActionCount, ActionSkip or a wire video type.
type Action string

// Actions that are not wire types.
const (
	ActionCount Action = "count" // add the object to the camera's vehicle_count window
	ActionSkip  Action = "skip"  // skip with the reason "event type X maps to skip"
)

// DefaultMapping maps the event types of the DeepStream schema (nv-schema.json: entry, exit, moving, stopped,
// parked, empty, reset).
func DefaultMapping() map[string]Action {
	return map[string]Action{
		"entry": ActionCount, "moving": ActionCount, "exit": ActionCount,
		"stopped": "stalled_vehicle",
		"parked":  ActionSkip, "empty": ActionSkip, "reset": ActionSkip,
	}
}

var videoTypes = map[Action]bool{"vehicle_count": false, "queue": false, "stalled_vehicle": true, "crash": true, "wrong_way": true, "pedestrian": true, "debris": true, "fire_smoke": true, "congestion": true}

// CheckMapping returns an error naming the first action that is neither count, skip nor a wire video type that
// a single message can give (vehicle_count and queue need aggregation or a length and cannot be targets).
func CheckMapping(m map[string]Action) error {
	for k, a := range m {
		if a != ActionCount && a != ActionSkip && !videoTypes[a] {
			return fmt.Errorf("cannot use mapping of event type %q: %q is not count, skip or one of stalled_vehicle, crash, wrong_way, pedestrian, debris, fire_smoke, congestion", k, a)
		}
	}
	return nil
}

// LoadMapping reads a JSON object of event type -> action, e.g. {"stopped": "stalled_vehicle", "parked": "skip"},
// merged over DefaultMapping.
func LoadMapping(r io.Reader) (map[string]Action, error) {
	var raw map[string]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("cannot decode DeepStream mapping: %w", err)
	}
	m := DefaultMapping()
	for k, v := range raw {
		m[strings.ToLower(k)] = Action(v)
	}
	return m, CheckMapping(m)
}

// LatLng is a camera position.
type LatLng struct{ Lat, Lng float64 }

// Options configure a Decoder.
type Options struct {
	Name     string            // input name for messages
	Cameras  map[string]LatLng // camera id -> surveyed position (see LoadCameras); wins over the payload
	Mapping  map[string]Action // nil: DefaultMapping
	Interval time.Duration     // vehicle_count window; default 1 minute
	Source   string            // default "deepstream"
	IDPrefix string            // prepended to camera ids
	// DefaultConfidence is used for single-message events (stalled_vehicle, pedestrian, ...) whose payload has no
	// confidence in (0, 1]. 0 (the default) skips them with a reason instead of inventing one.
	DefaultConfidence float64
	MaxCameras        int // open windows at most; default 100000
	MaxObjects        int // distinct object ids remembered per window; beyond, objects are counted without dedup
}

type window struct {
	start    int64 // ms, window start
	lat, lng float64
	objects  map[string]struct{}
	extra    int // objects past MaxObjects, counted without dedup
}

// Decoder converts one stream of messages. It keeps one open window per camera (bounded by MaxCameras) and is
// owned by one goroutine.
type Decoder struct {
	opts    Options
	windows map[string]*window
	maxTS   int64
	lastWM  int64 // window index of the last watermark sweep

	Skipped skipped.Log // messages or objects not turned into events, by reason
	Emitted int
}

// NewDecoder checks opts and returns a Decoder.
func NewDecoder(opts Options) (*Decoder, error) {
	if opts.Mapping == nil {
		opts.Mapping = DefaultMapping()
	}
	if err := CheckMapping(opts.Mapping); err != nil {
		return nil, err
	}
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.Interval < time.Millisecond {
		return nil, fmt.Errorf("cannot decode DeepStream (interval %v): interval must be >= 1ms", opts.Interval)
	}
	if opts.DefaultConfidence < 0 || opts.DefaultConfidence > 1 {
		return nil, fmt.Errorf("cannot decode DeepStream (default confidence %g): must be in [0, 1]", opts.DefaultConfidence)
	}
	if opts.Source == "" {
		opts.Source = "deepstream"
	}
	if opts.Name == "" {
		opts.Name = "input"
	}
	if opts.MaxCameras <= 0 {
		opts.MaxCameras = 100000
	}
	if opts.MaxObjects <= 0 {
		opts.MaxObjects = 4096
	}
	return &Decoder{opts: opts, windows: map[string]*window{}}, nil
}

type geo struct {
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
}

func (g *geo) pos() (LatLng, bool) {
	if g == nil || g.Lat == nil || g.Lon == nil || (*g.Lat == 0 && *g.Lon == 0) {
		return LatLng{}, false
	}
	return LatLng{*g.Lat, *g.Lon}, true
}

type conf struct {
	Confidence *float64 `json:"confidence"`
}

// message holds the fields of both schemas that the mapping uses.
type message struct {
	Timestamp string `json:"@timestamp"`
	Place     *struct {
		Location *geo `json:"location"`
	} `json:"place"`
	Sensor *struct {
		ID       string `json:"id"`
		Location *geo   `json:"location"`
	} `json:"sensor"`
	Object *struct {
		ID      string `json:"id"`
		Vehicle *conf  `json:"vehicle"`
		Person  *conf  `json:"person"`
	} `json:"object"`
	Event *struct {
		Type string `json:"type"`
	} `json:"event"`
	// minimal schema
	SensorID string   `json:"sensorId"`
	Objects  []string `json:"objects"`
}

// Decode reads messages (one JSON object per line, or one JSON array of them) from r and calls emit with each
// event. The event is passed by value: the callee owns it. Single-message events are emitted as they are read;
// vehicle_count windows when a later window of the same camera starts, when event time passes their end by one
// Interval, and at the end of r (Decode flushes every open window before it returns nil). Messages that cannot be
// converted are counted in d.Skipped with their line; Decode returns an error when r fails or emit returns one.
func (d *Decoder) Decode(r io.Reader, emit func(engine.Event) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if c, err := peek(br); err == nil && c == '[' {
		if err := d.decodeArray(br, emit); err != nil {
			return err
		}
		return d.Flush(emit)
	}
	lr := lines.NewReader(br, MaxLine)
	for {
		line, n, tooLong, err := lr.Next()
		if err == io.EOF {
			return d.Flush(emit)
		}
		if err != nil {
			return fmt.Errorf("cannot read %s line %d: %w", d.opts.Name, n+1, err)
		}
		where := d.opts.Name + " line " + strconv.Itoa(n)
		if tooLong {
			d.Skipped.Add(where, "line too long", fmt.Sprintf("over %d bytes", MaxLine))
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := d.Message(line, where, emit); err != nil {
			return err
		}
	}
}

func peek(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c, br.UnreadByte()
		}
	}
}

func (d *Decoder) decodeArray(r io.Reader, emit func(engine.Event) error) error {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("cannot read %s: JSON array start: %w", d.opts.Name, err)
	}
	for i := 1; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("cannot read %s element %d (byte %d): %w", d.opts.Name, i, dec.InputOffset(), err)
		}
		if err := d.Message(raw, d.opts.Name+" element "+strconv.Itoa(i), emit); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("cannot read %s: JSON array end: %w", d.opts.Name, err)
	}
	return nil
}

// Message converts one message (where names it in skip records) and calls emit for what it completes. The
// callee owns each event. Call Flush at the end of a stream.
func (d *Decoder) Message(b []byte, where string, emit func(engine.Event) error) error {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		d.Skipped.Add(where, "not a DeepStream JSON message", trunc(err.Error()))
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil {
		d.Skipped.Add(where, "bad or missing @timestamp", trunc(m.Timestamp))
		return nil
	}
	ts := t.UnixMilli()
	if m.Objects != nil || m.SensorID != "" {
		return d.minimal(&m, ts, where, emit)
	}
	if m.Sensor == nil || m.Sensor.ID == "" {
		d.Skipped.Add(where, "missing sensor.id", "")
		return nil
	}
	cam := m.Sensor.ID
	pos, ok := d.opts.Cameras[cam]
	if !ok {
		pos, ok = m.Sensor.Location.pos()
	}
	if !ok && m.Place != nil {
		pos, ok = m.Place.Location.pos()
	}
	if !ok {
		d.Skipped.Add(where, "no camera position (sensor.location and place.location absent or 0/0; add the camera to --cameras)", cam)
		return nil
	}
	if m.Event == nil || m.Event.Type == "" {
		d.Skipped.Add(where, "missing event.type", cam)
		return nil
	}
	if m.Object == nil {
		d.Skipped.Add(where, "missing object", cam)
		return nil
	}
	typ := strings.ToLower(m.Event.Type)
	act, ok := d.opts.Mapping[typ]
	if !ok {
		d.Skipped.Add(where, "unmapped event type "+strconv.Quote(typ), cam)
		return nil
	}
	if act == ActionSkip {
		d.Skipped.Add(where, "event type "+strconv.Quote(typ)+" maps to skip", cam)
		return nil
	}
	if m.Object.Person != nil && m.Object.Vehicle == nil {
		return d.single(cam, pos, ts, "pedestrian", m.Object.Person, where, emit)
	}
	if act == ActionCount {
		return d.count(cam, pos, ts, m.Object.ID, where, emit)
	}
	return d.single(cam, pos, ts, string(act), m.Object.Vehicle, where, emit)
}

var vehicleLabels = map[string]bool{"vehicle": true, "car": true, "truck": true, "bus": true, "van": true, "motorcycle": true, "motorbike": true, "bicycle": true, "twowheeler": true, "two_wheeler": true}
var personLabels = map[string]bool{"person": true, "pedestrian": true}

// minimal handles a minimal-schema frame: objects are "trackingId|left|top|right|bottom|label[|...]".
func (d *Decoder) minimal(m *message, ts int64, where string, emit func(engine.Event) error) error {
	cam := m.SensorID
	if cam == "" {
		d.Skipped.Add(where, "missing sensorId", "")
		return nil
	}
	pos, ok := d.opts.Cameras[cam]
	if !ok {
		d.Skipped.Add(where, "no camera position (the minimal schema has none; add the camera to --cameras)", cam)
		return nil
	}
	if len(m.Objects) == 0 {
		// A frame without objects still opens the window, so a camera that sees nothing reports a count of 0.
		return d.count(cam, pos, ts, "", where, emit)
	}
	for i, o := range m.Objects {
		f := strings.Split(o, "|")
		ow := where + " object " + strconv.Itoa(i+1)
		if len(f) < 6 {
			d.Skipped.Add(ow, "minimal object has fewer than 6 |-separated fields", trunc(o))
			continue
		}
		label := strings.ToLower(strings.TrimSpace(f[5]))
		id := strings.TrimSpace(f[0])
		switch {
		case personLabels[label]:
			d.Skipped.Add(ow, "person in minimal schema (no confidence; not counted)", cam)
		case !vehicleLabels[label]:
			d.Skipped.Add(ow, "object label "+strconv.Quote(label)+" is not a vehicle", cam)
		case id == "" || id == "-1":
			d.Skipped.Add(ow, "untracked object (tracking id -1) cannot be counted without double counting", cam)
		default:
			if err := d.count(cam, pos, ts, id, ow, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Decoder) single(cam string, pos LatLng, ts int64, typ string, c *conf, where string, emit func(engine.Event) error) error {
	conf := d.opts.DefaultConfidence
	if c != nil && c.Confidence != nil && *c.Confidence > 0 && *c.Confidence <= 1 {
		conf = *c.Confidence
	}
	if conf == 0 {
		d.Skipped.Add(where, typ+" without confidence (set --default-confidence to accept)", cam)
		return nil
	}
	ev := d.newEvent(cam, pos, ts)
	ev.Type = typ
	ev.Confidence = conf
	if err := ingest.Validate(&ev); err != nil {
		d.Skipped.Add(where, "invalid event", err.Error())
		return nil
	}
	d.Emitted++
	if err := emit(ev); err != nil {
		return err
	}
	return d.watermark(ts, emit)
}

func (d *Decoder) newEvent(cam string, pos LatLng, ts int64) engine.Event {
	ev := engine.NewEvent(engine.KindVideo)
	ev.TS = ts
	ev.ID = d.opts.IDPrefix + cam
	ev.Lat, ev.Lng = pos.Lat, pos.Lng
	ev.Source = d.opts.Source
	return ev
}

// count adds object id (none when empty) to the camera's window at ts.
func (d *Decoder) count(cam string, pos LatLng, ts int64, id, where string, emit func(engine.Event) error) error {
	iv := d.opts.Interval.Milliseconds()
	start := evtime.Floor(ts, iv)
	w := d.windows[cam]
	switch {
	case w == nil:
		if len(d.windows) >= d.opts.MaxCameras {
			d.Skipped.Add(where, "too many cameras with open windows", fmt.Sprintf("limit %d", d.opts.MaxCameras))
			return nil
		}
		w = &window{start: start, objects: map[string]struct{}{}}
		d.windows[cam] = w
	case start < w.start:
		d.Skipped.Add(where, "late message (its vehicle_count window was already emitted)", cam)
		return nil
	case start > w.start:
		if err := d.emitWindow(cam, w, emit); err != nil {
			return err
		}
		w.start, w.extra = start, 0
		clear(w.objects)
	}
	w.lat, w.lng = pos.Lat, pos.Lng
	if id != "" {
		if _, ok := w.objects[id]; !ok {
			if len(w.objects) < d.opts.MaxObjects {
				w.objects[id] = struct{}{}
			} else {
				w.extra++
			}
		}
	}
	return d.watermark(ts, emit)
}

// watermark emits every window whose end is at least one Interval behind the newest event time, once per
// Interval of event time.
func (d *Decoder) watermark(ts int64, emit func(engine.Event) error) error {
	if ts > d.maxTS {
		d.maxTS = ts
	}
	iv := d.opts.Interval.Milliseconds()
	idx := evtime.Index(d.maxTS, iv)
	if idx == d.lastWM {
		return nil
	}
	d.lastWM = idx
	for cam, w := range d.windows {
		if w.start+2*iv <= d.maxTS {
			if err := d.emitWindow(cam, w, emit); err != nil {
				return err
			}
			delete(d.windows, cam)
		}
	}
	return nil
}

func (d *Decoder) emitWindow(cam string, w *window, emit func(engine.Event) error) error {
	ev := d.newEvent(cam, LatLng{w.lat, w.lng}, w.start)
	ev.Type = "vehicle_count"
	ev.Count = float64(len(w.objects) + w.extra)
	ev.IntervalS = d.opts.Interval.Seconds()
	if err := ingest.Validate(&ev); err != nil {
		d.Skipped.Add(d.opts.Name+" camera "+cam, "invalid vehicle_count event", err.Error())
		return nil
	}
	d.Emitted++
	return emit(ev)
}

// Flush emits every open vehicle_count window (in no particular order) and forgets them.
func (d *Decoder) Flush(emit func(engine.Event) error) error {
	for cam, w := range d.windows {
		delete(d.windows, cam)
		if err := d.emitWindow(cam, w, emit); err != nil {
			return err
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
