package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// lineTraffic is a straight road of six 300-m links with a vehicle entering every 6 s at 36 km/h, every one a
// probe with a fix every 5 s, for minutes of event time from simStart.
func lineTraffic(t *testing.T, seed int64, minutes int) (*simRun, *geo.Network) {
	t.Helper()
	net, pt := lineRoad(t, "warm-test")
	run := &simRun{City: "line", Seed: seed, EndS: float64(minutes * 60)}
	endMs := int64(minutes) * 60_000
	for v, enter := 0, int64(0); enter < endMs; v, enter = v+1, enter+6_000 {
		for ts := enter + int64(v%5)*1000; ts < endMs && (ts-enter)*10/1000 < 1800; ts += 5_000 {
			e := engine.NewEvent(engine.KindProbe)
			e.ID, e.TS = fmt.Sprintf("veh%d", v), simStart.UnixMilli()+ts
			p := pt(float64(ts-enter) * 10 / 1000)
			e.Lat, e.Lng, e.SpeedKmh, e.HeadingDeg = p.Lat, p.Lng, 36, 90
			run.Probes = append(run.Probes, e)
			run.Low = append(run.Low, true)
		}
	}
	return run, net
}

// A deployed engine has watched its links for days; the corpus's runs start from an empty network. Fed cold,
// a link is judged only once watched for 5 minutes and is young (never an alarm alone) until its baselines
// have learned 30 buckets with traffic; warmed by another day of the same city it is judged as learned from
// its first minute, and nothing of the warm-up day is a row of the run.
func TestAWarmedTrackerJudgesTheRunsFirstMinutesAsLearned(t *testing.T) {
	run, net := lineTraffic(t, 1, 8)
	day, _ := lineTraffic(t, 2, 20)
	learnedBy := func(rows []Row) (first int64, young int) {
		first = -1
		for _, r := range rows {
			if r.T < simStart.UnixMilli() {
				t.Fatalf("a row of the warm-up day at %s", time.UnixMilli(r.T).UTC())
			}
			if r.Young {
				young++
			} else if first < 0 || r.T-simStart.UnixMilli() < first {
				first = r.T - simStart.UnixMilli()
			}
		}
		return first, young
	}
	coldFirst, coldYoung := learnedBy(extractRows(run, net, false))
	if coldFirst >= 0 && coldFirst < 5*60_000 || coldYoung == 0 {
		t.Fatalf("cold: first learned row at %d ms, %d young rows; want none learned before 5 min and some young", coldFirst, coldYoung)
	}
	warmRows, err := extractRowsWarm(context.Background(), run, day, net, false)
	if err != nil {
		t.Fatal(err)
	}
	warmFirst, warmYoung := learnedBy(warmRows)
	if warmFirst < 0 || warmFirst > 60_000 || warmYoung != 0 {
		t.Errorf("warmed: first learned row at %d ms, %d young rows; want a learned row within the first minute and none young", warmFirst, warmYoung)
	}
}

// The warm-up is another seed's run of the same city, never the run itself, fed one day earlier with its
// vehicles renamed (another day's trips) and its loops as they are (the same devices).
func TestTheWarmUpIsAnotherDayOfTheCity(t *testing.T) {
	for seed := int64(-4); seed <= 9; seed++ {
		if w := warmSeed(seed); w == seed || w < 1 || w > 3 {
			t.Errorf("warmSeed(%d) = %d; want another of the corpus's seeds 1-3", seed, w)
		}
	}
	run, _ := lineTraffic(t, 1, 2)
	loop := engine.NewEvent(engine.KindDetector)
	loop.ID, loop.TS = "loop1", simStart.UnixMilli()+30_000
	run.Loops = append(run.Loops, loop)
	ev := run.warmEvents(false)
	if len(ev) != len(run.Probes)+1 {
		t.Fatalf("%d warm-up events; want %d", len(ev), len(run.Probes)+1)
	}
	for i := range ev {
		if i > 0 && ev[i].TS < ev[i-1].TS {
			t.Fatalf("warm-up events out of order at %d", i)
		}
		e := &ev[i]
		if e.TS >= simStart.UnixMilli()-warmShift.Milliseconds()+2*60_000 || e.TS < simStart.UnixMilli()-warmShift.Milliseconds() {
			t.Errorf("event at %s; want the run's hour one day earlier", time.UnixMilli(e.TS).UTC())
		}
		if e.Kind == engine.KindProbe && !strings.HasPrefix(e.ID, warmPrefix) || e.Kind == engine.KindDetector && e.ID != "loop1" {
			t.Errorf("%v %q: vehicles renamed, loops kept", e.Kind, e.ID)
		}
	}
	if run.Probes[0].ID != "veh0" || run.Probes[0].TS != simStart.UnixMilli() {
		t.Errorf("the run itself changed: %q at %d", run.Probes[0].ID, run.Probes[0].TS)
	}
}

