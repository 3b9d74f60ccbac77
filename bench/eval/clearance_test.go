package eval

import (
	"strings"
	"testing"
	"time"
)

// A blockage's clearance is the commander's view: cleared when the last incident matching it is, open while
// one is; the table sorts them into early (shown over while the road is still blocked), on time and late.
func TestClearanceIsTheLastMatchingIncidentsAgainstTheEnd(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 7, 30, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ptr := func(x time.Time) *time.Time { return &x }
	truth := func(id string, lat float64) Truth {
		return Truth{ID: id, Class: ClassFull, Lat: lat, Lng: 11.3, Start: at(600), End: at(1200)}
	}
	truths := []Truth{truth("early", 44.50), truth("late", 44.51), truth("open", 44.52), truth("ontime", 44.53), truth("missed", 44.54)}
	dets := []Detection{
		// early: one incident cleared 400 s before the end, a second one too, 200 s before.
		{ID: "a", Lat: 44.50, Lng: 11.3, DetectedAt: at(700), ClearedAt: ptr(at(800)), Status: "cleared"},
		{ID: "b", Lat: 44.50, Lng: 11.3, DetectedAt: at(900), ClearedAt: ptr(at(1000)), Status: "cleared"},
		// late: cleared 10 minutes after the end.
		{ID: "c", Lat: 44.51, Lng: 11.3, DetectedAt: at(700), ClearedAt: ptr(at(1800)), Status: "cleared"},
		// open: one cleared early, one still open when the data ends 1,200 s after the end.
		{ID: "d", Lat: 44.52, Lng: 11.3, DetectedAt: at(700), ClearedAt: ptr(at(750)), Status: "cleared"},
		{ID: "e", Lat: 44.52, Lng: 11.3, DetectedAt: at(800), Status: "suspected"},
		// on time: cleared 90 s after the end.
		{ID: "f", Lat: 44.53, Lng: 11.3, DetectedAt: at(700), ClearedAt: ptr(at(1290)), Status: "cleared"},
	}
	res, _, _ := score(truths, dets, at(2400), 0.67)
	by := map[string]TruthResult{}
	for _, r := range res {
		by[r.ID] = r
	}
	lag := func(id string) float64 {
		if by[id].ClearLagS == nil {
			t.Fatalf("%s: no clearance lag (%+v)", id, by[id])
		}
		return *by[id].ClearLagS
	}
	if lag("early") != -200 || lag("late") != 600 || lag("ontime") != 90 {
		t.Errorf("lags early %v, late %v, on time %v; want -200, 600, 90", lag("early"), lag("late"), lag("ontime"))
	}
	if o := by["open"]; o.ClearLagS != nil || o.OpenAfterS == nil || *o.OpenAfterS != 1200 {
		t.Errorf("open: lag %v, open after %v; want none and 1200 s", o.ClearLagS, o.OpenAfterS)
	}
	if m := by["missed"]; m.ClearLagS != nil || m.OpenAfterS != nil {
		t.Errorf("an undetected blockage has a clearance: %+v", m)
	}
	sc := &Scenario{Source: "grid", Variant: VarAll, Truths: res}
	tab := clearanceTable([]*Scenario{sc}, []string{"grid"})
	if !strings.Contains(tab, "| grid / all | 4 | 1/4 (25 %) | 1/4 (25 %) | 2/4 (50 %) | 0 | 90 s |") {
		t.Errorf("table:\n%s", tab)
	}
}

// The median lag of an even count is the mean of the two middle lags, as everywhere else in the tables.
func TestClearanceRowMedianOfAnEvenCount(t *testing.T) {
	c := clearanceCounts{detected: 4, lags: []float64{40, 10, 30, 20}}
	if row := c.row("x"); !strings.HasSuffix(row, "| 25 s |\n") {
		t.Errorf("row %q: want the median lag 25 s", row)
	}
}
