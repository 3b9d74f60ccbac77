// Package ingest decodes and validates every input format into engine events and Arrow batches and hands them
// to the log (its doors are the packages httpin and natsin, and the adapters beside them). It keeps no state
// beyond a batch.
package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"citybrain/engine"
)

// LineError is one rejected event of a batch: its line (NDJSON: the physical line, from 1; JSON array: the
// element, from 1), the reason, and the raw bytes as received.
type LineError struct {
	Line int
	Err  error
	Raw  []byte
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// errSyntax marks malformed JSON.
var errSyntax = errors.New("invalid JSON")

// DecodeBatch decodes an NDJSON batch or a JSON array of events. Each valid event is passed to accept, each
// invalid one to reject; neither callback may keep the Raw slice after returning (it points into body).
// It returns an error only when body is not a batch at all (an array that is not closed, say).
func DecodeBatch(body []byte, accept func(engine.Event), reject func(LineError)) error {
	return DecodeLines(body, func(line int, raw []byte, ev engine.Event, err error) {
		if err != nil {
			reject(LineError{Line: line, Err: err, Raw: raw})
			return
		}
		accept(ev)
	})
}

// DecodeLines is DecodeBatch with one callback that also gets the line number and raw bytes of valid
// events. raw points into body: fn must not keep it.
func DecodeLines(body []byte, fn func(line int, raw []byte, ev engine.Event, err error)) error {
	return eachObject(body, func(line int, raw []byte) {
		ev, err := DecodeEvent(raw)
		fn(line, raw, ev, err)
	})
}

// eachObject splits an NDJSON batch or a JSON array into its elements, with their line numbers (NDJSON: the
// physical line, from 1, blank lines skipped; JSON array: the element, from 1). raw points into body.
func eachObject(body []byte, fn func(line int, raw []byte)) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return decodeArray(trimmed, fn)
	}
	line := 0
	for len(body) > 0 {
		line++
		var raw []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			raw, body = body[:i], body[i+1:]
		} else {
			raw, body = body, nil
		}
		raw = bytes.TrimRight(raw, "\r")
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		fn(line, raw)
	}
	return nil
}

func decodeArray(body []byte, fn func(line int, raw []byte)) error {
	p := parser{b: body}
	p.i++ // '['
	p.ws()
	if p.peek() == ']' {
		p.i++
		if p.ws(); p.i != len(p.b) {
			return fmt.Errorf("cannot decode JSON array: data after the closing ']' at byte %d", p.i)
		}
		return nil
	}
	for n := 1; ; n++ {
		p.ws()
		start := p.i
		if err := p.skipValue(0); err != nil {
			return fmt.Errorf("cannot decode JSON array: element %d: %w", n, err)
		}
		fn(n, p.b[start:p.i])
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			if p.ws(); p.i != len(p.b) {
				return fmt.Errorf("cannot decode JSON array: data after the closing ']' at byte %d", p.i)
			}
			return nil
		default:
			return fmt.Errorf("cannot decode JSON array: expected ',' or ']' after element %d at byte %d", n, p.i)
		}
	}
}

// DecodeEvent decodes and validates one event object of wire format version 1. Unknown fields are ignored;
// null counts as absent. The error names the field that is wrong.
func DecodeEvent(b []byte) (engine.Event, error) {
	ev := engine.NewEvent(engine.KindUnknown)
	ev.Lat, ev.Lng = math.NaN(), math.NaN()
	haveTS, kindName := false, ""
	p := parser{b: b}
	p.ws()
	if p.peek() != '{' {
		return ev, fmt.Errorf("%w: an event must be a JSON object", errSyntax)
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			p.ws()
			key, err := p.str(maxKeyBytes)
			if err != nil {
				return ev, fmt.Errorf("%w: object key at byte %d: %v", errSyntax, p.i, err)
			}
			p.ws()
			if p.peek() != ':' {
				return ev, fmt.Errorf("%w: expected ':' after key %q", errSyntax, key)
			}
			p.i++
			p.ws()
			if err := p.field(&ev, key, &haveTS, &kindName); err != nil {
				return ev, err
			}
			p.ws()
			c := p.peek()
			p.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return ev, fmt.Errorf("%w: expected ',' or '}' after field %q", errSyntax, key)
			}
		}
	}
	if p.ws(); p.i != len(p.b) {
		return ev, fmt.Errorf("%w: data after the event object at byte %d", errSyntax, p.i)
	}
	if kindName == "" {
		return ev, fieldErr("kind", "is required")
	}
	if ev.Kind = engine.ParseKind(kindName); ev.Kind == engine.KindUnknown {
		return ev, fieldErr("kind", "%q is not one of probe, detector, transit, video, report, unit, sensor", kindName)
	}
	if !haveTS {
		return ev, fieldErr("ts", "is required")
	}
	if ev.ID == "" {
		return ev, fieldErr("id", "is required")
	}
	if math.IsNaN(ev.Lat) {
		return ev, fieldErr("lat", "is required")
	}
	if math.IsNaN(ev.Lng) {
		return ev, fieldErr("lng", "is required")
	}
	return ev, Validate(&ev)
}

