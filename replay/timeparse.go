package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a time as the command line and the API take it: RFC 3339 (2026-11-27T13:00:00+08:00),
// a date and time without a zone (2026-11-27T13:00, 2026-11-27 13:00:05: UTC), a date (2026-11-27: its
// midnight UTC), or Unix milliseconds. Empty is the zero time (unbounded).
func ParseTime(s string) (time.Time, error) {
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
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q: use RFC 3339 (2026-11-27T13:00:00+08:00), 2026-11-27T13:00 (UTC), 2026-11-27 or Unix milliseconds", s)
}
