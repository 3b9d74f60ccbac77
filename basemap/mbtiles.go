package basemap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// mbtiles serves an MBTiles archive (github.com/mapbox/mbtiles-spec 1.3): a SQLite database read with the
// reader in sqlite.go. At open it indexes where every tile is (zoom, column, row → table and rowid), for the
// three layouts in use: a plain `tiles` table, mb-util's `map` + `images` behind a `tiles` view, and
// planetiler's `tiles_shallow` + `tiles_data`. Rows are TMS (y from the south); the web map's y is flipped.
type mbtiles struct {
	f     *os.File
	db    *sqliteDB
	mu    sync.Mutex
	index map[[3]int]tileLoc
	info  TileInfo
}

type tileLoc struct {
	root  uint32
	rowid int64
	col   int
}

// maxMBTiles bounds the tiles indexed (a world archive to zoom 14 has some 270 million: cut a city extract).
const maxMBTiles = 20_000_000

func openMBTiles(path string) (Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open base map: %w", err)
	}
	m, err := readMBTiles(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open base map %s: %w", path, err)
	}
	m.info.Source = filepath.Base(path)
	return m, nil
}

func readMBTiles(f *os.File) (*mbtiles, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	db, err := openSQLite(f, st.Size())
	if err != nil {
		return nil, err
	}
	sch, err := db.schema()
	if err != nil {
		return nil, err
	}
	m := &mbtiles{f: f, db: db, index: map[[3]int]tileLoc{}}
	meta := map[string]string{}
	if o, ok := sch["metadata"]; ok && o.typ == "table" {
		cols := columns(o.sql)
		ni, vi := indexOf(cols, "name"), indexOf(cols, "value")
		if ni < 0 || vi < 0 {
			return nil, errors.New("MBTiles metadata table has no name and value columns")
		}
		err := db.scan(o.root, func(_ int64, v []any) error {
			if len(v) > max(ni, vi) {
				n, _ := v[ni].(string)
				val, _ := v[vi].(string)
				meta[n] = val
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	add := func(z, x, row int64, loc tileLoc) error {
		if z < 0 || z > 30 || x < 0 || row < 0 || x >= 1<<z || row >= 1<<z {
			return nil
		}
		if len(m.index) >= maxMBTiles {
			return fmt.Errorf("more than %d tiles: cut a smaller extract", maxMBTiles)
		}
		m.index[[3]int{int(z), int(x), int((int64(1) << z) - 1 - row)}] = loc
		return nil
	}
	ints := func(v []any, is ...int) ([]int64, bool) {
		out := make([]int64, len(is))
		for k, i := range is {
			if i < 0 || i >= len(v) {
				return nil, false
			}
			x, ok := v[i].(int64)
			if !ok {
				return nil, false
			}
			out[k] = x
		}
		return out, true
	}
	tiles, okTiles := sch["tiles"]
	switch {
	case okTiles && tiles.typ == "table":
		cols := columns(tiles.sql)
		zi, xi, yi, di := indexOf(cols, "zoom_level"), indexOf(cols, "tile_column"), indexOf(cols, "tile_row"), indexOf(cols, "tile_data")
		if zi < 0 || xi < 0 || yi < 0 || di < 0 {
			return nil, fmt.Errorf("MBTiles tiles table has columns %v, want zoom_level, tile_column, tile_row, tile_data", cols)
		}
		if strings.Contains(strings.ToUpper(tiles.sql), "WITHOUT ROWID") {
			return nil, errors.New("MBTiles tiles table is WITHOUT ROWID: not read")
		}
		err = db.scan(tiles.root, func(rowid int64, v []any) error {
			if k, ok := ints(v, zi, xi, yi); ok {
				return add(k[0], k[1], k[2], tileLoc{tiles.root, rowid, di})
			}
			return nil
		})
	case sch["tiles_shallow"].typ == "table" && sch["tiles_data"].typ == "table":
		sh, data := sch["tiles_shallow"], sch["tiles_data"]
		cols, dcols := columns(sh.sql), columns(data.sql)
		zi, xi, yi, ii := indexOf(cols, "zoom_level"), indexOf(cols, "tile_column"), indexOf(cols, "tile_row"), indexOf(cols, "tile_data_id")
		di := indexOf(dcols, "tile_data")
		if zi < 0 || xi < 0 || yi < 0 || ii < 0 || di < 0 || indexOf(dcols, "tile_data_id") != 0 {
			return nil, fmt.Errorf("MBTiles tiles_shallow %v / tiles_data %v: columns not understood", cols, dcols)
		}
		err = db.scan(sh.root, func(_ int64, v []any) error {
			if k, ok := ints(v, zi, xi, yi, ii); ok {
				return add(k[0], k[1], k[2], tileLoc{data.root, k[3], di})
			}
			return nil
		})
	case sch["map"].typ == "table" && sch["images"].typ == "table":
		mp, im := sch["map"], sch["images"]
		mcols, icols := columns(mp.sql), columns(im.sql)
		zi, xi, yi, ti := indexOf(mcols, "zoom_level"), indexOf(mcols, "tile_column"), indexOf(mcols, "tile_row"), indexOf(mcols, "tile_id")
		di, iti := indexOf(icols, "tile_data"), indexOf(icols, "tile_id")
		if zi < 0 || xi < 0 || yi < 0 || ti < 0 || di < 0 || iti < 0 {
			return nil, fmt.Errorf("MBTiles map %v / images %v: columns not understood", mcols, icols)
		}
		ids := map[string]int64{}
		err = db.scan(im.root, func(rowid int64, v []any) error {
			if iti < len(v) {
				ids[fmt.Sprint(v[iti])] = rowid
			}
			return nil
		})
		if err == nil {
			err = db.scan(mp.root, func(_ int64, v []any) error {
				k, ok := ints(v, zi, xi, yi)
				if !ok || ti >= len(v) {
					return nil
				}
				if rowid, ok := ids[fmt.Sprint(v[ti])]; ok {
					return add(k[0], k[1], k[2], tileLoc{im.root, rowid, di})
				}
				return nil
			})
		}
	default:
		return nil, errors.New("no MBTiles tiles table (nor map/images, nor tiles_shallow/tiles_data)")
	}
	if err != nil {
		return nil, err
	}
	if len(m.index) == 0 {
		return nil, errors.New("MBTiles archive holds no tile")
	}
	m.info = mbInfo(meta, m.index)
	return m, nil
}

func indexOf(cols []string, name string) int {
	for i, c := range cols {
		if c == name {
			return i
		}
	}
	return -1
}

// mbInfo reads the metadata table (format, zooms, bounds, center, json with vector_layers, name, attribution).
func mbInfo(meta map[string]string, index map[[3]int]tileLoc) TileInfo {
	in := TileInfo{Kind: "tiles", URL: TilesPath + "{z}/{x}/{y}", Name: meta["name"], Attribution: meta["attribution"]}
	in.Format = strings.ToLower(meta["format"])
	switch in.Format {
	case "pbf", "mvt":
		in.Type, in.Format = "vector", "pbf"
	case "jpeg":
		in.Type, in.Format = "raster", "jpg"
	case "":
		in.Type, in.Format = "raster", "png"
	default:
		in.Type = "raster"
	}
	lo, hi := 30, 0
	for k := range index {
		lo, hi = min(lo, k[0]), max(hi, k[0])
	}
	in.MinZoom, in.MaxZoom = lo, hi
	if v, err := strconv.Atoi(meta["minzoom"]); err == nil && v >= 0 && v <= 30 {
		in.MinZoom = v
	}
	if v, err := strconv.Atoi(meta["maxzoom"]); err == nil && v >= in.MinZoom && v <= 30 {
		in.MaxZoom = v
	}
	if b := floats(meta["bounds"]); len(b) == 4 {
		in.Bounds = b
	}
	if c := floats(meta["center"]); len(c) == 3 {
		in.Center = c
	}
	if j := meta["json"]; j != "" {
		var v struct {
			VectorLayers []VectorLayer `json:"vector_layers"`
		}
		if json.Unmarshal([]byte(j), &v) == nil {
			in.VectorLayers = v.VectorLayers
		}
	}
	return in
}

func floats(s string) []float64 {
	if s == "" {
		return nil
	}
	var out []float64
	for _, p := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

func (m *mbtiles) Info() TileInfo { return m.info }
func (m *mbtiles) Close() error   { return m.f.Close() }

// Tile returns the tile at z/x/y (web y), or nil.
func (m *mbtiles) Tile(z, x, y int) ([]byte, error) {
	loc, ok := m.index[[3]int{z, x, y}]
	if !ok {
		return nil, nil
	}
	m.mu.Lock()
	v, err := m.db.row(loc.root, loc.rowid)
	m.mu.Unlock()
	if err != nil || v == nil || loc.col >= len(v) {
		return nil, err
	}
	b, _ := v[loc.col].([]byte)
	return b, nil
}

func (m *mbtiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	z, x, y, ok := parseZXY(strings.TrimPrefix(r.URL.Path, TilesPath))
	if !ok {
		http.Error(w, "want /basemap/tiles/{z}/{x}/{y}", http.StatusNotFound)
		return
	}
	b, err := m.Tile(z, x, y)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if b == nil {
		w.WriteHeader(http.StatusNoContent) // no tile here: the map draws nothing
		return
	}
	ct := map[string]string{"pbf": "application/x-protobuf", "png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[m.info.Format]
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		w.Header().Set("Content-Encoding", "gzip") // vector tiles are stored gzipped
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}
