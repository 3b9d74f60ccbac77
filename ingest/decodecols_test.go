package ingest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/engine/schema"
)

// bothPaths ingests body into two batches, one through the row path only (DecodeLines, add) and one as
// Ingest does (eachObject, addRaw: columns first, rows for what the columns do not take), and fails t unless
// they hold the same Arrow record, the same answer and the same dead letters. It returns how many events the
// columnar decoder took and how many were accepted.
func bothPaths(t testing.TB, in *Ingestor, body []byte, want engine.Kind) (columnar, accepted int) {
	t.Helper()
	rows, cols := in.newBatch("test", want), in.newBatch("test", want)
	defer rows.Release()
	defer cols.Release()
	errRows := DecodeLines(body, func(line int, raw []byte, ev engine.Event, err error) { rows.add(line, raw, &ev, err) })
	errCols := eachObject(body, func(line int, raw []byte) { cols.addRaw(line, raw) })
	if (errRows == nil) != (errCols == nil) {
		t.Fatalf("%q: batch error %v on the row path, %v with columns", body, errRows, errCols)
	}
	recRows, recCols := rows.bb.NewRecord(), cols.bb.NewRecord()
	defer recRows.Release()
	defer recCols.Release()
	if !array.RecordEqual(recRows, recCols) {
		t.Fatalf("%q: the columnar decoder built another record than the row path:\nrows    %v\ncolumns %v", body, recRows, recCols)
	}
	if rows.res.Accepted != cols.res.Accepted || rows.res.Rejected != cols.res.Rejected ||
		fmt.Sprint(rows.res.Errors) != fmt.Sprint(cols.res.Errors) || fmt.Sprint(rows.dead) != fmt.Sprint(cols.dead) {
		t.Fatalf("%q: answers differ:\nrows    %+v %v\ncolumns %+v %v", body, rows.res, rows.dead, cols.res, cols.dead)
	}
	return cols.columnar, cols.res.Accepted
}

// jsonMutations rewrite one encoded event line into shapes the decoders must judge alike: nulls, duplicates,
// escapes, wrong types, numbers on the rules' edges, numbers as text, whitespace, nested unknown fields.
var jsonMutations = []func(rng *rand.Rand, line string) string{
	func(_ *rand.Rand, l string) string { return l },
	func(_ *rand.Rand, l string) string { return " \t" + strings.ReplaceAll(l, ",", " ,\n ") + " " },
	func(rng *rand.Rand, l string) string { return withField(rng, l, "null") },
	func(rng *rand.Rand, l string) string { return withField(rng, l, `"12"`) },
	func(rng *rand.Rand, l string) string { return withField(rng, l, `""`) },
	func(rng *rand.Rand, l string) string { return withField(rng, l, "true") },
	func(rng *rand.Rand, l string) string {
		nums := []string{"0", "-0", "1", "1.0", "2.5", "5", "6", "1e400", "-1e400", "1e-400", "600.0000001", "1.00000001",
			"360", "86400.0001", "3.4028235e38", "3.5e38", "01", "1.", ".5", "1e", "-", "9007199254740993", "1795737600000.5"}
		return withField(rng, l, nums[rng.IntN(len(nums))])
	},
	func(rng *rand.Rand, l string) string {
		strs := []string{`"a\"b"`, `"\u0041"`, `"\ud83d\ude97"`, `"\ud83d"`, `"\x"`, "\"\xff\"", `"tab\t"`, `"bus"`, `"crash"`,
			`"queue"`, `"2026-11-27T08:00:00Z"`, `"2026-11-27T08:00:00"`, `"\u0032\u0030\u0032\u0036-11-27T08:00:00Z"`,
			`"` + strings.Repeat("a", MaxShortBytes) + `"`, `"` + strings.Repeat(`\u0061`, MaxShortBytes+1) + `"`}
		return withField(rng, l, strs[rng.IntN(len(strs))])
	},
	func(rng *rand.Rand, l string) string { return withField(rng, l, `{"a":[1,{"b":null}]}`) },
	// A key written with an escape, a key given twice, an unknown key.
	func(_ *rand.Rand, l string) string { return strings.Replace(l, `"kind"`, `"\u006bind"`, 1) },
	func(_ *rand.Rand, l string) string { return strings.Replace(l, `{`, `{"speed_kmh":700,`, 1) },
	func(_ *rand.Rand, l string) string { return strings.Replace(l, `{`, `{"lat":1,`, 1) },
	func(_ *rand.Rand, l string) string { return strings.Replace(l, `{`, `{"extra":[1,2,3],`, 1) },
	func(_ *rand.Rand, l string) string { return strings.TrimSuffix(l, "}") },
	func(_ *rand.Rand, l string) string { return l + " x" },
}

