package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"citybrain/system/cluster"
)

// natsMain runs one node of a NATS cluster with JetStream (`citybrain nats`): the nats-server the project
// embeds, so a cluster needs no other binary (docs/scale-out.md).
func natsMain(args []string) error {
	fs := flag.NewFlagSet("nats", flag.ExitOnError)
	name := fs.String("name", "", "server name, unique in the cluster (required)")
	listen := fs.String("listen", "127.0.0.1:4222", "client address")
	clusterAddr := fs.String("cluster", "", "route address for the other nodes, host:port (empty: a single server)")
	routes := fs.String("routes", "", "comma-separated route URLs of the other nodes: nats://host:port,...")
	store := fs.String("store", "", "JetStream storage directory (required)")
	clusterName := fs.String("cluster-name", "citybrain", "cluster name (the same on every node)")
	httpAddr := fs.String("http", "", "monitoring address host:port (empty: none)")
	verbose := fs.Bool("log", false, "the server's own log on stderr")
	fs.Parse(args)
	var rs []string
	for _, r := range strings.Split(*routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, r)
		}
	}
	ns, err := cluster.StartNode(cluster.NodeConfig{Name: *name, Listen: *listen, ClusterAddr: *clusterAddr,
		Routes: rs, StoreDir: *store, ClusterName: *clusterName, HTTP: *httpAddr, Logs: *verbose})
	if err != nil {
		return err
	}
	logger := log.New(os.Stderr, "citybrain nats: ", log.LstdFlags)
	logger.Printf("NATS node %s: clients at %s, routes at %s", *name, ns.ClientURL(), *clusterAddr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	logger.Printf("stopping")
	ns.Shutdown()
	ns.WaitForShutdown()
	fmt.Fprintln(os.Stderr)
	return nil
}
