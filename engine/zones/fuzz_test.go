package zones

import (
	"encoding/json"
	"testing"
)

// FuzzZoneAction feeds zone actions as they arrive from the API and the log: none may panic, and a zone
// that is accepted must contain no NaN geometry and answer containment queries.
func FuzzZoneAction(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","op":"create","zone":{"id":"z","name":"Underpass","kind":"underpass","polygon":[[120.168,30.249],[120.172,30.249],[120.172,30.252],[120.168,30.252]],"rules":[{"type":"incident","incident_types":["crash"]},{"type":"congestion","level":"moderate","for_s":300},{"type":"sensor","sensor_types":["gas"],"above":0.3}]}}`,
		`{"id":"b","op":"delete","zone_id":"z"}`,
		`{"id":"c","op":"create","zone":{"id":"z","links":["l1"]}}`,
		`{"id":"d","op":"update","zone":{"id":"z","polygon":[[0,0],[0,1e-9],[1e-9,0]]}}`,
		`{"id":"e","op":"create","zone":{"id":"q","polygon":[[1,1],[1,1],[1,1],[1,1]],"rules":[{"type":"crowd","count":-1}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Action
		if json.Unmarshal(data, &a) != nil {
			return
		}
		m := New(Config{Res: 9})
		if m.ApplyAction(a) == nil && a.Zone != nil {
			z, _, ok := m.Zone(a.Zone.ID)
			if !ok {
				t.Fatalf("accepted zone %s not kept", a.Zone.ID)
			}
			m.mu.Lock()
			zs := m.zones[z.ID]
			zs.sh.contains(30.25, 120.17)
			m.mu.Unlock()
		}
	})
}
