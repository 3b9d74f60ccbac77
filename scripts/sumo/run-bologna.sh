#!/usr/bin/env bash
# Runs the Bologna "Andrea Costa" SUMO scenario for a short span and writes CityBrain's SUMO inputs:
#   OUT/fcd.xml      floating car data with WGS84 coordinates (--fcd-output.geo true)
#   OUT/e1.xml       e1 induction loop readings, one <interval> per detector and period
#   OUT/detectors.add.xml  the detector definitions (lane + pos) that position the readings
#   OUT/net.xml      the network (symlink into the read-only data dir)
#   OUT/sumo.log, OUT/tripinfos.xml, OUT/elapsed_s (wall seconds of the sumo run)
#
# usage: run-bologna.sh OUT_DIR [END_S=300] [E1_PERIOD_S=60]
# The data dir is $CITYBRAIN_DATA, else ../shared/data relative to the repository root. The scenario dir is
# read-only and its detectors write file="e1_output.xml" next to themselves with freq=1800, so the scenario is
# copied into OUT/scenario and the detector file rewritten (period, absolute output path).
set -euo pipefail
OUT=${1:?usage: run-bologna.sh OUT_DIR [END_S] [E1_PERIOD_S]}
END=${2:-300}
PERIOD=${3:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${CITYBRAIN_DATA:-$ROOT/../shared/data}
SRC=$DATA/sumo/bologna-acosta
export SUMO_HOME=${SUMO_HOME:-/usr/share/sumo}
command -v sumo >/dev/null || { echo "run-bologna: sumo is not installed (scripts/install-sumo.sh)" >&2; exit 2; }
[ -f "$SRC/run.sumocfg" ] || { echo "run-bologna: scenario missing: $SRC/run.sumocfg" >&2; exit 2; }

mkdir -p "$OUT/scenario"
OUT=$(cd "$OUT" && pwd)
cp -f "$SRC"/*.xml "$SRC"/run.sumocfg "$OUT/scenario/"
chmod u+w "$OUT/scenario"/*
sed -i -e "s|freq=\"[0-9.]*\"|freq=\"$PERIOD\"|g" -e "s|file=\"[^\"]*\"|file=\"$OUT/e1.xml\"|g" \
	"$OUT/scenario/acosta_detectors.add.xml"
cp -f "$OUT/scenario/acosta_detectors.add.xml" "$OUT/detectors.add.xml"
ln -sf "$OUT/scenario/acosta_buslanes.net.xml" "$OUT/net.xml"

start=$(date +%s.%N)
sumo -c "$OUT/scenario/run.sumocfg" --begin 0 --end "$END" \
	--fcd-output "$OUT/fcd.xml" --fcd-output.geo true \
	--tripinfo-output "$OUT/tripinfos.xml" --log "$OUT/sumo.log" --no-step-log true \
	--no-warnings true --duration-log.statistics true >/dev/null
end=$(date +%s.%N)
elapsed=$(echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end - $start)")
printf '%.2f\n' "$elapsed" > "$OUT/elapsed_s"
echo "run-bologna: ${END} simulated s in $(cat "$OUT/elapsed_s") s wall; outputs in $OUT" >&2