var mutatedKeys = []string{"kind", "ts", "id", "lat", "lng", "source", "speed_kmh", "heading_deg", "flow_vph", "occupancy",
	"interval_s", "lane", "route", "delay_s", "mode", "load", "type", "confidence", "count", "queue_m", "severity", "text",
	"unit_type", "status", "value", "unit", "threshold", "other"}

// withField sets a random key of line to value (as the last field: the first one given stays too when the key
// was there, which makes a duplicate, or is replaced by removing it first).
func withField(rng *rand.Rand, line, value string) string {
	key := mutatedKeys[rng.IntN(len(mutatedKeys))]
	if rng.IntN(2) == 0 {
		if i := strings.Index(line, `"`+key+`":`); i > 0 {
			// Remove the field: up to the next top-level comma or the closing brace.
			j := i + len(key) + 3
			depth, inStr := 0, false
			for ; j < len(line); j++ {
				c := line[j]
				if inStr {
					if c == '\\' {
						j++
					} else if c == '"' {
						inStr = false
					}
					continue
				}
				if c == '"' {
					inStr = true
				} else if c == '{' || c == '[' {
					depth++
				} else if c == ']' || (c == '}' && depth > 0) {
					depth--
				} else if depth == 0 && (c == ',' || c == '}') {
					break
				}
			}
			if j < len(line) && line[j] == ',' {
				j++
			}
			line = line[:i] + line[j:]
			line = strings.Replace(line, ",}", "}", 1)
		}
	}
	if strings.HasSuffix(line, "}") {
		sep := ","
		if strings.HasSuffix(line, "{}") {
			sep = ""
		}
		line = line[:len(line)-1] + sep + `"` + key + `":` + value + "}"
	}
	return line
}

// The columnar JSON decoder is an under-approximation of the row path: for thousands of event lines with
// fields on and across the rules' edges, in JSON shapes of every kind, Ingest's batch holds the same record,
// answer and dead letters as the row path's; and every valid line of every kind is taken by the columns.
func TestColumnarJSONAgreesWithRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	in := New(Config{Mem: mem, Now: func() time.Time { return now }}, nil)
	var valid []string
	for _, ev := range columnBases() {
		valid = append(valid, string(AppendJSON(nil, &ev)))
	}
	valid = append(valid, specExamples...)
	for _, l := range valid {
		if n, _ := bothPaths(t, in, []byte(l), engine.KindUnknown); n != 1 {
			t.Errorf("a valid event went the row path: %s", l)
		}
	}
	if n, _ := bothPaths(t, in, []byte(strings.Join(valid, "\n")), engine.KindUnknown); n != len(valid) {
		t.Errorf("%d of %d valid events decoded into columns", n, len(valid))
	}
	if n, _ := bothPaths(t, in, []byte("["+strings.Join(valid, ",")+"]"), engine.KindUnknown); n != len(valid) {
		t.Errorf("JSON array: %d of %d valid events decoded into columns", n, len(valid))
	}
	// Kinds a subject does not take, times too far ahead: the row path names them.
	bothPaths(t, in, []byte(strings.Join(valid, "\n")), engine.KindProbe)
	future := engine.NewEvent(engine.KindProbe)
	future.TS, future.ID, future.Lat, future.Lng, future.SpeedKmh = now.Add(time.Hour).UnixMilli(), "f", 30.2, 120.1, 3
	if n, _ := bothPaths(t, in, AppendJSON(nil, &future), engine.KindUnknown); n != 0 {
		t.Errorf("an event an hour ahead was taken by the columns")
	}

	rng := rand.New(rand.NewPCG(13, 2))
	bases := columnBases()
	var lines []string
	taken, accepted := 0, 0
	for i := 0; i < 6000; i++ {
		ev := bases[rng.IntN(len(bases))]
		if rng.IntN(3) == 0 {
			mutate(rng, &ev)
		}
		l := string(AppendJSON(nil, &ev))
		for k := 0; k <= rng.IntN(2); k++ {
			l = jsonMutations[rng.IntN(len(jsonMutations))](rng, l)
		}
		c, a := bothPaths(t, in, []byte(l), engine.KindUnknown)
		taken, accepted = taken+c, accepted+a
		if a == 1 && c == 0 && plainKeys([]byte(l)) {
			t.Errorf("an accepted line without escaped or repeated keys went the row path: %s", l)
		}
		lines = append(lines, l)
	}
	// The same lines as batches: NDJSON (with a blank line and CRLF) and a JSON array.
	body := strings.Join(lines[:3000], "\r\n") + "\n\n"
	bothPaths(t, in, []byte(body), engine.KindUnknown)
	bothPaths(t, in, []byte("["+strings.Join(valid, ",")+","+strings.Join(lines[3000:3100], ",")+"]"), engine.KindUnknown)
	t.Logf("6000 mutated lines: %d accepted, %d of them decoded into columns, the rest judged on the row path", accepted, taken)
	if taken < accepted/2 {
		t.Errorf("only %d of %d accepted lines decoded into columns: the fast path is hardly taken", taken, accepted)
	}
}

