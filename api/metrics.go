package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"

	"citybrain/engine"
	"citybrain/ingest"
)

// WriteMemoryMetrics writes the memory budget's gauges (Prometheus text); cluster nodes use it too.
func WriteMemoryMetrics(w io.Writer, m MemoryStatus) {
	one := func(name, typ, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	slow := int64(0)
	if m.SlowDown != "" {
		slow = 1
	}
	for _, g := range []struct {
		name, help string
		v          int64
	}{
		{"citybrain_memory_limit_bytes", "The process's memory budget (--memory-limit; 0: none).", m.Limit},
		{"citybrain_memory_rss_bytes", "Resident set size of the process, as the memory governor last read it.", m.RSS},
		{"citybrain_memory_go_heap_live_bytes", "Go heap reachable at the last collection.", m.GoHeapLive},
		{"citybrain_memory_go_heap_objects_bytes", "Go heap objects now, garbage since the last collection included.", m.GoHeapObjects},
		{"citybrain_memory_go_heap_free_bytes", "Go heap held free and not returned to the system.", m.GoHeapFree},
		{"citybrain_memory_go_other_bytes", "The Go runtime's other memory (stacks, metadata).", m.GoOther},
		{"citybrain_ingest_backlog_messages", "Log messages the engines lag behind ingest.", int64(m.Backlog)},
		{"citybrain_ingest_slow_down", "1 while the doors refuse batches (HTTP 429, NATS slow down).", slow},
	} {
		one(g.name, "gauge", g.help, g.v)
	}
	one("citybrain_ingest_refused_batches_total", "counter", "Batches refused by backpressure.", int64(m.Refused))
	one("citybrain_memory_settles_total", "counter", "Quiet spells after which the memory governor gave a burst's memory back.", int64(m.Settles))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// handleMetrics serves Prometheus text format: events in/out/rejected/late per kind, queue depths, window
// sizes, websocket clients, tick durations.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	st := s.Engine.Status()
	ist := &ingest.Stats{} // a replay server ingests nothing
	if s.Ingest != nil {
		ist = s.Ingest.Stats()
	}
	metric("citybrain_ingest_events_total", "counter", "Events accepted into the log by this process, by kind.")
	for _, k := range engine.Kinds {
		fmt.Fprintf(&b, "citybrain_ingest_events_total{kind=%q} %d\n", k.String(), ist.Accepted[k].Load())
	}
	metric("citybrain_ingest_rejected_total", "counter", "Events rejected by this process (kept on the dead-letter log).")
	fmt.Fprintf(&b, "citybrain_ingest_rejected_total %d\n", ist.Rejected.Load())
	metric("citybrain_ingest_batches_total", "counter", "Batches stored.")
	fmt.Fprintf(&b, "citybrain_ingest_batches_total %d\n", ist.Batches.Load())
	metric("citybrain_ingest_failed_batches_total", "counter", "Batches that could not be stored (client told to retry).")
	fmt.Fprintf(&b, "citybrain_ingest_failed_batches_total %d\n", ist.Failed.Load())
	metric("citybrain_ingest_bytes_total", "counter", "Body bytes received.")
	fmt.Fprintf(&b, "citybrain_ingest_bytes_total %d\n", ist.Bytes.Load())
	events, late := s.Engine.KindCounts()
	metric("citybrain_engine_events_total", "counter", "Events applied by the engine from the log, by kind.")
	for _, k := range engine.Kinds {
		fmt.Fprintf(&b, "citybrain_engine_events_total{kind=%q} %d\n", k.String(), events[k])
	}
	metric("citybrain_engine_late_events_total", "counter", "Events that arrived behind the watermark, by kind.")
	for _, k := range engine.Kinds {
		fmt.Fprintf(&b, "citybrain_engine_late_events_total{kind=%q} %d\n", k.String(), late[k])
	}
	metric("citybrain_engine_too_late_events_total", "counter", "Late events older than the longest window (in the log, not in windows).")
	fmt.Fprintf(&b, "citybrain_engine_too_late_events_total %d\n", st.TooLate)
	metric("citybrain_engine_cells", "gauge", "Cells with data in the 15-minute window.")
	fmt.Fprintf(&b, "citybrain_engine_cells %d\n", st.Cells)
	metric("citybrain_engine_raw_events", "gauge", "Raw events retained in memory.")
	fmt.Fprintf(&b, "citybrain_engine_raw_events %d\n", st.RawRows)
	metric("citybrain_engine_raw_bytes", "gauge", "Memory of the retained raw events (narrow column chunks and their id and cell tables).")
	fmt.Fprintf(&b, "citybrain_engine_raw_bytes %d\n", st.RawBytes)
	metric("citybrain_engine_raw_retention_seconds", "gauge", "Raw retention in force (shorter than configured when the memory budget needs it).")
	fmt.Fprintf(&b, "citybrain_engine_raw_retention_seconds %g\n", st.Retention.Seconds())
	if s.Memory != nil {
		WriteMemoryMetrics(&b, s.Memory())
	}
	metric("citybrain_engine_tick_seconds", "gauge", "Duration of the last tick.")
	fmt.Fprintf(&b, "citybrain_engine_tick_seconds %g\n", float64(st.TickNanos)/1e9)
	metric("citybrain_engine_log_seq", "gauge", "Log sequence reflected in published cells.")
	fmt.Fprintf(&b, "citybrain_engine_log_seq %d\n", st.AppliedSeq)
	metric("citybrain_engine_watermark_seconds", "gauge", "Watermark, Unix seconds.")
	fmt.Fprintf(&b, "citybrain_engine_watermark_seconds %g\n", float64(max(st.Watermark, 0))/1000)
	queues := append(s.Engine.Queues(), s.Hub.Queues()...)
	if s.Queues != nil {
		queues = append(queues, s.Queues()...)
	}
	sort.SliceStable(queues, func(i, j int) bool { return queues[i].Name < queues[j].Name })
	metric("citybrain_queue_depth", "gauge", "Items waiting in a bounded queue between goroutines (a family such as ws-client: summed).")
	for _, q := range queues {
		fmt.Fprintf(&b, "citybrain_queue_depth{queue=%q} %d\n", q.Name, q.Len)
	}
	metric("citybrain_queue_limit", "gauge", "Capacity of a bounded queue (a family: summed).")
	for _, q := range queues {
		fmt.Fprintf(&b, "citybrain_queue_limit{queue=%q,when_full=%q} %d\n", q.Name, q.Policy, q.Limit)
	}
	metric("citybrain_queue_full_total", "counter", "Pushes that found a queue full (block: the producer waited; reject: it was refused).")
	for _, q := range queues {
		fmt.Fprintf(&b, "citybrain_queue_full_total{queue=%q} %d\n", q.Name, q.Full)
	}
	metric("citybrain_queue_blocked_seconds_total", "counter", "Time producers waited for room in a blocking queue.")
	for _, q := range queues {
		fmt.Fprintf(&b, "citybrain_queue_blocked_seconds_total{queue=%q} %g\n", q.Name, q.Blocked.Seconds())
	}
	hs := s.Hub.Stats()
	metric("citybrain_ws_clients", "gauge", "Connected websocket clients.")
	fmt.Fprintf(&b, "citybrain_ws_clients %d\n", hs.Clients)
	metric("citybrain_ws_messages_total", "counter", "Websocket messages written.")
	fmt.Fprintf(&b, "citybrain_ws_messages_total %d\n", hs.Sent)
	metric("citybrain_ws_direct_total", "counter", "Websocket messages the hub wrote straight to the client's socket (of citybrain_ws_messages_total; the rest went through the client's writer).")
	fmt.Fprintf(&b, "citybrain_ws_direct_total %d\n", hs.Direct)
	metric("citybrain_ws_pings_alone_total", "counter", "Websocket pings written on their own; the others went out in front of a message, in the same write.")
	fmt.Fprintf(&b, "citybrain_ws_pings_alone_total %d\n", hs.PingsAlone)
	metric("citybrain_ws_coalesced_total", "counter", "Times a slow client's queue was replaced by a fresh snapshot.")
	fmt.Fprintf(&b, "citybrain_ws_coalesced_total %d\n", hs.Coalesced)
	metric("citybrain_ws_disconnected_slow_total", "counter", "Clients cut off as too slow.")
	fmt.Fprintf(&b, "citybrain_ws_disconnected_slow_total %d\n", hs.Dropped)
	metric("citybrain_ws_batched_total", "counter", "Websocket messages written together with the one before (the client was behind).")
	fmt.Fprintf(&b, "citybrain_ws_batched_total %d\n", hs.Batched)
	metric("citybrain_ws_fanout_seconds", "gauge", "The hub's time on the last delta: cell state, encoding once per subscription, writing or queueing to clients (off the engine's tick).")
	fmt.Fprintf(&b, "citybrain_ws_fanout_seconds %g\n", hs.Fanout.Seconds())
	metric("citybrain_tick_seconds", "gauge", "The last tick end to end: the engine's part and the hub's, from the delta's hand-over to its frames written or queued to every client.")
	fmt.Fprintf(&b, "citybrain_tick_seconds{part=\"engine\"} %g\n", float64(st.TickNanos)/1e9)
	fmt.Fprintf(&b, "citybrain_tick_seconds{part=\"hub\"} %g\n", hs.Lag.Seconds())
	metric("citybrain_ws_deltas_total", "counter", "Engine deltas fanned out.")
	fmt.Fprintf(&b, "citybrain_ws_deltas_total %d\n", hs.Deltas)
	if s.Unreadable != nil {
		metric("citybrain_unreadable_messages_total", "counter", "Messages no reader could read (counted, kept on the dead-letter log, skipped), by where they were met.")
		u := s.Unreadable()
		for _, n := range slices.Sorted(maps.Keys(u)) {
			fmt.Fprintf(&b, "citybrain_unreadable_messages_total{where=%q} %d\n", n, u[n])
		}
	}
	if s.Ingest != nil {
		metric("citybrain_ingest_in_flight_bytes", "gauge", "Decoded bytes held by batches being ingested (bounded: batches past the budget get 503).")
		fmt.Fprintf(&b, "citybrain_ingest_in_flight_bytes %d\n", s.Ingest.InFlight())
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	if s.MoreMetrics != nil {
		s.MoreMetrics(&b)
	}
	w.Write(b.Bytes())
}
