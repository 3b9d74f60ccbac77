#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's SUMO (traffic simulation, for the SUMO adapter tests).
# Idempotent; run as root (CI) or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-sumo.sh
