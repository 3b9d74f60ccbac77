#!/usr/bin/env bash
# Installs Debian's chromium for the command-center browser tests (scripts/web-test.sh drives it with
# playwright-core; no browser is downloaded from anywhere else) and a Chinese font (fonts-wqy-microhei: the
# UI and the map's labels in zh-CN, and the Chinese screenshot). Idempotent; run as root (CI) or with sudo.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
want=()
[ -x /usr/bin/chromium ] || want+=(chromium fonts-dejavu-core)
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || want+=(fonts-wqy-microhei)
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
/usr/bin/chromium --version