// plainKeys reports whether the object's keys are written without escapes and none is given twice (the
// shapes the columnar decoder leaves to the row path); true for what is no object.
func plainKeys(line []byte) bool {
	p := parser{b: line}
	p.ws()
	if p.peek() != '{' {
		return true
	}
	p.i++
	seen := map[string]bool{}
	for {
		p.ws()
		k, escaped, err := p.scanStr()
		if err != nil {
			return true
		}
		if escaped || seen[string(k)] {
			return false
		}
		seen[string(k)] = true
		p.ws()
		p.i++ // ':'
		if p.skipValue(0) != nil {
			return true
		}
		if p.ws(); p.peek() != ',' {
			return true
		}
		p.i++
	}
}

// FuzzDecodeColumns: whatever the body, Ingest's batch (columns first) and the row path's hold the same
// record, answer and dead letters. Seeds: the spec's examples and real records of the shared data.
func FuzzDecodeColumns(f *testing.F) {
	realSeeds(f)
	for _, ev := range columnBases() {
		f.Add(AppendJSON(nil, &ev))
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		in := New(Config{Mem: mem, Now: func() time.Time { return now }}, nil)
		bothPaths(t, in, body, engine.KindUnknown)
		if bytes.Contains(body, []byte(`"probe"`)) {
			bothPaths(t, in, body, engine.KindProbe)
		}
	})
}

