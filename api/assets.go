package api

import (
	"net/http"

	"citybrain/engine"
	"citybrain/ingest"
)

// Asset layers: "transit" (transit vehicles) and "sensors" (cameras, loop detectors, IoT sensors), each asset
// with its latest event.

func assetLayer(k engine.Kind) string {
	if k == engine.KindTransit {
		return "transit"
	}
	return "sensors"
}

// appendAsset appends an asset: its latest event in wire format plus "kind" naming what it is (camera,
// detector, sensor, or the transit mode).
func appendAsset(buf []byte, ev *engine.Event) []byte {
	obj := ingest.AppendJSON(nil, ev)
	buf = append(buf, `{"asset":`...)
	switch ev.Kind {
	case engine.KindVideo:
		buf = append(buf, `"camera"`...)
	case engine.KindDetector:
		buf = append(buf, `"detector"`...)
	case engine.KindSensor:
		buf = append(buf, `"sensor"`...)
	default:
		buf = append(buf, `"vehicle"`...)
	}
	buf = append(buf, ',')
	return append(buf, obj[1:]...) // the event's fields, after its opening brace
}

// appendAssets adds the "transit" and "sensors" members for the layers sub asked for, and closes the object.
func appendAssets(buf []byte, sub *subscription, assets []engine.Event) []byte {
	for _, layer := range []string{"transit", "sensors"} {
		if !sub.Layers[layer] {
			continue
		}
		buf = append(buf, `,"`...)
		buf = append(buf, layer...)
		buf = append(buf, `":[`...)
		n := 0
		for i := range assets {
			a := &assets[i]
			if assetLayer(a.Kind) != layer || !sub.BBox.Contains(a.Lat, a.Lng) {
				continue
			}
			if n > 0 {
				buf = append(buf, ',')
			}
			n++
			buf = appendAsset(buf, a)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

func (s *Server) serveAssets(w http.ResponseWriter, r *http.Request, layer string) {
	bbox, err := bboxParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sub := &subscription{CellQuery: CellQuery{BBox: bbox}, Layers: map[string]bool{layer: true}}
	buf := appendAssets([]byte{'{'}, sub, s.Engine.Assets())
	// appendAssets wrote {,"layer":[...]}: serve the list itself.
	list := buf[len(`{,"`)+len(layer)+len(`":`) : len(buf)-1]
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(list, '\n'))
}

// handleTransit serves GET /api/v1/transit?bbox=…: transit vehicles with their latest event.
func (s *Server) handleTransit(w http.ResponseWriter, r *http.Request) {
	s.serveAssets(w, r, "transit")
}

// handleSensors serves GET /api/v1/sensors?bbox=…: cameras, loop detectors and IoT sensors with their latest
// event.
func (s *Server) handleSensors(w http.ResponseWriter, r *http.Request) {
	s.serveAssets(w, r, "sensors")
}
