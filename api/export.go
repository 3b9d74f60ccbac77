package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"citybrain/replay"
)

// handleExport serves GET /api/v1/export?from=T1&to=T2&format=arrow|parquet|ndjson: the events of the log
// with event time in [from, to), in the engine schema, streamed as an attachment (docs/replay.md). An error
// after the first bytes can only cut the stream short; the trailer Citybrain-Export-Error then names it.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := replay.ParseFormat(q.Get("format"))
	if q.Get("format") == "" {
		f, err = replay.FormatParquet, nil
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	from, err := replay.ParseTime(q.Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	to, err := replay.ParseTime(q.Get("to"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		writeError(w, http.StatusBadRequest, "give from and to (from before to), e.g. from=2026-11-27&to=2026-11-28")
		return
	}
	if to.Sub(from) > 31*24*time.Hour {
		writeError(w, http.StatusBadRequest, "an export covers at most 31 days: split it")
		return
	}
	name := fmt.Sprintf("citybrain-%s-%s%s", from.UTC().Format("20060102T150405Z"), to.UTC().Format("20060102T150405Z"), f.Ext())
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Trailer", "Citybrain-Export-Error, Citybrain-Export-Events")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Hour)
	defer cancel()
	// A long export streams for longer than the server's write timeout: its own deadline is ctx's.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(2 * time.Hour))
	st, err := replay.Export(ctx, s.Log, w, replay.ExportOptions{From: from, To: to, Format: f})
	if err != nil {
		w.Header().Set("Citybrain-Export-Error", err.Error())
		return
	}
	w.Header().Set("Citybrain-Export-Events", fmt.Sprint(st.Events))
}
