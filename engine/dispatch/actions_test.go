package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"citybrain/geo"
)

// Every decision goes to the journal before it takes effect; a journal that refuses refuses the decision;
// a manager fed the journal (as the log consumer after a crash, through JSON) ends with the same
// dispatches, decisions and audit, and feeding it twice changes nothing.
func TestDecisionsAreJournaledAndReplayed(t *testing.T) {
	m, src, net := setup(t)
	var journal [][]byte
	fail := false
	m.cfg.Journal = func(a Action) error {
		if fail {
			return errors.New("log unavailable")
		}
		b, err := json.Marshal(&a)
		journal = append(journal, b)
		return err
	}
	fail = true
	if _, err := m.Assign("inc1", "amb-1", "anna", "commander"); err == nil {
		t.Fatal("a dispatch whose journal failed was made")
	}
	if _, busy := m.Busy("amb-1"); busy || len(m.List(true)) != 0 || len(m.AuditLog()) != 0 {
		t.Fatal("a refused decision left a trace")
	}
	fail = false
	d, err := m.Assign("inc1", "amb-1", "anna", "commander")
	if err != nil {
		t.Fatal(err)
	}
	var node string
	for _, n := range net.Nodes() {
		if n.Signalised {
			node = n.ID
			break
		}
	}
	pd, err := m.Decide(node, MethodWebster, true, "lee", "police", "peak")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Close(d.ID, StatusCancelled, "anna", "commander", "wrong unit"); err != nil {
		t.Fatal(err)
	}
	if len(journal) != 3 {
		t.Fatalf("%d journaled decisions, want 3", len(journal))
	}

	m2, err := New(src, m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for _, b := range journal {
			var a Action
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if err := m2.Apply(a); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	got := m2.List(true)
	if len(got) != 1 || got[0].ID != d.ID || got[0].Status != StatusCancelled || got[0].UnitID != "amb-1" {
		t.Errorf("dispatches replayed: %+v", got)
	}
	if ds := m2.Decisions(node); len(ds) != 1 || ds[0].ID != pd.ID || !ds[0].Accepted || ds[0].By != "lee" {
		t.Errorf("plan decisions replayed: %+v", ds)
	}
	a1, a2 := m.AuditLog(), m2.AuditLog()
	if len(a2) != 3 || fmt.Sprint(a1) != fmt.Sprint(a2) {
		t.Errorf("audit replayed:\n%v\nwant\n%v", a2, a1)
	}
	// And through a snapshot.
	st, err := m2.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	m3, _ := New(src, m.cfg)
	if err := m3.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	if len(m3.List(true)) != 1 || len(m3.Decisions(node)) != 1 || len(m3.AuditLog()) != 3 {
		t.Errorf("restored from state: %d dispatches, %d decisions, %d audit", len(m3.List(true)), len(m3.Decisions(node)), len(m3.AuditLog()))
	}
}

// A dispatch restored from the log has no route until its unit reports: it is routed from there on the
// next tick, and never closed while the engine catches up (Ready false).
func TestRestoredDispatchIsRoutedAndKeptDuringCatchUp(t *testing.T) {
	m, src, _ := setup(t)
	d, err := m.Assign("inc1", "amb-1", "anna", "commander")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := m.MarshalState()
	ready := false
	cfg := m.cfg
	cfg.Ready = func() bool { return ready }
	incs := src.incs
	src.incs = nil // the incident is not back yet
	m2, _ := New(src, cfg)
	if err := m2.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	m2.Tick()
	if got, _ := m2.Get(d.ID); got.ClosedAt != nil {
		t.Fatal("a restored dispatch was closed while the engine caught up")
	}
	src.incs, ready = incs, true
	src.move("amb-1", geo.LatLng{Lat: src.units[0].Lat, Lng: src.units[0].Lng}, 2)
	m2.Tick()
	got, _ := m2.Get(d.ID)
	if got.ClosedAt != nil || got.Route == nil || got.ETAS <= 0 {
		t.Errorf("restored dispatch after a tick: closed %v, route %v, ETA %v", got.ClosedAt, got.Route != nil, got.ETAS)
	}
}

// What the manager keeps is bounded: the oldest closed dispatches, plan decisions and audit go first.
func TestDecisionsAreBounded(t *testing.T) {
	m, _, _ := setup(t)
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for i := 0; i < MaxClosedDispatches+50; i++ {
		id := fmt.Sprintf("d%d", i)
		m.Apply(Action{ID: id, Kind: ActionDispatch, At: at, Dispatch: &Dispatch{ID: id, UnitID: fmt.Sprintf("u%d", i), Status: StatusEnRoute}})
		m.Apply(Action{ID: "c" + id, Kind: ActionClose, At: at, DispatchID: id, Status: StatusCleared})
	}
	for i := 0; i < MaxDecisionsPerNode+10; i++ {
		m.Apply(Action{ID: fmt.Sprintf("p%d", i), Kind: ActionPlan, At: at, Plan: &PlanDecision{ID: fmt.Sprintf("p%d", i), NodeID: "n1"}})
	}
	if n := len(m.List(true)); n != MaxClosedDispatches {
		t.Errorf("%d dispatches kept, want %d", n, MaxClosedDispatches)
	}
	if got, ok := m.Get(fmt.Sprintf("d%d", MaxClosedDispatches+49)); !ok || got.ClosedAt == nil {
		t.Errorf("the newest closed dispatch is gone")
	}
	if n := len(m.decisions["n1"]); n != MaxDecisionsPerNode {
		t.Errorf("%d decisions kept at a node, want %d", n, MaxDecisionsPerNode)
	}
	if n := len(m.AuditLog()); n > MaxAudit {
		t.Errorf("%d audit entries kept", n)
	}
}
