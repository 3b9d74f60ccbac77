package ingest

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"citybrain/engine"
	"citybrain/engine/schema"
)

// The columnar JSON decoder: one event object decoded straight into the batch's Arrow builders, through one
// reused schema.RowView of byte views (no engine.Event, no Go string per field), and judged by the rules of
// rules.go on the decoded float64 values, as Validate judges them. It only answers "is this row accepted as it
// is?": for any row it does not take (a broken or invalid row, and shapes it does not handle: a key written
// with escapes, a field given twice), the batch decodes the row again on the row path (DecodeEvent,
// Validate, batch.add), which accepts it or names what is wrong. So it is an under-approximation of the row
// path: a row it takes, the row path accepts, into the same Arrow row (TestColumnarJSONAgreesWithRows,
// FuzzDecodeColumns).

// viewField is what the decoder does with the value of one known key.
type viewField struct {
	col  int  // column of engine.Schema
	kind byte // 'n' number, 's' string, and the fields with rules of their own: 'k' kind, 't' ts, 'l' lane, 'v' severity
	max  int  // string limit in bytes
}

// viewFieldOf maps the wire names of version 1 to their columns.
func viewFieldOf(key []byte) (viewField, bool) {
	switch string(key) { // no allocation: the compiler switches on the bytes
	case "kind":
		return viewField{col: engine.ColKind, kind: 'k', max: maxKeyBytes}, true
	case "ts":
		return viewField{col: engine.ColTS, kind: 't'}, true
	case "id":
		return viewField{col: engine.ColID, kind: 's', max: MaxIDBytes}, true
	case "lat":
		return viewField{col: engine.ColLat, kind: 'n'}, true
	case "lng":
		return viewField{col: engine.ColLng, kind: 'n'}, true
	case "lane":
		return viewField{col: engine.ColLane, kind: 'l', max: MaxShortBytes}, true
	case "severity":
		return viewField{col: engine.ColSeverity, kind: 'v'}, true
	}
	if r := stringRuleOf[string(key)]; r != nil {
		return viewField{col: r.Col, kind: 's', max: r.Max}, true
	}
	if r := numberRuleOf[string(key)]; r != nil {
		return viewField{col: r.Col, kind: 'n'}, true
	}
	return viewField{}, false
}

// keyCache remembers, for the first keys of an object by position and by the kind its row has given so
// far, the last key seen there and its field: the rows of a batch mostly give "kind" first and then their
// kind's keys in the same order, so a key is compared once instead of looked up in the tables, also when the
// kinds of a mixed batch alternate (a cache by position alone missed on every change of kind). The key is
// copied (a streamed body's line buffer is reused).
type keyCache [8][12]struct {
	n   int // bytes of key; 0: empty
	key [24]byte
	f   viewField
	ok  bool
}

// field is viewFieldOf(key) for the key at position pos of an object whose row has given kind so far
// (KindUnknown: none yet, or none valid).
func (kc *keyCache) field(kind engine.Kind, pos int, key []byte) (viewField, bool) {
	if kc == nil || int(kind) >= len(kc) || pos >= len(kc[kind]) || len(key) > len(kc[kind][pos].key) || len(key) == 0 {
		return viewFieldOf(key)
	}
	e := &kc[kind][pos]
	if e.n == len(key) && string(e.key[:e.n]) == string(key) {
		return e.f, e.ok
	}
	f, ok := viewFieldOf(key)
	e.n, e.f, e.ok = copy(e.key[:], key), f, ok
	return f, ok
}

// decodeView decodes the event object b into v; false when the row path must judge it. kc, when not nil,
// caches the key lookups of the rows of one batch.
func decodeView(b []byte, v *schema.RowView, kc *keyCache) bool {
	v.Set, v.Severity, v.Kind = 0, 0, engine.KindUnknown
	p := parser{b: b}
	p.ws()
	if p.peek() != '{' {
		return false
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for pos := 0; ; pos++ {
			p.ws()
			key, escaped, ascii, ok := p.viewScan()
			if !ok || escaped || len(key) > maxKeyBytes || (!ascii && !utf8.Valid(key)) {
				return false
			}
			p.ws()
			if p.peek() != ':' {
				return false
			}
			p.i++
			p.ws()
			f, known := kc.field(v.Kind, pos, key)
			if !known {
				if p.skipValue(0) != nil {
					return false
				}
			} else {
				if v.Has(f.col) {
					return false // given twice: the row path keeps the last
				}
				v.Set |= 1 << f.col
				if !p.viewValue(f, v) {
					return false
				}
			}
			p.ws()
			c := p.peek()
			p.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return false
			}
		}
	}
	if p.ws(); p.i != len(p.b) {
		return false
	}
	return validView(v)
}