// BenchmarkDecodeColumns: the same 1,000 NDJSON probe lines decoded into a batch on the row path
// (DecodeEvent, Validate, Append of an Event) and by the columnar decoder (straight into the builders).
func BenchmarkDecodeColumns(b *testing.B) {
	var body []byte
	for i := 0; i < 1000; i++ {
		body = fmt.Appendf(body, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%.5f,"lng":%.5f,"speed_kmh":%d,"heading_deg":%d,"source":"fleet-a"}`+"\n",
			1795737600000+int64(i)*10, i%300, 30.2+float64(i%97)*0.001, 120.1+float64(i%89)*0.001, i%70, i%360)
	}
	in := New(Config{MaxAhead: -1}, nil)
	for _, path := range []string{"rows", "columns"} {
		b.Run(path, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bt := in.newBatch("bench", engine.KindUnknown)
				if path == "rows" {
					DecodeLines(body, func(line int, raw []byte, ev engine.Event, err error) { bt.add(line, raw, &ev, err) })
				} else {
					eachObject(body, func(line int, raw []byte) { bt.addRaw(line, raw) })
				}
				if bt.res.Accepted != 1000 {
					b.Fatalf("accepted %d of 1000", bt.res.Accepted)
				}
				bt.bb.NewRecord().Release()
				bt.Release()
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// plainNumber gives ParseFloat's float64 to the bit for every number it takes, and takes the usual ones:
// short decimals, and coordinates at full float64 precision (16–17 digits, as AppendJSON writes them),
// which before went to ParseFloat.
func TestPlainNumberAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if n > 1 && b[0] == '0' {
			b[0] = byte('1' + rng.IntN(9))
		}
		return string(b)
	}
	cases := []string{"0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "0.3", "123456789012345", "1234567890123456",
		"999999999999999", "0.000000000000001", "9007199254740993", "1e5", "1.5E-3", "30.26367122147619", "91",
		"1796536932000", "-122.4194", "0.1000000000000000055511151231257827", "1e22", "1e23", "9e-64", "1e65",
		"1e-400", "1e400", "4503599627370496", "4503599627370497.5", "9007199254740992.5", "18446744073709551615",
		"9999999999999999999", "10000000000000000000", "0.00000000000000000000000001", "2.2250738585072011e-308",
		"1.7976931348623157e308", "5e-324", "123.456e-7", "123.456E+7", "0e10", "-0e-5", "7.0e0"}
	for i := 0; i < 400000; i++ {
		var s string
		switch rng.IntN(4) {
		case 0: // the producers' coordinates and readings, as AppendJSON writes a float64
			x := []float64{28.6 + rng.Float64()*0.1, 115.8 + rng.Float64()*0.1, rng.Float64() * 120, rng.NormFloat64() * 1e6,
				rng.ExpFloat64() * 1e-9, float64(rng.Int64N(1 << 60))}[rng.IntN(6)]
			s = string(AppendJSON(nil, &engine.Event{Kind: engine.KindSensor, Value: x}))
			s = s[strings.Index(s, `"value":`)+len(`"value":`):]
			s = s[:strings.IndexAny(s, ",}")]
		default:
			n := 1 + rng.IntN(22)
			s = digits(n)
			if f := rng.IntN(n + 1); f > 0 && f < n {
				s = s[:f] + "." + s[f:]
			} else if f == n {
				s = "0." + strings.Repeat("0", rng.IntN(5)) + s
			}
			if rng.IntN(4) == 0 {
				s += []string{"e", "E", "e-", "e+", "E-"}[rng.IntN(5)] + strconv.Itoa(rng.IntN(90))
			}
		}
		if rng.IntN(3) == 0 && s[0] != '-' {
			s = "-" + s
		}
		cases = append(cases, s)
	}
	took := 0
	for _, s := range cases {
		want, err := strconv.ParseFloat(s, 64)
		got, ok := plainNumber([]byte(s))
		if !ok {
			continue
		}
		took++
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("plainNumber(%q) = %v (%x), ParseFloat %v (%x, %v)", s, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	}
	for _, s := range []string{"1", "0.1", "91", "1796536932000", "-122.4194", "30.2636712", "1e5", "30.26367122147619",
		"115.85283400972811", "1234567890123456", "-0.000012345678901234567", "1.5E-3"} {
		if _, ok := plainNumber([]byte(s)); !ok {
			t.Errorf("plainNumber does not take %q", s)
		}
	}
	for _, s := range []string{"-0", "-0.0", "1e400", "1e-400", "9007199254740993", "12345678901234567890", "0.1000000000000000055511151231257827"} {
		if _, ok := plainNumber([]byte(s)); ok {
			t.Errorf("plainNumber takes %q", s)
		}
	}
	if took < len(cases)*3/4 {
		t.Errorf("plainNumber took %d of %d numbers", took, len(cases))
	}
}

// viewScan reads a string as scanStr does (the same bytes, escapes and failures), and calls it ASCII exactly
// when none of its bytes outside escapes is 0x80 or above, so decodeView's UTF-8 check may skip only those.
func TestViewScanAgreesWithScanStr(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 9))
	alphabet := []string{"a", "Z", "0", " ", "abcdefgh", "~\x7f", `\"`, `\\`, `\n`, `\u00e9`, "é", "\x80", "\xff", "\x01", `\`, "汉", "\xe6\xb1"}
	cases := []string{`""`, `"a"`, `"abc`, `x"`, `"\"`, `"é"`, "\"\xff\"", "\"a\x1f\"", `"\\"`}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		b.WriteByte('"')
		for n := rng.IntN(30); n > 0; n-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(8) > 0 {
			b.WriteByte('"')
		}
		cases = append(cases, b.String()+[]string{"", ",", `:"x"`}[rng.IntN(3)])
	}
	for _, s := range cases {
		p, q := parser{b: []byte(s)}, parser{b: []byte(s)}
		raw, esc, err := p.scanStr()
		vraw, vesc, ascii, ok := q.viewScan()
		if ok != (err == nil) || string(raw) != string(vraw) || esc != vesc || (ok && p.i != q.i) {
			t.Fatalf("%q: viewScan %q %v ok %v at %d, scanStr %q %v %v at %d", s, vraw, vesc, ok, q.i, raw, esc, err, p.i)
		}
		if !ok || esc {
			continue
		}
		want := true
		for _, c := range []byte(raw) {
			want = want && c < 0x80
		}
		if ascii != want {
			t.Fatalf("%q: ascii %v, want %v", s, ascii, want)
		}
	}
}

