package ingest

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"citybrain/engine"
)

// AppendAnswer appends the JSON answer of spec/events.md for res.
func AppendAnswer(buf []byte, res *Result) []byte {
	buf = append(buf, `{"accepted":`...)
	buf = strconv.AppendInt(buf, int64(res.Accepted), 10)
	buf = append(buf, `,"rejected":`...)
	buf = strconv.AppendInt(buf, int64(res.Rejected), 10)
	buf = append(buf, `,"errors":[`...)
	for i, e := range res.Errors {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"line":`...)
		buf = strconv.AppendInt(buf, int64(e.Line), 10)
		buf = append(buf, `,"error":`...)
		buf = AppendQuoted(buf, e.Err.Error())
		buf = append(buf, '}')
	}
	return append(buf, "]}\n"...)
}

// ContentTypeArrow is the media type of the binary fast path (an Arrow IPC stream in the engine schema).
const ContentTypeArrow = "application/vnd.apache.arrow.stream"

// ServeHTTP implements POST /api/v1/events: NDJSON (application/x-ndjson) or a JSON array
// (application/json), optionally gzip-encoded, or the Arrow IPC stream of the binary path. The answer comes
// after the accepted events are stored on the log. An Idempotency-Key header deduplicates a retried request.
func (in *Ingestor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	case "application/x-ndjson", "application/json", "application/ndjson", ContentTypeArrow:
	default:
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not a batch: use application/x-ndjson, application/json or %s", ct, ContentTypeArrow))
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, in.cfg.MaxBody)
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
	data, err := io.ReadAll(io.LimitReader(body, in.cfg.MaxDecoded+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes: split the batch", in.cfg.MaxBody))
			return
		}
		httpError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		return
	}
	if int64(len(data)) > in.cfg.MaxDecoded {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed body is over the limit of %d bytes: split the batch", in.cfg.MaxDecoded))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	key := r.Header.Get("Idempotency-Key")
	var res Result
	if ct == ContentTypeArrow {
		res, err = in.IngestArrow(ctx, data, "http", key)
	} else {
		res, err = in.Ingest(ctx, data, "http", engine.KindUnknown, key)
	}
	switch {
	case errors.Is(err, ErrNoEvents):
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
	w.Write(AppendAnswer(nil, &res))
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(AppendQuoted([]byte(`{"error":`), msg), "}\n"...))
}
