package geo

import (
	"os"
	"path/filepath"
	"testing"
)

// dataDir returns the shared real-data directory: $CITYBRAIN_DATA, else ../shared/data relative to the
// repository root (the directory holding go.mod).
func dataDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("CITYBRAIN_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("cannot find working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "data")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("..", "..", "shared", "data")
		}
		dir = parent
	}
}

// dataFile returns the path of a file under the data directory, skipping the test when it is absent.
func dataFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(dataDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: real data %s is not available (set CITYBRAIN_DATA to the shared data directory): %v", p, err)
	}
	return p
}

// readDataFile returns the contents of dataFile(rel), or nil when the data is absent (for fuzz seeds).
func readDataFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(tb), rel))
	if err != nil {
		return nil
	}
	return b
}
