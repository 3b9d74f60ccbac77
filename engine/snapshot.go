package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/geo"
)

// A snapshot is a directory snap-<seq> holding the engine's state as of log sequence seq:
//
//	aggs.arrow   Arrow IPC file, one row per (cell or link, bucket): the window sums
//	cells.arrow  Arrow IPC file, one row per cell: learned free-flow histogram, newest event, incident score
//	state.json   clock, counters, incidents and the tracker's internals, units, camera records
//	MANIFEST     "citybrain-snapshot 1", the sequence, and the SHA-256 and size of each file above; written last
//
// It is written under a temporary name and renamed into place, so a crash leaves either a complete snapshot or
// a directory that LoadSnapshot ignores. A snapshot whose manifest or checksums do not match is skipped and an
// older one, or a full replay of the log, is used. Raw events and map-matcher tracks are not kept: raw events
// are a cache of the log, and vehicles are matched afresh from their next fix.

var aggSchema = arrow.NewSchema([]arrow.Field{
	{Name: "table", Type: arrow.PrimitiveTypes.Uint8}, // 0 cell, 1 link
	{Name: "owner", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "start", Type: arrow.PrimitiveTypes.Int64},
	{Name: "speed_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "speed_w", Type: arrow.PrimitiveTypes.Float64},
	{Name: "samples", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "events", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "flow_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "flow_n", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "occ_sum", Type: arrow.PrimitiveTypes.Float64},
	{Name: "kinds", Type: &arrow.FixedSizeBinaryType{ByteWidth: 4 * int(numKinds)}},
	{Name: "stop_head", Type: arrow.PrimitiveTypes.Float32},
}, nil)

// aggSchemaV1 is aggSchema before stop_head; such snapshots still load (their buckets have no queue head).
var aggSchemaV1 = arrow.NewSchema(aggSchema.Fields()[:11], nil)

var cellSchema = arrow.NewSchema([]arrow.Field{
	{Name: "cell", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "hist", Type: &arrow.FixedSizeBinaryType{ByteWidth: 4 * speedBins}},
	{Name: "hist_n", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "last_ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "incident", Type: arrow.PrimitiveTypes.Float64},
}, nil)

const snapMagic = "citybrain-snapshot 1"

// shardDump is a shard's state as records (built by the shard goroutine; the receiver releases them).
type shardDump struct {
	aggs, cells arrow.Record
	evalEnd     int64
}

type dumpReq struct{ reply chan shardDump }

type restoreReq struct {
	cells map[uint64]*cellState
	links map[int32]*linkState
	eval  int64
	done  chan struct{}
}

func (s *shard) dump() shardDump {
	ab := array.NewRecordBuilder(s.e.cfg.Mem, aggSchema)
	defer ab.Release()
	cb := array.NewRecordBuilder(s.e.cfg.Mem, cellSchema)
	defer cb.Release()
	appendAgg := func(table uint8, owner uint64, a *agg) {
		ab.Field(0).(*array.Uint8Builder).Append(table)
		ab.Field(1).(*array.Uint64Builder).Append(owner)
		ab.Field(2).(*array.Int64Builder).Append(a.start)
		ab.Field(3).(*array.Float64Builder).Append(a.SpeedSum)
		ab.Field(4).(*array.Float64Builder).Append(a.SpeedW)
		ab.Field(5).(*array.Uint32Builder).Append(a.Samples)
		ab.Field(6).(*array.Uint32Builder).Append(a.Events)
		ab.Field(7).(*array.Float64Builder).Append(a.FlowSum)
		ab.Field(8).(*array.Uint32Builder).Append(a.FlowN)
		ab.Field(9).(*array.Float64Builder).Append(a.OccSum)
		var k [4 * numKinds]byte
		for i, n := range a.Kinds {
			binary.LittleEndian.PutUint32(k[4*i:], n)
		}
		ab.Field(10).(*array.FixedSizeBinaryBuilder).Append(k[:])
		ab.Field(11).(*array.Float32Builder).Append(a.stopHead)
	}
	for _, c := range slices.Sorted(maps.Keys(s.cells)) {
		cs := s.cells[c]
		for i := range cs.aggs {
			appendAgg(0, c, &cs.aggs[i])
		}
		cb.Field(0).(*array.Uint64Builder).Append(c)
		var h [4 * speedBins]byte
		for i, n := range cs.hist {
			binary.LittleEndian.PutUint32(h[4*i:], n)
		}
		cb.Field(1).(*array.FixedSizeBinaryBuilder).Append(h[:])
		cb.Field(2).(*array.Uint32Builder).Append(cs.histN)
		cb.Field(3).(*array.Int64Builder).Append(cs.lastTS)
		cb.Field(4).(*array.Float64Builder).Append(cs.incident)
	}
	for _, l := range slices.Sorted(maps.Keys(s.links)) {
		ls := s.links[l]
		for i := range ls.aggs {
			appendAgg(1, uint64(l), &ls.aggs[i])
		}
	}
	return shardDump{aggs: ab.NewRecord(), cells: cb.NewRecord(), evalEnd: s.lastEvalEnd}
}

func (s *shard) restore(r *restoreReq) {
	for c, cs := range r.cells {
		s.cells[c] = cs
		s.dirty[c] = struct{}{}
		if cs.incident != 0 {
			s.scored[c] = true
		}
	}
	for l, ls := range r.links {
		s.links[l] = ls
		s.dirtyLinks[l] = struct{}{}
	}
	s.lastEvalEnd = max(s.lastEvalEnd, r.eval)
	s.lastTickBucket = -1
	close(r.done)
}

// snapState is state.json.
type snapState struct {
	Seq        uint64                `json:"seq"`
	Now        int64                 `json:"now"`
	Watermark  int64                 `json:"watermark"`
	Events     uint64                `json:"events"`
	Late       uint64                `json:"late"`
	TooLate    uint64                `json:"too_late"`
	KindEvents [numKinds]uint64      `json:"kind_events"`
	KindLate   [numKinds]uint64      `json:"kind_late"`
	EvalEnd    int64                 `json:"eval_end"`
	Incidents  []incidentState       `json:"incidents"`
	Cams       map[string]*camRecord `json:"cams"`
	Units      []unitState           `json:"units"`
	Pending    []Evidence            `json:"pending_evidence"`
	AdvancedTo int64                 `json:"advanced_to"`
	Runs       map[uint64]int        `json:"anomaly_runs"`
}

// unitState is a Unit with its optional speed as a pointer (JSON has no NaN).
type unitState struct {
	Unit
	SpeedKmh *float64 `json:"speed_kmh"`
}

// incidentState is an Incident with the tracker's internals, for snapshots.
type incidentState struct {
	Incident
	Sources map[string]*sourceAcc `json:"sources"`
	Types   map[string]float64    `json:"types"`
	SumLat  float64               `json:"sum_lat"`
	SumLng  float64               `json:"sum_lng"`
	SumW    float64               `json:"sum_w"`
}

// inTick runs fn on the tick goroutine right after a tick, so fn sees a tracker and shards that have
// consumed every batch Apply returned from before the call.
func (e *Engine) inTick(fn func()) error {
	done := make(chan struct{})
	req := flushReq{done: done, after: fn}
	select {
	case e.flushCh <- req:
		<-done
		return nil
	case <-e.stopCh:
		return ErrStopped
	}
}

// WriteSnapshot writes the engine's state as of the last applied batch into dir/snap-<seq> and returns that
// path. Call it from the goroutine that calls Apply (between batches), or after the last Apply.
func (e *Engine) WriteSnapshot(dir string) (string, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.publishRegistries(true) // the tick cannot while we hold the lock
	var (
		dumps    []shardDump
		st       snapState
		parts    map[string][]byte
		partsErr error
	)
	err := e.inTick(func() {
		if e.cfg.SnapshotParts != nil {
			parts, partsErr = e.cfg.SnapshotParts()
		}
		reply := make(chan shardDump, len(e.shards))
		for _, s := range e.shards {
			s.in <- shardMsg{dump: &dumpReq{reply: reply}}
		}
		for range e.shards {
			dumps = append(dumps, <-reply)
		}
		m := e.dispatched.Load()
		st = snapState{Seq: m.seq, Now: m.now, Watermark: m.wm, Events: m.events, Late: e.late.Load(),
			TooLate: e.tooLate.Load(), Cams: e.tracker.cams}
		for _, u := range e.Units() {
			us := unitState{Unit: u}
			if Has(u.SpeedKmh) {
				v := u.SpeedKmh
				us.SpeedKmh = &v
			}
			us.Unit.SpeedKmh = 0
			st.Units = append(st.Units, us)
		}
		for k := range st.KindEvents {
			st.KindEvents[k], st.KindLate[k] = e.kindEvents[k].Load(), e.kindLate[k].Load()
		}
		for _, in := range e.tracker.order {
			st.Incidents = append(st.Incidents, incidentState{Incident: *in, Sources: in.sources, Types: in.types,
				SumLat: in.sumLat, SumLng: in.sumLng, SumW: in.sumW})
		}
		for _, d := range dumps {
			st.EvalEnd = max(st.EvalEnd, d.evalEnd)
		}
		st.Pending = e.pendingEvidence
		st.AdvancedTo = e.tracker.advancedTo
		st.Runs = e.anomalyRuns
	})
	defer func() {
		for _, d := range dumps {
			d.aggs.Release()
			d.cells.Release()
		}
	}()
	if err == nil {
		err = partsErr
	}
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, fmt.Sprintf("snap-%020d", st.Seq))
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("cannot create snapshot dir: %w", err)
	}
	manifest := snapMagic + "\nseq " + strconv.FormatUint(st.Seq, 10) + "\n"
	write := func(name string, data []byte) error {
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		manifest += fmt.Sprintf("file %s %d %s\n", name, len(data), hex.EncodeToString(sum[:]))
		return nil
	}
	var aggRecs, cellRecs []arrow.Record
	for _, d := range dumps {
		aggRecs = append(aggRecs, d.aggs)
		cellRecs = append(cellRecs, d.cells)
	}
	for _, f := range []struct {
		name   string
		schema *arrow.Schema
		recs   []arrow.Record
	}{{"aggs.arrow", aggSchema, aggRecs}, {"cells.arrow", cellSchema, cellRecs}} {
		data, err := ipcFile(f.schema, f.recs, e.cfg.Mem)
		if err != nil {
			return "", err
		}
		if err := write(f.name, data); err != nil {
			return "", err
		}
	}
	js, err := json.Marshal(&st)
	if err != nil {
		return "", fmt.Errorf("cannot encode snapshot state: %w", err)
	}
	if err := write("state.json", js); err != nil {
		return "", err
	}
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		if name != filepath.Base(name) || name == "MANIFEST" || name == "state.json" || strings.HasSuffix(name, ".arrow") || strings.ContainsAny(name, " \n") {
			return "", fmt.Errorf("cannot write snapshot part %q: not a plain file name of its own", name)
		}
		if err := write(name, parts[name]); err != nil {
			return "", err
		}
	}
	if err := writeSynced(filepath.Join(tmp, "MANIFEST"), []byte(manifest)); err != nil {
		return "", err
	}
	os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("cannot publish snapshot: %w", err)
	}
	return final, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", path, err)
	}
	return f.Close()
}

