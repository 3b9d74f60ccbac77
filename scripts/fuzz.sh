#!/usr/bin/env bash
# Runs every Fuzz target of the module for FUZZTIME each (default 5s). Seeds (real samples) run in plain
# `go test` too; this explores beyond them. Failing inputs land in testdata/fuzz/ of the package.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" at the end of a
# duration-based -fuzztime when the machine is loaded (golang/go#75804, fixed in Go 1.27): no input fails, none
# is written. A run that ends so, without "Failing input written", is run again (up to twice more); a real
# failure always writes its input and fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
FUZZ_ONLY=${FUZZ_ONLY:-.}          # a regexp of the targets to run (default: all)
FUZZPARALLEL=${FUZZPARALLEL:-2}    # fuzzing workers per target
log=$(mktemp)
trap 'rm -f "$log"' EXIT
n=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | grep -E "$FUZZ_ONLY" || true); do
		echo "fuzz: ./$dir $target ($FUZZTIME)"
		for try in 1 2 3; do
			if "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "./$dir" >"$log" 2>&1; then
				tail -1 "$log"
				break
			fi
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log" && [ "$try" -lt 3 ]; then
				echo "fuzz: $target ended with Go's coordinator deadline race (golang/go#75804), no failing input: again"
				continue
			fi
			cat "$log"
			exit 1
		done
		n=$((n + 1))
	done
done < <(git ls-files '*_test.go'; git ls-files --others --exclude-standard '*_test.go')
echo "fuzz: $n targets ran for $FUZZTIME each"
