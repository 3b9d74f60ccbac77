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
	// Caller names the authenticated caller of a request ("" when none): idempotency keys and the
	// deduplication of retries are scoped to it.
	Caller func(*http.Request) string
}

// New returns the handler of in.
func New(in *ingest.Ingestor) *Handler { return &Handler{in: in} }

// ServeHTTP implements POST /api/v1/events: NDJSON (application/x-ndjson) or a JSON array
// (application/json), optionally gzip-encoded, or the Arrow IPC stream of the binary path. The body is
// decoded as it arrives (gzip inflated on the fly, NDJSON line by line) within the ingestor's limits. The
// answer comes after the accepted events are stored on the log, and it is exactly true: 200/400 with the
// counts when stored, 503 (retry: nothing of the batch was accepted, and a retry is stored once) when not.
// An Idempotency-Key header names the batch for retries; the same key with another body is 409.
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
	size := int64(-1) // the decoded body's length, when the request says it
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength <= cfg.MaxBody {
			size = r.ContentLength
		}
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
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	via := "http"
	if h.Caller != nil {
		if c := h.Caller(r); c != "" {
			via = "http:" + c
		}
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 256 {
		httpError(w, http.StatusBadRequest, "Idempotency-Key is longer than 256 bytes")
		return
	}
	res, err := h.in.IngestReader(ctx, body, size, ct == ingest.ContentTypeArrow, via, engine.KindUnknown, key)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes: split the batch", cfg.MaxBody))
		return
	case errors.Is(err, ingest.ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case errors.Is(err, ingest.ErrNoEvents):
		httpError(w, http.StatusBadRequest, "the batch holds no events")
		return
	case errors.Is(err, ingest.ErrKeyReused):
		httpError(w, http.StatusConflict, "Idempotency-Key "+fmt.Sprintf("%q", key)+" was used for another batch: use a new key for new events")
		return
	case errors.Is(err, ingest.ErrSlowDown):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusTooManyRequests, err.Error()+"; nothing of this batch was read, retry it in a second")
		return
	case errors.Is(err, ingest.ErrStore), errors.Is(err, ingest.ErrBusy):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, err.Error()+"; nothing of this batch was accepted, retry it (a retry is stored once)")
		return
	case ctx.Err() != nil:
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "cannot ingest the batch in time; nothing of it was accepted, retry it")
		return
	default:
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
