package web

import (
	"io/fs"
	"testing"
)

// Files serves an index.html either way: the built app, or the fallback page on a fresh clone.
func TestFilesHasIndex(t *testing.T) {
	b, err := fs.ReadFile(Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatal("empty index.html")
	}
	if Built() {
		if _, err := fs.Stat(Files(), "app.js"); err != nil {
			t.Fatalf("built app without app.js: %v", err)
		}
	}
}
