package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"citybrain/ingest/skipped"
	"citybrain/replay"
)

// skipHints name, per feed format, the one flag that would have turned records skipped for a reason into
// events: a reason containing the key gets the hint. Reasons no flag can fix (a malformed line, a reading of 0)
// have none.
var skipHints = map[string][][2]string{
	"gtfs-rt": {
		{"no static GTFS", "--static GTFS.zip (stop positions of trip updates)"},
		{"not in the static feed", "--static GTFS.zip with this feed's routes and trips, or --mode bus|tram|metro for unknown routes"},
		{"no route", "--static GTFS.zip (routes of trips)"},
		{"no speed", "--static GTFS.zip (scheduled speeds when the feed has none)"},
		{"no scheduled speed", "--static GTFS.zip with stop_times for these trips"},
		{"next stop not in static", "--static GTFS.zip matching the feed's stops.txt"},
	},
	"deepstream": {
		{"camera position", "--cameras cameras.csv (id,lat,lng)"},
		{"unmapped event type", "--mapping map.json (event type -> count|skip|video type)"},
		{"maps to skip", "--mapping map.json mapping the type to count or a video type"},
		{"without confidence", "--default-confidence 0.7"},
		{"too many cameras", "--interval 30s (shorter count windows hold fewer cameras open)"},
	},
	"metr-la": {
		{"no location for sensor", "--locations sensor_locations.csv with these sensor ids"},
		{"bad time in column 1", "--start and --interval (rows then count from --start)"},
	},
	"incidents": {
		{"unmapped", "--mapping map.json|map.csv (source type -> type, severity)"},
		{"no type", "--mapping map.json|map.csv"},
	},
	"sumo-fcd": {
		{"lane not on the network", "--net the .net.xml the simulation ran on"},
	},
	"sumo-e1": {
		{"detector not in the definitions", "--detectors the additional file that defines these detectors"},
	},
}

// printSkipped writes what a feed skipped: per reason the count, the first record, and the flag that would
// fix it where one would.
func printSkipped(w io.Writer, format string, l *skipped.Log) {
	if l == nil || l.Total() == 0 {
		fmt.Fprintf(w, "feed %s: nothing skipped\n", format)
		return
	}
	counts := l.Counts()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if counts[reasons[i]] != counts[reasons[j]] {
			return counts[reasons[i]] > counts[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	fmt.Fprintf(w, "feed %s: %d skipped\n", format, l.Total())
	for _, r := range reasons {
		first, _ := l.First(r)
		fmt.Fprintf(w, "  %d × %s (first: %s)\n", counts[r], r, first)
		if h := skipHint(format, r); h != "" {
			fmt.Fprintf(w, "      fix: %s\n", h)
		}
	}
}

func skipHint(format, reason string) string {
	for _, h := range skipHints[format] {
		if strings.Contains(reason, h[0]) {
			return h[1]
		}
	}
	return ""
}

// parseTimeFlag reads a time flag the way every command does: RFC 3339 (2026-11-27T13:00:00+08:00), a date
// and time without a zone (2026-11-27T13:00, 2026-11-27 13:00[:05]) or a date, both in loc, Unix milliseconds,
// or "now" when allowNow.
func parseTimeFlag(flagName, s string, loc *time.Location, allowNow bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if allowNow && (s == "" || s == "now") {
		return time.Now(), nil
	}
	t, err := replay.ParseTimeIn(s, loc)
	if err != nil {
		more := ""
		if allowNow {
			more = ", or now"
		}
		return time.Time{}, fmt.Errorf("cannot parse %s %q: use RFC 3339 (2026-11-27T13:00:00+08:00), 2026-11-27T13:00 or 2026-11-27 13:00 (%s), 2026-11-27, or Unix milliseconds%s", flagName, s, loc, more)
	}
	if t.IsZero() {
		return t, fmt.Errorf("cannot parse %s: empty", flagName)
	}
	return t, nil
}
