package eventlog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uber/h3-go/v4"

	"citybrain/engine"
	"citybrain/ingest"
)

// The partitioned layout of the log (a cluster, docs/scale-out.md). Writers publish each event to
// citybrain.log.in.<district>, where the district is the event cell's H3 parent at Config.DistrictRes (a hex
// string, "0" for an event without a cell). The stream's own subject transform, NATS's partition function,
// stores it as citybrain.log.p.<partition>.<district> with partition = fnv32a(district) mod Partitions. Zone
// actions, which every partition needs, go to citybrain.log.all untransformed.
const (
	PartInPrefix     = "citybrain.log.in"
	PartPrefix       = "citybrain.log.p"
	BroadcastSubject = "citybrain.log.all"
	// MaxPartitions bounds --partitions (a subject and an engine each).
	MaxPartitions = 1024
)

// PartitionTransform is the stream's subject transform for n partitions.
func PartitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      PartInPrefix + ".*",
		Destination: PartPrefix + ".{{partition(" + strconv.Itoa(n) + ",1)}}.{{wildcard(1)}}",
	}
}

// PartitionOf is the partition NATS's subject mapping gives district token tok among n partitions: the
// server's partition(n, token) is FNV-1a (32 bit) of the token modulo n. Writers use it only to group rows
// that land together; where a message is stored is the server's decision (TestPartitionMatchesServer pins
// that both agree).
func PartitionOf(tok string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(tok))
	return int(h.Sum32() % uint32(n))
}

// District is the district token of a base cell: its parent at resolution res as hex ("0" without a cell).
func District(cell uint64, res int) string {
	c := h3.Cell(cell)
	if cell == 0 || !c.IsValid() {
		return "0"
	}
	if c.Resolution() > res {
		c = c.Parent(res)
	}
	return strconv.FormatUint(uint64(c), 16)
}

// DistrictSubject is the subject a writer publishes an event of district tok to.
func DistrictSubject(tok string) string { return PartInPrefix + "." + tok }

// PartitionFilter is the consumer filter of partition k.
func PartitionFilter(k int) string { return PartPrefix + "." + strconv.Itoa(k) + ".>" }

// Partitions is the number of partitions of the log (0: one unpartitioned subject, the single process).
func (l *Log) Partitions() int { return l.parts }

// DistrictRes is the H3 resolution of the districts events are keyed by (partitioned logs only).
func (l *Log) DistrictRes() int { return l.districtRes }

// appendPartitioned splits rec by partition and stores one message per partition, each on the subject of the
// district of its first row; it returns once every part is stored. The parts' message ids are msgID/p<k>.
func (l *Log) appendPartitioned(ctx context.Context, rec arrow.Record, msgID, hash string) (uint64, error) {
	cells, ok := rec.Column(engine.ColCell).(*array.Uint64)
	if !ok {
		return 0, errors.New("cannot append to a partitioned log: the cell column is not uint64")
	}
	groups := map[int][]int32{}
	toks := map[int]string{}
	order := []int{}
	cache := map[uint64]string{}
	for i := 0; i < int(rec.NumRows()); i++ {
		c := cells.Value(i)
		tok, ok := cache[c]
		if !ok {
			tok = District(c, l.districtRes)
			cache[c] = tok
		}
		k := PartitionOf(tok, l.parts)
		if _, seen := toks[k]; !seen {
			toks[k] = tok
			order = append(order, k)
		}
		groups[k] = append(groups[k], int32(i))
	}
	var last uint64
	dups := 0
	for _, k := range order {
		part, err := takeRecordRows(l, rec, groups[k])
		if err != nil {
			return 0, err
		}
		id := msgID
		if id != "" && len(order) > 1 {
			id = msgID + "/p" + strconv.Itoa(k)
		}
		seq, err := l.appendTo(ctx, DistrictSubject(toks[k]), part, id, hash)
		part.Release()
		switch {
		case errors.Is(err, ingest.ErrDuplicate):
			dups++
		case err != nil: // ErrKeyReused among them
			return 0, err
		}
		last = max(last, seq)
	}
	if dups == len(order) {
		return last, ingest.ErrDuplicate
	}
	return last, nil
}

// takeRecordRows returns a record of rows of rec (rec itself, retained, when rows are all of it).
func takeRecordRows(l *Log, rec arrow.Record, rows []int32) (arrow.Record, error) {
	if len(rows) == int(rec.NumRows()) {
		rec.Retain()
		return rec, nil
	}
	ib := array.NewInt32Builder(l.mem)
	ib.AppendValues(rows, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	ctx := compute.WithAllocator(context.Background(), l.mem)
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		c, err := compute.TakeArray(ctx, rec.Column(i), idx)
		if err != nil {
			return nil, fmt.Errorf("cannot split a batch by partition: %w", err)
		}
		cols[i] = c
	}
	return array.NewRecord(rec.Schema(), cols, int64(len(rows))), nil
}

// AppendActionTo writes an incident action to the subject of the district tok (the partition that owns the
// incident applies it). Unpartitioned logs ignore tok.
func (l *Log) AppendActionTo(ctx context.Context, tok string, a engine.Action) (uint64, error) {
	return l.appendAction(ctx, l.subjectFor(tok), a)
}

func (l *Log) subjectFor(tok string) string {
	if l.parts == 0 {
		return EventsSubject
	}
	return DistrictSubject(tok)
}

// typedSubject is where zone and other typed actions go: every partition reads them.
func (l *Log) typedSubject() string {
	if l.parts == 0 {
		return EventsSubject
	}
	return BroadcastSubject
}

// partitionResets is how often in a row a partition's log consumer tries to recreate itself on the servers
// before it gives up (1, 2 s apart; each try waits up to 10 s for an answer).
const partitionResets = 3

// ConsumePartition is ConsumeAll over the messages of partition k and the broadcast subject.
func (l *Log) ConsumePartition(ctx context.Context, k int, from uint64, h Handlers) error {
	if l.parts == 0 {
		return errors.New("cannot consume a partition: the log is not partitioned")
	}
	// On a cluster the consumer's server can die: short pulls and heartbeats let the ordered consumer notice
	// within ~2 s and recreate itself on another server (the default notices after 30 s). It tries that a few
	// times, then gives up and says why: the partition's owner then gives the partition back and it starts
	// afresh (snapshot and log) here or elsewhere. Left to retry forever, one partition's consumer failed to
	// come back for minutes after a NATS node's death while every other partition's did (TestClusterFailover).
	return l.consume(ctx, []string{PartitionFilter(k), BroadcastSubject}, from, h, partitionResets,
		jetstream.PullExpiry(4*time.Second), jetstream.PullHeartbeat(time.Second))
}

// PartitionLast is the sequence of the newest message of partition k (0 when it holds none), for lag.
func (l *Log) PartitionLast(ctx context.Context, k int) (uint64, error) {
	m, err := l.events.GetLastMsgForSubject(ctx, PartitionFilter(k))
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("cannot read the last message of partition %d: %w", k, err)
	}
	return m.Sequence, nil
}

// newPartMsg is a log message on subject.
func newPartMsg(subject string) *nats.Msg { return nats.NewMsg(subject) }

// allFilter is the consumer filter of every message of the log.
func (l *Log) allFilter() []string {
	if l.parts > 0 {
		return nil
	}
	return []string{EventsSubject}
}
