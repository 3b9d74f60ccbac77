package system

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
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

// HTTPLimits bound what one client can hold of the HTTP server. Websockets are exempt from the read and
// write timeouts once upgraded (the hub sets its own deadlines per message); so is a streamed export.
type HTTPLimits struct {
	ReadHeaderTimeout time.Duration // to read a request's header (default 10 s)
	ReadTimeout       time.Duration // to read a whole request, body included (default 60 s)
	WriteTimeout      time.Duration // to write an answer (default 60 s)
	IdleTimeout       time.Duration // a keep-alive connection with no request (default 120 s)
	MaxConns          int           // connections open at once; more wait to be accepted (default 16384)
	MaxHeaderBytes    int           // (default 64 KiB)
}

// DefaultHTTPLimits returns the documented defaults.
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxConns: 16384, MaxHeaderBytes: 64 << 10}
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits()
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// httpServer listens on addr and serves h in a goroutine until Shutdown, within lim; it is the one HTTP
// server setup of every command that serves the API (run, replay).
func httpServer(addr string, h http.Handler, lim HTTPLimits, logger *log.Logger) (*http.Server, net.Listener, error) {
	lim = lim.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes,
		ErrorLog: log.New(io.Discard, "", 0)}
	ln = &limitListener{Listener: ln, sem: make(chan struct{}, lim.MaxConns)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("http server: %v", err)
		}
	}()
	return hs, ln, nil
}

// limitListener holds at most cap(sem) connections open: Accept waits while that many are.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// PlainConn is the connection limitConn counts (api.PlainConn: it writes every byte as it is, so the hub may
// write websocket frames to the socket under it directly).
func (c *limitConn) PlainConn() net.Conn { return c.Conn }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
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
