#!/usr/bin/env bash
# Browser tests of the command center: builds the web app and the binary, then drives Debian's chromium
# (scripts/install-chromium.sh) with playwright-core under node's test runner. About 12 minutes at load average 15–25 on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "web-test: ${CHROMIUM:-/usr/bin/chromium} missing: run scripts/install-chromium.sh (scripts/install-deps.sh does)" >&2
  exit 1
fi
bash scripts/web-build.sh
${GO:-go} build -o bin/citybrain ./cmd/citybrain
cd web
CITYBRAIN_BIN="$PWD/../bin/citybrain" node --test --test-concurrency=1 --test-timeout=900000 test/*.test.mjs
