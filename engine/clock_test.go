package engine

import (
	"fmt"
	"testing"
	"time"
)

func probeOf(id string, ts int64) Event {
	e := probe(ts, lat, lng, 30)
	e.ID = id
	return e
}

// Table row 3 of issue 15: one probe with a ts in 2199 moved the watermark to 2199 and every real event
// after it was too late. Now one source cannot move the clock far ahead: the event is counted as ahead and
// left out of the windows, and the real events go on; a jump backed by MinJumpSources distinct sources (the
// city back after an outage) moves it, also when the claims straddle a snapshot.
func TestOneSourceCannotJumpTheClock(t *testing.T) {
	r := newRig(t, nil)
	r.apply(probeOf("a", t0), probeOf("b", t0+1000))
	r.apply(probeOf("forger", time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()))
	r.apply(probeOf("forger", t0+20*60_000), probeOf("a", t0+2000)) // the same source again: still one
	r.e.Flush()
	st := r.e.Status()
	if st.Now != t0+2000 || st.Ahead != 2 {
		t.Fatalf("after one source's claims: now %d (want %d), ahead %d (want 2)", st.Now, t0+2000, st.Ahead)
	}
	r.apply(probeOf("b", t0+3000))
	r.e.Flush()
	if st := r.e.Status(); st.Late != 0 || st.TooLate != 0 {
		t.Errorf("real events late after the forged one: late %d, too late %d", st.Late, st.TooLate)
	}
	if v := r.view(lat, lng); v == nil || v.W[0].Samples != 4 {
		t.Errorf("view %+v, want the 4 real probes of the last minute", v)
	}

	// The city comes back an hour later: three vehicles, one batch each, the middle one after a snapshot.
	later := t0 + 3600_000
	r.apply(probeOf("c", later))
	dir := t.TempDir()
	if _, err := r.e.WriteSnapshot(dir); err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t, nil)
	if _, err := r2.e.LoadSnapshot(dir, 100, nil); err != nil {
		t.Fatal(err)
	}
	r2.seq = r.seq
	for _, x := range []*rig{r, r2} {
		x.apply(probeOf("d", later+1000))
		x.e.Flush()
		if st := x.e.Status(); st.Now != t0+3000 {
			t.Errorf("two sources moved the clock to %d", st.Now)
		}
		x.apply(probeOf("e", later+2000))
		x.e.Flush()
		if st := x.e.Status(); st.Now != later+2000 {
			t.Errorf("three sources: clock %d, want %d", st.Now, later+2000)
		}
	}
}

// A batch that itself holds MinJumpSources sources far ahead moves the clock at once.
func TestManySourcesJumpTheClockAtOnce(t *testing.T) {
	r := newRig(t, nil)
	r.apply(probeOf("a", t0))
	var batch []Event
	for i := 0; i < MinJumpSources; i++ {
		batch = append(batch, probeOf(fmt.Sprintf("v%d", i), t0+86_400_000+int64(i)))
	}
	r.apply(batch...)
	r.e.Flush()
	if st := r.e.Status(); st.Now != t0+86_400_000+MinJumpSources-1 || st.Ahead != 0 {
		t.Errorf("clock %d ahead %d after a batch of %d sources a day later", st.Now, st.Ahead, MinJumpSources)
	}
}