func ipcFile(schema *arrow.Schema, recs []arrow.Record, mem memory.Allocator) ([]byte, error) {
	var buf seekBuffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem), ipc.WithZstd())
	if err != nil {
		return nil, fmt.Errorf("cannot write snapshot table: %w", err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			w.Close()
			return nil, fmt.Errorf("cannot write snapshot table: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cannot write snapshot table: %w", err)
	}
	return buf.b, nil
}

// seekBuffer is an in-memory io.WriteSeeker (the IPC file writer wants one).
type seekBuffer struct {
	b   []byte
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
		s.pos = int(off)
	case 1:
		s.pos += int(off)
	case 2:
		s.pos = len(s.b) + int(off)
	}
	if s.pos < 0 {
		return 0, errors.New("seek before start")
	}
	return int64(s.pos), nil
}

// ErrNoSnapshot is returned by LoadSnapshot when dir holds no valid snapshot.
var ErrNoSnapshot = errors.New("no valid snapshot")

// Snapshots lists the snapshot directories in dir, newest first.
func Snapshots(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "snap-") && !strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// LoadSnapshot restores the newest valid snapshot in dir into a fresh engine (before any Apply) and returns
// the log sequence it covers; the caller replays the log from the next one. Invalid snapshots are reported
// to skipped and passed over.
func (e *Engine) LoadSnapshot(dir string, maxSeq uint64, skipped func(path string, err error)) (uint64, error) {
	for _, path := range Snapshots(dir) {
		if n, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(path), "snap-"), 10, 64); err == nil && n > maxSeq {
			if skipped != nil {
				skipped(path, fmt.Errorf("covers log sequence %d but the log ends at %d (a different or reset log)", n, maxSeq))
			}
			continue
		}
		seq, err := e.loadSnapshot(path)
		if err == nil {
			return seq, nil
		}
		if skipped != nil {
			skipped(path, err)
		}
	}
	return 0, ErrNoSnapshot
}

