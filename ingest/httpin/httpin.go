// Package httpin is the HTTP door of ingest: POST /api/v1/events (NDJSON, a JSON array or an Arrow IPC stream,
// optionally gzip-encoded), answered once the accepted events are stored on the log.
package httpin

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/ingest"
)

// Handler serves POST /api/v1/events into an Ingestor.
type Handler struct {
	in *ingest.Ingestor
}

// New returns the handler of in.
func New(in *ingest.Ingestor) *Handler { return &Handler{in: in} }

// ServeHTTP implements POST /api/v1/events: NDJSON (application/x-ndjson) or a JSON array
// (application/json), optionally gzip-encoded, or the Arrow IPC stream of the binary path. The answer comes
// after the accepted events are stored on the log. An Idempotency-Key header deduplicates a retried request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "use POST to send events")
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("cannot parse Content-Type %q", r.Header.Get("Content-Type")))
		return
	}
	switch ct {
	case "application/x-ndjson", "application/json", "application/ndjson", ingest.ContentTypeArrow:
	default:
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not a batch: use application/x-ndjson, application/json or %s", ct, ingest.ContentTypeArrow))
		return
	}
	cfg := h.in.Config()
	var body io.Reader = http.MaxBytesReader(w, r.Body, cfg.MaxBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "cannot read gzip body: "+err.Error())
			return
		}
		defer zr.Close()
		body = zr
	default:
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: use gzip or none", enc))
		return
	}
	data, err := io.ReadAll(io.LimitReader(body, cfg.MaxDecoded+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes: split the batch", cfg.MaxBody))
			return
		}
		httpError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		return
	}
	if int64(len(data)) > cfg.MaxDecoded {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed body is over the limit of %d bytes: split the batch", cfg.MaxDecoded))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	key := r.Header.Get("Idempotency-Key")
	var res ingest.Result
	if ct == ingest.ContentTypeArrow {
		res, err = h.in.IngestArrow(ctx, data, "http", key)
	} else {
		res, err = h.in.Ingest(ctx, data, "http", engine.KindUnknown, key)
	}
	switch {
	case errors.Is(err, ingest.ErrNoEvents):
		httpError(w, http.StatusBadRequest, "the batch holds no events")
		return
	case err != nil && strings.HasPrefix(err.Error(), "cannot store"):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, err.Error()+"; nothing of this batch was accepted, retry it")
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if res.Accepted == 0 {
		w.WriteHeader(http.StatusBadRequest)
	}
	w.Write(ingest.AppendAnswer(nil, &res))
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(ingest.AppendQuoted([]byte(`{"error":`), msg), "}\n"...))
}