// fixedTarget lists fixed incidents (scoreScenario reads nothing else).
type fixedTarget struct{ dets []Detection }

func (f fixedTarget) send(context.Context, []byte) (int, int, error)  { return 0, 0, nil }
func (f fixedTarget) detections(context.Context) ([]Detection, error) { return f.dets, nil }
func (f fixedTarget) stop() error                                     { return nil }
func (f fixedTarget) speeds(context.Context) (map[string]linkReading, map[uint64]reading, error) {
	return nil, nil, nil
}

// The engine still lists the incidents of the warm-up day (cleared, kept for its history): they are not the
// scored run's, so neither false alarms nor detections.
func TestTheWarmUpDaysIncidentsAreNotScored(t *testing.T) {
	tr := Truth{ID: "blk", Class: ClassFull, Link: "L1", Lat: 30.25, Lng: 120.15,
		Start: simStart.Add(10 * time.Minute), End: simStart.Add(20 * time.Minute)}
	dets := []Detection{
		{ID: "yesterday", Lat: 30.25, Lng: 120.15, DetectedAt: simStart.Add(-warmShift + 12*time.Minute), Kinds: []string{"traffic"}},
		{ID: "elsewhere-yesterday", Lat: 30.30, Lng: 120.20, DetectedAt: simStart.Add(-warmShift + 30*time.Minute), Kinds: []string{"traffic"}},
		{ID: "today", Lat: 30.25, Lng: 120.15, DetectedAt: simStart.Add(11 * time.Minute), Kinds: []string{"traffic"}},
	}
	sc := &Scenario{Start: simStart, End: simStart.Add(time.Hour), SimulatedS: 3600}
	if err := scoreScenario(context.Background(), fixedTarget{dets}, sc, []Truth{tr}); err != nil {
		t.Fatal(err)
	}
	if sc.Metrics.FalseAlarms != 0 || sc.Metrics.Detected != 1 || len(sc.Detections) != 1 || sc.Detections[0].ID != "today" {
		t.Errorf("false alarms %d, detected %d, scored %d incidents; want 0, 1 and only today's", sc.Metrics.FalseAlarms, sc.Metrics.Detected, len(sc.Detections))
	}
}

// Through the whole system over HTTP, the scored run's first batches come a day after the warm-up's last,
// from fewer sources than the engine's clock guard asks to confirm such a jump: the guard holds them (the
// watermark moves once enough vehicles confirm it), and feeding must go on rather than wait for a watermark
// that cannot move. The incidents and results are those of the direct feed.
func TestAWarmedRunFeedsOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system")
	}
	run, net := lineTraffic(t, 1, 3)
	day, _ := lineTraffic(t, 2, 10)
	cfg := &Config{HTTP: true, TempDir: t.TempDir(), Log: io.Discard}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc, err := feedRun(ctx, cfg, net, run, day, VarTraffic, nil)
	if err != nil {
		t.Fatalf("feeding a warmed run over HTTP: %v", err)
	}
	direct, err := feedRun(ctx, &Config{Log: io.Discard}, net, run, day, VarTraffic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Feed.Accepted != direct.Feed.Accepted || len(sc.Detections) != len(direct.Detections) {
		t.Errorf("over HTTP %d events accepted, %d incidents; direct %d, %d", sc.Feed.Accepted, len(sc.Detections), direct.Feed.Accepted, len(direct.Detections))
	}
}

// Extracting a run's rows feeds the tracker every fix of a day and the run (tens of seconds on a dense city);
// an eval told to stop (SIGTERM: its context ends) must not wait for it. Extraction under an ended context
// returns the context's error and no rows; the same run under a live one gives rows.
func TestFeatureExtractionStopsWhenItsContextEnds(t *testing.T) {
	run, net := lineTraffic(t, 1, 8)
	day, _ := lineTraffic(t, 2, 20)
	rows, err := extractRowsWarm(context.Background(), run, day, net, false)
	if err != nil || len(rows) == 0 {
		t.Fatalf("live context: %d rows, error %v; want rows and no error", len(rows), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rows, err = extractRowsWarm(ctx, run, day, net, false)
	if !errors.Is(err, context.Canceled) || rows != nil {
		t.Fatalf("ended context: %d rows, error %v; want none and context.Canceled", len(rows), err)
	}
}
