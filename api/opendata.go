package api

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/replay/opendata"
)

// RolePublic may read the open-data API only.
const RolePublic = "public"

// routesOpenData adds the open-data API (docs/opendata.md): the catalogue and the files, for any role
// including public (or anonymous when OpenDataAnonymous), rate-limited per caller.
func (s *Server) routesOpenData(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/opendata", s.openData(s.handleCatalogue))
	mux.HandleFunc("GET /api/v1/opendata/{dataset}/{file}", s.openData(s.handleOpenDataFile))
}

// openData checks access (any role, public included; nobody without auth config or when anonymous reading
// is configured) and the caller's rate.
func (s *Server) openData(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.OpenData == nil {
			writeError(w, http.StatusServiceUnavailable, "open data is not running")
			return
		}
		key := ""
		if p, ok := s.Auth.Authenticate(r); ok {
			key = "token:" + p.Name
		} else if s.Auth.Configured() && !s.OpenDataAnonymous {
			w.Header().Set("WWW-Authenticate", `Bearer realm="citybrain"`)
			writeError(w, http.StatusUnauthorized, "a token is required (any role, public included): send Authorization: Bearer <token>")
			return
		} else {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				host = r.RemoteAddr
			}
			key = "ip:" + host
		}
		if wait := s.openDataLimiter().take(key, time.Now()); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit: %d requests a minute; retry in %s", s.openDataRate(), wait.Round(time.Second)))
			return
		}
		next(w, r)
	}
}

func (s *Server) openDataRate() int {
	if s.OpenDataPerMinute > 0 {
		return s.OpenDataPerMinute
	}
	return 60
}

func (s *Server) openDataLimiter() *limiter {
	s.limOnce.Do(func() { s.lim = &limiter{perMin: float64(s.openDataRate()), buckets: map[string]*bucket{}} })
	return s.lim
}

func (s *Server) handleCatalogue(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	cat, err := s.OpenData.Catalogue(r.Context(), scheme+"://"+r.Host+"/api/v1/opendata")
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/ld+json")
	writeJSON(w, cat)
}

// handleOpenDataFile serves GET /api/v1/opendata/{cells|links|incidents}/{YYYY-MM-DD}.{parquet|geojson}.
func (s *Server) handleOpenDataFile(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	date, format, ok := strings.Cut(file, ".")
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file %q must be YYYY-MM-DD.parquet or YYYY-MM-DD.geojson", file))
		return
	}
	data, err := s.OpenData.File(r.Context(), r.PathValue("dataset"), date, format)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, opendata.ErrNoData) {
			code = http.StatusNotFound
		}
		writeError(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", opendata.Formats[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="citybrain-%s-%s.%s"`, r.PathValue("dataset"), date, format))
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(data)
}

// limiter is a token bucket per caller (perMin a minute, bursts of a quarter of that).
type limiter struct {
	mu      sync.Mutex
	perMin  float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// take spends a token of key, or returns how long until one is there.
func (l *limiter) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	burst := math.Max(1, l.perMin/4)
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) > 10_000 { // bounded: forget everyone (they start with a full burst again)
			clear(l.buckets)
		}
		b = &bucket{tokens: burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.at).Minutes()*l.perMin)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / l.perMin * float64(time.Minute))
}