// readManifest checks every file against the manifest and returns their contents.
func readManifest(path string) (map[string][]byte, error) {
	m, err := os.ReadFile(filepath.Join(path, "MANIFEST"))
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(m)), "\n")
	if len(lines) < 2 || lines[0] != snapMagic {
		return nil, errors.New("manifest is not a citybrain snapshot manifest")
	}
	files := map[string][]byte{}
	for _, l := range lines[2:] {
		var name, sum string
		var size int
		if _, err := fmt.Sscanf(l, "file %s %d %s", &name, &size, &sum); err != nil {
			return nil, fmt.Errorf("cannot parse manifest line %q", l)
		}
		data, err := os.ReadFile(filepath.Join(path, name))
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		got := sha256.Sum256(data)
		if len(data) != size || hex.EncodeToString(got[:]) != sum {
			return nil, fmt.Errorf("%s is torn or corrupt (size %d, want %d; checksum mismatch)", name, len(data), size)
		}
		files[name] = data
	}
	for _, need := range []string{"aggs.arrow", "cells.arrow", "state.json"} {
		if files[need] == nil {
			return nil, fmt.Errorf("manifest lists no %s", need)
		}
	}
	return files, nil
}

func (e *Engine) loadSnapshot(path string) (uint64, error) {
	files, err := readManifest(path)
	if err != nil {
		return 0, err
	}
	e.loadedParts = map[string][]byte{}
	for name, data := range files {
		if name != "state.json" && !strings.HasSuffix(name, ".arrow") {
			e.loadedParts[name] = data
		}
	}
	var st snapState
	if err := json.Unmarshal(files["state.json"], &st); err != nil {
		return 0, fmt.Errorf("cannot decode state.json: %w", err)
	}
	cells := make([]map[uint64]*cellState, len(e.shards))
	links := make([]map[int32]*linkState, len(e.shards))
	for i := range e.shards {
		cells[i], links[i] = map[uint64]*cellState{}, map[int32]*linkState{}
	}
	var nLinks int32 = -1
	if e.cfg.Network != nil {
		nLinks = int32(len(e.cfg.Network.Links()))
	}
	err = readIPCFile(files["cells.arrow"], []*arrow.Schema{cellSchema}, e.cfg.Mem, func(r arrow.Record) error {
		cc := r.Column(0).(*array.Uint64)
		hist := r.Column(1).(*array.FixedSizeBinary)
		for i := 0; i < int(r.NumRows()); i++ {
			c := cc.Value(i)
			cs := &cellState{histN: r.Column(2).(*array.Uint32).Value(i), lastTS: r.Column(3).(*array.Int64).Value(i),
				incident: r.Column(4).(*array.Float64).Value(i)}
			h := hist.Value(i)
			for k := range cs.hist {
				cs.hist[k] = binary.LittleEndian.Uint32(h[4*k:])
			}
			cells[e.shardOf(c)][c] = cs
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	err = readIPCFile(files["aggs.arrow"], []*arrow.Schema{aggSchema, aggSchemaV1}, e.cfg.Mem, func(r arrow.Record) error {
		for i := 0; i < int(r.NumRows()); i++ {
			a := agg{start: r.Column(2).(*array.Int64).Value(i)}
			a.SpeedSum = r.Column(3).(*array.Float64).Value(i)
			a.SpeedW = r.Column(4).(*array.Float64).Value(i)
			a.Samples = r.Column(5).(*array.Uint32).Value(i)
			a.Events = r.Column(6).(*array.Uint32).Value(i)
			a.FlowSum = r.Column(7).(*array.Float64).Value(i)
			a.FlowN = r.Column(8).(*array.Uint32).Value(i)
			a.OccSum = r.Column(9).(*array.Float64).Value(i)
			k := r.Column(10).(*array.FixedSizeBinary).Value(i)
			for j := range a.Kinds {
				a.Kinds[j] = binary.LittleEndian.Uint32(k[4*j:])
			}
			if r.NumCols() > 11 {
				a.stopHead = r.Column(11).(*array.Float32).Value(i)
			}
			owner := r.Column(1).(*array.Uint64).Value(i)
			switch r.Column(0).(*array.Uint8).Value(i) {
			case 0:
				cs := cells[e.shardOf(owner)][owner]
				if cs == nil {
					return fmt.Errorf("aggs.arrow row %d: cell %x has no cells.arrow row", i, owner)
				}
				cs.aggs = append(cs.aggs, a)
			case 1:
				if int32(owner) >= nLinks {
					continue // the network changed since the snapshot: link state is dropped
				}
				// A link's buckets may come from several shards of the old engine: merge by start.
				sh := int(owner) % len(e.shards)
				ls := links[sh][int32(owner)]
				if ls == nil {
					ls = &linkState{}
					links[sh][int32(owner)] = ls
				}
				tmp := cellState{aggs: ls.aggs}
				b := tmp.bucket(a.start)
				b.add(&a.WindowStats)
				b.addHead(a.stopHead)
				ls.aggs = tmp.aggs
				ls.lastTS = max(ls.lastTS, a.start)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Cells get their centres back; every shard receives its part through its own goroutine.
	for i, s := range e.shards {
		for c, cs := range cells[i] {
			cs.lat, cs.lng = geo.Center(c)
		}
		done := make(chan struct{})
		s.in <- shardMsg{restore: &restoreReq{cells: cells[i], links: links[i], eval: st.EvalEnd, done: done}}
		<-done
	}
	e.applyMu.Lock()
	e.now, e.wm, e.lastSeq = st.Now, st.Watermark, st.Seq
	e.events.Store(st.Events)
	e.late.Store(st.Late)
	e.tooLate.Store(st.TooLate)
	for k := range st.KindEvents {
		e.kindEvents[k].Store(st.KindEvents[k])
		e.kindLate[k].Store(st.KindLate[k])
	}
	units := make([]Unit, 0, len(st.Units))
	for _, us := range st.Units {
		u := us.Unit
		u.SpeedKmh = Absent
		if us.SpeedKmh != nil {
			u.SpeedKmh = *us.SpeedKmh
		}
		e.units[u.ID] = u
		units = append(units, u)
	}
	e.unitSnap.Store(&units)
	e.dispatched.Store(&mark{seq: st.Seq, now: st.Now, wm: st.Watermark, events: st.Events})
	e.applyMu.Unlock()
	err = e.inTick(func() {
		t := e.tracker
		e.pendingEvidence = append(e.pendingEvidence, st.Pending...)
		t.advancedTo = st.AdvancedTo
		if st.Runs != nil {
			e.anomalyRuns = st.Runs
		}
		if st.Cams != nil {
			t.cams = st.Cams
		}
		for i := range st.Incidents {
			is := &st.Incidents[i]
			in := is.Incident
			in.sources, in.types, in.sumLat, in.sumLng, in.sumW = is.Sources, is.Types, is.SumLat, is.SumLng, is.SumW
			if in.sources == nil {
				in.sources = map[string]*sourceAcc{}
			}
			if in.types == nil {
				in.types = map[string]float64{}
			}
			t.byID[in.ID] = &in
			t.order = append(t.order, &in)
		}
	})
	if err != nil {
		return 0, err
	}
	e.Flush()
	return st.Seq, nil
}

// readIPCFile reads a snapshot table whose schema is one of schemas (the current one first, then older ones
// still readable) and calls fn on each of its batches.
func readIPCFile(data []byte, schemas []*arrow.Schema, mem memory.Allocator, fn func(arrow.Record) error) error {
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return fmt.Errorf("cannot read snapshot table: %w", err)
	}
	defer r.Close()
	if !slices.ContainsFunc(schemas, r.Schema().Equal) {
		return fmt.Errorf("snapshot table has schema %s, want %s", r.Schema(), schemas[0])
	}
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			return fmt.Errorf("cannot read snapshot table batch %d: %w", i, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// PruneSnapshots removes all but the newest keep snapshots in dir, and leftover temporary directories.
func PruneSnapshots(dir string, keep int) {
	for i, p := range Snapshots(dir) {
		if i >= keep {
			os.RemoveAll(p)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// LoadedParts returns the files Config.SnapshotParts added to the snapshot LoadSnapshot loaded (nil when none
// was loaded).
func (e *Engine) LoadedParts() map[string][]byte { return e.loadedParts }
