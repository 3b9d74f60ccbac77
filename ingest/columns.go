package ingest

import (
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine"
)

// The columnar check of an Arrow record batch: the rules of rules.go applied column by column on the typed
// value slices (no engine.Event per row, no copy), and the cells checked through the cell cache. It only
// answers "is every row of the batch accepted as it is?": a batch for which it says yes goes to the log as
// it came; any other goes through the row path (ReadEvent, Validate, batch.add), which names what is wrong
// with each rejected row. It is an under-approximation of the row path: a row it passes, the row path
// accepts with the same cell (TestColumnarCheckAgreesWithRows); a null where the row path reads a value,
// or a value it does not judge, makes it answer no.

// numCol reads one optional number column: present (not null, not NaN) and the value widened to float64.
type numCol struct {
	f32 []float32
	f64 []float64
	arr arrow.Array
}

func newNumCol(a arrow.Array) numCol {
	switch c := a.(type) {
	case *array.Float32:
		return numCol{f32: c.Float32Values(), arr: a}
	case *array.Float64:
		return numCol{f64: c.Float64Values(), arr: a}
	}
	return numCol{arr: a}
}

// get returns the value of row i and whether it is present (ReadF32/ReadF64: null or NaN is absent). For a
// float32 column the value is float64(v); ReadF32 widens to the shortest decimal instead, which is on the
// same side of every bound of the rules (their bounds are float32 values with short decimals).
func (c numCol) get(i int) (float64, bool) {
	if c.arr.IsNull(i) {
		return 0, false
	}
	var v float64
	switch {
	case c.f32 != nil:
		v = float64(c.f32[i])
	case c.f64 != nil:
		v = c.f64[i]
	default:
		return 0, false
	}
	return v, !math.IsNaN(v)
}

// inRange reports whether every present value of the column's n rows is in [lo, hi] (±Inf is not), as
// get row by row would: straight over the values, the validity of a row read only when its value is out
// (a null row's slot holds anything, usually 0; a NaN is absent, as in get).
func (c numCol) inRange(n int, lo, hi float64) bool {
	switch {
	case c.f32 != nil:
		for i, x := range c.f32[:n] {
			if v := float64(x); !(v >= lo && v <= hi) && !math.IsNaN(v) && c.arr.IsValid(i) {
				return false
			}
		}
	case c.f64 != nil:
		for i, v := range c.f64[:n] {
			if !(v >= lo && v <= hi) && !math.IsNaN(v) && c.arr.IsValid(i) {
				return false
			}
		}
	}
	return true
}

// strCol reads one string column's lengths and values (null reads as "", as ReadStr does).
type strCol struct {
	a   *array.String
	off []int32
}

func (c strCol) len(i int) int {
	if c.a.IsNull(i) {
		return 0
	}
	return int(c.off[i+1] - c.off[i])
}

func (c strCol) value(i int) string {
	if c.a.IsNull(i) {
		return ""
	}
	return c.a.Value(i) // a view: only compared, never kept
}

