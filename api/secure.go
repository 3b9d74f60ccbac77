package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ContentSecurityPolicy is sent with every answer: the command center loads everything from its own origin
// (the map's worker from a blob URL, icons as data URLs), and no other site may frame it.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; " +
	"img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure wraps the routes with what every answer needs: the security headers and, without an auth
// configuration (the server then listens on loopback only), a refusal of Host names that are not loopback
// ones, so a page of another site that rebinds its DNS name to 127.0.0.1 cannot read or drive the API.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !s.Auth.Configured() && !LoopbackHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not a loopback name: without an auth config this server answers only to localhost, 127.0.0.1 and ::1", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// LoopbackHost reports whether the Host header names this machine's loopback: localhost (or a name under
// .localhost) or a loopback IP, with or without a port.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
