#!/usr/bin/env bash
# Installs Debian's chromium for the command-center browser tests (scripts/web-test.sh drives it with
# playwright-core; no browser is downloaded from anywhere else). Idempotent; run as root (CI) or with sudo.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
