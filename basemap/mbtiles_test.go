package basemap

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeMBTiles writes an MBTiles file with Python's sqlite3 (the real SQLite library) in one of the three
// layouts; tiles are "z/x/row" strings padded to len bytes, so large tiles cross overflow pages.
func makeMBTiles(t *testing.T, layout string, pad int) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 missing: it writes the test's MBTiles files with the real SQLite")
	}
	p := filepath.Join(t.TempDir(), layout+".mbtiles")
	script := `
import sqlite3, sys
path, layout, pad = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path)
c = db.cursor()
c.execute("CREATE TABLE metadata (name text, value text)")
for k, v in [("name", "test"), ("format", "png"), ("minzoom", "0"), ("maxzoom", "3"), ("bounds", "120.1,30.2,120.2,30.3"), ("attribution", "test data")]:
    c.execute("INSERT INTO metadata VALUES (?, ?)", (k, v))
tiles = []
for z in range(4):
    for x in range(2 ** z):
        for row in range(2 ** z):
            data = ("%d/%d/%d" % (z, x, row)).encode().ljust(pad, b".")
            tiles.append((z, x, row, data))
if layout == "plain":
    c.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    c.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", tiles)
    c.execute("CREATE UNIQUE INDEX tile_index on tiles (zoom_level, tile_column, tile_row)")
elif layout == "mbutil":
    c.execute("CREATE TABLE map (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_id TEXT)")
    c.execute("CREATE TABLE images (tile_data blob, tile_id text)")
    for z, x, row, data in tiles:
        tid = "id-%d-%d-%d" % (z, x, row)
        c.execute("INSERT INTO images VALUES (?, ?)", (data, tid))
        c.execute("INSERT INTO map VALUES (?, ?, ?, ?)", (z, x, row, tid))
    c.execute("CREATE VIEW tiles AS SELECT map.zoom_level AS zoom_level, map.tile_column AS tile_column, map.tile_row AS tile_row, images.tile_data AS tile_data FROM map JOIN images ON images.tile_id = map.tile_id")
else:
    c.execute("CREATE TABLE tiles_shallow (zoom_level integer, tile_column integer, tile_row integer, tile_data_id integer, primary key(zoom_level, tile_column, tile_row)) without rowid")
    c.execute("CREATE TABLE tiles_data (tile_data_id integer primary key, tile_data blob)")
    for i, (z, x, row, data) in enumerate(tiles):
        c.execute("INSERT INTO tiles_data VALUES (?, ?)", (i + 1, data))
        c.execute("INSERT INTO tiles_shallow VALUES (?, ?, ?, ?)", (z, x, row, i + 1))
    c.execute("CREATE VIEW tiles AS SELECT tiles_shallow.zoom_level AS zoom_level, tiles_shallow.tile_column AS tile_column, tiles_shallow.tile_row AS tile_row, tiles_data.tile_data AS tile_data FROM tiles_shallow JOIN tiles_data ON tiles_shallow.tile_data_id = tiles_data.tile_data_id")
db.commit()
db.close()
`
	if out, err := exec.Command(py, "-c", script, p, layout, itoa(pad)).CombinedOutput(); err != nil {
		t.Fatalf("python3 sqlite3: %v\n%s", err, out)
	}
	return p
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func TestMBTilesLayouts(t *testing.T) {
	for _, layout := range []string{"plain", "mbutil", "planetiler"} {
		for _, pad := range []int{16, 9000} { // small tiles, and tiles over several overflow pages
			t.Run(layout+"/"+itoa(pad), func(t *testing.T) {
				a, err := Open(makeMBTiles(t, layout, pad))
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				in := a.Info()
				if in.Kind != "tiles" || in.Type != "raster" || in.Format != "png" || in.MaxZoom != 3 || len(in.Bounds) != 4 || in.Attribution != "test data" {
					t.Fatalf("info %+v", in)
				}
				m := a.(*mbtiles)
				if len(m.index) != 1+4+16+64 {
					t.Fatalf("%d tiles indexed, want 85", len(m.index))
				}
				// Web y 0 is the northern row: TMS row 2^z-1.
				for _, c := range [][3]int{{0, 0, 0}, {1, 1, 0}, {3, 5, 2}, {3, 7, 7}} {
					b, err := m.Tile(c[0], c[1], c[2])
					if err != nil {
						t.Fatal(err)
					}
					row := (1 << c[0]) - 1 - c[2]
					want := itoa(c[0]) + "/" + itoa(c[1]) + "/" + itoa(row)
					if len(b) != pad || !bytes.HasPrefix(b, []byte(want)) {
						t.Errorf("tile %v: %d bytes starting %q, want %d starting %q", c, len(b), b[:min(len(b), 12)], pad, want)
					}
				}
				w := httptest.NewRecorder()
				a.ServeHTTP(w, httptest.NewRequest("GET", TilesPath+"2/1/3", nil))
				if w.Code != 200 || w.Header().Get("Content-Type") != "image/png" || !strings.HasPrefix(w.Body.String(), "2/1/0") {
					t.Errorf("GET 2/1/3: %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body.String()[:min(8, w.Body.Len())])
				}
				w = httptest.NewRecorder()
				a.ServeHTTP(w, httptest.NewRequest("GET", TilesPath+"5/1/1", nil))
				if w.Code != http.StatusNoContent {
					t.Errorf("a tile the archive lacks: %d, want 204", w.Code)
				}
			})
		}
	}
}

func TestMBTilesRefusesDamage(t *testing.T) {
	good, err := os.ReadFile(makeMBTiles(t, "plain", 16))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"not sqlite": []byte(strings.Repeat("x", 4096)),
		"truncated":  good[:len(good)/3],
		"page size":  append(append(append([]byte(nil), good[:16]...), 0, 3), good[18:]...),
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".mbtiles")
		os.WriteFile(p, b, 0o644)
		if a, err := Open(p); err == nil {
			a.Close()
			t.Errorf("%s: opened", name)
		}
	}
}

func FuzzSQLite(f *testing.F) {
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, in []byte) {
		db, err := openSQLite(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		if sch, err := db.schema(); err == nil {
			for _, o := range sch {
				db.scan(o.root, func(int64, []any) error { return nil })
				db.row(o.root, 1)
			}
		}
	})
}
