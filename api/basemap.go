package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"citybrain/basemap"
	"citybrain/geo"
)

// Basemap is the base map the server offers the web app (docs/command-center.md "Base map"): Features (the
// demo city's lake and places, or an OSM extract's water, parks, roads and places) and Tiles (run --basemap).
// Either may be nil.
type Basemap struct {
	Features *basemap.Set
	Tiles    basemap.Archive

	once sync.Once
	all  []byte // the whole features collection, encoded once
}

// basemapRoutes adds GET /api/v1/basemap, GET /api/v1/basemap/features and the tile paths.
func (s *Server) basemapRoutes(mux *http.ServeMux) {
	a := s.Auth
	mux.HandleFunc("GET /api/v1/basemap", a.Open(s.handleBasemap))
	mux.HandleFunc("GET /api/v1/basemap/features", a.Open(s.handleBasemapFeatures))
	if s.Basemap != nil && s.Basemap.Tiles != nil {
		mux.Handle("GET "+basemap.PMTilesPath, a.Open(s.Basemap.Tiles.ServeHTTP))
		mux.Handle("GET "+basemap.TilesPath, a.Open(s.Basemap.Tiles.ServeHTTP))
	}
}

// handleBasemap serves GET /api/v1/basemap: {"tiles": TileInfo|null, "features": {"source", "counts"}}.
func (s *Server) handleBasemap(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{"tiles": nil, "features": nil}
	if b := s.Basemap; b != nil {
		if b.Tiles != nil {
			doc["tiles"] = b.Tiles.Info()
		}
		if b.Features != nil {
			doc["features"] = map[string]any{"source": b.Features.Source, "counts": b.Features.Counts()}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

// handleBasemapFeatures serves GET /api/v1/basemap/features?bbox=: the base map's features as GeoJSON
// (properties kind, of, class, name, name_zh, name_en, rank); an empty collection without any.
func (s *Server) handleBasemapFeatures(w http.ResponseWriter, r *http.Request) {
	bbox, err := bboxParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	b := s.Basemap
	if b == nil || b.Features == nil {
		w.Write([]byte(`{"type":"FeatureCollection","features":[]}` + "\n"))
		return
	}
	if r.URL.Query().Get("bbox") == "" {
		b.once.Do(func() { b.all = b.Features.GeoJSON(geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}) })
		w.Write(b.all)
		return
	}
	w.Write(b.Features.GeoJSON(bbox))
}
