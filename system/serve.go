package system

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"citybrain/api"
)

// openAuth decides who may call a server listening on addr: the auth config file when given; otherwise the
// admin token under dataDir (created on first start), allowed only on a loopback address. tokenPath is where
// that admin token is ("" with a config file).
func openAuth(authFile, addr, dataDir string) (auth *api.Auth, tokenPath string, err error) {
	if authFile != "" {
		auth, err = api.LoadAuth(authFile)
		return auth, "", err
	}
	if !api.IsLoopback(addr) {
		return nil, "", fmt.Errorf("cannot listen on %s without an auth config: ingest and reading would be open to the network; give --auth FILE (see README, Access) or listen on 127.0.0.1", addr)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("cannot create data dir %s: %w", dataDir, err)
	}
	return api.DefaultAuth(dataDir)
}

// httpServer listens on addr and serves h in a goroutine until Shutdown; it is the one HTTP server setup of
// every command that serves the API (run, replay).
func httpServer(addr string, h http.Handler, logger *log.Logger) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("http server: %v", err)
		}
	}()
	return hs, ln, nil
}

// embeddedNATS starts a NATS server with JetStream on the store under dataDir/nats, with the options every
// embedded server shares; opts may set more (listen address, users). It returns when the server is ready.
func embeddedNATS(dataDir, name string, opts *server.Options) (*server.Server, error) {
	if opts == nil {
		opts = &server.Options{DontListen: true}
	}
	opts.ServerName, opts.JetStream, opts.StoreDir = name, true, filepath.Join(dataDir, "nats")
	opts.MaxPayload, opts.NoSigs, opts.NoLog = 8<<20, true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot create embedded NATS server on %s: %w", opts.StoreDir, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("cannot start embedded NATS server on %s: not ready after 30s", opts.StoreDir)
	}
	return ns, nil
}
