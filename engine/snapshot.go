package engine

import (
	"crypto/sha256"
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

	"citybrain/engine/incident"
	"citybrain/engine/schema"
	"citybrain/engine/window"
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

const snapMagic = "citybrain-snapshot 1"

// detectorFile holds the blockage detector's state in a snapshot.
const detectorFile = "detect.gob"

// snapState is state.json.
type snapState struct {
	Seq            uint64                  `json:"seq"`
	Now            int64                   `json:"now"`
	Watermark      int64                   `json:"watermark"`
	Events         uint64                  `json:"events"`
	Late           uint64                  `json:"late"`
	TooLate        uint64                  `json:"too_late"`
	Ahead          uint64                  `json:"ahead,omitempty"`
	AheadClaims    []aheadClaim            `json:"ahead_claims,omitempty"` // clock.go
	KindEvents     [schema.NumKinds]uint64 `json:"kind_events"`
	KindLate       [schema.NumKinds]uint64 `json:"kind_late"`
	EvalEnd        int64                   `json:"eval_end"`
	Units          []unitState             `json:"units"`
	Pending        []incident.Evidence     `json:"pending_evidence"`
	Runs           map[uint64]int          `json:"anomaly_runs"`
	incident.State                         // incidents, cams, advanced_to
}

// unitState is a Unit with its optional speed as a pointer (JSON has no NaN).
type unitState struct {
	Unit
	SpeedKmh *float64 `json:"speed_kmh"`
}

// WriteSnapshot writes the engine's state as of the last applied batch into dir/snap-<seq> and returns that
// path. Call it from the goroutine that calls Apply (between batches), or after the last Apply.
func (e *Engine) WriteSnapshot(dir string) (string, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.reg.Publish(true) // the tick cannot while we hold the lock
	claims := e.guard.state()
	var (
		dump     *window.Dump
		st       snapState
		parts    map[string][]byte
		partsErr error
	)
	err := e.inTick(func() {
		if e.cfg.SnapshotParts != nil {
			parts, partsErr = e.cfg.SnapshotParts()
		}
		var ok bool
		if dump, ok = e.win.Dump(); !ok {
			return
		}
		m := e.dispatched.Load()
		st = snapState{Seq: m.seq, Now: m.now, Watermark: m.wm, Events: m.events, Late: e.late.Load(),
			TooLate: e.tooLate.Load(), Ahead: e.ahead.Load(), AheadClaims: claims, EvalEnd: dump.EvalEnd, State: e.inc.State()}
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
		st.Pending = e.pendingEvidence
		st.Runs = e.jdg.Runs()
	})
	defer dump.Release()
	if err == nil && dump == nil {
		err = ErrStopped
	}
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
	manifest := snapMagic + "\nseq " + strconv.FormatUint(st.Seq, 10) + "\n" + e.layout().line() + "\n"
	write := func(name string, data []byte) error {
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		manifest += fmt.Sprintf("file %s %d %s\n", name, len(data), hex.EncodeToString(sum[:]))
		return nil
	}
	aggs, cells, err := dump.Encode()
	if err != nil {
		return "", err
	}
	if err := write("aggs.arrow", aggs); err != nil {
		return "", err
	}
	if err := write("cells.arrow", cells); err != nil {
		return "", err
	}
	js, err := json.Marshal(&st)
	if err != nil {
		return "", fmt.Errorf("cannot encode snapshot state: %w", err)
	}
	if err := write("state.json", js); err != nil {
		return "", err
	}
	// The blockage detector's vehicles and links (the dispatcher's: Apply is held off by applyMu).
	det, err := e.win.DetectorState()
	if err != nil {
		return "", err
	}
	if det != nil {
		if err := write(detectorFile, det); err != nil {
			return "", err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		if name != filepath.Base(name) || name == "MANIFEST" || name == "state.json" || name == detectorFile || strings.HasSuffix(name, ".arrow") || strings.ContainsAny(name, " \n") {
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

// layout is what a snapshot's numbers depend on besides the log: the cells' resolution, the bucket and the
// event schema. A snapshot of another layout is skipped (the log is replayed instead: recomputed).
type layout struct {
	Res      int
	BucketMs int64
	Schema   string
}

func (e *Engine) layout() layout {
	return layout{Res: e.cfg.Res, BucketMs: e.bucketMs, Schema: SchemaVersion}
}

func (l layout) line() string {
	return fmt.Sprintf("layout res %d bucket_ms %d schema %s", l.Res, l.BucketMs, l.Schema)
}

// readManifest checks every file against the manifest and returns their contents and the layout line
// (empty for snapshots written before layouts were recorded, all with the default layout).
func readManifest(path string) (map[string][]byte, string, error) {
	m, err := os.ReadFile(filepath.Join(path, "MANIFEST"))
	if err != nil {
		return nil, "", fmt.Errorf("cannot read manifest: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(m)), "\n")
	if len(lines) < 2 || lines[0] != snapMagic {
		return nil, "", errors.New("manifest is not a citybrain snapshot manifest")
	}
	files := map[string][]byte{}
	lay := ""
	for _, l := range lines[2:] {
		if strings.HasPrefix(l, "layout ") {
			lay = l
			continue
		}
		var name, sum string
		var size int
		if _, err := fmt.Sscanf(l, "file %s %d %s", &name, &size, &sum); err != nil {
			return nil, "", fmt.Errorf("cannot parse manifest line %q", l)
		}
		data, err := os.ReadFile(filepath.Join(path, name))
		if err != nil {
			return nil, "", fmt.Errorf("cannot read %s: %w", name, err)
		}
		got := sha256.Sum256(data)
		if len(data) != size || hex.EncodeToString(got[:]) != sum {
			return nil, "", fmt.Errorf("%s is torn or corrupt (size %d, want %d; checksum mismatch)", name, len(data), size)
		}
		files[name] = data
	}
	for _, need := range []string{"aggs.arrow", "cells.arrow", "state.json"} {
		if files[need] == nil {
			return nil, "", fmt.Errorf("manifest lists no %s", need)
		}
	}
	return files, lay, nil
}

func (e *Engine) loadSnapshot(path string) (uint64, error) {
	files, lay, err := readManifest(path)
	if err != nil {
		return 0, err
	}
	if lay != "" && lay != e.layout().line() {
		return 0, fmt.Errorf("written with another layout (%s; this engine has %s): the log is replayed instead", strings.TrimPrefix(lay, "layout "), strings.TrimPrefix(e.layout().line(), "layout "))
	}
	e.loadedParts = map[string][]byte{}
	for name, data := range files {
		if name != "state.json" && name != detectorFile && !strings.HasSuffix(name, ".arrow") {
			e.loadedParts[name] = data
		}
	}
	var st snapState
	if err := json.Unmarshal(files["state.json"], &st); err != nil {
		return 0, fmt.Errorf("cannot decode state.json: %w", err)
	}
	if err := e.win.Restore(files["aggs.arrow"], files["cells.arrow"], st.EvalEnd); err != nil {
		return 0, err
	}
	if det, ok := files[detectorFile]; ok {
		// A snapshot from before the detector (or without a network) has none: it starts afresh and
		// judges links once their baselines are learned again.
		if err := e.win.RestoreDetector(det); err != nil {
			return 0, err
		}
	}
	e.applyMu.Lock()
	e.now, e.wm, e.lastSeq = st.Now, st.Watermark, st.Seq
	e.events.Store(st.Events)
	e.late.Store(st.Late)
	e.tooLate.Store(st.TooLate)
	e.ahead.Store(st.Ahead)
	e.guard.restore(st.AheadClaims)
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
		units = append(units, u)
	}
	e.reg.Restore(units)
	e.dispatched.Store(&mark{seq: st.Seq, now: st.Now, wm: st.Watermark, events: st.Events})
	e.applyMu.Unlock()
	err = e.inTick(func() {
		e.pendingEvidence = append(e.pendingEvidence, st.Pending...)
		e.jdg.SetRuns(st.Runs)
		e.inc.Restore(st.State)
	})
	if err != nil {
		return 0, err
	}
	e.Flush()
	return st.Seq, nil
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
