package zones

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/geo"
)

// A square around West Lake's east shore (lng 120.16..120.17, lat 30.25..30.26).
var square = [][2]float64{{120.16, 30.25}, {120.17, 30.25}, {120.17, 30.26}, {120.16, 30.26}, {120.16, 30.25}}

func create(t *testing.T, m *Manager, z Zone) {
	t.Helper()
	if err := m.ApplyAction(Action{ID: "a-" + z.ID, Op: "create", Zone: &z, By: "cmd", Role: "commander", TS: 1}); err != nil {
		t.Fatalf("create %s: %v", z.ID, err)
	}
}

func sensor(id, typ string, ts int64, lat, lng, val, thr float64) engine.Event {
	e := engine.NewEvent(engine.KindSensor)
	e.ID, e.Type, e.TS, e.Lat, e.Lng, e.Value, e.Threshold, e.Unit = id, typ, ts, lat, lng, val, thr, "m"
	return e
}

func TestZoneRules(t *testing.T) {
	var got []Alert
	m := New(Config{Res: 9, OnAlert: func(a []Alert) { got = append(got, a...) }})
	above := 0.3
	create(t, m, Zone{ID: "z1", Name: "Underpass", Kind: KindUnderpass, Polygon: square, Rules: []Rule{
		{Type: RuleIncident, IncidentTypes: []string{"crash"}},
		{Type: RuleUnitEnter, UnitTypes: []string{"ambulance"}},
		{Type: RuleUnitLeave},
		{Type: RuleSensor, SensorTypes: []string{"gas"}, Above: &above},
		{Type: RuleCrowd, Count: 100},
	}})
	// An incident of another type outside and inside, then a crash inside.
	m.OnDelta(&engine.Delta{Now: 1000, Incidents: []engine.Incident{
		{ID: "i-out", Type: "crash", Lat: 30.27, Lng: 120.165, Status: "suspected", DetectedAt: 900},
		{ID: "i-fire", Type: "fire", Lat: 30.255, Lng: 120.165, Status: "suspected", DetectedAt: 900},
		{ID: "i-crash", Type: "crash", Lat: 30.255, Lng: 120.165, Status: "confirmed", Severity: 3, DetectedAt: 950, UpdatedAt: 950},
	}})
	if len(got) != 1 || got[0].Rule != RuleIncident || got[0].Subject != "i-crash" || got[0].FiredAt != 950 || got[0].IncidentID != "i-crash" {
		t.Fatalf("incident alert: %+v", got)
	}
	// The incident clears: the alert resolves at the clearing time.
	m.OnDelta(&engine.Delta{Now: 5000, Incidents: []engine.Incident{
		{ID: "i-crash", Type: "crash", Lat: 30.255, Lng: 120.165, Status: "cleared", DetectedAt: 950, UpdatedAt: 4000, ClearedAt: 4500},
	}})
	if a := got[len(got)-1]; a.Status != AlertResolved || a.ResolvedAt != 4500 || a.Version != 2 {
		t.Fatalf("resolved: %+v", a)
	}
	// Units: an ambulance enters (and a police car, which the enter rule ignores), then leaves.
	got = nil
	m.OnDelta(&engine.Delta{Now: 6000, Units: []engine.Unit{
		{ID: "amb-1", Type: "ambulance", Status: "en_route", Lat: 30.255, Lng: 120.165, TS: 6000},
		{ID: "pol-1", Type: "police", Status: "available", Lat: 30.255, Lng: 120.166, TS: 6000},
	}})
	if len(got) != 1 || got[0].Rule != RuleUnitEnter || got[0].Subject != "amb-1" || got[0].Status != AlertEvent {
		t.Fatalf("enter: %+v", got)
	}
	got = nil
	m.OnDelta(&engine.Delta{Now: 7000, Units: []engine.Unit{
		{ID: "amb-1", Type: "ambulance", Status: "en_route", Lat: 30.30, Lng: 120.165, TS: 7000},
		{ID: "pol-1", Type: "police", Status: "available", Lat: 30.255, Lng: 120.166, TS: 6000},
	}})
	if len(got) != 1 || got[0].Rule != RuleUnitLeave || got[0].Subject != "amb-1" {
		t.Fatalf("leave: %+v", got)
	}
	// Sensors: a water level over its own threshold in an underpass is a hazard; gas over the rule's value.
	got = nil
	m.OnDelta(&engine.Delta{Now: 8000, Assets: []engine.Event{
		sensor("wl-1", "water_level", 8000, 30.255, 120.165, 0.5, 0.2),
		sensor("gas-1", "gas_ppm", 8000, 30.255, 120.165, 0.2, math.NaN()),
		sensor("wl-far", "water_level", 8000, 30.30, 120.165, 0.5, 0.2),
	}})
	if len(got) != 1 || got[0].Rule != "hazard" || got[0].Subject != "wl-1" || got[0].Severity != 4 {
		t.Fatalf("hazard: %+v", got)
	}
	got = nil
	m.OnDelta(&engine.Delta{Now: 9000, Assets: []engine.Event{
		sensor("wl-1", "water_level", 8000, 30.255, 120.165, 0.5, 0.2), // already judged: skipped
		sensor("gas-1", "gas_ppm", 9000, 30.255, 120.165, 0.4, math.NaN()),
	}})
	if len(got) != 1 || got[0].Rule != RuleSensor || got[0].Subject != "gas-1" || got[0].Evidence[0].Threshold != 0.3 {
		t.Fatalf("gas: %+v", got)
	}
	// A crowd seen by a camera.
	got = nil
	cam := engine.NewEvent(engine.KindVideo)
	cam.ID, cam.Type, cam.TS, cam.Lat, cam.Lng, cam.Count = "cam-1", "pedestrian", 9500, 30.255, 120.165, 150
	m.OnDelta(&engine.Delta{Now: 9500, Assets: []engine.Event{cam}})
	if len(got) != 1 || got[0].Rule != RuleCrowd || got[0].Evidence[0].Value != 150 {
		t.Fatalf("crowd: %+v", got)
	}
	// The water goes down: the hazard resolves.
	got = nil
	m.OnDelta(&engine.Delta{Now: 10000, Assets: []engine.Event{sensor("wl-1", "water_level", 10000, 30.255, 120.165, 0.1, 0.2)}})
	if len(got) != 1 || got[0].Status != AlertResolved || got[0].Subject != "wl-1" {
		t.Fatalf("hazard resolved: %+v", got)
	}
	if n := len(m.Alerts(AlertFilter{})); n != 6 {
		t.Fatalf("alerts kept: %d, want 6", n)
	}
	if n := len(m.Alerts(AlertFilter{ActiveOnly: true})); n != 2 {
		t.Fatalf("active alerts: %d, want 2 (gas, crowd)", n)
	}
}

