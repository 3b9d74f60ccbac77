#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png of the command center from the real binary with the demo city.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/web-build.sh
${GO:-go} build -o bin/citybrain ./cmd/citybrain
cd web
CITYBRAIN_BIN="$PWD/../bin/citybrain" node test/screenshots.mjs "$PWD/../docs/screenshots"