// field decodes the value of key into ev.
func (p *parser) field(ev *engine.Event, key string, haveTS *bool, kindName *string) error {
	var num *float64
	var str *string
	switch key {
	case "kind":
		str = kindName
	case "ts":
		return p.ts(ev, haveTS)
	case "id":
		str = &ev.ID
	case "lat":
		num = &ev.Lat
	case "lng":
		num = &ev.Lng
	case "source":
		str = &ev.Source
	case "speed_kmh":
		num = &ev.SpeedKmh
	case "heading_deg":
		num = &ev.HeadingDeg
	case "flow_vph":
		num = &ev.FlowVph
	case "occupancy":
		num = &ev.Occupancy
	case "interval_s":
		num = &ev.IntervalS
	case "lane":
		return p.lane(ev)
	case "route":
		str = &ev.Route
	case "delay_s":
		num = &ev.DelayS
	case "mode":
		str = &ev.Mode
	case "load":
		num = &ev.Load
	case "type":
		str = &ev.Type
	case "confidence":
		num = &ev.Confidence
	case "count":
		num = &ev.Count
	case "queue_m":
		num = &ev.QueueM
	case "severity":
		var f float64
		ok, err := p.number(key, &f)
		if err != nil || !ok {
			return err
		}
		if f != math.Trunc(f) || f < 1 || f > 5 {
			return fieldErr("severity", "must be an integer 1..5, got %g", f)
		}
		ev.Severity = int8(f)
		return nil
	case "text":
		str = &ev.Text
	case "unit_type":
		str = &ev.UnitType
	case "status":
		str = &ev.Status
	case "value":
		num = &ev.Value
	case "unit":
		str = &ev.Unit
	case "threshold":
		num = &ev.Threshold
	default:
		if err := p.skipValue(0); err != nil {
			return fmt.Errorf("%w: field %s: %v", errSyntax, key, err)
		}
		return nil
	}
	if num != nil {
		_, err := p.number(key, num)
		return err
	}
	if p.null() {
		*str = ""
		return nil
	}
	if p.peek() != '"' {
		return fieldErr(key, "must be a string")
	}
	limit := StringLimit(key)
	if key == "kind" {
		limit = maxKeyBytes
	}
	s, err := p.str(limit)
	var tl *tooLong
	if errors.As(err, &tl) {
		return fieldErr(key, "must be at most %d bytes, got %s", tl.max, tl.got)
	}
	if err != nil {
		return fmt.Errorf("%w: field %s: %v", errSyntax, key, err)
	}
	*str = s
	return nil
}

// number decodes a JSON number into *dst; null leaves it absent (false, nil).
func (p *parser) number(key string, dst *float64) (bool, error) {
	if p.null() {
		*dst = math.NaN()
		return false, nil
	}
	start := p.i
	if !p.scanNumber() {
		if c := p.peek(); c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' {
			return false, fieldErr(key, "must be a number")
		}
		return false, fmt.Errorf("%w: field %s: bad number at byte %d", errSyntax, key, start)
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return false, fieldErr(key, "number %s is out of range", p.b[start:p.i])
	}
	*dst = f
	return true, nil
}

func (p *parser) ts(ev *engine.Event, have *bool) error {
	switch c := p.peek(); {
	case c == '"':
		s, err := p.str(maxTSBytes)
		if err != nil {
			return fieldErr("ts", "not an RFC 3339 time: %v", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fieldErr("ts", "%q is not RFC 3339 with a zone (2026-11-27T08:00:00.250+08:00)", s)
		}
		ev.TS = t.UnixMilli()
	case c == '-' || (c >= '0' && c <= '9'):
		var f float64
		if _, err := p.number("ts", &f); err != nil {
			return err
		}
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return fieldErr("ts", "integer Unix milliseconds expected, got %g", f)
		}
		ev.TS = int64(f)
	default:
		return fieldErr("ts", "must be an RFC 3339 string or integer Unix milliseconds")
	}
	*have = true
	return nil
}

func (p *parser) lane(ev *engine.Event) error {
	if p.null() {
		ev.Lane = ""
		return nil
	}
	if p.peek() == '"' {
		s, err := p.str(MaxShortBytes)
		var tl *tooLong
		if errors.As(err, &tl) {
			return fieldErr("lane", "must be at most %d bytes, got %s", tl.max, tl.got)
		}
		if err != nil {
			return fmt.Errorf("%w: field lane: %v", errSyntax, err)
		}
		ev.Lane = s
		return nil
	}
	start := p.i
	if !p.scanNumber() {
		return fieldErr("lane", "must be a string or a number")
	}
	if p.i-start > MaxShortBytes {
		return fieldErr("lane", "must be at most %d bytes, got %d", MaxShortBytes, p.i-start)
	}
	ev.Lane = string(p.b[start:p.i])
	return nil
}

