package eventlog_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/eventlog/logtest"
	"citybrain/geo"
	"citybrain/ingest"
)

// spread returns n probes scattered over about 60 km × 60 km around Hangzhou (hundreds of res-7 districts).
func spread(t *testing.T, mem memory.Allocator, n int, t0 int64) arrow.Record {
	t.Helper()
	bb := engine.NewBatchBuilder(mem)
	defer bb.Release()
	for i := 0; i < n; i++ {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh = t0+int64(i), "veh-"+strconv.Itoa(i), 30
		e.Lat, e.Lng = 30.0+float64((i*7919)%600)*0.001, 119.9+float64((i*104729)%600)*0.001
		cell, err := geo.CellOf(e.Lat, e.Lng, geo.DefaultRes)
		if err != nil {
			t.Fatal(err)
		}
		bb.Append(&e, cell)
	}
	return bb.NewRecord()
}

// The partition a writer computes for a district (PartitionOf) is the one the server's own subject mapping
// stores it under, for every district of a large batch; every event lands in exactly one partition, and a
// retried batch is stored once.
func TestPartitionMatchesServer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, nc := logtest.Server(t)
	const parts, dres = 7, 7
	cfg := eventlog.DefaultConfig()
	cfg.Mem, cfg.Partitions, cfg.DistrictRes = mem, parts, dres
	l, err := eventlog.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := spread(t, mem, 3000, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixMilli())
	defer rec.Release()
	if _, err := l.Append(t.Context(), rec, ingest.BatchID{ID: "b1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), rec, ingest.BatchID{ID: "b1"}); !errors.Is(err, ingest.ErrDuplicate) {
		t.Errorf("retry of a partitioned batch: %v, want ingest.ErrDuplicate", err)
	}
	// Read every stored message with its subject.
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(t.Context(), eventlog.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := l.State(t.Context())
	districts := map[string]int{}
	perPart := make([]int, parts)
	rows := 0
	for i := uint64(0); i < st.Msgs; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.Split(m.Subject(), ".")
		if len(tok) != 5 || tok[0]+"."+tok[1]+"."+tok[2] != eventlog.PartPrefix {
			t.Fatalf("stored subject %q, want %s.<k>.<district>", m.Subject(), eventlog.PartPrefix)
		}
		k, _ := strconv.Atoi(tok[3])
		err = eventlog.DecodeRecords(m.Data(), func(r arrow.Record) error {
			cells := r.Column(engine.ColCell).(*array.Uint64)
			for j := 0; j < int(r.NumRows()); j++ {
				d := eventlog.District(cells.Value(j), dres)
				if got := eventlog.PartitionOf(d, parts); got != k {
					t.Errorf("district %s stored in partition %d by the server, PartitionOf says %d", d, k, got)
				}
				if prev, ok := districts[d]; ok && prev != k {
					t.Errorf("district %s in partitions %d and %d", d, prev, k)
				}
				districts[d] = k
			}
			rows += int(r.NumRows())
			perPart[k] += int(r.NumRows())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if rows != int(rec.NumRows()) {
		t.Errorf("%d rows stored, want %d (each once)", rows, rec.NumRows())
	}
	if len(districts) < 50 {
		t.Errorf("only %d districts: the test batch does not spread", len(districts))
	}
	for k, n := range perPart {
		if n == 0 {
			t.Errorf("partition %d got nothing of %d districts", k, len(districts))
		}
	}
	// A partition consumer sees its partition and the broadcast subject, nothing else.
	if _, err := l.AppendTyped(t.Context(), eventlog.TypeZone, "z1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	got, typed := 0, 0
	done := make(chan error, 1)
	go func() {
		done <- l.ConsumePartition(ctx, 3, 1, eventlog.Handlers{
			Batch: func(seq uint64, r arrow.Record) error {
				mu.Lock()
				defer mu.Unlock()
				got += int(r.NumRows())
				return nil
			},
			Typed: func(seq uint64, typ string, data []byte) error {
				mu.Lock()
				typed++
				mu.Unlock()
				cancel()
				return nil
			},
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got != perPart[3] || typed != 1 {
		t.Errorf("partition 3 consumer: %d rows and %d zone actions, want %d and 1", got, typed, perPart[3])
	}
	if last, err := l.PartitionLast(t.Context(), 3); err != nil || last == 0 {
		t.Errorf("PartitionLast(3) = %d, %v", last, err)
	}
}

// PartitionOf agrees with the server for many tokens, not only those of one batch: each token published
// through the mapping lands where PartitionOf says.
func TestPartitionOfTokens(t *testing.T) {
	_, nc := logtest.Server(t)
	cfg := eventlog.DefaultConfig()
	cfg.Partitions = 13
	l, err := eventlog.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = l
	js, _ := jetstream.New(nc)
	for i := 0; i < 300; i++ {
		tok := strconv.FormatUint(uint64(i)*0x9e3779b97f4a7c15, 16)
		if _, err := js.Publish(t.Context(), eventlog.DistrictSubject(tok), []byte("x")); err != nil {
			t.Fatal(err)
		}
		s, _ := js.Stream(t.Context(), eventlog.EventsStream)
		m, err := s.GetLastMsgForSubject(t.Context(), eventlog.PartPrefix+"."+strconv.Itoa(eventlog.PartitionOf(tok, 13))+"."+tok)
		if err != nil {
			t.Fatalf("token %s: not in partition %d: %v", tok, eventlog.PartitionOf(tok, 13), err)
		}
		_ = m
	}
}
