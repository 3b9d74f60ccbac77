package api

import (
	"strconv"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest"
)

// The hub's encoding: a delta or a snapshot for one subscription, written once and shared by every client
// of that subscription.

// encodeDeltaIx encodes sub's delta message from the delta's index, its cells' JSON shared with every other
// subscription of the delta (the message starts after frameReserve free bytes: see frameOf).
func (h *Hub) encodeDeltaIx(sub *subscription, ix *deltaIndex, incidents []engine.Incident, units []engine.Unit, seq uint64) []byte {
	cells, gone := ix.deltaViews(sub)
	msg := h.encodeCells("delta", sub, nil, cells, gone, incidents, seq)
	if units != nil && sub.Layers["units"] {
		msg = appendUnits(msg[:len(msg)-1], sub, units)
	}
	return msg
}

// appendUnits adds the "units" member (every unit in the viewport) and closes the message object.
func appendUnits(buf []byte, sub *subscription, units []engine.Unit) []byte {
	buf = append(buf, `,"units":[`...)
	n := 0
	for i := range units {
		u := &units[i]
		if !sub.BBox.Contains(u.Lat, u.Lng) {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = AppendUnit(buf, u)
	}
	return append(buf, "]}"...)
}

// AppendUnit appends a unit object: id, unit_type, status, lat, lng, speed_kmh, ts, source.
func AppendUnit(buf []byte, u *engine.Unit) []byte {
	buf = append(buf, `{"id":`...)
	buf = ingest.AppendQuoted(buf, u.ID)
	buf = append(buf, `,"unit_type":`...)
	buf = ingest.AppendQuoted(buf, u.Type)
	buf = append(buf, `,"status":`...)
	buf = ingest.AppendQuoted(buf, u.Status)
	buf = append(buf, `,"lat":`...)
	buf = trimFloat(buf, u.Lat, 6)
	buf = append(buf, `,"lng":`...)
	buf = trimFloat(buf, u.Lng, 6)
	buf = append(buf, `,"speed_kmh":`...)
	buf = trimFloat(buf, u.SpeedKmh, 1)
	buf = append(buf, `,"ts":`...)
	buf = appendTime(buf, u.TS)
	if u.Source != "" {
		buf = append(buf, `,"source":`...)
		buf = ingest.AppendQuoted(buf, u.Source)
	}
	return append(buf, '}')
}

// incidentsFor keeps the incidents of list inside sub's viewport, when it asked for the layer.
func incidentsFor(sub *subscription, list []engine.Incident, activeOnly bool) []engine.Incident {
	if !sub.Layers["incidents"] {
		return nil
	}
	var out []engine.Incident
	for _, in := range list {
		if (!activeOnly || in.Active()) && sub.BBox.Contains(in.Lat, in.Lng) {
			out = append(out, in)
		}
	}
	return out
}

// encode encodes a message of sub's viewport with views and gone cells; the message starts after frameReserve
// free bytes (frameOf frames it in place).
func (h *Hub) encode(typ string, sub *subscription, views []*engine.CellView, gone []uint64, incidents []engine.Incident, seq uint64) []byte {
	return h.encodeCells(typ, sub, views, nil, gone, incidents, seq)
}

// encodeCells is encode with the cells given as views, or as their JSON already encoded (frags).
func (h *Hub) encodeCells(typ string, sub *subscription, views []*engine.CellView, frags [][]byte, gone []uint64, incidents []engine.Incident, seq uint64) []byte {
	size := 256 + 24*len(gone) + 420*len(views)
	for _, f := range frags {
		size += len(f) + 1
	}
	buf := make([]byte, frameReserve, frameReserve+size)
	buf = append(buf, `{"type":"`...)
	buf = append(buf, typ...)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `,"res":`...)
	buf = strconv.AppendInt(buf, int64(sub.Res), 10)
	buf = append(buf, `,"window":"`...)
	buf = append(buf, windowName(sub.Window)...)
	buf = append(buf, `","watermark":`...)
	buf = appendTime(buf, h.watermark)
	buf = append(buf, `,"now":`...)
	buf = appendTime(buf, h.now)
	buf = append(buf, `,"cells":[`...)
	for i, v := range views {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCell(buf, v, sub.Window, sub.Geometry)
	}
	for i, f := range frags {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, f...)
	}
	buf = append(buf, `],"removed":[`...)
	for i, c := range gone {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, geo.CellString(c)...)
		buf = append(buf, '"')
	}
	buf = append(buf, ']')
	if sub.Layers["incidents"] {
		if typ == "snapshot" {
			incidents = incidentsFor(sub, h.eng.Incidents(), true)
		} else {
			incidents = incidentsFor(sub, incidents, false)
		}
		buf = append(buf, `,"incidents":[`...)
		for i := range incidents {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendIncident(buf, &incidents[i])
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}
