package detect

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"
	"testing"
)

// liveState is the state of a tracker fed 16 minutes of the stand test's traffic, decoded, and its bytes.
func liveState(t testing.TB) (stateV1, []byte) {
	t.Helper()
	a := NewTracker(twoLinks(), 10_000)
	feedFixes(a, fixesOf(50, t0+8*60_000, t0+16*60_000), nil, t0, t0+16*60_000, new([]Features))
	data, err := a.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	var st stateV1
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st, data
}

func encodeState(t testing.TB, st *stateV1) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A snapshot no tracker writes (damaged, or made by hand) is refused with what is wrong in it: a vehicle on a
// link the network does not have would otherwise be restored and panic the tracker at its next fix, so the
// restart would fail on the log after it instead of at the snapshot.
func TestADamagedSnapshotIsRefusedWithItsReason(t *testing.T) {
	st, _ := liveState(t)
	if len(st.Vehicles) == 0 || len(st.Links) == 0 {
		t.Fatalf("the live state holds %d vehicles and %d links, want some of both", len(st.Vehicles), len(st.Links))
	}
	cases := []struct {
		name, want string
		damage     func(*stateV1)
	}{
		{"a vehicle on a link outside the network", `vehicle "`, func(s *stateV1) { s.Vehicles[0].Link = 7 }},
		{"a vehicle holding on a link outside the network", "on link -5", func(s *stateV1) { s.Vehicles[0].HoldLink = -5 }},
		{"a link outside the network", "link 2 is not in this network", func(s *stateV1) { s.Links[0].Link = 2 }},
		{"a link listed twice", "listed twice", func(s *stateV1) { s.Links = append(s.Links, s.Links[0]) }},
	}
	for _, c := range cases {
		st, _ := liveState(t)
		c.damage(&st)
		err := NewTracker(twoLinks(), 10_000).RestoreState(encodeState(t, &st))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: restore gives %v, want an error naming %q", c.name, err, c.want)
		}
	}
}

// A restored link keeps no more than a live one ever does (the newest of each kind), however many its
// snapshot lists.
func TestARestoredLinkKeepsNoMoreThanALiveOne(t *testing.T) {
	st, _ := liveState(t)
	x := &st.Links[0]
	for i := range 1000 {
		ts := t0 + 16*60_000 + int64(i) // after everything the live tracker saw
		x.Exits = append(x.Exits, ts)
		x.Entries = append(x.Entries, ts)
		x.Stops = append(x.Stops, stopState{End: ts, Dur: 20, Off: 100})
		x.Squeezes = append(x.Squeezes, squeezeState{TS: ts, Off: 100, Vehicle: "v"})
		x.Passes = append(x.Passes, passState{TS: ts, From: 0, To: 100, Vehicle: "v"})
		x.Recent = append(x.Recent, posFixState{TS: ts, Off: 100, Kmh: 1})
		x.Active = append(x.Active, holdState{Vehicle: fmt.Sprint("h", i), Since: ts, Last: ts, Off: 100})
	}
	tk := NewTracker(twoLinks(), 10_000)
	if err := tk.RestoreState(encodeState(t, &st)); err != nil {
		t.Fatal(err)
	}
	ls := &tk.st[x.Link]
	for _, c := range []struct {
		what      string
		n, bound  int
		newestEnd int64
	}{
		{"exits", len(ls.exits), eventsKept, ls.exits[len(ls.exits)-1]},
		{"entries", len(ls.entries), eventsKept, ls.entries[len(ls.entries)-1]},
		{"stops", len(ls.stops), eventsKept, ls.stops[len(ls.stops)-1].end},
		{"squeezes", len(ls.squeezes), maxSqueezes, ls.squeezes[len(ls.squeezes)-1].ts},
		{"passes", len(ls.passes), maxPasses, ls.passes[len(ls.passes)-1].ts},
		{"recent fixes", len(ls.recent), maxRecent, ls.recent[len(ls.recent)-1].ts},
	} {
		if c.n > c.bound || c.newestEnd != t0+16*60_000+999 {
			t.Errorf("restored %s: %d kept (bound %d), the newest at %d, want at most %d and the newest %d", c.what, c.n, c.bound, c.newestEnd, c.bound, t0+16*60_000+999)
		}
	}
	if len(ls.active) > maxHolds {
		t.Errorf("restored holds: %d kept, want at most %d", len(ls.active), maxHolds)
	}
}

// FuzzRestoreState feeds the detector's state decoder damaged snapshots (seeded with a live tracker's): none
// may panic, and a tracker that accepts one holds no more than a live one, takes the traffic after it and
// writes its own state again.
func FuzzRestoreState(f *testing.F) {
	_, data := liveState(f)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		tk := NewTracker(twoLinks(), 10_000)
		if err := tk.RestoreState(data); err != nil {
			return
		}
		for i := range tk.st {
			ls := &tk.st[i]
			if len(ls.exits) > eventsKept || len(ls.passes) > maxPasses || len(ls.squeezes) > maxSqueezes || len(ls.active) > maxHolds {
				t.Fatalf("link %d restored beyond its bounds: %d exits, %d passes, %d squeezes, %d holds", i, len(ls.exits), len(ls.passes), len(ls.squeezes), len(ls.active))
			}
		}
		from := max(tk.doneTo, t0+16*60_000)
		if from > 1<<60 {
			return // a clock at the end of time: no fix after it
		}
		var after []stateFix
		for k := range int64(20) {
			tr := trip{id: fmt.Sprint("w", k), start: from + k*10_000, kmh: 36, standAt: 150, standFrom: from + 60_000, standTo: from + 180_000}
			tr.fixes(from+4*60_000, func(id string, ts int64, link int32, off float32, kmh float64) {
				after = append(after, stateFix{id, ts, link, off, kmh})
			})
		}
		feedFixes(tk, after, nil, from, from+4*60_000, new([]Features))
		if _, err := tk.MarshalState(); err != nil {
			t.Fatalf("a restored tracker cannot write its state: %v", err)
		}
	})
}
