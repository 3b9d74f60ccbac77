package system

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

type historyDoc struct {
	Metric        string          `json:"metric"`
	From, To      time.Time       `json:"-"`
	StepS         int             `json:"step_s"`
	FilledFromLog int             `json:"filled_from_log"`
	Missing       [][2]string     `json:"missing"`
	Series        []historySeries `json:"series"`
}

type historySeries struct {
	Key    string   `json:"key"`
	Name   string   `json:"name"`
	Points [][3]any `json:"points"`
}

// TestHistoryFromTheLog posts 20 minutes of probes (one batch a minute, speed 20+m km/h in minute m) in the
// past and reads GET /api/v1/history back: the minutes the live sampler never saw are recomputed from the
// log by a fresh engine, and each step holds that minute's speed, event count and a TPI.
func TestHistoryFromTheLog(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	t0 := time.Now().Add(-40 * time.Minute).Truncate(time.Minute)
	const minutes = 20
	lat, lng := 30.2528, 120.1675
	for m := 0; m < minutes; m++ {
		var b strings.Builder
		for k := 0; k < 6; k++ {
			ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(k)*10*time.Second)
			fmt.Fprintf(&b, `{"kind":"probe","ts":%d,"id":"veh-%d","lat":%g,"lng":%g,"speed_kmh":%d}`+"\n", ts.UnixMilli(), k, lat+float64(k)*1e-5, lng, 20+m)
		}
		if code, out := post(t, s, "application/x-ndjson", []byte(b.String()), nil); code != 200 {
			t.Fatalf("post minute %d: %d %v", m, code, out)
		}
	}
	waitWatermark(t, s, t0.Add(minutes*time.Minute-10*time.Second))
	base := fmt.Sprintf("http://%s/api/v1/history?from=%s&to=%s", s.Addr(), t0.UTC().Format(time.RFC3339), t0.Add(minutes*time.Minute).UTC().Format(time.RFC3339))

	var sp historyDoc
	if code := getJSON(t, base+"&metric=speed&step=60s", &sp); code != 200 {
		t.Fatalf("history: %d", code)
	}
	if sp.StepS != 60 || len(sp.Series) != 1 || sp.Series[0].Key != "all" {
		t.Fatalf("want one city series at 60 s, got step %d, %d series", sp.StepS, len(sp.Series))
	}
	if sp.FilledFromLog == 0 {
		t.Errorf("no slot was recomputed from the log (filled_from_log 0)")
	}
	pts := sp.Series[0].Points
	if len(pts) != minutes {
		t.Fatalf("%d points, want %d", len(pts), minutes)
	}
	// The last minute is still in progress for the engine (its clock is inside it): not shown yet.
	if pts[minutes-1][1] != nil {
		t.Errorf("the minute in progress has a value: %v", pts[minutes-1])
	}
	for m, p := range pts[:minutes-1] {
		v, ok := p[1].(float64)
		if !ok {
			t.Errorf("minute %d: no speed (%v)", m, p[1])
			continue
		}
		if math.Abs(v-float64(20+m)) > 0.5 {
			t.Errorf("minute %d: speed %.2f, want %d", m, v, 20+m)
		}
		if at, _ := time.Parse(time.RFC3339, p[0].(string)); !at.Equal(t0.Add(time.Duration(m) * time.Minute)) {
			t.Errorf("minute %d: time %v, want %v", m, p[0], t0.Add(time.Duration(m)*time.Minute))
		}
	}

	var ev historyDoc
	getJSON(t, base+"&metric=events&step=60s", &ev)
	for m, p := range ev.Series[0].Points[:minutes-1] {
		// A minute is the engine's 1-minute window at its end: its first 10-s bucket reaches back to the
		// previous minute's last event, so 6 events a minute read as 6 (the first minute) or 7.
		if v, _ := p[1].(float64); v < 6 || v > 7 || (m == 0 && v != 6) {
			t.Errorf("minute %d: %v events, want 6 (7 with the previous minute's last)", m, p[1])
		}
	}
	var tpi historyDoc
	getJSON(t, base+"&metric=tpi&step=5m", &tpi)
	if n := len(tpi.Series[0].Points); n != minutes/5 {
		t.Fatalf("tpi at 5 min: %d points, want %d", n, minutes/5)
	}
	for k, p := range tpi.Series[0].Points[:minutes/5-1] {
		if v, ok := p[1].(float64); !ok || v < 0 || v > 10 {
			t.Errorf("tpi step %d: %v, want 0..10", k, p[1])
		}
	}
	// A second query reads nothing from the log: the slots are held now.
	var again historyDoc
	getJSON(t, base+"&metric=speed&step=60s", &again)
	if again.FilledFromLog != 0 {
		t.Errorf("second query recomputed %d slots", again.FilledFromLog)
	}
	// An area elsewhere has no speed; grouping by resolution 7 gives the one area with data.
	var far historyDoc
	getJSON(t, base+"&metric=speed&step=60s&bbox=121,31,121.1,31.1", &far)
	for _, p := range far.Series[0].Points {
		if p[1] != nil {
			t.Fatalf("speed outside the probes' area: %v", p)
		}
	}
	var byRes historyDoc
	getJSON(t, base+"&metric=speed&step=60s&res=7", &byRes)
	if len(byRes.Series) != 1 || byRes.Series[0].Key == "all" {
		t.Fatalf("res=7: %d series (%+v)", len(byRes.Series), byRes.Series)
	}
	// Bad queries are refused with a reason.
	for _, q := range []string{"&metric=nope", "&step=7s", "&res=12", "&cells=zz"} {
		if code := getJSON(t, base+q, nil); code != 400 {
			t.Errorf("%s: status %d, want 400", q, code)
		}
	}
	if code := getJSON(t, "http://"+s.Addr()+"/api/v1/history?from=-x", nil); code != 400 {
		t.Errorf("from=-x: status %d, want 400", code)
	}
}