func TestCongestionHeld(t *testing.T) {
	var got []Alert
	m := New(Config{Res: 9, OnAlert: func(a []Alert) { got = append(got, a...) }})
	create(t, m, Zone{ID: "school", Name: "School", Kind: KindSchool, Polygon: square, Rules: []Rule{{Type: RuleCongestion, Level: "moderate", ForS: 60}}})
	c, _ := geo.CellOf(30.255, 120.165, 9)
	view := func(speed float64) *engine.CellView {
		v := &engine.CellView{Cell: c, Res: 9, FreeFlowKmh: 50}
		v.W[0] = engine.WindowStats{SpeedSum: speed * 10, SpeedW: 10, Samples: 10}
		return v
	}
	m.OnDelta(&engine.Delta{Now: 0 + 1, Changed: []*engine.CellView{view(10)}}) // congestion 0.8: TPI 8.7
	m.OnDelta(&engine.Delta{Now: 30_000})
	if len(got) != 0 {
		t.Fatalf("fired before 60 s: %+v", got)
	}
	m.OnDelta(&engine.Delta{Now: 61_001})
	if len(got) != 1 || got[0].Rule != RuleCongestion || got[0].FiredAt != 61_001 {
		t.Fatalf("congestion alert: %+v", got)
	}
	m.OnDelta(&engine.Delta{Now: 70_000, Changed: []*engine.CellView{view(45)}})
	if len(got) != 2 || got[1].Status != AlertResolved {
		t.Fatalf("congestion resolved: %+v", got)
	}
}

