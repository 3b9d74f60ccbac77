#!/usr/bin/env bash
# Builds the command center (web/src → web/dist, embedded by `go build`). npm ci runs only when
# node_modules is missing or older than package-lock.json; the build itself needs no network.
set -euo pipefail
cd "$(dirname "$0")/../web"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
node build.mjs