// viewValue decodes the value of field f at the cursor into v.
func (p *parser) viewValue(f viewField, v *schema.RowView) bool {
	switch f.kind {
	case 'n':
		x, ok := p.viewNumber()
		v.Num[f.col] = x
		return ok
	case 's':
		s, ok := p.viewStr(f.max)
		v.Str[f.col] = s
		return ok
	case 'k':
		s, ok := p.viewStr(f.max)
		if !ok {
			return false
		}
		v.Kind = kindOf(s)
		return v.Kind != engine.KindUnknown
	case 't':
		return p.viewTS(v)
	case 'l':
		if p.null() {
			v.Str[f.col] = nil
			return true
		}
		if p.peek() == '"' {
			s, ok := p.viewStr(f.max)
			v.Str[f.col] = s
			return ok
		}
		start := p.i
		if !p.scanNumber() || p.i-start > f.max {
			return false
		}
		v.Str[f.col] = p.b[start:p.i]
		return true
	case 'v':
		x, ok := p.viewNumber()
		if !ok {
			return false
		}
		if math.IsNaN(x) { // null
			return true
		}
		if x != math.Trunc(x) || x < 1 || x > 5 {
			return false
		}
		v.Severity = int8(x)
		return true
	}
	return false
}

// viewNumber reads a JSON number, or null as NaN (absent); false for anything else or out of range.
func (p *parser) viewNumber() (float64, bool) {
	if p.null() {
		return math.NaN(), true
	}
	// One pass: the grammar of scanNumber, the digits gathered as plainNumber gathers them.
	start, i, b := p.i, p.i, p.b
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	var m uint64
	nd, exp := 0, 0
	exact := true // every digit is in m and the exponent is small: plainNumber's case
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if nd < 19 {
				m = m*10 + uint64(b[i]-'0')
				nd++
			} else {
				exact = false
			}
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			switch {
			case m == 0 && b[i] == '0':
				exp--
			case nd < 19:
				m = m*10 + uint64(b[i]-'0')
				nd++
				exp--
			default:
				exact = false
			}
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := i < len(b) && b[i] == '-'
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d, x := i, 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if x <= 1000 {
				x = x*10 + int(b[i]-'0')
			}
		}
		if i == d {
			return 0, false
		}
		if x > 1000 {
			exact = false
		}
		if eneg {
			x = -x
		}
		exp += x
	}
	p.i = i
	if exact {
		if f, ok := fromDecimal(m, exp, neg); ok {
			return f, true
		}
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64) // string(…) does not escape: no allocation
	return f, err == nil
}

// viewStr reads a JSON string of at most max bytes once decoded, or null as no bytes, as parser.str judges
// it. An unescaped string is a view into the input; an escaped one is decoded into new bytes.
func (p *parser) viewStr(max int) ([]byte, bool) {
	if p.null() {
		return nil, true
	}
	raw, escaped, ascii, ok := p.viewScan()
	if !ok || len(raw) > 6*max {
		return nil, false
	}
	if escaped {
		var err error
		if raw, err = unescape(raw); err != nil {
			return nil, false
		}
		ascii = false
	}
	return raw, len(raw) <= max && (ascii || utf8.Valid(raw))
}

// viewScan is scanStr for the columnar decoder, as a yes or no, which also tells whether the string's bytes
// (escapes aside) are all ASCII: then they are valid UTF-8 without utf8.Valid's second pass over them. It
// skips 8 plain bytes at a time (no quote, backslash, control character or non-ASCII byte among them: a
// word's lowest flagged byte is always a real one, so it stops exactly there) and judges the others one by
// one as scanStr does (TestViewScanAgreesWithScanStr).
func (p *parser) viewScan() (raw []byte, escaped, ascii, ok bool) {
	if p.peek() != '"' {
		return nil, false, false, false
	}
	p.i++
	start := p.i
	var or byte // every byte but escapes, or'ed: under 0x80 when all are ASCII
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	for {
		for p.i+8 <= len(p.b) {
			w := binary.LittleEndian.Uint64(p.b[p.i:])
			q, bs := w^('"'*lsb), w^('\\'*lsb)
			m := ((q-lsb)&^q | (bs-lsb)&^bs | (w-0x20*lsb)&^w | w) & msb
			if m != 0 {
				p.i += bits.TrailingZeros64(m) >> 3
				break
			}
			p.i += 8
		}
		if p.i >= len(p.b) {
			return nil, false, false, false
		}
		switch c := p.b[p.i]; {
		case c == '"':
			raw = p.b[start:p.i]
			p.i++
			return raw, escaped, or < utf8.RuneSelf, true
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c < 0x20:
			return nil, false, false, false
		default:
			or |= c
		}
		p.i++
	}
}

