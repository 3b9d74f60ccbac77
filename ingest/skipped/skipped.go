// Package skipped counts the input records that an adapter did not turn into events, by reason, so that nothing
// is dropped silently: every adapter under ingest/ reports what it skipped through a Log.
package skipped

import (
	"fmt"
	"sort"
	"strings"
)

// maxReasons bounds the number of distinct reasons a Log keeps; further reasons are folded into "other".
const maxReasons = 256

// Record is one skipped input record.
type Record struct {
	Where  string // file and line, record or entity, e.g. "parking-demo.json line 17"
	Reason string // short, low-cardinality reason, e.g. "no camera position (0/0)"
	Detail string // optional detail about this record, e.g. the offending value
}

func (r Record) String() string {
	if r.Detail == "" {
		return r.Where + ": " + r.Reason
	}
	return r.Where + ": " + r.Reason + " (" + r.Detail + ")"
}

// Log counts skipped records by reason and keeps the first record of each reason as an example. Its state is
// bounded by maxReasons. The zero value is ready to use. A Log is not safe for concurrent use: it is owned by
// the goroutine that runs the adapter.
type Log struct {
	// OnSkip, when set, is called for every skipped record (for a verbose log). It must not keep r beyond the call
	// if it mutates it; Record holds only strings so keeping it is safe.
	OnSkip func(r Record)

	total  int
	counts map[string]int
	first  map[string]Record
}

// Add records one skipped record.
func (l *Log) Add(where, reason, detail string) {
	if l.counts == nil {
		l.counts = make(map[string]int)
		l.first = make(map[string]Record)
	}
	r := Record{Where: where, Reason: reason, Detail: detail}
	l.total++
	key := reason
	if _, ok := l.counts[key]; !ok && len(l.counts) >= maxReasons {
		key = "other"
	}
	if _, ok := l.first[key]; !ok {
		l.first[key] = r
	}
	l.counts[key]++
	if l.OnSkip != nil {
		l.OnSkip(r)
	}
}

// Total returns the number of skipped records.
func (l *Log) Total() int { return l.total }

// Count returns the number of records skipped for reason.
func (l *Log) Count(reason string) int { return l.counts[reason] }

// Counts returns a copy of the counts by reason.
func (l *Log) Counts() map[string]int {
	m := make(map[string]int, len(l.counts))
	for k, v := range l.counts {
		m[k] = v
	}
	return m
}

// First returns the first record skipped for reason.
func (l *Log) First(reason string) (Record, bool) {
	r, ok := l.first[reason]
	return r, ok
}

// String summarises the log, most frequent reason first, with the first example of each, e.g.
// "12 skipped: 10 no speed (first: ct.pb entity 3); 2 ...".
func (l *Log) String() string {
	if l.total == 0 {
		return "0 skipped"
	}
	reasons := make([]string, 0, len(l.counts))
	for k := range l.counts {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		ci, cj := l.counts[reasons[i]], l.counts[reasons[j]]
		if ci != cj {
			return ci > cj
		}
		return reasons[i] < reasons[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d skipped:", l.total)
	for i, k := range reasons {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %d %s (first: %s)", l.counts[k], k, l.first[k])
	}
	return b.String()
}
