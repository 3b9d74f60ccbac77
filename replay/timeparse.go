package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime is ParseTimeIn(s, time.UTC).
func ParseTime(s string) (time.Time, error) { return ParseTimeIn(s, time.UTC) }

// ParseTimeIn reads a time as the command line and the API take it: RFC 3339 (2026-11-27T13:00:00+08:00),
// a date and time without a zone (2026-11-27T13:00, 2026-11-27 13:00:05: in loc), a date (2026-11-27: its
// midnight in loc), or Unix milliseconds. Empty is the zero time (unbounded).
func ParseTimeIn(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && len(s) > 8 {
		return time.UnixMilli(ms).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q: use RFC 3339 (2026-11-27T13:00:00+08:00), 2026-11-27T13:00 (UTC), 2026-11-27 or Unix milliseconds", s)
}
