#!/usr/bin/env bash
# Runs every Fuzz target of the module for FUZZTIME each (default 5s). Seeds (real samples) run in plain
# `go test` too; this explores beyond them. Failing inputs land in testdata/fuzz/ of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
FUZZ_ONLY=${FUZZ_ONLY:-.}          # a regexp of the targets to run (default: all)
FUZZPARALLEL=${FUZZPARALLEL:-2}    # fuzzing workers per target
n=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | grep -E "$FUZZ_ONLY" || true); do
		echo "fuzz: ./$dir $target ($FUZZTIME)"
		"$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "./$dir" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
		tail -1 /tmp/fuzz-$$.log
		n=$((n + 1))
	done
done < <(git ls-files '*_test.go'; git ls-files --others --exclude-standard '*_test.go')
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n targets ran for $FUZZTIME each"
