package cluster

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"citybrain/engine"
)

// SnapBucket is the JetStream object store of partition snapshots: object p<k> is partition k's newest
// engine snapshot (engine/snapshot.go) as a tar of its directory, so any engine node can restore it.
const SnapBucket = "citybrain_snapshots"

// maxSnapshot bounds a snapshot read back from the store (4 GiB).
const maxSnapshot = 4 << 30

// Snapshots stores partition snapshots.
type Snapshots struct {
	obs jetstream.ObjectStore
	tmp string // scratch directory for writing and restoring
}

// OpenSnapshots creates or opens the object store; tmp is a local scratch directory.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, replicas int, tmp string) (*Snapshots, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: SnapBucket,
		Replicas: max(1, replicas), Storage: jetstream.FileStorage,
		Description: "CityBrain partition snapshots (tar of an engine snapshot directory)"})
	if err != nil {
		return nil, fmt.Errorf("cannot open object store %s: %w", SnapBucket, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create snapshot scratch dir: %w", err)
	}
	return &Snapshots{obs: obs, tmp: tmp}, nil
}

func objName(k int) string { return "p" + strconv.Itoa(k) }

// Write snapshots eng (from the goroutine that applies to it) and stores it as partition k's newest.
func (s *Snapshots) Write(ctx context.Context, k int, eng *engine.Engine) (uint64, error) {
	dir, err := os.MkdirTemp(s.tmp, "w-p"+strconv.Itoa(k)+"-")
	if err != nil {
		return 0, fmt.Errorf("cannot write snapshot of partition %d: %w", k, err)
	}
	defer os.RemoveAll(dir)
	path, err := eng.WriteSnapshot(dir)
	if err != nil {
		return 0, err
	}
	seq, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(path), "snap-"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot read snapshot sequence of %s", path)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, path)) }()
	_, err = s.obs.Put(ctx, jetstream.ObjectMeta{Name: objName(k),
		Metadata: map[string]string{"seq": strconv.FormatUint(seq, 10)}}, pr)
	pr.Close()
	if err != nil {
		return 0, fmt.Errorf("cannot store snapshot of partition %d: %w", k, err)
	}
	return seq, nil
}

// Restore loads partition k's newest snapshot into a fresh eng and returns the log sequence it covers;
// engine.ErrNoSnapshot when there is none (or it covers more than maxSeq, a reset log).
func (s *Snapshots) Restore(ctx context.Context, k int, eng *engine.Engine, maxSeq uint64) (uint64, error) {
	r, err := s.obs.Get(ctx, objName(k))
	if err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return 0, engine.ErrNoSnapshot
		}
		return 0, fmt.Errorf("cannot read snapshot of partition %d: %w", k, err)
	}
	defer r.Close()
	dir, err := os.MkdirTemp(s.tmp, "r-p"+strconv.Itoa(k)+"-")
	if err != nil {
		return 0, fmt.Errorf("cannot restore snapshot of partition %d: %w", k, err)
	}
	defer os.RemoveAll(dir)
	if err := untarDir(r, dir); err != nil {
		return 0, fmt.Errorf("cannot restore snapshot of partition %d: %w", k, err)
	}
	return eng.LoadSnapshot(dir, maxSeq, nil)
}

// tarDir writes the regular files of dir (one level) as snap-<seq>/<name>.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	base := filepath.Base(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: base + "/" + e.Name(), Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// untarDir extracts a tar written by tarDir into dir: one directory snap-<n> of regular files, nothing else,
// within maxSnapshot bytes.
func untarDir(r io.Reader, dir string) error {
	tr := tar.NewReader(io.LimitReader(r, maxSnapshot))
	made := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read snapshot archive: %w", err)
		}
		d, name, ok := strings.Cut(h.Name, "/")
		if !ok || !strings.HasPrefix(d, "snap-") || strings.ContainsAny(d, `\.`) || name == "" ||
			strings.ContainsAny(name, `/\`) || name == "." || name == ".." || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("cannot read snapshot archive: unexpected entry %q", h.Name)
		}
		if made == "" {
			made = d
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		} else if d != made {
			return fmt.Errorf("cannot read snapshot archive: two snapshots (%s, %s)", made, d)
		}
		f, err := os.Create(filepath.Join(dir, d, name))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cannot extract %s: %w", h.Name, err)
		}
	}
}
