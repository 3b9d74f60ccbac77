package detect

import (
	"fmt"
	"testing"
)

// A vehicle every 20 s along link 0 then link 1 (300 m each, twoLinks); from minute 10 link 1 is closed 15 m
// past the junction: the vehicles not past that point by then stand there and nothing moves on link 1
// beyond it. The junction judge finds link 1 closed within 3 minutes; it does not where link 1's history
// holds a stop at its start that long (a bus stop), where vehicles stand further along it too (a queue
// spilled back from its end), or where the vehicles stand in its first metres (GPS noise of the stop line
// before it), nor on flowing traffic. A red light at link 0's end makes the stop reference.
func TestAVehicleHeldAtALinksStartWithNothingPastIt(t *testing.T) {
	onset := t0 + 10*60_000
	until := t0 + 20*60_000
	closed := func(at float64, history bool, spilled bool) []trip {
		var trips []trip
		for k := int64(0); k < 60; k++ {
			tr := trip{id: fmt.Sprintf("v%d", k), start: t0 + k*20_000, kmh: 36}
			switch {
			case history && k == 3:
				// Minutes 1–5: one vehicle stands 240 s at link 1's start and goes on.
				tr.standAt, tr.standFrom, tr.standTo = at, tr.start+32_000, tr.start+272_000
			case tr.start > onset-32_000:
				tr.standAt, tr.standFrom = at, onset
			case spilled && tr.start > onset-60_000:
				tr.standAt, tr.standFrom = 500, onset // already past the closure's point: a queue further along
			}
			trips = append(trips, tr)
			if k < 25 {
				// A red light at link 0's end: 30-s stops, the stop reference's own.
				r := trip{id: fmt.Sprintf("r%d", k), start: t0 + k*20_000 + 10_000, kmh: 36, standAt: 295}
				r.standFrom, r.standTo = r.start+25_000, r.start+55_000
				trips = append(trips, r)
			}
		}
		return trips
	}
	var flowing []trip
	for k := int64(0); k < 60; k++ {
		flowing = append(flowing, trip{id: fmt.Sprintf("v%d", k), start: t0 + k*20_000, kmh: 36})
	}
	for _, c := range []struct {
		name  string
		trips []trip
		want  bool
	}{
		{"closed 15 m past the junction", closed(315, false, false), true},
		{"the same where a vehicle stood longer there before", closed(315, true, false), false},
		{"vehicles standing further along it too", closed(315, false, true), false},
		{"standing 2 m into it", closed(302, false, false), false},
		{"flowing", flowing, false},
	} {
		rows := runLink(c.trips, until, 1)
		got := false
		for b := onset; b <= onset+3*60_000; b += 10_000 {
			if f, ok := rows[b]; ok && f.Junction.Blocked {
				got = true
			}
		}
		if got != c.want {
			f := rows[onset+3*60_000]
			t.Errorf("%s: found closed by onset + 3 min: %v, want %v (at onset + 3 min: %+v)", c.name, got, c.want, f.Junction)
		}
	}
}