// The key cache keeps each kind's keys apart: in a batch whose kinds alternate, a probe row's keys after
// "kind" are still cached for the next probe row when a detector row came between (a cache by position alone
// held the detector's keys then and missed on every change of kind).
func TestKeyCacheByKind(t *testing.T) {
	probe := []byte(`{"kind":"probe","ts":1795737600000,"id":"v","lat":30.2,"lng":120.1,"speed_kmh":12,"heading_deg":90}`)
	det := []byte(`{"kind":"detector","ts":1795737600000,"id":"d","lat":30.2,"lng":120.1,"flow_vph":300,"occupancy":0.2,"interval_s":60,"speed_kmh":40}`)
	var kc keyCache
	var v schema.RowView
	for _, row := range [][]byte{probe, det, probe, det} {
		if !decodeView(row, &v, &kc) {
			t.Fatalf("not taken: %s", row)
		}
	}
	for kind, keys := range map[engine.Kind][]string{
		engine.KindProbe:    {"ts", "id", "lat", "lng", "speed_kmh", "heading_deg"},
		engine.KindDetector: {"ts", "id", "lat", "lng", "flow_vph", "occupancy", "interval_s", "speed_kmh"},
	} {
		for i, k := range keys {
			if e := kc[kind][i+1]; string(e.key[:e.n]) != k || !e.ok {
				t.Errorf("%s: key %d cached as %q (known %v), want %q", kind, i+1, e.key[:e.n], e.ok, k)
			}
		}
	}
	if e := kc[engine.KindUnknown][0]; string(e.key[:e.n]) != "kind" {
		t.Errorf("first key cached as %q, want kind", e.key[:e.n])
	}
}

// viewNumber scans and converts in one pass: it stops where scanNumber stops, fails where it fails, and gives
// ParseFloat's float64 of the scanned text to the bit (or fails where ParseFloat does: out of range).
func TestViewNumberAgreesWithScanAndParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 5))
	parts := []string{"-", "0", "1", "9", "00", "123456789", "4503599627370497", ".", ".5", "e", "E", "+", "-", "e-7",
		"E+22", "e400", "e-400", "1234567890123456789012", "x", ",", "}", " ", "null", "n"}
	cases := []string{"", "-", "0", "-0", "01", "1.", ".5", "1e", "1e+", "1e5", "30.26367122147619", "115.85283400972811,",
		"1796536932000}", "9007199254740993", "1e400", "-1e-400", "123456789012345678901234567890", "0.000000000000000000001234"}
	for i := 0; i < 300000; i++ {
		var sb strings.Builder
		for n := 1 + rng.IntN(6); n > 0; n-- {
			sb.WriteString(parts[rng.IntN(len(parts))])
		}
		cases = append(cases, sb.String())
	}
	for _, s := range cases {
		p, q := parser{b: []byte(s)}, parser{b: []byte(s)}
		got, ok := p.viewNumber()
		if q.null() {
			if !ok || !math.IsNaN(got) || p.i != q.i {
				t.Fatalf("%q: viewNumber %v %v at %d, want null at %d", s, got, ok, p.i, q.i)
			}
			continue
		}
		scanned := q.scanNumber()
		want, err := strconv.ParseFloat(s[:q.i], 64)
		wantOK := scanned && err == nil
		if ok != wantOK || (ok && (p.i != q.i || math.Float64bits(got) != math.Float64bits(want))) {
			t.Fatalf("%q: viewNumber %v (%x) ok %v at %d; scanNumber %v at %d, ParseFloat %v (%x) %v", s, got,
				math.Float64bits(got), ok, p.i, scanned, q.i, want, math.Float64bits(want), err)
		}
	}
}
