#!/usr/bin/env bash
# Installs Eclipse SUMO (Debian packages sumo, sumo-tools) when it is not there yet. Idempotent; needs root
# (or sudo). Used by .ci/run and by developers who want the SUMO integration tests to run instead of skip.
# Everything that runs sumo must export SUMO_HOME=/usr/share/sumo (without it sumo rejects its own XML).
set -euo pipefail
if [ -x /usr/bin/sumo ]; then
	echo "install-sumo: $(/usr/bin/sumo --version 2>/dev/null | head -1) already installed"
	exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q sumo sumo-tools
echo "install-sumo: $(/usr/bin/sumo --version 2>/dev/null | head -1) installed; export SUMO_HOME=/usr/share/sumo"
