package basemap

import "fmt"

// openMBTiles opens an MBTiles file (SQLite). Not read yet: convert it to PMTiles (`pmtiles convert`).
func openMBTiles(path string) (Archive, error) {
	return nil, fmt.Errorf("cannot open base map %s: MBTiles is not read yet; convert it to PMTiles (pmtiles convert %s out.pmtiles) and give that", path, path)
}
