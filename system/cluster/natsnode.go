// Package cluster holds the mechanics of CityBrain on a NATS cluster (docs/scale-out.md): a NATS cluster node
// embedding nats-server, partition ownership by KV leases, partition snapshots in a JetStream object store,
// the partition runner of engine nodes, what engines publish and the merged view api nodes serve from.
// system wires them into roles.
package cluster

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NodeConfig is one NATS cluster node (`citybrain nats`).
type NodeConfig struct {
	Name        string   // server name, unique in the cluster
	Listen      string   // client address host:port
	ClusterAddr string   // route address host:port for the other nodes
	Routes      []string // nats://host:port of the other nodes' route addresses
	StoreDir    string   // JetStream storage
	ClusterName string   // default "citybrain"
	HTTP        string   // monitoring address host:port ("": none)
	Logs        bool     // the server's own log on stderr
	MaxStore    int64    // JetStream's disk limit in bytes (0: the server's default, 3/4 of the disk free)
}

// StartNode starts a NATS server with JetStream as a member of a cluster and returns when it accepts clients.
func StartNode(cfg NodeConfig) (*server.Server, error) {
	if cfg.Name == "" || cfg.StoreDir == "" || cfg.Listen == "" {
		return nil, fmt.Errorf("cannot start NATS node: --name, --store and --listen are required")
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "citybrain"
	}
	host, port, err := splitHostPort(cfg.Listen, "--listen")
	if err != nil {
		return nil, err
	}
	opts := &server.Options{ServerName: cfg.Name, Host: host, Port: port, JetStream: true,
		StoreDir: filepath.Clean(cfg.StoreDir), MaxPayload: 8 << 20, NoSigs: true, NoLog: !cfg.Logs, JetStreamMaxStore: cfg.MaxStore}
	if cfg.ClusterAddr != "" {
		ch, cp, err := splitHostPort(cfg.ClusterAddr, "--cluster")
		if err != nil {
			return nil, err
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: ch, Port: cp}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("cannot parse route %q: want nats://host:port", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.HTTP != "" {
		hh, hp, err := splitHostPort(cfg.HTTP, "--http")
		if err != nil {
			return nil, err
		}
		opts.HTTPHost, opts.HTTPPort = hh, hp
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot create NATS node %s: %w", cfg.Name, err)
	}
	if cfg.Logs {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("cannot start NATS node %s: not accepting clients after 30s", cfg.Name)
	}
	return ns, nil
}

func splitHostPort(addr, flag string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("cannot parse %s %q: %w", flag, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("cannot parse %s %q: bad port", flag, addr)
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return h, n, nil
}

// SplitURLs splits a comma-separated --nats list and checks each is a nats:// URL.
func SplitURLs(s string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
			return nil, fmt.Errorf("cannot parse NATS URL %q: want nats://host:port", u)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cannot connect: no NATS URL in %q", s)
	}
	return out, nil
}
