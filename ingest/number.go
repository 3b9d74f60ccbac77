package ingest

import (
	"math"
	"math/big"
	"math/bits"
)

// The columnar decoder's number conversion: a JSON number (as scanNumber accepted it) of at most 19
// significant digits and a small exponent becomes strconv.ParseFloat's float64 to the bit, without strconv's
// general scan (its readFloat was ~4 % of the NATS JSON server's CPU, on the coordinates the producers send
// at full precision: 16–17 digits, past the exact fast path). The digits are read once into a uint64 and a
// power of ten; then strconv's own two exact steps: the exact fast path (mantissa under 2^52, power of ten
// up to 22: one correctly rounded multiplication or division), else the Eisel-Lemire algorithm
// (https://nigeltao.github.io/blog/2020/eisel-lemire.html, as strconv's atofeisel.go implements it) on a
// table of the powers of ten it needs, made at start from math/big as strconv's pow10gen.go makes its own.
// Whatever it cannot decide exactly (more digits, a larger exponent, an ambiguous halfway case, -0) it
// refuses, and the caller asks ParseFloat (TestPlainNumberAgrees).

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// The powers of ten of the Eisel-Lemire table: 10^e = (hi·2^64 + lo) / 2^128 · 2^(1+⌊e·log2(10)⌋), the
// 128-bit mantissa rounded down with its top bit set.
const (
	pow10Lo = -64
	pow10Hi = 64
)

var pow10Mant = func() (t [pow10Hi - pow10Lo + 1][2]uint64) {
	ten := big.NewInt(10)
	for e := pow10Lo; e <= pow10Hi; e++ {
		p := new(big.Int).Exp(ten, big.NewInt(int64(abs(e))), nil)
		var m *big.Int
		if e >= 0 {
			m = p
		} else {
			// ⌊2^(128+L)/10^-e⌋ with L = bits of 10^-e: at least 2^128, shifted into 128 bits below.
			m = new(big.Int).Quo(new(big.Int).Lsh(big.NewInt(1), uint(128+p.BitLen())), p)
		}
		if n := m.BitLen(); n > 128 {
			m.Rsh(m, uint(n-128)) // floor: the table is rounded down
		} else {
			m.Lsh(m, uint(128-n))
		}
		lo := new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64))
		t[e-pow10Lo] = [2]uint64{new(big.Int).Rsh(m, 64).Uint64(), lo.Uint64()}
	}
	return t
}()

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// plainNumber converts the JSON number s (as scanNumber accepted it) to strconv.ParseFloat's float64 to the
// bit, or answers false: use ParseFloat.
func plainNumber(s []byte) (float64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var m uint64
	nd, exp, i := 0, 0, 0 // significant digits in m; the power of ten m is scaled by
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if m == 0 && s[i] == '0' {
			continue
		}
		if nd++; nd > 19 {
			return 0, false
		}
		m = m*10 + uint64(s[i]-'0')
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp--
			if m == 0 && s[i] == '0' {
				continue
			}
			if nd++; nd > 19 {
				return 0, false
			}
			m = m*10 + uint64(s[i]-'0')
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := i < len(s) && s[i] == '-'
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		x := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if x = x*10 + int(s[i]-'0'); x > 1000 {
				return 0, false
			}
		}
		if eneg {
			x = -x
		}
		exp += x
	}
	if i != len(s) || len(s) == 0 {
		return 0, false
	}
	return fromDecimal(m, exp, neg)
}

// fromDecimal is plainNumber's answer for the number (-1 if neg) m·10^exp, m holding every digit.
func fromDecimal(m uint64, exp int, neg bool) (float64, bool) {
	if m == 0 {
		return 0, !neg // -0 keeps its sign in ParseFloat: left to it
	}
	if m>>52 == 0 && exp >= -22 && exp <= 22 { // strconv's atof64exact
		f := float64(m)
		if exp < 0 {
			f /= exactPow10[-exp]
		} else {
			f *= exactPow10[exp]
		}
		if neg {
			f = -f
		}
		return f, true
	}
	return eiselLemire(m, exp, neg)
}

// eiselLemire is strconv's eiselLemire64 on the table above: man·10^exp10 correctly rounded, or false when
// it cannot tell (ParseFloat decides those).
func eiselLemire(man uint64, exp10 int, neg bool) (float64, bool) {
	if exp10 < pow10Lo || exp10 > pow10Hi {
		return 0, false
	}
	pow := &pow10Mant[exp10-pow10Lo]
	exp2 := 1 + (exp10*108853)>>15 // ⌊exp10·log2(10)⌋ + 1, exact for |exp10| ≤ 500
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	const bias = -1023
	retExp2 := uint64(exp2+63-bias) - uint64(clz)
	xHi, xLo := bits.Mul64(man, pow[0])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[1])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false // halfway
	}
	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal, infinite
	}
	b := retExp2<<52 | retMantissa&(1<<52-1)
	if neg {
		b |= 1 << 63
	}
	return math.Float64frombits(b), true
}
