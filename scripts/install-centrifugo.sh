#!/usr/bin/env bash
# Installs the Centrifugo server the bench harness compares fan-out against (bench/peers/README.md) into bin/.
# Built from source with the Go toolchain; the binary is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${CENTRIFUGO_VERSION:-v6.9.1}"
if [ -x bin/centrifugo ] && [ "$(cat bin/.centrifugo-version 2>/dev/null)" = "$VERSION" ]; then
	exit 0
fi
mkdir -p bin
GOBIN="$(pwd)/bin" ${GO:-go} install "github.com/centrifugal/centrifugo/v6@${VERSION}"
echo "$VERSION" > bin/.centrifugo-version
