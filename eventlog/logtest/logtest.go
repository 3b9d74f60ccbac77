// Package logtest starts a real in-process NATS server with JetStream for tests and opens the event log on
// it. It is imported by tests only.
package logtest

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"citybrain/eventlog"
)

// Server starts an in-process JetStream server under a temp dir (listening nowhere) and returns a client
// connection to it; both stop when the test ends.
func Server(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	ns, nc, _ := ServerAt(t, t.TempDir())
	return ns, nc
}

// ServerAt is Server on storeDir (an offline tool's server on a data directory), with a stop for a test that
// restarts it on the same directory; stop may be called more than once, and runs when the test ends.
func ServerAt(t testing.TB, storeDir string) (*server.Server, *nats.Conn, func()) {
	t.Helper()
	return ServerWith(t, server.Options{StoreDir: storeDir})
}

// ServerWith is ServerAt with more of the server's options (a store limit, say): JetStream on, no listener,
// no signals, no log, an 8 MiB payload limit and a temporary store directory unless opts say otherwise.
func ServerWith(t testing.TB, opts server.Options) (*server.Server, *nats.Conn, func()) {
	t.Helper()
	opts.JetStream, opts.DontListen, opts.NoSigs, opts.NoLog = true, true, true, true
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	ns, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			nc.Close()
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	t.Cleanup(stop)
	return ns, nc, stop
}

// Open starts a server (Server) and opens the log on it with the default configuration and mem.
func Open(t testing.TB, mem memory.Allocator) *eventlog.Log {
	t.Helper()
	_, nc := Server(t)
	cfg := eventlog.DefaultConfig()
	cfg.Mem = mem
	l, err := eventlog.Open(context.Background(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
