package reports

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Rule is the wire type and severity that one source incident type maps to.
type Rule struct {
	Type     string `json:"type"`     // crash, fire, medical, flood, hazard, road_closure, other
	Severity int8   `json:"severity"` // 1..5
}

// Mapping maps source incident types (matched case-insensitively, runs of spaces folded) to wire report types.
// The key "*" is the rule for types not in the table; without it such records are skipped.
type Mapping map[string]Rule

// AustinMapping is the default mapping for the `issue_reported` values of the City of Austin "Real-Time Traffic
// Incident Reports" feed. Severity reflects what the label says about injury and blockage (docs/feeds.md).
func AustinMapping() Mapping {
	return Mapping{
		"crash urgent":               {"crash", 4},
		"crash service":              {"crash", 2},
		"collision":                  {"crash", 3},
		"collision with injury":      {"crash", 4},
		"collisn/ lvng scn":          {"crash", 3},
		"collision/private property": {"crash", 1},
		"auto/ ped":                  {"crash", 5},
		"fleet acc/ injury":          {"crash", 4},
		"fleet acc/ fatal":           {"crash", 5},
		"traffic fatality":           {"crash", 5},
		"vehicle fire":               {"fire", 4},
		"traffic hazard":             {"hazard", 2},
		"trfc hazd/ debris":          {"hazard", 3},
		"loose livestock":            {"hazard", 2},
		"stalled vehicle":            {"hazard", 2},
		"zstalled vehicle":           {"hazard", 2},
		"traffic impediment":         {"hazard", 2},
		"obstruct hwy":               {"hazard", 3},
		"icy roadway":                {"hazard", 3},
		"n / hzrd trfc viol":         {"hazard", 2},
		"high water":                 {"flood", 3},
		"blocked driv/ hwy":          {"road_closure", 3},
		"*":                          {"other", 1},
	}
}

var reportTypes = map[string]bool{"crash": true, "fire": true, "medical": true, "flood": true, "hazard": true, "road_closure": true, "other": true}

func normType(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// Lookup returns the rule for the source type s and whether it came from the table (false: the "*" rule).
func (m Mapping) Lookup(s string) (r Rule, known, ok bool) {
	if r, ok := m[normType(s)]; ok {
		return r, true, true
	}
	r, ok = m["*"]
	return r, false, ok
}

// Check returns an error naming the first rule with a type or severity outside the wire format.
func (m Mapping) Check() error {
	for k, r := range m {
		if !reportTypes[r.Type] {
			return fmt.Errorf("cannot use mapping of %q: type %q is not a report type (crash, fire, medical, flood, hazard, road_closure, other)", k, r.Type)
		}
		if r.Severity < 1 || r.Severity > 5 {
			return fmt.Errorf("cannot use mapping of %q: severity %d is not in 1..5", k, r.Severity)
		}
	}
	return nil
}

// LoadMapping reads a mapping file: JSON (`{"Crash Urgent": {"type": "crash", "severity": 4}, "*": {...}}`) when the
// name ends in .json, else CSV with the header `source_type,type,severity`.
func LoadMapping(path string) (Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open mapping file: %w", err)
	}
	defer f.Close()
	var m Mapping
	if strings.EqualFold(filepath.Ext(path), ".json") {
		m, err = ReadMappingJSON(f)
	} else {
		m, err = ReadMappingCSV(f)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read mapping file %s: %w", path, err)
	}
	return m, nil
}

// ReadMappingJSON reads a JSON mapping (see LoadMapping).
func ReadMappingJSON(r io.Reader) (Mapping, error) {
	var raw map[string]Rule
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("cannot decode JSON mapping: %w", err)
	}
	m := make(Mapping, len(raw))
	for k, v := range raw {
		m[normKey(k)] = v
	}
	return m, m.Check()
}

// ReadMappingCSV reads a CSV mapping with the header source_type,type,severity.
func ReadMappingCSV(r io.Reader) (Mapping, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot read CSV mapping header: %w", err)
	}
	if normType(head[0]) != "source_type" || normType(head[1]) != "type" || normType(head[2]) != "severity" {
		return nil, errors.New("cannot read CSV mapping: header must be source_type,type,severity")
	}
	m := Mapping{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read CSV mapping: %w", err)
		}
		line, _ := cr.FieldPos(0)
		sev, err := strconv.Atoi(strings.TrimSpace(rec[2]))
		if err != nil || sev < 1 || sev > 5 {
			return nil, fmt.Errorf("cannot read CSV mapping line %d: severity %q is not an integer 1..5", line, rec[2])
		}
		m[normKey(rec[0])] = Rule{Type: strings.TrimSpace(rec[1]), Severity: int8(sev)}
	}
	return m, m.Check()
}

func normKey(k string) string {
	if k == "*" {
		return k
	}
	return normType(k)
}