// parser is a minimal JSON scanner over one buffer: enough for flat event objects, skipping anything nested.
type parser struct {
	b []byte
	i int
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) null() bool {
	if p.i < len(p.b) && p.b[p.i] == 'n' && bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// scanNumber advances over a JSON number (RFC 8259 grammar) and reports whether one was there.
func (p *parser) scanNumber() bool {
	i, b := p.i, p.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	p.i = i
	return true
}

// Bounds of the strings the decoder reads that are not fields with a rule.
const (
	maxKeyBytes = 64 // object keys (a longer one is no field of the format)
	maxTSBytes  = 64 // an RFC 3339 time
)

// tooLong is the error of a string over its limit.
type tooLong struct {
	max int
	got string // "N" or "more than N"
}

func (e *tooLong) Error() string {
	return fmt.Sprintf("string is longer than %d bytes (%s)", e.max, e.got)
}

// scanStr advances over the JSON string at the cursor without decoding it: raw is what is between the
// quotes (it points into the buffer), escaped whether it holds a backslash.
func (p *parser) scanStr() (raw []byte, escaped bool, err error) {
	if p.peek() != '"' {
		return nil, false, fmt.Errorf("expected a string at byte %d", p.i)
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			raw = p.b[start:p.i]
			p.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c < 0x20:
			return nil, false, fmt.Errorf("control character in string at byte %d", p.i)
		}
		p.i++
	}
	return nil, false, errors.New("string is not closed")
}

// str decodes the JSON string at the cursor, which must be at most max bytes once decoded (0: no limit
// beyond the buffer's): a longer one is a *tooLong error, found before anything is allocated for it when
// its raw form alone shows it (a decoded byte takes at most 6 raw ones).
func (p *parser) str(max int) (string, error) {
	raw, escaped, err := p.scanStr()
	if err != nil {
		return "", err
	}
	if max > 0 && len(raw) > 6*max {
		return "", &tooLong{max: max, got: fmt.Sprintf("more than %d", max)}
	}
	if !escaped {
		if max > 0 && len(raw) > max {
			return "", &tooLong{max: max, got: fmt.Sprint(len(raw))}
		}
		if !utf8.Valid(raw) {
			return "", errors.New("string is not valid UTF-8")
		}
		return string(raw), nil
	}
	out, err := unescape(raw)
	if err != nil {
		return "", err
	}
	if max > 0 && len(out) > max {
		return "", &tooLong{max: max, got: fmt.Sprint(len(out))}
	}
	if !utf8.Valid(out) {
		return "", errors.New("string is not valid UTF-8")
	}
	return string(out), nil
}

// unescape decodes the escapes of a JSON string's raw content.
func unescape(raw []byte) ([]byte, error) {
	out := make([]byte, 0, len(raw))
	q := parser{b: raw}
	for q.i < len(q.b) {
		c := q.b[q.i]
		if c != '\\' {
			out = append(out, c)
			q.i++
			continue
		}
		q.i++
		if q.i >= len(q.b) {
			return nil, errors.New("string ends in a backslash")
		}
		e := q.b[q.i]
		q.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := q.hex4()
			if !ok {
				return nil, fmt.Errorf("bad \\u escape at byte %d", q.i)
			}
			if utf16.IsSurrogate(r) {
				if bytes.HasPrefix(q.b[q.i:], []byte(`\u`)) {
					q.i += 2
					r2, ok := q.hex4()
					if !ok {
						return nil, fmt.Errorf("bad \\u escape at byte %d", q.i)
					}
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, fmt.Errorf("bad escape \\%c at byte %d", e, q.i-1)
		}
	}
	return out, nil
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

const maxDepth = 64

// skipValue advances over any JSON value.
func (p *parser) skipValue(depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deeply")
	}
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		_, _, err := p.scanStr()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p.i++
		p.ws()
		if p.peek() == closer {
			p.i++
			return nil
		}
		for {
			p.ws()
			if c == '{' {
				if _, _, err := p.scanStr(); err != nil {
					return err
				}
				p.ws()
				if p.peek() != ':' {
					return fmt.Errorf("expected ':' at byte %d", p.i)
				}
				p.i++
			}
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
			case closer:
				p.i++
				return nil
			default:
				return fmt.Errorf("expected ',' or '%c' at byte %d", closer, p.i)
			}
		}
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	default:
		if !p.scanNumber() {
			return fmt.Errorf("unexpected %q at byte %d", c, p.i)
		}
		return nil
	}
}

func (p *parser) lit(s string) error {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return fmt.Errorf("bad literal at byte %d", p.i)
	}
	p.i += len(s)
	return nil
}
