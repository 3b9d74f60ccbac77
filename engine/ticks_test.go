package engine

import (
	"fmt"
	"slices"
	"testing"

	"citybrain/geo"
)

// TestJudgementDoesNotDependOnTicks feeds the same log batches to engines whose ticks fall differently
// (after every batch, every seventh batch, once at the end): a tick is a wall-clock event, so how many
// batches it finds depends on the machine's load, and a replay runs faster than the live run it replays.
// The incidents (detection, evidence, clearance) and the cells' incident scores must be the same in all.
func TestJudgementDoesNotDependOnTicks(t *testing.T) {
	const n = 5
	cells := road(t, n)
	const onset, end = 8 * 60_000, 16 * 60_000
	speed := func(i int, ms int64) float64 {
		if ms >= onset && ms < end && i <= 2 {
			return 4
		}
		return 48
	}
	// 30 minutes of 10-second batches: probes on every cell; a camera sees the stalled vehicle twice, and a
	// caller reports it; both outlive the queue by a little.
	var batches [][]Event
	for b := int64(0); b < 30*6; b++ {
		var evs []Event
		for i, c := range cells {
			for k := int64(0); k < 4; k++ {
				ms := b*10_000 + k*2500
				evs = append(evs, probe(t0+ms, c.Lat, c.Lng, speed(i, ms)))
			}
		}
		ms := b * 10_000
		switch ms {
		case onset + 60_000, onset + 90_000:
			evs = append(evs, video(t0+ms+5_000, "cam-1", cells[2].Lat, cells[2].Lng, "stalled_vehicle", 0.7))
		case onset + 120_000:
			evs = append(evs, report(t0+ms+3_000, "call-1", cells[2].Lat+0.0004, cells[2].Lng, "accident", 2))
		}
		batches = append(batches, evs)
	}

	run := func(every int) (incidents []string, scores []string) {
		r := newRig(t, func(cfg *Config) { cfg.DefaultFreeFlowKmh = 50 })
		for i, evs := range batches {
			r.applyOnly(evs...)
			if every > 0 && i%every == every-1 {
				r.e.Flush()
			}
		}
		r.e.Flush()
		for _, in := range r.e.Incidents() {
			incidents = append(incidents, fmt.Sprintf("%s %s %s score %.3f detected %d cleared %d evidence %d cell %x",
				in.ID, in.Type, in.Status, in.Score, in.DetectedAt, in.ClearedAt, in.EvidenceCount, in.Cell))
		}
		for _, v := range r.e.All() {
			if v.IncidentScore != 0 {
				scores = append(scores, fmt.Sprintf("%x %.3f", v.Cell, v.IncidentScore))
			}
		}
		slices.Sort(scores)
		return incidents, scores
	}
	wantInc, wantScores := run(1)
	if len(wantInc) == 0 {
		t.Fatal("no incident with a tick after every batch: the scenario does not exercise the judgement")
	}
	for _, every := range []int{7, 0} {
		gotInc, gotScores := run(every)
		if !slices.Equal(gotInc, wantInc) {
			t.Errorf("ticks every %d batches (0: once): incidents\n%q\nwant (a tick after every batch)\n%q", every, gotInc, wantInc)
		}
		if !slices.Equal(gotScores, wantScores) {
			t.Errorf("ticks every %d batches (0: once): cell incident scores %q, want %q", every, gotScores, wantScores)
		}
	}
}

// applyOnly builds one batch from events and applies it, without a tick.
func (r *rig) applyOnly(events ...Event) {
	r.t.Helper()
	bb := NewBatchBuilder(r.mem)
	defer bb.Release()
	for i := range events {
		c, err := geo.CellOf(events[i].Lat, events[i].Lng, r.e.Config().Res)
		if err != nil {
			r.t.Fatal(err)
		}
		bb.Append(&events[i], c)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	r.seq++
	if err := r.e.Apply(r.seq, rec); err != nil {
		r.t.Fatal(err)
	}
}
