#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's SUMO (traffic simulation, for the SUMO adapter and
# evaluation tests), Debian's chromium (browser tests of the command center), the web app's npm packages
# (npm ci against web/package-lock.json), python3 and curl for the cluster demo, and the Go modules. Idempotent; run as root (CI) or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-sumo.sh
bash scripts/install-chromium.sh
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm
fi
# python3 and curl: scripts/cluster-demo.sh reads the cluster's JSON status with them.
if ! command -v python3 >/dev/null || ! command -v curl >/dev/null; then
	SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3 curl
fi
(cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
go mod download
