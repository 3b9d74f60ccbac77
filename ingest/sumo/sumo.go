// Package sumo turns the output of the SUMO traffic simulator (Eclipse SUMO, https://eclipse.dev/sumo) into
// CityBrain wire-format events, so that any SUMO scenario can feed the engine like a real city:
//
//   - ReadFCD streams floating car data (--fcd-output, with --fcd-output.geo true) into probe events and, for
//     buses and trams, transit events, with a probe penetration rate and a sample interval;
//   - ReadE1 streams e1 induction loop output (<e1Detector file=...>) into detector events, positioned by the
//     detector definitions (ReadDetectors) on the road network (PlaceDetectors with geo.LoadSUMONet).
//
// Both read token by token with encoding/xml, so memory stays constant however large the file (SUMO writes
// gigabytes of FCD for a city-hour). Every emitted event has passed ingest.Validate. Malformed input is a
// *ParseError naming the line and element; the readers never panic.
package sumo

import (
	"bufio"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Positioner places a point given as a SUMO lane id and a distance along that lane (metres from the lane start)
// at WGS84 coordinates. *geo.Network (geo.LoadSUMONet) implements it.
type Positioner interface {
	LanePosition(laneID string, posM float64) (lat, lng float64, ok bool)
}

// ParseError is malformed or unusable SUMO XML: what was being read, the line, the element and the cause.
type ParseError struct {
	What    string // "FCD output", "e1 output", "detector definitions", "routes"
	Line    int    // 1-based line of the element (or of the syntax error)
	Element string // the element, e.g. `<vehicle id="veh1">`; empty for XML syntax errors
	Err     error
}

// Error implements error: "cannot read <what> (line <n>, <element>): <cause>".
func (e *ParseError) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("cannot read %s (line %d): %v", e.What, e.Line, e.Err)
	}
	return fmt.Sprintf("cannot read %s (line %d, %s): %v", e.What, e.Line, e.Element, e.Err)
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// EmitError is an error returned by the emit callback, with the line of the element that produced the event.
// errors.Is and errors.As see the callback's error through it.
type EmitError struct {
	What string
	Line int
	ID   string
	Err  error
}

// Error implements error.
func (e *EmitError) Error() string {
	return fmt.Sprintf("cannot emit event from %s (line %d, id %q): %v", e.What, e.Line, e.ID, e.Err)
}

// Unwrap returns the callback's error.
func (e *EmitError) Unwrap() error { return e.Err }

// Open opens a SUMO output file for reading, transparently decompressing it when it is gzip (SUMO writes
// gzip itself when the output name ends in .gz). The caller closes the result.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open SUMO output (%s): %w", path, err)
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot open SUMO output (%s: gzip header): %w", path, err)
		}
		return &gzipFile{Reader: zr, f: f}, nil
	}
	return &bufFile{Reader: br, f: f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzipFile) Close() error {
	err := g.Reader.Close()
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	return err
}

type bufFile struct {
	*bufio.Reader
	f *os.File
}

func (b *bufFile) Close() error { return b.f.Close() }

// scanner wraps an xml.Decoder with line tracking and error construction.
type scanner struct {
	dec   *xml.Decoder
	what  string
	start int // line where the last token starts
}

func newScanner(r io.Reader, what string) *scanner {
	if _, ok := r.(io.ByteReader); !ok {
		r = bufio.NewReaderSize(r, 256<<10)
	}
	return &scanner{dec: xml.NewDecoder(r), what: what}
}

// next returns the next token; io.EOF at a clean end. Syntax errors become *ParseError.
func (s *scanner) next() (xml.Token, error) {
	// The previous token ends right before this one's '<': its end is this element's first line.
	s.start, _ = s.dec.InputPos()
	tok, err := s.dec.Token()
	if err == nil {
		return tok, nil
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return nil, &ParseError{What: s.what, Line: se.Line, Err: err}
	}
	l, _ := s.dec.InputPos()
	return nil, &ParseError{What: s.what, Line: l, Err: err}
}

// fail builds a *ParseError for element se at the current line.
func (s *scanner) fail(se *xml.StartElement, format string, args ...any) error {
	return &ParseError{What: s.what, Line: s.elemLine(), Element: describe(se), Err: fmt.Errorf(format, args...)}
}

// elemLine is the line where the last token (the current element) starts.
func (s *scanner) elemLine() int { return s.start }

// describe renders an element for an error message: its name and id (when it has one).
func describe(se *xml.StartElement) string {
	if se == nil {
		return ""
	}
	for _, a := range se.Attr {
		if a.Name.Local == "id" {
			id := a.Value
			if len(id) > 64 {
				id = id[:64] + "..."
			}
			return fmt.Sprintf("<%s id=%q>", se.Name.Local, id)
		}
	}
	return "<" + se.Name.Local + ">"
}

// errNotNumber and friends are causes wrapped in ParseError.
var (
	errMissing   = errors.New("missing required attribute")
	errNotNumber = errors.New("not a finite number")
)

// num parses a finite float attribute value.
func num(name, v string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("attribute %s=%q: %w", name, clip(v), errNotNumber)
	}
	return x, nil
}

// simTime parses a SUMO time: seconds ("150.00") or, with --human-readable-time, "HH:MM:SS[.ss]" or
// "D:HH:MM:SS[.ss]".
func simTime(name, v string) (float64, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, ":") {
		return num(name, v)
	}
	parts := strings.Split(v, ":")
	if len(parts) < 3 || len(parts) > 4 {
		return 0, fmt.Errorf("attribute %s=%q: not seconds or [D:]HH:MM:SS: %w", name, clip(v), errNotNumber)
	}
	mult := []float64{86400, 3600, 60, 1}[4-len(parts):]
	var t float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return 0, fmt.Errorf("attribute %s=%q: not seconds or [D:]HH:MM:SS: %w", name, clip(v), errNotNumber)
		}
		t += x * mult[i]
	}
	if strings.HasPrefix(v, "-") {
		t = -t
	}
	return t, nil
}

func clip(v string) string {
	if len(v) > 40 {
		return v[:40] + "..."
	}
	return v
}

// hash64 is FNV-1a of s finished with the splitmix64 mixer and a seed: a stable, well-spread hash of a
// vehicle id, the same on every run and machine.
func hash64(s string, seed uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }
