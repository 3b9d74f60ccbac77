package cluster

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/eventlog"
)

// A cluster whose disks cannot reserve the log's configured size limit for every replica still opens the log,
// with what fits, as a single server does (eventlog.TestOpenFitsTheDisk): JetStream refuses the placement
// ("no suitable peers for placement, insufficient storage", error 10005) where one server says "insufficient
// storage" (10047). Before, the cluster's nodes did not start on a disk with less than 4/3 of 20 GiB free.
func TestAClusterLogFitsItsDisks(t *testing.T) {
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	const n = 3
	var client, route [n]int
	for i := range n {
		client[i], route[i] = port(), port()
	}
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", route[j]))
			}
		}
		ns, err := StartNode(NodeConfig{Name: fmt.Sprint("n", i), Listen: fmt.Sprintf("127.0.0.1:%d", client[i]),
			ClusterAddr: fmt.Sprintf("127.0.0.1:%d", route[i]), Routes: routes, StoreDir: t.TempDir(), MaxStore: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", client[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := eventlog.DefaultConfig() // 20 GiB
	cfg.Replicas = n
	var l *eventlog.Log
	deadline := time.Now().Add(30 * time.Second) // the cluster elects its meta leader first
	for {
		if l, err = eventlog.Open(t.Context(), nc, cfg); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the log did not open on three 1-GiB disks: %v", err)
	}
	if got := l.MaxBytes(); got > 1<<30 || got < 64<<20 {
		t.Errorf("the log got %d MiB on 1-GiB disks", got>>20)
	}
}
