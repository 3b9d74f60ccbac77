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

// Bucket is the KV bucket of the cluster's membership and ownership. Every key lives TTL after its last write:
//
//	node.<id>  NodeInfo of a live node (every role), rewritten every round
//	part.<k>   the id of the engine node owning partition k: a lease, renewed by Update at the revision the
//	           owner last wrote, so two nodes can never both renew it
//	lag.<k>    PartitionStatus written by the owner every round
const Bucket = "citybrain_cluster"

// DefaultTTL is how long a lease outlives its owner's last renewal; renewals happen every TTL/3.
const DefaultTTL = 3 * time.Second

// NodeInfo describes a live node.
type NodeInfo struct {
	ID         string    `json:"id"`
	Role       string    `json:"role"`
	HTTP       string    `json:"http,omitempty"`
	Version    string    `json:"version,omitempty"`
	Started    time.Time `json:"started"`
	Partitions []int     `json:"partitions,omitempty"` // engine nodes: partitions owned
	Waiting    string    `json:"waiting,omitempty"`    // what the node waits for ("" when ready)
}

// PartitionStatus is the progress of a partition, written by its owner.
type PartitionStatus struct {
	Partition  int       `json:"partition"`
	Owner      string    `json:"owner"`
	Epoch      uint64    `json:"epoch"`
	AppliedSeq uint64    `json:"applied_seq"` // log sequence of the last message applied
	LastSeq    uint64    `json:"last_seq"`    // log sequence of the partition's newest message
	Lag        uint64    `json:"lag"`         // messages of the partition not yet applied
	Events     uint64    `json:"events"`
	CaughtUp   bool      `json:"caught_up"`
	Restored   uint64    `json:"restored_seq"` // sequence of the snapshot the owner started from (0: none)
	TookMs     int64     `json:"took_ms"`      // from taking the lease to caught up
	At         time.Time `json:"at"`
}

// OpenKV creates or opens the cluster bucket.
func OpenKV(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, TTL: ttl, History: 1,
		Replicas: max(1, replicas), Storage: jetstream.MemoryStorage,
		Description: "CityBrain cluster membership and partition leases"})
	if err != nil {
		return nil, fmt.Errorf("cannot open KV bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Leases takes and renews partition leases for one engine node. Round is called by one goroutine.
type Leases struct {
	kv    jetstream.KeyValue
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
func NewLeases(kv jetstream.KeyValue, node string, n int, ttl time.Duration) *Leases {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
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
		rev, err := l.kv.Update(ctx, partKey(k), []byte(l.node), ls.rev)
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
	engines, err := l.liveEngines(ctx)
	if err != nil {
		return gained, lost, err
	}
	share := (l.n + engines - 1) / max(1, engines)
	held := l.Held()
	for i := len(held) - 1; i >= share && i >= 0; i-- { // give back the highest partitions over the share
		k := held[i]
		l.held[k].releasing = true
		lost = append(lost, Change{Partition: k, Release: true})
	}
	for i := 0; i < l.n && len(l.Held()) < share; i++ {
		k := (l.start + i) % l.n
		if _, ok := l.held[k]; ok {
			continue
		}
		rev, err := l.kv.Create(ctx, partKey(k), []byte(l.node))
		if err != nil {
			continue // owned by another node (or the servers are unreachable: next round)
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
	if err := l.kv.Delete(ctx, partKey(k), jetstream.LastRevision(ls.rev)); err != nil && !isWrongRevision(err) {
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

func (l *Leases) liveEngines(ctx context.Context) (int, error) {
	nodes, err := Nodes(ctx, l.kv)
	if err != nil {
		return 0, err
	}
	n := 0
	self := false
	for _, ni := range nodes {
		if ni.Role == "engine" {
			n++
			self = self || ni.ID == l.node
		}
	}
	if !self {
		n++
	}
	return n, nil
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
func PutNode(ctx context.Context, kv jetstream.KeyValue, ni NodeInfo) error {
	data, _ := json.Marshal(ni)
	if _, err := kv.Put(ctx, "node."+ni.ID, data); err != nil {
		return fmt.Errorf("cannot write node record %s: %w", ni.ID, err)
	}
	return nil
}

// DeleteNode removes a node's record (a clean stop).
func DeleteNode(ctx context.Context, kv jetstream.KeyValue, id string) {
	kv.Delete(ctx, "node."+id)
}

// PutStatus writes a partition's status.
func PutStatus(ctx context.Context, kv jetstream.KeyValue, st PartitionStatus) error {
	data, _ := json.Marshal(st)
	if _, err := kv.Put(ctx, "lag."+strconv.Itoa(st.Partition), data); err != nil {
		return fmt.Errorf("cannot write status of partition %d: %w", st.Partition, err)
	}
	return nil
}

// View is the cluster as the KV bucket shows it.
type View struct {
	Nodes      []NodeInfo
	Owners     map[int]string
	Partitions map[int]PartitionStatus
}

// Nodes lists the live nodes.
func Nodes(ctx context.Context, kv jetstream.KeyValue) ([]NodeInfo, error) {
	v, err := Read(ctx, kv)
	return v.Nodes, err
}

// Read reads the whole bucket.
func Read(ctx context.Context, kv jetstream.KeyValue) (View, error) {
	v := View{Owners: map[int]string{}, Partitions: map[int]PartitionStatus{}}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return v, nil
		}
		return v, fmt.Errorf("cannot list %s: %w", Bucket, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired between the listing and now
		}
		pre, rest, _ := strings.Cut(key, ".")
		switch pre {
		case "node":
			var ni NodeInfo
			if json.Unmarshal(e.Value(), &ni) == nil {
				v.Nodes = append(v.Nodes, ni)
			}
		case "part":
			if k, err := strconv.Atoi(rest); err == nil {
				v.Owners[k] = string(e.Value())
			}
		case "lag":
			var st PartitionStatus
			if json.Unmarshal(e.Value(), &st) == nil {
				v.Partitions[st.Partition] = st
			}
		}
	}
	return v, nil
}
