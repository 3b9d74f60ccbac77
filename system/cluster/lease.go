package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's membership and ownership live in two KV buckets. Every key lives a bucket's TTL after its
// last write:
//
//	citybrain_leases   part.<k>   the id of the engine node owning partition k: a lease (TTL: the lease TTL),
//	                              renewed by Update at the revision the owner last wrote, so two nodes can
//	                              never both hold it
//	citybrain_cluster  node.<id>  NodeInfo of a node (every role), rewritten every round (TTL: 5 lease TTLs)
//	                   lag.<k>    PartitionStatus written by partition k's owner every round
//
// A node is alive while its record was written within one lease TTL of the newest record, both by the
// servers' clock (entry creation times), so the nodes' clocks do not matter.
const (
	Bucket      = "citybrain_cluster"
	LeaseBucket = "citybrain_leases"
)

// DefaultTTL is how long a lease outlives its owner's last renewal; renewals happen every TTL/3.
const DefaultTTL = 3 * time.Second

// NodeInfo describes a node.
type NodeInfo struct {
	ID         string    `json:"id"`
	Role       string    `json:"role"`
	HTTP       string    `json:"http,omitempty"`
	Version    string    `json:"version,omitempty"`
	Started    time.Time `json:"started"`
	Partitions []int     `json:"partitions,omitempty"` // engine nodes: partitions owned
	Waiting    string    `json:"waiting,omitempty"`    // what the node waits for ("" when ready)
	Seen       time.Time `json:"seen"`                 // when the servers stored this record
	Alive      bool      `json:"alive"`
}

// PartitionStatus is the progress of a partition, written by its owner.
type PartitionStatus struct {
	Partition  int    `json:"partition"`
	Owner      string `json:"owner"`
	Epoch      uint64 `json:"epoch"`
	AppliedSeq uint64 `json:"applied_seq"` // log sequence of the last message applied
	LastSeq    uint64 `json:"last_seq"`    // log sequence of the partition's newest message
	Lag        uint64 `json:"lag"`         // messages of the partition not yet applied
	Events     uint64 `json:"events"`
	CaughtUp   bool   `json:"caught_up"`
	Restored   uint64 `json:"restored_seq"` // sequence of the snapshot the owner started from (0: none)
	// SnapshotError says why the partition's snapshot could not be read, when its owner replayed the whole
	// partition from the log instead.
	SnapshotError string    `json:"snapshot_error,omitempty"`
	TookMs        int64     `json:"took_ms"` // from taking the lease to caught up
	At            time.Time `json:"at"`
}

// KV is the cluster's two buckets.
type KV struct {
	Cluster, Leases jetstream.KeyValue
	TTL             time.Duration
}

// OpenKV creates or opens the cluster's buckets.
func OpenKV(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*KV, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	leases, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, TTL: ttl, History: 1,
		Replicas: max(1, replicas), Storage: jetstream.MemoryStorage, Description: "CityBrain partition leases"})
	if err != nil {
		return nil, fmt.Errorf("cannot open KV bucket %s: %w", LeaseBucket, err)
	}
	cl, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, TTL: 5 * ttl, History: 1,
		Replicas: max(1, replicas), Storage: jetstream.MemoryStorage, Description: "CityBrain cluster membership and partition status"})
	if err != nil {
		return nil, fmt.Errorf("cannot open KV bucket %s: %w", Bucket, err)
	}
	return &KV{Cluster: cl, Leases: leases, TTL: ttl}, nil
}

// Leases takes and renews partition leases for one engine node. Round is called by one goroutine.
type Leases struct {
	kv    *KV
	node  string
	n     int
	ttl   time.Duration
	held  map[int]*lease
	start int // where this node starts looking for free partitions (spreads nodes)
}

type lease struct {
	rev, epoch uint64
	renewed    time.Time
	releasing  bool
}

