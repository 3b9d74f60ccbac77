package deepstream

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// LoadCameras reads a camera-location override file: CSV lines `id,lat,lng` with an optional header line
// starting with "id". A 0/0 or out-of-range position is an error naming the line.
func LoadCameras(path string) (map[string]LatLng, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open cameras file: %w", err)
	}
	defer f.Close()
	m, err := ReadCameras(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read cameras file %s: %w", path, err)
	}
	return m, nil
}

// ReadCameras reads a camera-location override file (see LoadCameras).
func ReadCameras(r io.Reader) (map[string]LatLng, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	m := map[string]LatLng{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "id") {
			continue
		}
		lat, err1 := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		lng, err2 := strconv.ParseFloat(strings.TrimSpace(rec[2]), 64)
		switch {
		case strings.TrimSpace(rec[0]) == "":
			return nil, fmt.Errorf("line %d: empty camera id", line)
		case err1 != nil || err2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180:
			return nil, fmt.Errorf("line %d: bad position %q,%q for camera %q", line, rec[1], rec[2], rec[0])
		case lat == 0 && lng == 0:
			return nil, fmt.Errorf("line %d: position 0/0 for camera %q is a placeholder, not a location", line, rec[0])
		}
		m[strings.TrimSpace(rec[0])] = LatLng{lat, lng}
	}
}