func TestZoneActions(t *testing.T) {
	m := New(Config{Res: 9})
	create(t, m, Zone{ID: "z", Name: "Z", Polygon: square})
	for _, c := range []struct {
		a    Action
		want error
	}{
		{Action{ID: "1", Op: "create", Zone: &Zone{ID: "z", Polygon: square}}, ErrConflict},
		{Action{ID: "2", Op: "update", Zone: &Zone{ID: "nope", Polygon: square}}, ErrNotFound},
		{Action{ID: "3", Op: "delete", ZoneID: "nope"}, ErrNotFound},
		{Action{ID: "4", Op: "create", Zone: &Zone{ID: "bad", Polygon: square[:2]}}, ErrInvalid},
		{Action{ID: "5", Op: "create", Zone: &Zone{ID: "links", Links: []string{"l1"}}}, ErrInvalid}, // no network
		{Action{ID: "6", Op: "create", Zone: &Zone{ID: "r", Polygon: square, Rules: []Rule{{Type: "weather"}}}}, ErrInvalid},
		{Action{ID: "7", Op: "create", Zone: &Zone{ID: "huge", Polygon: [][2]float64{{100, 10}, {110, 10}, {110, 20}}}}, ErrInvalid},
		{Action{ID: "8", Op: "rename"}, ErrInvalid},
		{Action{ID: "9", Op: "delete", ZoneID: "z"}, nil},
	} {
		if err := m.ApplyAction(c.a); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("action %s: got %v, want %v", c.a.ID, err, c.want)
		}
		if err, ok := m.Result(c.a.ID); !ok || !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("result %s: %v %v", c.a.ID, err, ok)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("zones left: %d", m.Len())
	}
}

