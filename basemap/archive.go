package basemap

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TileInfo tells the web app what a tile archive holds (GET /api/v1/basemap "tiles").
type TileInfo struct {
	Kind         string        `json:"kind"` // "pmtiles" (read by the browser with range requests) or "tiles" (z/x/y)
	Type         string        `json:"type"` // "vector" or "raster"
	Format       string        `json:"format"`
	URL          string        `json:"url"` // path on this server
	MinZoom      int           `json:"minzoom"`
	MaxZoom      int           `json:"maxzoom"`
	Bounds       []float64     `json:"bounds,omitempty"` // minLng, minLat, maxLng, maxLat
	Center       []float64     `json:"center,omitempty"` // lng, lat, zoom
	VectorLayers []VectorLayer `json:"vector_layers,omitempty"`
	Attribution  string        `json:"attribution,omitempty"`
	Name         string        `json:"name,omitempty"`
	Source       string        `json:"source"` // the file name or the URL's host
}

// VectorLayer is a layer of a vector tile archive (its metadata's vector_layers).
type VectorLayer struct {
	ID     string            `json:"id"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Archive is a tile archive the server serves to the web app.
type Archive interface {
	Info() TileInfo
	// ServeHTTP answers GET /basemap/tiles.pmtiles (with Range) or /basemap/tiles/{z}/{x}/{y}.
	http.Handler
	Close() error
}

// Paths the archives are served under.
const (
	PMTilesPath = "/basemap/tiles.pmtiles"
	TilesPath   = "/basemap/tiles/"
)

// Open opens a tile archive: a .pmtiles or .mbtiles file, or an http(s) URL of a PMTiles archive or a
// {z}/{x}/{y} tile template, which the server fetches for the browser.
func Open(src string) (Archive, error) {
	switch {
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		return openURL(src)
	case strings.HasSuffix(strings.ToLower(src), ".pmtiles"):
		return openPMTilesFile(src)
	case strings.HasSuffix(strings.ToLower(src), ".mbtiles"):
		return openMBTiles(src)
	}
	return nil, fmt.Errorf("cannot open base map %q: give a .pmtiles or .mbtiles file or an http(s) URL", src)
}

// PMTiles v3 (github.com/protomaps/PMTiles spec v3): a 127-byte header, then directories, metadata, tiles.
const pmHeaderLen = 127

type pmHeader struct {
	metaOff, metaLen    uint64
	internalCompression uint8
	tileCompression     uint8
	tileType            uint8
	minZoom, maxZoom    uint8
	bounds              [4]float64
	center              [3]float64
}

func parsePMHeader(b []byte) (pmHeader, error) {
	var h pmHeader
	if len(b) < pmHeaderLen || string(b[:7]) != "PMTiles" {
		return h, errors.New("not a PMTiles archive (no PMTiles magic)")
	}
	if b[7] != 3 {
		return h, fmt.Errorf("PMTiles version %d: only version 3 is read", b[7])
	}
	le := binary.LittleEndian
	h.metaOff, h.metaLen = le.Uint64(b[24:]), le.Uint64(b[32:])
	h.internalCompression, h.tileCompression, h.tileType = b[97], b[98], b[99]
	h.minZoom, h.maxZoom = b[100], b[101]
	e7 := func(o int) float64 { return float64(int32(le.Uint32(b[o:]))) / 1e7 }
	h.bounds = [4]float64{e7(102), e7(106), e7(110), e7(114)}
	h.center = [3]float64{e7(119), e7(123), float64(b[118])}
	if h.metaLen > 16<<20 {
		return h, fmt.Errorf("PMTiles metadata of %d bytes (at most 16 MiB)", h.metaLen)
	}
	if h.minZoom > h.maxZoom || h.maxZoom > 30 {
		return h, fmt.Errorf("PMTiles zooms %d..%d are not a range within 0..30", h.minZoom, h.maxZoom)
	}
	return h, nil
}

var pmTileTypes = map[uint8][2]string{1: {"vector", "pbf"}, 2: {"raster", "png"}, 3: {"raster", "jpg"}, 4: {"raster", "webp"}, 5: {"raster", "avif"}}

// infoFrom builds the TileInfo of a PMTiles archive from its header and metadata.
func infoFrom(h pmHeader, meta []byte, source string) (TileInfo, error) {
	tt, ok := pmTileTypes[h.tileType]
	if !ok {
		return TileInfo{}, fmt.Errorf("PMTiles tile type %d is not one the map can draw (mvt, png, jpeg, webp, avif)", h.tileType)
	}
	in := TileInfo{Kind: "pmtiles", Type: tt[0], Format: tt[1], URL: PMTilesPath, MinZoom: int(h.minZoom), MaxZoom: int(h.maxZoom),
		Bounds: h.bounds[:], Center: h.center[:], Source: source}
	if len(meta) > 0 {
		switch h.internalCompression {
		case 0, 1: // unknown, none
		case 2:
			zr, err := gzip.NewReader(bytes.NewReader(meta))
			if err != nil {
				return in, fmt.Errorf("cannot read PMTiles metadata: %w", err)
			}
			meta, err = io.ReadAll(io.LimitReader(zr, 64<<20))
			if err != nil {
				return in, fmt.Errorf("cannot read PMTiles metadata: %w", err)
			}
		default:
			return in, fmt.Errorf("PMTiles metadata compression %d: only none and gzip are read", h.internalCompression)
		}
		var m struct {
			VectorLayers []VectorLayer `json:"vector_layers"`
			Attribution  string        `json:"attribution"`
			Name         string        `json:"name"`
		}
		if err := json.Unmarshal(meta, &m); err != nil {
			return in, fmt.Errorf("cannot read PMTiles metadata JSON: %w", err)
		}
		in.VectorLayers, in.Attribution, in.Name = m.VectorLayers, m.Attribution, m.Name
	}
	return in, nil
}

// pmtilesFile serves a local PMTiles file to the browser's pmtiles reader (range requests).
type pmtilesFile struct {
	f    *os.File
	size int64
	mod  time.Time
	info TileInfo
}

func openPMTilesFile(path string) (*pmtilesFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open base map: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open base map: %w", err)
	}
	fail := func(err error) (*pmtilesFile, error) {
		f.Close()
		return nil, fmt.Errorf("cannot open base map %s: %w", path, err)
	}
	hb := make([]byte, pmHeaderLen)
	if _, err := io.ReadFull(f, hb); err != nil {
		return fail(fmt.Errorf("cannot read the PMTiles header: %w", err))
	}
	h, err := parsePMHeader(hb)
	if err != nil {
		return fail(err)
	}
	if h.metaOff+h.metaLen > uint64(st.Size()) {
		return fail(fmt.Errorf("PMTiles metadata [%d, +%d) lies past the end of the file (%d bytes)", h.metaOff, h.metaLen, st.Size()))
	}
	meta := make([]byte, h.metaLen)
	if _, err := f.ReadAt(meta, int64(h.metaOff)); err != nil {
		return fail(fmt.Errorf("cannot read the PMTiles metadata: %w", err))
	}
	info, err := infoFrom(h, meta, filepath.Base(path))
	if err != nil {
		return fail(err)
	}
	return &pmtilesFile{f: f, size: st.Size(), mod: st.ModTime(), info: info}, nil
}

func (p *pmtilesFile) Info() TileInfo { return p.info }
func (p *pmtilesFile) Close() error   { return p.f.Close() }

func (p *pmtilesFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PMTilesPath {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.pmtiles")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, "tiles.pmtiles", p.mod, io.NewSectionReader(p.f, 0, p.size))
}

// remote is a base map on another host that the server fetches for the browser (so the page itself only
// talks to this server): a PMTiles URL (ranges passed through) or a {z}/{x}/{y} template.
type remote struct {
	url    string
	client *http.Client
	info   TileInfo
}

func openURL(u string) (*remote, error) {
	rm := &remote{url: u, client: &http.Client{Timeout: 30 * time.Second}}
	host := u[strings.Index(u, "//")+2:]
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if strings.Contains(u, "{z}") && strings.Contains(u, "{x}") && strings.Contains(u, "{y}") {
		typ, format := "raster", "png"
		if strings.Contains(u, ".pbf") || strings.Contains(u, ".mvt") {
			typ, format = "vector", "pbf"
		}
		rm.info = TileInfo{Kind: "tiles", Type: typ, Format: format, URL: TilesPath + "{z}/{x}/{y}", MinZoom: 0, MaxZoom: 19, Source: host}
		return rm, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hb, err := rm.fetchRange(ctx, 0, 16384)
	if err != nil {
		return nil, fmt.Errorf("cannot open base map %s: %w", u, err)
	}
	h, err := parsePMHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("cannot open base map %s: %w", u, err)
	}
	meta, err := rm.fetchRange(ctx, h.metaOff, h.metaLen)
	if err != nil {
		return nil, fmt.Errorf("cannot open base map %s: %w", u, err)
	}
	if rm.info, err = infoFrom(h, meta, host); err != nil {
		return nil, fmt.Errorf("cannot open base map %s: %w", u, err)
	}
	return rm, nil
}

func (rm *remote) fetchRange(ctx context.Context, off, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rm.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := rm.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s (bytes %d+%d): %s", rm.url, off, n, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, int64(n)))
}

func (rm *remote) Info() TileInfo { return rm.info }
func (rm *remote) Close() error   { rm.client.CloseIdleConnections(); return nil }

func (rm *remote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := rm.url
	if rm.info.Kind == "tiles" {
		z, x, y, ok := parseZXY(strings.TrimPrefix(r.URL.Path, TilesPath))
		if !ok {
			http.Error(w, "want /basemap/tiles/{z}/{x}/{y}", http.StatusNotFound)
			return
		}
		target = strings.NewReplacer("{z}", strconv.Itoa(z), "{x}", strconv.Itoa(x), "{y}", strconv.Itoa(y)).Replace(rm.url)
	} else if r.URL.Path != PMTilesPath {
		http.NotFound(w, r)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if rg := r.Header.Get("Range"); rg != "" {
		req.Header.Set("Range", rg)
	}
	resp, err := rm.client.Do(req)
	if err != nil {
		http.Error(w, "base map host: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Content-Range", "Content-Length", "Content-Encoding", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, 64<<20))
}

// parseZXY reads "z/x/y" (an extension on y is ignored) and checks x, y are within zoom z.
func parseZXY(p string) (z, x, y int, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	if i := strings.IndexByte(parts[2], '.'); i >= 0 {
		parts[2] = parts[2][:i]
	}
	var err [3]error
	z, err[0] = strconv.Atoi(parts[0])
	x, err[1] = strconv.Atoi(parts[1])
	y, err[2] = strconv.Atoi(parts[2])
	if err[0] != nil || err[1] != nil || err[2] != nil || z < 0 || z > 30 || x < 0 || y < 0 || x >= 1<<z || y >= 1<<z {
		return 0, 0, 0, false
	}
	return z, x, y, true
}
