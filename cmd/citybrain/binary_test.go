package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The tests that run citybrain as a separate process (SIGKILL, cluster) share one build of it per test run.
var testBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// citybrainBinary returns the path of this command built once for the whole test run.
func citybrainBinary(t *testing.T) string {
	t.Helper()
	testBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "citybrain-test-bin-")
		if err != nil {
			testBinary.err = err
			return
		}
		testBinary.dir, testBinary.path = dir, filepath.Join(dir, "citybrain")
		if out, err := exec.Command("go", "build", "-o", testBinary.path, ".").CombinedOutput(); err != nil {
			testBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if testBinary.err != nil {
		t.Fatal(testBinary.err)
	}
	return testBinary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBinary.dir != "" {
		os.RemoveAll(testBinary.dir)
	}
	os.Exit(code)
}
