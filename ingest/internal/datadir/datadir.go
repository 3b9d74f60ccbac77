// Package datadir finds the shared real-data directory for tests: $CITYBRAIN_DATA, else ../shared/data relative
// to the repository root (the directory holding go.mod).
package datadir

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the path of rel inside the data directory, or skips tb with a clear message when it is absent.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	base := os.Getenv("CITYBRAIN_DATA")
	if base == "" {
		root, err := repoRoot()
		if err != nil {
			tb.Skipf("real data %s unavailable: cannot find the repository root: %v (set CITYBRAIN_DATA)", rel, err)
		}
		base = filepath.Join(root, "..", "shared", "data")
	}
	p := filepath.Join(base, rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("real data %s unavailable (%v): set CITYBRAIN_DATA to the shared data directory", rel, err)
	}
	return p
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