// viewTS reads ts as parser.ts does.
func (p *parser) viewTS(v *schema.RowView) bool {
	switch c := p.peek(); {
	case c == '"':
		raw, escaped, ascii, ok := p.viewScan()
		if !ok || escaped || len(raw) > maxTSBytes || (!ascii && !utf8.Valid(raw)) {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return false
		}
		v.TS = t.UnixMilli()
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		f, ok := p.viewNumber()
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return false
		}
		v.TS = int64(f)
		return true
	}
	return false
}

// kindOf is engine.ParseKind on bytes.
func kindOf(s []byte) engine.Kind {
	for _, k := range engine.Kinds {
		if string(s) == k.String() {
			return k
		}
	}
	return engine.KindUnknown
}

// validView is Validate (and DecodeEvent's checks of what is required) on a RowView, as a yes or no.
func validView(v *schema.RowView) bool {
	for _, c := range [...]int{engine.ColKind, engine.ColTS, engine.ColID, engine.ColLat, engine.ColLng} {
		if !v.Has(c) {
			return false
		}
	}
	if v.TS < MinTS || v.TS > MaxTS || len(v.Str[engine.ColID]) == 0 {
		return false
	}
	lat, lng := v.Num[engine.ColLat], v.Num[engine.ColLng]
	if !(lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180) || (lat == 0 && lng == 0) {
		return false // NaN (null) fails the ranges
	}
	for i := range NumberRules {
		r := &NumberRules[i]
		if x := v.NumOf(r.Col); !math.IsNaN(x) && !(x >= r.Min && x <= r.Max) {
			return false
		}
	}
	for _, r := range viewRequired[v.Kind] {
		switch {
		case r.severity:
			if v.Severity == 0 {
				return false
			}
		case r.number:
			if math.IsNaN(v.NumOf(r.col)) {
				return false
			}
		case len(v.StrOf(r.col)) == 0:
			return false
		}
	}
	for _, es := range enumsOf[v.Kind] {
		if !es.values[string(v.StrOf(es.rule.Col))] {
			return false
		}
	}
	switch v.Kind {
	case engine.KindDetector:
		if iv := v.NumOf(engine.ColInterval); iv == 0 {
			return false
		}
		if fl := v.NumOf(engine.ColFlow); fl > 0 && math.IsNaN(v.NumOf(engine.ColSpeed)) {
			return false
		}
	case engine.KindVideo:
		switch string(v.StrOf(engine.ColType)) {
		case "vehicle_count":
			return !math.IsNaN(v.NumOf(engine.ColCount))
		case "queue":
			return !math.IsNaN(v.NumOf(engine.ColQueue))
		default:
			return !math.IsNaN(v.NumOf(engine.ColConfidence))
		}
	}
	return true
}

// viewReq is a field a kind requires (Required), resolved to its column once.
type viewReq struct {
	col              int
	number, severity bool // a number column; severity (its own column); otherwise a string column
}

// viewRequired is Required by kind, resolved to columns (no name lookups a row).
var viewRequired = func() (t [8][]viewReq) {
	for k, fields := range Required {
	field:
		for _, f := range fields {
			if f == "severity" {
				t[k] = append(t[k], viewReq{col: engine.ColSeverity, severity: true})
				continue
			}
			for i := range NumberRules {
				if NumberRules[i].Field == f {
					t[k] = append(t[k], viewReq{col: NumberRules[i].Col, number: true})
					continue field
				}
			}
			for i := range StringRules {
				if StringRules[i].Field == f {
					t[k] = append(t[k], viewReq{col: StringRules[i].Col})
					continue field
				}
			}
			panic("ingest: required field " + f + " has no rule")
		}
	}
	return t
}()

// addRaw takes one event object as received: decoded straight into the batch's columns when the columnar
// decoder takes it as it is and it is of the wanted kind, not too far ahead and has a cell; otherwise
// decoded and judged on the row path (add), which accepts it or rejects it naming what is wrong. It returns
// whether the event was accepted.
func (b *batch) addRaw(line int, raw []byte) bool {
	v := &b.view
	if decodeView(raw, v, &b.keys) && (b.want == engine.KindUnknown || v.Kind == b.want) && (b.trusted || v.TS <= b.aheadMs) {
		if cell, err := b.in.cells.Cell(v.Num[engine.ColLat], v.Num[engine.ColLng]); err == nil {
			b.bb.AppendView(v, cell)
			b.res.Accepted++
			b.columnar++
			return true
		}
	}
	ev, err := DecodeEvent(raw)
	_, ok := b.add(line, raw, &ev, err)
	return ok
}
