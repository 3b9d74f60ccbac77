package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"citybrain/geo"
	"citybrain/history"
	"citybrain/ingest"
	"citybrain/replay"
)

// History serves GET /api/v1/history (docs/command-center.md "History"): Store holds the recent past, Fill
// (optional) recomputes older ranges from the event log.
type History struct {
	Store *history.Store
	Fill  *history.Backfiller
}

// maxFillWait bounds how long a request waits for the log to be read for an older range; what is not filled
// by then is reported in "missing" and filled by the next request.
const maxFillWait = 60 * time.Second

// handleHistory serves GET /api/v1/history?metric=tpi|speed|incidents|events&from=&to=&step=&bbox=&res=&cells=.
// from and to take the API's time forms; from may also be -DURATION (from=-2h: two hours before to).
// Defaults: the last 24 hours of event time up to the engine's clock, a step giving at most 288 points (5 min
// for a day), the whole city. res groups the area by H3 cells of that resolution (one series each, named after
// the most important road crossing it when a network is loaded); cells (comma-separated H3 cells, any
// resolution not finer than the store's) restricts the area to those cells.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	if s.History == nil || s.History.Store == nil {
		writeError(w, http.StatusNotFound, "this server keeps no history")
		return
	}
	st := s.History.Store
	q := r.URL.Query()
	hq := history.Query{Metric: strings.ToLower(q.Get("metric")), Res: -1}
	if hq.Metric == "" {
		hq.Metric = history.MetricTPI
	}
	to, err := replay.ParseTime(q.Get("to"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	var from time.Time
	var back time.Duration // from=-2h: that long before to
	if v := q.Get("from"); strings.HasPrefix(v, "-") {
		if back, err = time.ParseDuration(v[1:]); err != nil || back <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("from %q: a time, or -DURATION before to (-2h)", v))
			return
		}
	} else if from, err = replay.ParseTime(v); err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	stepMs := st.Config().Step.Milliseconds()
	if to.IsZero() {
		now := s.Engine.Status().Now
		if now <= 0 {
			now = time.Now().UnixMilli()
		}
		to = time.UnixMilli(now - now%stepMs + stepMs)
	}
	if back > 0 {
		from = to.Add(-back)
	} else if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	hq.From, hq.To = from.UnixMilli(), to.UnixMilli()
	if hq.To <= hq.From {
		writeError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	if hq.To-hq.From > 31*24*time.Hour.Milliseconds() {
		writeError(w, http.StatusBadRequest, "a history covers at most 31 days: split it or narrow from/to")
		return
	}
	if v := q.Get("step"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, err2 := strconv.Atoi(v); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("step %q is not a duration (60s, 5m, 1h)", v))
			return
		}
		hq.Step = d
	} else {
		span := time.Duration(hq.To-hq.From) * time.Millisecond
		hq.Step = st.Config().Step
		for _, c := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
			if c >= st.Config().Step && span/c <= 288 {
				hq.Step = c
				break
			}
		}
	}
	if hq.BBox, err = bboxParam(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if v := q.Get("res"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > st.Config().Res {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("res %q must be an integer 0..%d (the history's resolution)", v, st.Config().Res))
			return
		}
		hq.Res = n
	}
	if v := q.Get("cells"); v != "" {
		if hq.Cells, err = areaCells(v, st.Config().Res); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if hq.Metric != history.MetricTPI && hq.Metric != history.MetricSpeed && hq.Metric != history.MetricIncidents && hq.Metric != history.MetricEvents {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("metric %q: use tpi, speed, incidents or events", hq.Metric))
		return
	}
	res, err := st.Query(hq)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	filled := 0
	if len(res.Missing) > 0 && s.History.Fill != nil {
		// Older ranges (and gaps) come from the log. The slot in progress is never filled from here.
		limit := s.Engine.Status().Now
		limit -= limit % stepMs
		ctx, cancel := context.WithTimeout(r.Context(), maxFillWait)
		for _, m := range res.Missing {
			if m[0] >= limit {
				continue
			}
			n, err := s.History.Fill.Fill(ctx, m[0], min(m[1], limit))
			filled += n
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					cancel()
					writeError(w, http.StatusServiceUnavailable, err.Error())
					return
				}
				break
			}
		}
		cancel()
		if filled > 0 {
			if res, err = st.Query(hq); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
	}
	// The minute in progress is not missing, only not over yet.
	now := s.Engine.Status().Now
	now -= now % stepMs
	kept := res.Missing[:0]
	for _, m := range res.Missing {
		if m[0] >= now {
			continue
		}
		m[1] = min(m[1], max(now, m[0]))
		kept = append(kept, m)
	}
	res.Missing = kept
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.appendHistory(nil, hq, res, filled))
}

