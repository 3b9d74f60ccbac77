package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"citybrain/eventlog"
)

// OpenLogOffline opens the event log of a data directory for the tools (export, replay) while no server
// runs on it: it locks the directory and starts an embedded NATS server on its nats/ store that listens
// nowhere. With natsURL set, it connects to that server instead (a running installation) and takes no lock.
// close stops what it started.
func OpenLogOffline(ctx context.Context, dataDir, natsURL string, lcfg eventlog.Config) (l *eventlog.Log, close func(), err error) {
	var stops []func()
	closeAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	var nc *nats.Conn
	if natsURL != "" {
		opts := []nats.Option{nats.Name("citybrain-tool"), nats.CustomInboxPrefix(InternalInbox)}
		if !strings.Contains(natsURL, "@") {
			// Reading the log takes an admin token (docs/security.md): the installation's own, when this
			// is its data directory and the URL brings none.
			if tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token")); err == nil {
				opts = append(opts, nats.Token(strings.TrimSpace(string(tok))))
			}
		}
		if nc, err = nats.Connect(natsURL, opts...); err != nil {
			return nil, nil, fmt.Errorf("cannot connect to NATS at %s: %w", redactURL(natsURL), err)
		}
		stops = append(stops, nc.Close)
	} else {
		unlock, err := LockDataDir(dataDir)
		if errors.Is(err, ErrDataDirInUse) {
			return nil, nil, fmt.Errorf("%w; a server is running on it: stop it, use the HTTP API (GET /api/v1/export, POST /api/v1/replays), or pass --nats nats://127.0.0.1:4222 to read through that server", err)
		}
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, unlock)
		ns, err := embeddedNATS(dataDir, "citybrain-tool", nil)
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, func() { ns.Shutdown(); ns.WaitForShutdown() })
		if nc, err = nats.Connect("", nats.InProcessServer(ns), nats.Name("citybrain-tool")); err != nil {
			return nil, nil, fmt.Errorf("cannot connect to the embedded NATS server: %w", err)
		}
		stops = append(stops, nc.Close)
	}
	lcfg.Existing = true
	if l, err = eventlog.Open(ctx, nc, lcfg); err != nil {
		return nil, nil, err
	}
	if natsURL == "" {
		// This process owns the directory and its server: range readers read the message blocks directly.
		l.SetOfflineStore(filepath.Join(dataDir, "nats"))
	}
	return l, closeAll, nil
}