// The same deltas give the same alerts (ids included), and a manager restored from a snapshot taken half
// way gives the same end state as one that saw everything.
func TestStateRoundTripAndDeterminism(t *testing.T) {
	deltas := []*engine.Delta{
		{Now: 1000, Incidents: []engine.Incident{{ID: "i1", Type: "crash", Lat: 30.255, Lng: 120.165, Status: "confirmed", DetectedAt: 900, UpdatedAt: 900}}},
		{Now: 2000, Units: []engine.Unit{{ID: "u1", Type: "fire", Lat: 30.255, Lng: 120.165, TS: 2000}}},
		{Now: 3000, Assets: []engine.Event{sensor("s1", "water_level", 3000, 30.255, 120.165, 2, 1)}},
		{Now: 4000, Units: []engine.Unit{{ID: "u1", Type: "fire", Lat: 30.3, Lng: 120.165, TS: 4000}}},
		{Now: 5000, Assets: []engine.Event{sensor("s1", "water_level", 5000, 30.255, 120.165, 0.5, 1)}},
	}
	run := func(snapAt int) *Manager {
		m := New(Config{Res: 9})
		create(t, m, Zone{ID: "z", Name: "Z", Kind: KindFlood, Polygon: square, Rules: []Rule{{Type: RuleIncident}, {Type: RuleUnitEnter}, {Type: RuleUnitLeave}}})
		for i, d := range deltas {
			if i == snapAt {
				data, err := m.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				m = New(Config{Res: 9})
				if err := m.RestoreState(data, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			m.OnDelta(d)
		}
		return m
	}
	a, b := run(-1), run(3)
	if x, y := a.Alerts(AlertFilter{}), b.Alerts(AlertFilter{}); !reflect.DeepEqual(x, y) || len(x) != 4 {
		t.Fatalf("alerts differ or wrong count (%d):\n%+v\n%+v", len(x), x, y)
	}
	if !reflect.DeepEqual(a.Zones(), b.Zones()) {
		t.Fatal("zones differ after restore")
	}
}

func TestLinkZoneAndClosures(t *testing.T) {
	net := testNetwork(t)
	m := New(Config{Res: 9, Network: net})
	create(t, m, Zone{ID: "u", Name: "Underpass", Kind: KindUnderpass, Links: []string{"a-b"}})
	create(t, m, Zone{ID: "p", Name: "Poly", Kind: KindUnderpass, Polygon: [][2]float64{{120.1595, 30.2495}, {120.1605, 30.2495}, {120.1605, 30.2505}, {120.1595, 30.2505}}})
	if _, links, _ := m.Zone("p"); !reflect.DeepEqual(links, []string{"a-b"}) {
		t.Fatalf("links through polygon: %v", links)
	}
	// 20 m off the link is inside the link zone; 200 m is not.
	m.OnDelta(&engine.Delta{Now: 1, Assets: []engine.Event{
		sensor("near", "water_level", 1, 30.25018, 120.162, 1, 0.5),
		sensor("far", "water_level", 1, 30.252, 120.162, 1, 0.5),
	}})
	al := m.Alerts(AlertFilter{ActiveOnly: true})
	if len(al) != 1 || al[0].Subject != "near" || al[0].ZoneID != "u" {
		t.Fatalf("link zone alerts: %+v", al)
	}
	if c := m.Closures(); !c["a-b"] || len(c) != 1 {
		t.Fatalf("closures: %v", c)
	}
}

func testNetwork(t *testing.T) *geo.Network {
	t.Helper()
	const gj = `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"id":"a-b","oneway":"yes","highway":"primary"},"geometry":{"type":"LineString","coordinates":[[120.16,30.25],[120.165,30.25]]}}]}`
	n, err := geo.LoadGeoJSON(stringsReader(gj))
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	if _, ok := n.Link("a-b"); !ok {
		var ids []string
		for _, l := range n.Links() {
			ids = append(ids, l.ID)
		}
		t.Fatalf("test network has links %v, not a-b", ids)
	}
	return n
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// A zone's congestion is the published estimate's, the one the map shows: three fixes of a car passing at
// 45 km/h after four minutes of a queue at 5 km/h read as the queue, not as free flow.
func TestZoneCongestionReadsTheEstimate(t *testing.T) {
	var got []Alert
	m := New(Config{Res: 9, OnAlert: func(a []Alert) { got = append(got, a...) }})
	create(t, m, Zone{ID: "school", Name: "School", Kind: KindSchool, Polygon: square, Rules: []Rule{{Type: RuleCongestion, Level: "moderate", ForS: 60}}})
	c, _ := geo.CellOf(30.255, 120.165, 9)
	v := &engine.CellView{Cell: c, Res: 9, FreeFlowKmh: 50}
	fixes := func(st *engine.WindowStats, kmh float64, n uint32) {
		st.SpeedSum += kmh * float64(n)
		st.SpeedW += float64(n)
		st.Samples += n
		st.Events += n
		st.Kinds[engine.KindProbe] += n
	}
	fixes(&v.W[0], 45, 3)
	for w := 1; w < len(v.W); w++ {
		fixes(&v.W[w], 45, 3)
		fixes(&v.W[w], 5, 48)
	}
	if s, _ := v.W[0].Speed(); s != 45 {
		t.Fatalf("sample %g, want 45", s)
	}
	if d := v.Derive(0); !(d.SpeedKmh < 15) {
		t.Fatalf("the estimate reads %g km/h: the scenario needs it in the queue", d.SpeedKmh)
	}
	m.OnDelta(&engine.Delta{Now: 1, Changed: []*engine.CellView{v}})
	m.OnDelta(&engine.Delta{Now: 61_001})
	if len(got) != 1 || got[0].Rule != RuleCongestion {
		t.Fatalf("alerts %+v: want the congestion rule fired on the estimate (the raw sample reads free flow)", got)
	}
}