// areaCells parses a comma-separated list of H3 cells into the stored cells they cover.
func areaCells(v string, res int) (map[uint64]struct{}, error) {
	parts := strings.Split(v, ",")
	if len(parts) > 5000 {
		return nil, fmt.Errorf("cells: %d cells (at most 5000)", len(parts))
	}
	out := map[uint64]struct{}{}
	for _, p := range parts {
		c, err := geo.ParseCell(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("cells: %w", err)
		}
		r := geo.Res(c)
		switch {
		case r == res:
			out[c] = struct{}{}
		case r > res:
			out[geo.ParentFast(c, res)] = struct{}{}
		default:
			if res-r > 4 {
				return nil, fmt.Errorf("cells: %s is resolution %d: give cells of resolution %d..%d", p, r, res-4, res)
			}
			for _, ch := range geo.Children(c, res) {
				out[ch] = struct{}{}
			}
		}
	}
	return out, nil
}

func (s *Server) appendHistory(buf []byte, q history.Query, res history.Result, filled int) []byte {
	buf = append(buf, `{"metric":`...)
	buf = ingest.AppendQuoted(buf, q.Metric)
	buf = append(buf, `,"from":`...)
	buf = appendTime(buf, q.From)
	buf = append(buf, `,"to":`...)
	buf = appendTime(buf, q.To)
	buf = append(buf, `,"step_s":`...)
	buf = strconv.AppendInt(buf, int64(q.Step/time.Second), 10)
	if q.Res >= 0 {
		buf = append(buf, `,"res":`...)
		buf = strconv.AppendInt(buf, int64(q.Res), 10)
	}
	buf = append(buf, `,"filled_from_log":`...)
	buf = strconv.AppendInt(buf, int64(filled), 10)
	buf = append(buf, `,"missing":[`...)
	for i, m := range res.Missing {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = appendTime(buf, m[0])
		buf = append(buf, ',')
		buf = appendTime(buf, m[1])
		buf = append(buf, ']')
	}
	buf = append(buf, `],"series":[`...)
	prec := 2
	if q.Metric == history.MetricSpeed {
		prec = 1
	}
	for i, se := range res.Series {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"key":`...)
		buf = ingest.AppendQuoted(buf, se.Key)
		if se.Key != "all" {
			buf = append(buf, `,"lat":`...)
			buf = trimFloat(buf, se.Lat, 6)
			buf = append(buf, `,"lng":`...)
			buf = trimFloat(buf, se.Lng, 6)
			if c, err := geo.ParseCell(se.Key); err == nil && s.Network != nil {
				if l := s.Network.MainRoadIn(c); l != nil {
					buf = append(buf, `,"name":`...)
					buf = ingest.AppendQuoted(buf, l.Name)
					for _, k := range []string{"zh", "en"} {
						if n := l.AltNames[k]; n != "" {
							buf = append(buf, `,"name_`+k+`":`...)
							buf = ingest.AppendQuoted(buf, n)
						}
					}
				}
			}
		}
		buf = append(buf, `,"points":[`...)
		for k, p := range se.Points {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = appendTime(buf, p.T)
			buf = append(buf, ',')
			if math.IsNaN(p.V) {
				buf = append(buf, "null"...)
			} else {
				buf = trimFloat(buf, p.V, prec)
			}
			buf = append(buf, ',')
			buf = strconv.AppendUint(buf, uint64(p.N), 10)
			buf = append(buf, ']')
		}
		buf = append(buf, "]}"...)
	}
	return append(buf, "]}\n"...)
}
