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

// action queues an operator action as the next log message.
func (r *rig) action(a Action) {
	r.seq++
	r.e.ApplyAction(r.seq, a)
}

// TestOperatorActionsTakePlaceAtTheirLogPosition: an operator's dismissal read from the log between two
// batches is carried out between them, whether the tick comes right after it or only after many later
// batches. Before, it was carried out after all the evidence of the tick that found it: a call that came
// after the dismissal joined the dismissed incident in one run and opened a new one in another.
func TestOperatorActionsTakePlaceAtTheirLogPosition(t *testing.T) {
	call := func(ms int64, id string) Event {
		return report(t0+ms, id, lat, lng, "hazard", 3)
	}
	run := func(tickEveryBatch bool) (out []string, results []string) {
		r := newRig(t, nil)
		step := func(evs ...Event) {
			r.applyOnly(evs...)
			if tickEveryBatch {
				r.e.Flush()
			}
		}
		step(call(0, "call-1"))
		step(probe(t0+10_000, 31, 121, 40))
		// The operator saw the incident the first call opened (its id does not depend on the ticks).
		r.e.Flush()
		in := r.e.Incidents()
		if len(in) != 1 {
			t.Fatalf("%d incidents after the first call, want 1", len(in))
		}
		r.action(Action{ID: "a1", IncidentID: in[0].ID, Status: StatusDismissed, By: "kim", Role: "commander", TS: 1})
		if tickEveryBatch {
			r.e.Flush()
		}
		step(call(20_000, "call-2"))
		step(probe(t0+30_000, 31, 121, 40))
		r.action(Action{ID: "a2", IncidentID: "nope", Status: StatusConfirmed})
		step(call(40_000, "call-3"))
		r.e.Flush()
		for _, in := range r.e.Incidents() {
			out = append(out, fmt.Sprintf("%s %s evidence %d detected %d cleared %d audit %d", in.ID, in.Status,
				in.EvidenceCount, in.DetectedAt, in.ClearedAt, len(in.Audit)))
		}
		for _, id := range []string{"a1", "a2"} {
			err, ok := r.e.ActionResult(id)
			results = append(results, fmt.Sprintf("%s %v %v", id, ok, err))
		}
		return out, results
	}
	want, wantRes := run(true)
	if len(want) != 2 {
		t.Fatalf("a tick after every message: incidents %q, want the dismissed one and a new one of the later calls", want)
	}
	got, gotRes := run(false)
	if !slices.Equal(got, want) {
		t.Errorf("one tick for the later messages: incidents\n%q\nwant (a tick after every message)\n%q", got, want)
	}
	if !slices.Equal(gotRes, wantRes) {
		t.Errorf("action results %q, want %q", gotRes, wantRes)
	}
}
