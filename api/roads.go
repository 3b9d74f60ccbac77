package api

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
)

// appendLink appends one link's live state for window w.
func appendLink(buf []byte, ls *engine.LinkStats, w int) []byte {
	st := &ls.W[w]
	sample, _ := st.Speed()
	est := ls.Estimate(w)
	sp, ok := est.Kmh, !math.IsNaN(est.Kmh)
	ff := ls.Link.SpeedLimitKmh
	if ff <= 0 {
		ff = ls.Link.Class.DefaultKmh()
	}
	cong := 0.0
	if ok {
		cong = engine.Congestion(sp, ff)
	}
	tpi := engine.TPI(cong)
	buf = append(buf, `{"link":`...)
	buf = ingest.AppendQuoted(buf, ls.Link.ID)
	buf = append(buf, `,"from":`...)
	buf = ingest.AppendQuoted(buf, ls.Link.From)
	buf = append(buf, `,"to":`...)
	buf = ingest.AppendQuoted(buf, ls.Link.To)
	if ls.Link.Name != "" {
		buf = append(buf, `,"name":`...)
		buf = ingest.AppendQuoted(buf, ls.Link.Name)
	}
	buf = append(buf, `,"speed_kmh":`...)
	buf = trimFloat(buf, sp, 2)
	buf = append(buf, `,"sample_kmh":`...)
	buf = trimFloat(buf, sample, 2)
	buf = append(buf, `,"free_flow_kmh":`...)
	buf = trimFloat(buf, ff, 2)
	buf = append(buf, `,"congestion":`...)
	buf = trimFloat(buf, cong, 3)
	buf = append(buf, `,"tpi":`...)
	buf = trimFloat(buf, tpi, 2)
	buf = append(buf, `,"level":"`...)
	buf = append(buf, engine.Level(tpi)...)
	buf = append(buf, `","samples":`...)
	buf = strconv.AppendUint(buf, uint64(st.Samples), 10)
	buf = append(buf, `,"confidence":`...)
	buf = trimFloat(buf, est.Confidence(), 2)
	buf = append(buf, `,"flow_vph":`...)
	buf = trimFloat(buf, st.FlowVph(), 1)
	buf = append(buf, `,"occupancy":`...)
	buf = trimFloat(buf, st.Occupancy(), 3)
	buf = append(buf, `,"updated_at":`...)
	buf = appendTime(buf, ls.UpdatedAt)
	return append(buf, '}')
}

// handleLinks serves GET /api/v1/links?bbox=…&window=…: live speeds per road link of the loaded network
// (probe and transit points map-matched, detectors snapped), for links with data.
func (s *Server) handleLinks(w http.ResponseWriter, r *http.Request) {
	q, err := parseCellQuery(r.URL.Query().Get, s.Engine.Config().Res)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stats := s.Engine.Links(q.BBox)
	sort.Slice(stats, func(i, j int) bool { return stats[i].Link.ID < stats[j].Link.ID })
	buf := []byte{'['}
	n := 0
	for i := range stats {
		if stats[i].W[q.Window].Events == 0 {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendLink(buf, &stats[i], q.Window)
	}
	buf = append(buf, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// needNetwork wraps a handler that reads the road network: without one it answers 404 saying so.
func (s *Server) needNetwork(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Network == nil {
			writeError(w, http.StatusNotFound, "no road network is loaded (run with --network FILE or the demo city)")
			return
		}
		h(w, r)
	}
}

// handleIntersection serves GET /api/v1/intersections/{id}?window=…: the intersection and the live state of
// each approach (incoming link), by compass side.
func (s *Server) handleIntersection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	node, ok := s.Network.Node(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no intersection %s", id))
		return
	}
	win, err := parseWindow(r.URL.Query().Get("window"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	const pad = 0.01
	stats := s.Engine.Links(geo.BBox{MinLng: node.Lng - pad, MinLat: node.Lat - pad, MaxLng: node.Lng + pad, MaxLat: node.Lat + pad})
	byID := map[string]*engine.LinkStats{}
	for i := range stats {
		byID[stats[i].Link.ID] = &stats[i]
	}
	buf := []byte(`{"id":`)
	buf = ingest.AppendQuoted(buf, node.ID)
	buf = append(buf, `,"lat":`...)
	buf = trimFloat(buf, node.Lat, 6)
	buf = append(buf, `,"lng":`...)
	buf = trimFloat(buf, node.Lng, 6)
	buf = append(buf, `,"signalised":`...)
	buf = strconv.AppendBool(buf, node.Signalised)
	buf = append(buf, `,"window":"`...)
	buf = append(buf, windowName(win)...)
	buf = append(buf, `","approaches":[`...)
	for i, a := range node.Approaches {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"side":"`...)
		buf = append(buf, a.Side.String()...)
		buf = append(buf, `","link":`...)
		buf = ingest.AppendQuoted(buf, a.LinkID)
		buf = append(buf, `,"state":`...)
		if ls := byID[a.LinkID]; ls != nil && ls.W[win].Events > 0 {
			buf = appendLink(buf, ls, win)
		} else {
			buf = append(buf, "null"...)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// handleIntersections serves GET /api/v1/intersections?bbox=…: the intersections of the loaded network in
// bbox with whether they are signalised and their approaches' links.
func (s *Server) handleIntersections(w http.ResponseWriter, r *http.Request) {
	bbox, err := bboxParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	buf := []byte{'['}
	n := 0
	for _, node := range s.Network.Nodes() {
		if !bbox.Contains(node.Lat, node.Lng) {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = append(buf, `{"id":`...)
		buf = ingest.AppendQuoted(buf, node.ID)
		buf = append(buf, `,"lat":`...)
		buf = trimFloat(buf, node.Lat, 6)
		buf = append(buf, `,"lng":`...)
		buf = trimFloat(buf, node.Lng, 6)
		buf = append(buf, `,"signalised":`...)
		buf = strconv.AppendBool(buf, node.Signalised)
		buf = append(buf, `,"approaches":`...)
		buf = strconv.AppendInt(buf, int64(len(node.Approaches)), 10)
		buf = append(buf, '}')
	}
	buf = append(buf, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}