// cleanRecord reports whether every row of rec (engine.Schema, cells at the base resolution) is accepted
// by the row path unchanged: valid, of kind want (KindUnknown: any), not after aheadMs, and with the cell
// the cell cache gives its position.
func (in *Ingestor) cleanRecord(rec arrow.Record, want engine.Kind, aheadMs int64) bool {
	n := int(rec.NumRows())
	col := func(c int) arrow.Array { return rec.Column(c) }
	kindA, ok1 := col(engine.ColKind).(*array.Uint8)
	tsA, ok2 := col(engine.ColTS).(*array.Timestamp)
	idA, ok3 := col(engine.ColID).(*array.String)
	latA, ok4 := col(engine.ColLat).(*array.Float64)
	lngA, ok5 := col(engine.ColLng).(*array.Float64)
	cellA, ok6 := col(engine.ColCell).(*array.Uint64)
	sevA, ok7 := col(engine.ColSeverity).(*array.Int8)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || n == 0 {
		return false
	}
	if kindA.NullN() > 0 || tsA.NullN() > 0 || idA.NullN() > 0 || latA.NullN() > 0 || lngA.NullN() > 0 || cellA.NullN() > 0 {
		return false
	}
	// Column by column: kind, time, id, position.
	kinds := kindA.Uint8Values()
	for _, k := range kinds {
		if k == uint8(engine.KindUnknown) || k > uint8(engine.KindSensor) || (want != engine.KindUnknown && engine.Kind(k) != want) {
			return false
		}
	}
	for _, t := range tsA.TimestampValues() {
		if t < MinTS || t > MaxTS || int64(t) > aheadMs {
			return false
		}
	}
	idOff := idA.ValueOffsets()
	for i := 0; i < n; i++ {
		if l := idOff[i+1] - idOff[i]; l < 1 || l > MaxIDBytes {
			return false
		}
	}
	lats, lngs := latA.Float64Values(), lngA.Float64Values()
	for i := 0; i < n; i++ {
		lat, lng := lats[i], lngs[i]
		if !(lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180) || (lat == 0 && lng == 0) {
			return false
		}
	}
	// Every string within its limit, every number present in its range.
	strs := map[string]strCol{}
	for i := range StringRules {
		r := &StringRules[i]
		a, ok := col(r.Col).(*array.String)
		if !ok {
			return false
		}
		c := strCol{a: a, off: a.ValueOffsets()}
		strs[r.Field] = c
		if r.Col == engine.ColID {
			continue
		}
		for i := 0; i < n; i++ {
			if c.len(i) > r.Max {
				return false
			}
		}
	}
	nums := map[string]numCol{}
	for i := range NumberRules {
		r := &NumberRules[i]
		c := newNumCol(col(r.Col))
		if c.f32 == nil && c.f64 == nil {
			return false
		}
		nums[r.Field] = c
		if !c.inRange(n, r.Min, r.Max) {
			return false
		}
	}
	sevs := sevA.Int8Values()
	for i := 0; i < n; i++ {
		if sevA.IsValid(i) && sevs[i] != 0 && (sevs[i] < 1 || sevs[i] > 5) {
			return false
		}
	}
	// Per kind: required fields, enumerated values, the cross-field rules of Validate, with the fields
	// looked up once for the batch (a field name to its column), not once a row.
	type field struct {
		num *numCol
		str *strCol
		sev bool
	}
	resolve := func(f string) field {
		if c, ok := nums[f]; ok {
			return field{num: &c}
		}
		if c, ok := strs[f]; ok {
			return field{str: &c}
		}
		return field{sev: f == "severity"}
	}
	present := func(f field, i int) bool {
		switch {
		case f.num != nil:
			_, p := f.num.get(i)
			return p
		case f.str != nil:
			return f.str.len(i) > 0
		case f.sev:
			return sevA.IsValid(i) && sevs[i] != 0
		}
		return false
	}
	type enumCol struct {
		col    strCol
		values map[string]bool
	}
	type kindRules struct {
		resolved bool
		required []field
		enums    []enumCol
	}
	var rules [len(enumsOf)]kindRules
	interval, flow, typ := nums["interval_s"], nums["flow_vph"], strs["type"]
	speed, count, queue, conf := resolve("speed_kmh"), resolve("count"), resolve("queue_m"), resolve("confidence")
	for i := 0; i < n; i++ {
		k := engine.Kind(kinds[i])
		kr := &rules[k]
		if !kr.resolved {
			kr.resolved = true
			for _, f := range Required[k] {
				kr.required = append(kr.required, resolve(f))
			}
			for _, es := range enumsOf[k] {
				kr.enums = append(kr.enums, enumCol{strs[es.rule.Field], es.values})
			}
		}
		for _, f := range kr.required {
			if !present(f, i) {
				return false
			}
		}
		for _, e := range kr.enums {
			if !e.values[e.col.value(i)] {
				return false
			}
		}
		switch k {
		case engine.KindDetector:
			iv, _ := interval.get(i)
			if iv == 0 {
				return false
			}
			if fl, ok := flow.get(i); ok && fl > 0 && !present(speed, i) {
				return false
			}
		case engine.KindVideo:
			switch typ.value(i) {
			case "vehicle_count":
				if !present(count, i) {
					return false
				}
			case "queue":
				if !present(queue, i) {
					return false
				}
			default:
				if !present(conf, i) {
					return false
				}
			}
		}
	}
	// The cells, through the cache.
	cells := cellA.Uint64Values()
	for i := 0; i < n; i++ {
		if !in.cells.Holds(cells[i], lats[i], lngs[i]) {
			return false
		}
	}
	return true
}
