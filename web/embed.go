// Package web holds the command-center application (sources under src/, built by `make web` into dist/).
// The built files are embedded in the binary and served by api; they make no request to any outside host.
//
// dist/ is generated and not committed except for dist/README.md, so `go build` works on a fresh clone
// before the npm build: then Files serves fallback/, a page that says to run `make web`.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

//go:embed fallback
var fallback embed.FS

// Files returns the application's files with index.html at the root: the built app when dist/ holds one,
// otherwise the fallback page.
func Files() fs.FS {
	if sub, err := fs.Sub(dist, "dist"); err == nil {
		if _, err := fs.Stat(sub, "index.html"); err == nil {
			return sub
		}
	}
	sub, err := fs.Sub(fallback, "fallback")
	if err != nil {
		panic("BUG: embedded web/fallback missing: " + err.Error())
	}
	return sub
}

// Built reports whether the binary carries the built application (not the fallback page).
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}
