package geo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxCityBrainLanes bounds the lanes of one road direction, so a corrupt count cannot make the loader allocate.
const maxCityBrainLanes = 32

// lineReader hands out the non-blank lines of a text file, split into fields, counting lines for errors.
type lineReader struct {
	sc   *bufio.Scanner
	line int
}

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	return &lineReader{sc: sc}
}

// next returns the fields of the next non-blank line, or io.ErrUnexpectedEOF at the end of the input.
func (lr *lineReader) next() ([]string, error) {
	for lr.sc.Scan() {
		lr.line++
		if f := strings.Fields(lr.sc.Text()); len(f) > 0 {
			return f, nil
		}
	}
	if err := lr.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.ErrUnexpectedEOF
}

// errf wraps err with the current line number in the package's voice.
func (lr *lineReader) errf(format string, args ...any) error {
	return fmt.Errorf("cannot parse City Brain roadnet (line %d): %s", lr.line, fmt.Sprintf(format, args...))
}

func (lr *lineReader) count(what string) (int, error) {
	f, err := lr.next()
	if err != nil {
		return 0, fmt.Errorf("cannot parse City Brain roadnet (line %d, want %s count): %w", lr.line, what, err)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || len(f) != 1 {
		return 0, lr.errf("want a %s count, got %q", what, strings.Join(f, " "))
	}
	return n, nil
}

// LoadCityBrainFile loads a City Brain (CBEngine) roadnet.txt; see LoadCityBrain.
func LoadCityBrainFile(path string) (*Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open City Brain roadnet (%s): %w", path, err)
	}
	defer f.Close()
	n, err := LoadCityBrain(f)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", path, err)
	}
	return n, nil
}

// LoadCityBrain reads the KDD Cup 2021 City Brain (CBEngine) roadnet text format, one line at a time:
// intersections (`lat lng id signalised`), two-way roads (`from to length_m speed_mps lanes1 lanes2 id1 id2` and
// one line per direction of left/straight/right flags per lane) and signal lines (`id road_N road_E road_S
// road_W`, the roads leaving the intersection, -1 for none). Every road becomes two directed links with straight
// geometry; a signal line's roads give the approaches: the reverse direction of each road leaving the
// intersection, with Slot = its position in the line and Side from geometry, because the files do not keep the
// N/E/S/W order the format describes (see docs/geo.md). Road classes are guessed from speed and lanes.
func LoadCityBrain(r io.Reader) (*Network, error) {
	lr := newLineReader(r)
	nNodes, err := lr.count("intersection")
	if err != nil {
		return nil, err
	}
	nodes := make([]Node, 0, min(nNodes, 1<<16))
	nodeIdx := make(map[string]int, min(nNodes, 1<<16))
	for i := 0; i < nNodes; i++ {
		f, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("cannot parse City Brain roadnet (line %d, intersection %d of %d): %w",
				lr.line, i+1, nNodes, err)
		}
		if len(f) != 4 {
			return nil, lr.errf("intersection wants 4 fields (lat lng id signalised), got %d", len(f))
		}
		lat, err1 := strconv.ParseFloat(f[0], 64)
		lng, err2 := strconv.ParseFloat(f[1], 64)
		if err := errors.Join(err1, err2); err != nil || !(LatLng{lat, lng}).valid() {
			return nil, lr.errf("intersection %s has no valid position (%q, %q)", f[2], f[0], f[1])
		}
		if f[3] != "0" && f[3] != "1" {
			return nil, lr.errf("intersection %s: signalised flag %q is not 0 or 1", f[2], f[3])
		}
		if _, dup := nodeIdx[f[2]]; dup {
			return nil, lr.errf("duplicate intersection %s", f[2])
		}
		nodeIdx[f[2]] = len(nodes)
		nodes = append(nodes, Node{ID: f[2], LatLng: LatLng{lat, lng}, Signalised: f[3] == "1"})
	}

	nRoads, err := lr.count("road")
	if err != nil {
		return nil, err
	}
	links := make([]Link, 0, min(2*nRoads, 1<<16))
	reverse := make(map[string]string, min(2*nRoads, 1<<16))
	for i := 0; i < nRoads; i++ {
		dirs, err := lr.readRoad(nodeIdx, i, nRoads)
		if err != nil {
			return nil, err
		}
		reverse[dirs[0].ID], reverse[dirs[1].ID] = dirs[1].ID, dirs[0].ID
		links = append(links, dirs[0], dirs[1])
	}

	nSignals, err := lr.count("signal")
	if err != nil {
		return nil, err
	}
	roads := make(map[string]*Link, len(links))
	for i := range links {
		roads[links[i].ID] = &links[i]
	}
	for i := 0; i < nSignals; i++ {
		f, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("cannot parse City Brain roadnet (line %d, signal %d of %d): %w",
				lr.line, i+1, nSignals, err)
		}
		if len(f) != 5 {
			return nil, lr.errf("signal wants 5 fields (id road_N road_E road_S road_W), got %d", len(f))
		}
		ni, ok := nodeIdx[f[0]]
		if !ok {
			return nil, lr.errf("signal for unknown intersection %s", f[0])
		}
		nd := &nodes[ni]
		nd.Approaches = nd.Approaches[:0]
		for slot, rid := range f[1:] {
			if rid == "-1" {
				continue
			}
			l, ok := roads[rid]
			if !ok {
				return nil, lr.errf("signal %s names unknown road %s", f[0], rid)
			}
			in := l.ID
			switch f[0] {
			case l.From:
				in = reverse[l.ID]
			case l.To:
			default:
				return nil, lr.errf("signal %s names road %s, which does not touch it", f[0], rid)
			}
			other := nodes[nodeIdx[l.To]].LatLng
			if in == l.ID {
				other = nodes[nodeIdx[l.From]].LatLng
			}
			nd.Approaches = append(nd.Approaches, Approach{Side: sideFromBearing(BearingDeg(nd.LatLng, other)),
				LinkID: in, Slot: slot})
		}
	}
	if _, err := lr.next(); err == nil {
		return nil, lr.errf("unexpected data after %d signal lines", nSignals)
	} else if !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("cannot parse City Brain roadnet (line %d): %w", lr.line, err)
	}
	net, err := NewNetwork("citybrain", nodes, links)
	if err != nil {
		return nil, fmt.Errorf("cannot build City Brain network: %w", err)
	}
	return net, nil
}

