package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Roles of spec/api.md "Access" and the command-center issue.
const (
	RoleViewer    = "viewer"
	RolePolice    = "police"
	RoleCommander = "commander"
	RolePlanner   = "planner"
	RoleAdmin     = "admin"
	RoleFeed      = "feed"
)

var validRoles = map[string]bool{RoleViewer: true, RolePolice: true, RoleCommander: true, RolePlanner: true, RoleAdmin: true, RoleFeed: true, RolePublic: true}

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role string
}

// Auth checks tokens. A token is stored as its SHA-256 so the config file need not hold secrets in clear.
type Auth struct {
	configured bool                 // an auth configuration was given
	tokens     map[string]Principal // sha256 hex → principal
}

// authFile is the config file format: {"tokens": [{"name": "...", "role": "...", "token": "..." | "sha256": "..."}]}.
type authFile struct {
	Tokens []struct {
		Name   string `json:"name"`
		Role   string `json:"role"`
		Token  string `json:"token"`
		SHA256 string `json:"sha256"`
	} `json:"tokens"`
}

// LoadAuth reads an auth configuration file.
func LoadAuth(path string) (*Auth, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read auth config: %w", err)
	}
	var f authFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot parse auth config %s: %w", path, err)
	}
	a := &Auth{configured: true, tokens: map[string]Principal{}}
	for i, t := range f.Tokens {
		if !validRoles[t.Role] {
			return nil, fmt.Errorf("cannot load auth config %s: token %d has role %q (viewer, police, commander, planner, admin, feed, public)", path, i+1, t.Role)
		}
		h := strings.ToLower(t.SHA256)
		if t.Token != "" {
			h = hashToken(t.Token)
		}
		if len(h) != 64 {
			return nil, fmt.Errorf("cannot load auth config %s: token %d has neither token nor a 64-hex sha256", path, i+1)
		}
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("%s-%d", t.Role, i+1)
		}
		a.tokens[h] = Principal{Name: name, Role: t.Role}
	}
	return a, nil
}

// DefaultAuth is used without an auth configuration: the admin token in dataDir/admin.token (created on
// first start, mode 0600) is the only token; reading and ingest are open (allowed only on loopback).
func DefaultAuth(dataDir string) (*Auth, string, error) {
	path := filepath.Join(dataDir, "admin.token")
	tok, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, "", fmt.Errorf("cannot make admin token: %w", err)
		}
		tok = []byte(hex.EncodeToString(b))
		if err := os.WriteFile(path, append(tok, '\n'), 0o600); err != nil {
			return nil, "", fmt.Errorf("cannot write admin token: %w", err)
		}
	} else if err != nil {
		return nil, "", fmt.Errorf("cannot read admin token: %w", err)
	}
	a := &Auth{tokens: map[string]Principal{hashToken(strings.TrimSpace(string(tok))): {Name: "admin", Role: RoleAdmin}}}
	return a, path, nil
}

// Configured reports whether an auth configuration was given.
func (a *Auth) Configured() bool { return a.configured }

func hashToken(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// tokenOf takes the token from "Authorization: Bearer", the citybrain_token cookie, or, on websocket paths
// only (a browser cannot set headers there, and a token in any other URL ends up in logs and histories),
// the access_token query parameter.
func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):])
	}
	if r.URL.Path == "/ws" || strings.HasSuffix(r.URL.Path, "/ws") {
		if t := r.URL.Query().Get("access_token"); t != "" {
			return t
		}
	}
	if c, err := r.Cookie("citybrain_token"); err == nil {
		return c.Value
	}
	return ""
}

// Authenticate returns the caller's principal, or false without a valid token.
func (a *Auth) Authenticate(r *http.Request) (Principal, bool) {
	return a.Lookup(tokenOf(r))
}

// Lookup returns the principal of a token (the embedded NATS server checks its clients with it too).
func (a *Auth) Lookup(t string) (Principal, bool) {
	if t == "" {
		return Principal{}, false
	}
	h := hashToken(t)
	for k, p := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(k), []byte(h)) == 1 {
			return p, true
		}
	}
	return Principal{}, false
}

// Require wraps next so that only the given roles (admin always) may call it: 401 without a valid token,
// 403 with a role not allowed.
func (a *Auth) Require(next http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.Authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="citybrain"`)
			writeError(w, http.StatusUnauthorized, "a token is required: send Authorization: Bearer <token>")
			return
		}
		if p.Role != RoleAdmin {
			allowed := false
			for _, role := range roles {
				allowed = allowed || p.Role == role
			}
			if !allowed {
				writeError(w, http.StatusForbidden, fmt.Sprintf("role %s may not do this (needs %s)", p.Role, strings.Join(roles, " or ")))
				return
			}
		}
		next(w, r)
	}
}

// Open wraps next: without an auth configuration anyone may call it (the server then listens on loopback
// only); with one, a token of one of roles is required; none given means every reading role (feed tokens
// write and read nothing: a leaked feed credential must not expose the city).
func (a *Auth) Open(next http.HandlerFunc, roles ...string) http.HandlerFunc {
	if !a.configured {
		return next
	}
	if len(roles) == 0 {
		roles = []string{RoleViewer, RolePolice, RoleCommander, RolePlanner}
	}
	return a.Require(next, roles...)
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