// NewLeases returns the leases of node over n partitions.
func NewLeases(kv *KV, node string, n int) *Leases {
	ttl := kv.TTL
	h := fnv.New32a()
	h.Write([]byte(node))
	return &Leases{kv: kv, node: node, n: n, ttl: ttl, held: map[int]*lease{}, start: int(h.Sum32() % uint32(max(1, n)))}
}

// Change is what a round decided about one partition.
type Change struct {
	Partition int
	Epoch     uint64 // gained: the lease revision, which fences this ownership
	Release   bool   // lost because the node gives it up (over its share): stop it cleanly, then call Release
}

// Held returns the partitions held, in order.
func (l *Leases) Held() []int {
	out := make([]int, 0, len(l.held))
	for k, ls := range l.held {
		if !ls.releasing {
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}

// Epoch is the revision with which the node took partition k (0: not held).
func (l *Leases) Epoch(k int) uint64 {
	if ls := l.held[k]; ls != nil {
		return ls.epoch
	}
	return 0
}

// Round renews the held leases, gives up partitions over this node's share and takes free ones up to it. The
// share is ceil(partitions / live engine nodes). lost partitions must be stopped at once (another node may
// own them); released ones are stopped cleanly and then given back with Release.
func (l *Leases) Round(ctx context.Context) (gained, lost []Change, err error) {
	now := time.Now()
	for k, ls := range l.held {
		if ls.releasing {
			continue
		}
		rev, err := l.kv.Leases.Update(ctx, partKey(k), []byte(l.node), ls.rev)
		switch {
		case err == nil:
			ls.rev, ls.renewed = rev, now
		case isWrongRevision(err):
			delete(l.held, k)
			lost = append(lost, Change{Partition: k})
		case now.Sub(ls.renewed) > l.ttl:
			// Not renewed for a whole TTL (the servers are unreachable): another node may own it now.
			delete(l.held, k)
			lost = append(lost, Change{Partition: k})
		}
	}
	v, err := Read(ctx, l.kv)
	if err != nil {
		return gained, lost, err
	}
	engines, count := 0, map[string]int{}
	self := false
	for _, ni := range v.Nodes {
		if ni.Role == "engine" && ni.Alive {
			engines++
			self = self || ni.ID == l.node
			count[ni.ID] = 0
		}
	}
	if !self {
		engines++
	}
	for _, owner := range v.Owners {
		count[owner]++
	}
	share := (l.n + engines - 1) / max(1, engines)
	// Give back the highest partitions over the share, but only while another live engine node has less
	// than its share to take them (so a partition is never released to nobody).
	held := l.Held()
	for i := len(held) - 1; i >= share; i-- {
		taker := false
		for id, c := range count {
			if id != l.node && c < share {
				taker = true
				count[id]++ // it will take this one
				break
			}
		}
		if !taker {
			break
		}
		k := held[i]
		l.held[k].releasing = true
		lost = append(lost, Change{Partition: k, Release: true})
	}
	// Take free partitions up to the share. A dead node counts no more once its record is a lease TTL old,
	// which is when its leases expire: its partitions then go to the others, evenly.
	for i := 0; i < l.n; i++ {
		k := (l.start + i) % l.n
		if _, ok := l.held[k]; ok {
			continue
		}
		if _, owned := v.Owners[k]; owned {
			continue
		}
		if len(l.Held()) >= share {
			break
		}
		rev, err := l.kv.Leases.Create(ctx, partKey(k), []byte(l.node))
		if err != nil {
			continue // taken by another node meanwhile (or the servers are unreachable: next round)
		}
		l.held[k] = &lease{rev: rev, epoch: rev, renewed: now}
		gained = append(gained, Change{Partition: k, Epoch: rev})
	}
	return gained, lost, nil
}

// Release gives partition k back (after it was stopped cleanly), so another node takes it without waiting for
// the lease to expire.
func (l *Leases) Release(ctx context.Context, k int) error {
	ls := l.held[k]
	if ls == nil {
		return nil
	}
	delete(l.held, k)
	if err := l.kv.Leases.Delete(ctx, partKey(k), jetstream.LastRevision(ls.rev)); err != nil && !isWrongRevision(err) {
		return fmt.Errorf("cannot release partition %d: %w", k, err)
	}
	return nil
}

// ReleaseAll gives back every partition (a clean stop).
func (l *Leases) ReleaseAll(ctx context.Context) {
	for k := range l.held {
		l.Release(ctx, k)
	}
}

func partKey(k int) string { return "part." + strconv.Itoa(k) }

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// PutNode writes (renews) a node's record.
func PutNode(ctx context.Context, kv *KV, ni NodeInfo) error {
	data, _ := json.Marshal(ni)
	if _, err := kv.Cluster.Put(ctx, "node."+ni.ID, data); err != nil {
		return fmt.Errorf("cannot write node record %s: %w", ni.ID, err)
	}
	return nil
}

// DeleteNode removes a node's record (a clean stop).
func DeleteNode(ctx context.Context, kv *KV, id string) {
	kv.Cluster.Delete(ctx, "node."+id)
}

// PutStatus writes a partition's status.
func PutStatus(ctx context.Context, kv *KV, st PartitionStatus) error {
	data, _ := json.Marshal(st)
	if _, err := kv.Cluster.Put(ctx, "lag."+strconv.Itoa(st.Partition), data); err != nil {
		return fmt.Errorf("cannot write status of partition %d: %w", st.Partition, err)
	}
	return nil
}

// MaxLag is the most log messages a partition with a live owner lags behind, from the partitions' status
// records (one direct get each: no consumer is created, so it costs JetStream little even while it elects
// leaders). A record not renewed for twice the lease TTL is of an owner that is gone: its partition has no
// engine to fall behind, and is not counted.
func MaxLag(ctx context.Context, kv *KV, partitions int) (uint64, error) {
	var lag uint64
	for k := 0; k < partitions; k++ {
		e, err := kv.Cluster.Get(ctx, "lag."+strconv.Itoa(k))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return lag, fmt.Errorf("cannot read status of partition %d: %w", k, err)
		}
		var st PartitionStatus
		if json.Unmarshal(e.Value(), &st) == nil && time.Since(e.Created()) <= 2*kv.TTL {
			lag = max(lag, st.Lag)
		}
	}
	return lag, nil
}

// View is the cluster as the KV buckets show it.
type View struct {
	Nodes      []NodeInfo
	Owners     map[int]string
	Partitions map[int]PartitionStatus
}

// Read reads both buckets.
func Read(ctx context.Context, kv *KV) (View, error) {
	v := View{Owners: map[int]string{}, Partitions: map[int]PartitionStatus{}}
	var newest time.Time
	err := readAll(ctx, kv.Cluster, func(key string, e jetstream.KeyValueEntry) {
		pre, _, _ := strings.Cut(key, ".")
		switch pre {
		case "node":
			var ni NodeInfo
			if json.Unmarshal(e.Value(), &ni) == nil {
				ni.Seen = e.Created()
				v.Nodes = append(v.Nodes, ni)
			}
		case "lag":
			var st PartitionStatus
			if json.Unmarshal(e.Value(), &st) == nil {
				v.Partitions[st.Partition] = st
			}
		}
		if e.Created().After(newest) {
			newest = e.Created()
		}
	})
	if err != nil {
		return v, err
	}
	for i := range v.Nodes {
		v.Nodes[i].Alive = newest.Sub(v.Nodes[i].Seen) <= kv.TTL
	}
	err = readAll(ctx, kv.Leases, func(key string, e jetstream.KeyValueEntry) {
		if k, err := strconv.Atoi(strings.TrimPrefix(key, "part.")); err == nil {
			v.Owners[k] = string(e.Value())
		}
	})
	return v, err
}

func readAll(ctx context.Context, kv jetstream.KeyValue, fn func(string, jetstream.KeyValueEntry)) error {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("cannot list %s: %w", kv.Bucket(), err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired or deleted between the listing and now
		}
		fn(key, e)
	}
	return nil
}
