// Package reports turns incident reports from open-data feeds (NDJSON or a JSON array of flat objects with an id,
// a type, a time and a position; the City of Austin "Real-Time Traffic Incident Reports" by default) into `report`
// events of wire format version 1, with a configurable type mapping (see Mapping).
package reports

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
	"citybrain/ingest"
	"citybrain/ingest/internal/lines"
	"citybrain/ingest/skipped"
)

// MaxLine is the longest record line accepted; longer lines are skipped with a reason.
const MaxLine = 1 << 20

// maxUnmapped bounds the distinct unmapped source types remembered.
const maxUnmapped = 256

// Fields names the fields of a source record. The zero value means the Austin names.
type Fields struct {
	ID, Time, Type, Lat, Lng string
}

// AustinFields are the field names of the City of Austin feed.
var AustinFields = Fields{ID: "traffic_report_id", Time: "published_date_utc", Type: "issue_reported", Lat: "latitude", Lng: "longitude"}

// Options configure a Decoder.
type Options struct {
	Name     string  // input name for messages (file or URL)
	Source   string  // the wire `source`; default "austin-traffic"
	Mapping  Mapping // type mapping; nil means AustinMapping()
	Fields   Fields  // field names; zero means AustinFields
	IDPrefix string  // prepended to the source id (e.g. "atx-")
}

// Decoder converts one stream of reports. It is owned by one goroutine.
type Decoder struct {
	opts Options

	Skipped  skipped.Log    // records not turned into events, by reason
	Emitted  int            // events passed to the callback
	Unmapped map[string]int // source types that fell to the "*" rule, with counts (at most maxUnmapped types)
}

// NewDecoder returns a Decoder; it fails when the mapping breaks the wire format.
func NewDecoder(opts Options) (*Decoder, error) {
	if opts.Mapping == nil {
		opts.Mapping = AustinMapping()
	}
	if err := opts.Mapping.Check(); err != nil {
		return nil, err
	}
	if opts.Fields == (Fields{}) {
		opts.Fields = AustinFields
	}
	if opts.Source == "" {
		opts.Source = "austin-traffic"
	}
	if opts.Name == "" {
		opts.Name = "input"
	}
	return &Decoder{opts: opts, Unmapped: map[string]int{}}, nil
}

// Decode reads NDJSON (or one JSON array) from r and calls emit with each valid event, in input order. The event
// is passed by value: the callee owns it. Records that cannot be converted are counted in d.Skipped with the line
// (or array element) and the field; Decode returns an error only when r fails or emit returns one.
func (d *Decoder) Decode(r io.Reader, emit func(engine.Event) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", d.opts.Name, err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		_ = br.UnreadByte()
		if c == '[' {
			return d.decodeArray(br, emit)
		}
		break
	}
	lr := lines.NewReader(br, MaxLine)
	for {
		line, n, tooLong, err := lr.Next()
		if err == io.EOF {
			return nil
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
		if err := d.record(line, where, emit); err != nil {
			return err
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
			return fmt.Errorf("cannot read %s element %d: %w", d.opts.Name, i, err)
		}
		if err := d.record(raw, d.opts.Name+" element "+strconv.Itoa(i), emit); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("cannot read %s: JSON array end: %w", d.opts.Name, err)
	}
	return nil
}

func (d *Decoder) record(b []byte, where string, emit func(engine.Event) error) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		d.Skipped.Add(where, "not a JSON object", trunc(err.Error()))
		return nil
	}
	ev, reason, detail := d.convert(m)
	if reason != "" {
		d.Skipped.Add(where, reason, detail)
		return nil
	}
	if err := ingest.Validate(&ev); err != nil {
		d.Skipped.Add(where, "invalid event", err.Error())
		return nil
	}
	d.Emitted++
	return emit(ev)
}

// convert maps one source record; a non-empty reason says why it was skipped.
func (d *Decoder) convert(m map[string]json.RawMessage) (ev engine.Event, reason, detail string) {
	f := d.opts.Fields
	id, ok := str(m[f.ID])
	if !ok || id == "" {
		return ev, "missing id (field " + f.ID + ")", ""
	}
	id = d.opts.IDPrefix + id
	if len(id) > 128 {
		return ev, "id longer than 128 bytes (field " + f.ID + ")", trunc(id)
	}
	ts, ok := str(m[f.Time])
	if !ok || ts == "" {
		return ev, "missing time (field " + f.Time + ")", ""
	}
	t, err := parseTime(ts)
	if err != nil {
		return ev, "bad time (field " + f.Time + ")", trunc(ts)
	}
	lat, ok := num(m[f.Lat])
	if !ok {
		return ev, "missing or bad latitude (field " + f.Lat + ")", trunc(string(m[f.Lat]))
	}
	lng, ok := num(m[f.Lng])
	if !ok {
		return ev, "missing or bad longitude (field " + f.Lng + ")", trunc(string(m[f.Lng]))
	}
	if lat == 0 && lng == 0 {
		return ev, "no position (lat/lng 0/0)", ""
	}
	typ, _ := str(m[f.Type])
	rule, known, ok := d.opts.Mapping.Lookup(typ)
	if !ok {
		return ev, "unmapped type (field " + f.Type + ")", trunc(typ)
	}
	if !known {
		k := normType(typ)
		if _, seen := d.Unmapped[k]; seen || len(d.Unmapped) < maxUnmapped {
			d.Unmapped[k]++
		}
	}
	ev = engine.NewEvent(engine.KindReport)
	ev.TS = t.UnixMilli()
	ev.ID = id
	ev.Lat, ev.Lng = lat, lng
	ev.Source = d.opts.Source
	ev.Type = rule.Type
	ev.Severity = rule.Severity
	ev.Text = strings.TrimSpace(typ)
	return ev, "", ""
}

// parseTime accepts RFC 3339 with a zone, or integer Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// str returns a JSON string, or a number's text.
func str(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		return string(raw), true
	}
	return "", false
}

// num returns a JSON number or a numeric string (Socrata sends both).
func num(raw json.RawMessage) (float64, bool) {
	s, ok := str(raw)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, false
	}
	return x, true
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
