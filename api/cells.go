package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
)

// CellQuery is a viewport: bbox, resolution and window (an index into engine.Windows).
type CellQuery struct {
	BBox     geo.BBox
	Res      int
	Window   int
	Geometry bool // include each cell's boundary (websocket only)
}

// parseBBox parses "minLng,minLat,maxLng,maxLat".
func parseBBox(s string) (geo.BBox, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return geo.BBox{}, fmt.Errorf("bbox %q must be minLng,minLat,maxLng,maxLat", s)
	}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			return geo.BBox{}, fmt.Errorf("bbox %q: %q is not a number", s, p)
		}
		v[i] = f
	}
	b := geo.BBox{MinLng: v[0], MinLat: v[1], MaxLng: v[2], MaxLat: v[3]}
	if !b.Valid() {
		return geo.BBox{}, fmt.Errorf("bbox %q is not a rectangle minLng<=maxLng, minLat<=maxLat within the globe", s)
	}
	return b, nil
}

// bboxParam reads the bbox query parameter; absent, the whole globe.
func bboxParam(r *http.Request) (geo.BBox, error) {
	if b := r.URL.Query().Get("bbox"); b != "" {
		return parseBBox(b)
	}
	return geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}, nil
}

// parseWindow parses "60s", "300s", "900s" (or "1m", "5m", "15m"); empty is the 1-minute window.
func parseWindow(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if n, err2 := strconv.Atoi(s); err2 == nil {
			d = time.Duration(n) * time.Second
		} else {
			return 0, fmt.Errorf("window %q is not a duration (60s, 300s or 900s)", s)
		}
	}
	i := engine.WindowIndex(d)
	if i < 0 {
		return 0, fmt.Errorf("window %q is not one of 60s, 300s, 900s", s)
	}
	return i, nil
}

func windowName(i int) string { return strconv.Itoa(int(engine.Windows[i].Seconds())) + "s" }

// parseCellQuery reads res, bbox and window from URL values; res defaults to the base resolution and bbox
// to the whole globe.
func parseCellQuery(get func(string) string, baseRes int) (CellQuery, error) {
	q := CellQuery{Res: baseRes, BBox: geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}}
	if s := get("res"); s != "" {
		r, err := strconv.Atoi(s)
		if err != nil || r < 0 || r > baseRes {
			return q, fmt.Errorf("res %q must be an integer 0..%d (the base resolution or coarser)", s, baseRes)
		}
		q.Res = r
	}
	if s := get("bbox"); s != "" {
		b, err := parseBBox(s)
		if err != nil {
			return q, err
		}
		q.BBox = b
	}
	w, err := parseWindow(get("window"))
	if err != nil {
		return q, err
	}
	q.Window = w
	return q, nil
}

// appendTime appends an RFC 3339 UTC time with milliseconds, or null for "no time".
func appendTime(buf []byte, ms int64) []byte {
	if ms <= 0 {
		return append(buf, "null"...)
	}
	buf = append(buf, '"')
	buf = time.UnixMilli(ms).UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	return append(buf, '"')
}

func trimFloat(buf []byte, x float64, prec int) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(buf, "null"...)
	}
	return strconv.AppendFloat(buf, math.Round(x*math.Pow10(prec))/math.Pow10(prec), 'g', -1, 64)
}

// appendCell appends the spec/api.md cell object for window w of v.
func appendCell(buf []byte, v *engine.CellView, w int, geometry bool) []byte {
	d := v.Derive(w)
	st := &v.W[w]
	buf = append(buf, `{"cell":"`...)
	buf = append(buf, geo.CellString(v.Cell)...)
	buf = append(buf, `","lat":`...)
	buf = trimFloat(buf, v.Lat, 6)
	buf = append(buf, `,"lng":`...)
	buf = trimFloat(buf, v.Lng, 6)
	buf = append(buf, `,"speed_kmh":`...)
	buf = trimFloat(buf, d.SpeedKmh, 2)
	buf = append(buf, `,"sample_kmh":`...)
	buf = trimFloat(buf, d.SampleKmh, 2)
	buf = append(buf, `,"free_flow_kmh":`...)
	buf = trimFloat(buf, v.FreeFlowKmh, 2)
	buf = append(buf, `,"free_flow_source":"`...)
	buf = append(buf, engine.FreeFlowSourceName(v.FreeFlowSource)...)
	buf = append(buf, `","congestion":`...)
	buf = trimFloat(buf, d.Congestion, 3)
	buf = append(buf, `,"tpi":`...)
	buf = trimFloat(buf, d.TPI, 2)
	buf = append(buf, `,"level":"`...)
	buf = append(buf, d.Level...)
	buf = append(buf, `","samples":`...)
	buf = strconv.AppendUint(buf, uint64(st.Samples), 10)
	buf = append(buf, `,"confidence":`...)
	buf = trimFloat(buf, d.Confidence, 2)
	buf = append(buf, `,"low_samples":`...)
	buf = strconv.AppendBool(buf, d.LowSamples)
	buf = append(buf, `,"events":`...)
	buf = strconv.AppendUint(buf, uint64(st.Events), 10)
	buf = append(buf, `,"flow_vph":`...)
	buf = trimFloat(buf, st.FlowVph(), 1)
	buf = append(buf, `,"occupancy":`...)
	buf = trimFloat(buf, st.Occupancy(), 3)
	buf = append(buf, `,"incident_score":`...)
	buf = trimFloat(buf, v.IncidentScore, 3)
	buf = append(buf, `,"updated_at":`...)
	buf = appendTime(buf, v.UpdatedAt)
	if geometry {
		buf = append(buf, `,"boundary":[`...)
		for i, p := range geo.Boundary(v.Cell) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = trimFloat(buf, p[0], 6)
			buf = append(buf, ',')
			buf = trimFloat(buf, p[1], 6)
			buf = append(buf, ']')
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

// hasData reports whether window w of v has anything to show.
func hasData(v *engine.CellView, w int) bool { return v.W[w].Events > 0 || v.IncidentScore > 0 }

// handleCells serves GET /api/v1/cells.
func (s *Server) handleCells(w http.ResponseWriter, r *http.Request) { writeCells(w, r, s.Engine) }

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(ingest.AppendQuoted([]byte(`{"error":`), msg), "}\n"...))
}
