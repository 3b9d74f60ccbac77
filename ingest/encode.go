package ingest

import (
	"strconv"
	"unicode/utf8"

	"citybrain/engine"
)

// AppendJSON appends e as one wire-format JSON object (no newline) to buf. ts is written as integer Unix
// milliseconds; absent optional fields are left out. Adapters use it to emit NDJSON.
func AppendJSON(buf []byte, e *engine.Event) []byte {
	buf = append(buf, `{"kind":"`...)
	buf = append(buf, e.Kind.String()...)
	buf = append(buf, `","ts":`...)
	buf = strconv.AppendInt(buf, e.TS, 10)
	buf = appendStr(buf, "id", e.ID)
	buf = appendNum(buf, "lat", e.Lat)
	buf = appendNum(buf, "lng", e.Lng)
	buf = appendStr(buf, "source", e.Source)
	buf = appendNum(buf, "speed_kmh", e.SpeedKmh)
	buf = appendNum(buf, "heading_deg", e.HeadingDeg)
	buf = appendNum(buf, "flow_vph", e.FlowVph)
	buf = appendNum(buf, "occupancy", e.Occupancy)
	buf = appendNum(buf, "interval_s", e.IntervalS)
	buf = appendStr(buf, "lane", e.Lane)
	buf = appendStr(buf, "route", e.Route)
	buf = appendNum(buf, "delay_s", e.DelayS)
	buf = appendStr(buf, "mode", e.Mode)
	buf = appendNum(buf, "load", e.Load)
	buf = appendStr(buf, "type", e.Type)
	buf = appendNum(buf, "confidence", e.Confidence)
	buf = appendNum(buf, "count", e.Count)
	buf = appendNum(buf, "queue_m", e.QueueM)
	if e.Severity != 0 {
		buf = append(buf, `,"severity":`...)
		buf = strconv.AppendInt(buf, int64(e.Severity), 10)
	}
	buf = appendStr(buf, "text", e.Text)
	buf = appendStr(buf, "unit_type", e.UnitType)
	buf = appendStr(buf, "status", e.Status)
	buf = appendNum(buf, "value", e.Value)
	buf = appendStr(buf, "unit", e.Unit)
	buf = appendNum(buf, "threshold", e.Threshold)
	return append(buf, '}')
}

func appendNum(buf []byte, key string, x float64) []byte {
	if !engine.Has(x) {
		return buf
	}
	buf = append(buf, ',', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	return strconv.AppendFloat(buf, x, 'g', -1, 64)
}

func appendStr(buf []byte, key, s string) []byte {
	if s == "" {
		return buf
	}
	buf = append(buf, ',', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	return AppendQuoted(buf, s)
}

// AppendQuoted appends s as a JSON string literal.
func AppendQuoted(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
