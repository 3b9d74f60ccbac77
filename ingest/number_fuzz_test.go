package ingest

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// FuzzPlainNumber: whatever JSON number the columnar decoder converts itself, it converts to ParseFloat's
// float64 to the bit (plainNumber refuses what it cannot decide exactly; ParseFloat takes those), and the
// parser's one-pass viewNumber reads the whole number to the same bits, or refuses it where ParseFloat does
// (out of range).
func FuzzPlainNumber(f *testing.F) {
	// Real readings: coordinates as producers send them (full precision), speeds, counts, a METR-LA speed,
	// a Unix-millisecond time, and the edges of the conversion (the fast path's 2^53 and 10^22, halfway).
	for _, s := range []string{"30.26367122147619", "115.85283400972811", "-122.4194", "34.14604", "-118.22430",
		"64.375", "0", "-0", "1796536932000", "0.000012345678901234567", "9007199254740993", "1e22", "1e23", "1e400", "-1e-400", "0.0000000000000000000000000000001",
		"4503599627370497.5", "2.2250738585072011e-308", "1.7976931348623157e308", "5e-324", "123.456E+7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || s[len(s)-1] < '0' || s[len(s)-1] > '9' || !json.Valid([]byte(s)) {
			return // not a JSON number: scanNumber never hands plainNumber one
		}
		want, err := strconv.ParseFloat(s, 64)
		p := &parser{b: []byte(s)}
		got, ok := p.viewNumber()
		switch {
		case err != nil && ok:
			t.Fatalf("viewNumber(%q) = %v, ParseFloat refuses it: %v", s, got, err)
		case err == nil && (!ok || p.i != len(s) || math.Float64bits(got) != math.Float64bits(want)):
			t.Fatalf("viewNumber(%q) = %v (%x), %v, read %d of %d bytes; ParseFloat %v (%x)", s, got, math.Float64bits(got), ok, p.i, len(s), want, math.Float64bits(want))
		}
		got, ok = plainNumber([]byte(s))
		if !ok {
			return
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("plainNumber(%q) = %v (%x), ParseFloat %v (%x, %v)", s, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	})
}