// readRoad reads one road record (3 lines) and returns its two directions.
func (lr *lineReader) readRoad(nodeIdx map[string]int, i, total int) ([2]Link, error) {
	var dirs [2]Link
	f, err := lr.next()
	if err != nil {
		return dirs, fmt.Errorf("cannot parse City Brain roadnet (line %d, road %d of %d): %w", lr.line, i+1, total, err)
	}
	if len(f) != 8 {
		return dirs, lr.errf("road wants 8 fields (from to length speed lanes1 lanes2 id1 id2), got %d", len(f))
	}
	for _, id := range f[:2] {
		if _, ok := nodeIdx[id]; !ok {
			return dirs, lr.errf("road %s/%s: unknown intersection %s", f[6], f[7], id)
		}
	}
	length, err1 := strconv.ParseFloat(f[2], 64)
	speed, err2 := strconv.ParseFloat(f[3], 64)
	lanes1, err3 := strconv.Atoi(f[4])
	lanes2, err4 := strconv.Atoi(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return dirs, lr.errf("road %s/%s: bad number: %v", f[6], f[7], err)
	}
	if !(length >= 0 && length < 1e7) || !(speed >= 0 && speed < 200) {
		return dirs, lr.errf("road %s/%s: length %g m or speed %g m/s out of range", f[6], f[7], length, speed)
	}
	if lanes1 < 0 || lanes1 > maxCityBrainLanes || lanes2 < 0 || lanes2 > maxCityBrainLanes {
		return dirs, lr.errf("road %s/%s: lane counts %d/%d outside 0..%d", f[6], f[7], lanes1, lanes2,
			maxCityBrainLanes)
	}
	if f[6] == f[7] {
		return dirs, lr.errf("road %s: both directions have the same id", f[6])
	}
	kmh := speed * 3.6
	ends := [2][2]string{{f[0], f[1]}, {f[1], f[0]}}
	for d, lanes := range [2]int{lanes1, lanes2} {
		fl, err := lr.next()
		if err != nil {
			return dirs, fmt.Errorf("cannot parse City Brain roadnet (line %d, lanes of road %s): %w", lr.line, f[6+d], err)
		}
		if len(fl) != 3*lanes {
			return dirs, lr.errf("road %s: want %d lane flags (3 per lane), got %d", f[6+d], 3*lanes, len(fl))
		}
		info := make([]Lane, lanes)
		for j := range info {
			info[j] = Lane{ID: fmt.Sprintf("%s_%d", f[6+d], j), Index: j}
			for k, bit := range [3]Turn{TurnLeft, TurnStraight, TurnRight} {
				switch fl[3*j+k] {
				case "1":
					info[j].Turns |= bit
				case "0":
				default:
					return dirs, lr.errf("road %s lane %d: turn flag %q is not 0 or 1", f[6+d], j, fl[3*j+k])
				}
			}
		}
		dirs[d] = Link{ID: f[6+d], From: ends[d][0], To: ends[d][1], LengthM: length, Lanes: lanes,
			SpeedLimitKmh: kmh, Class: classForSpeed(kmh, lanes), LaneInfo: info}
	}
	return dirs, nil
}
