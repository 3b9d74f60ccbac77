#!/usr/bin/env bash
# CityBrain on a NATS cluster, on this machine with real processes (docs/scale-out.md):
# a 3-node NATS cluster (`citybrain nats`), 2 ingest, 3 engine and 2 api nodes, the demo city (`citybrain sim`)
# feeding the ingest nodes over NATS (their queue group shares the input), and a viewer on each api node.
#
#   scripts/cluster-demo.sh            run until Ctrl-C; prints the map URL of each api node
#   scripts/cluster-demo.sh --short    the CI form: feed ~20 s, SIGKILL an engine node, wait until every
#                                      partition is owned again and caught up, check both api nodes show the
#                                      same event count as the log holds, then stop everything (exit 1 on failure)
#
# Environment: BIN (default bin/citybrain, built if missing), PARTITIONS (6), DISTRICT_RES (7), KEEP=1 keeps
# the temp directory with every process's log.
set -euo pipefail
cd "$(dirname "$0")/.."
SHORT=0
[[ "${1:-}" == "--short" ]] && SHORT=1
BIN=${BIN:-bin/citybrain}
PARTITIONS=${PARTITIONS:-6}
DISTRICT_RES=${DISTRICT_RES:-7}
if [[ ! -x "$BIN" ]]; then
	mkdir -p "$(dirname "$BIN")"
	go build -o "$BIN" ./cmd/citybrain
fi
DIR=$(mktemp -d -t citybrain-cluster-XXXXXX)
PIDS=()
stop_pids() { # TERM, then KILL what is still running after 10 s
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
cleanup() {
	# CityBrain nodes first (engines store their snapshots on the way out), the NATS nodes last.
	stop_pids "${PIDS[@]:3}"
	stop_pids "${PIDS[@]:0:3}"
	if [[ "${KEEP:-0}" == 1 ]]; then echo "logs kept in $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT INT TERM

# A free loopback port (nothing answers on it).
used=" "
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ "$used" == *" $p "* ]] && continue
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then used+="$p "; echo "$p"; return; fi
	done
}
start() { # name, then the command
	local name=$1; shift
	"$@" >"$DIR/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_${name//-/_}=$!"
}
waitfor() { # url, what
	for _ in $(seq 300); do
		curl -fs "$1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "cluster-demo: $2 did not come up ($1); logs in $DIR" >&2
	KEEP=1
	exit 1
}

# 1. Three NATS nodes with JetStream, routed to each other.
for i in 1 2 3; do eval "NC$i=$(freeport) NR$i=$(freeport)"; done
ROUTES="nats://127.0.0.1:$NR1,nats://127.0.0.1:$NR2,nats://127.0.0.1:$NR3"
for i in 1 2 3; do
	c=NC$i r=NR$i
	start "nats$i" "$BIN" nats --name "n$i" --listen "127.0.0.1:${!c}" --cluster "127.0.0.1:${!r}" --routes "$ROUTES" --store "$DIR/nats$i"
done
NATS="nats://127.0.0.1:$NC1,nats://127.0.0.1:$NC2,nats://127.0.0.1:$NC3"
COMMON=(--nats "$NATS" --partitions "$PARTITIONS" --district-res "$DISTRICT_RES" --replicas 3 --snapshot-every 5s --lease-ttl 3s)

# 2. Nodes: 2 ingest, 3 engine, 2 api.
declare -A HTTP
for n in ingest1 ingest2 engine1 engine2 engine3 api1 api2; do HTTP[$n]=$(freeport); done
for n in ingest1 ingest2 engine1 engine2 engine3 api1 api2; do
	start "$n" "$BIN" run --role "${n%[0-9]}" --node "$n" --http "127.0.0.1:${HTTP[$n]}" --data "$DIR/$n" "${COMMON[@]}"
done
for n in ingest1 ingest2 engine1 engine2 engine3 api1 api2; do waitfor "http://127.0.0.1:${HTTP[$n]}/api/v1/cluster" "$n"; done

# 3. The demo city, published to the cluster's NATS (citybrain.in.*: the ingest nodes' queue group).
SIM=(sim --to "nats://127.0.0.1:$NC1" --seed 7)
if [[ $SHORT == 1 ]]; then SIM+=(--speed 20 --duration 6m); else SIM+=(--speed 1); fi
start sim "$BIN" "${SIM[@]}"

cluster() { curl -fs "http://127.0.0.1:${HTTP[api1]}/api/v1/cluster"; }
owned_caught_up() { # prints "owned caughtup" counts
	cluster | python3 -c 'import json,sys; c=json.load(sys.stdin); p=c["partition_status"]; print(sum(1 for r in p if r["owner"]), sum(1 for r in p if r["owner"] and r["caught_up"] and r["lag"]==0))'
}
for _ in $(seq 150); do
	read -r owned caught < <(owned_caught_up || echo "0 0")
	[[ "$owned" == "$PARTITIONS" && "$caught" == "$PARTITIONS" ]] && break
	sleep 0.2
done
echo "cluster-demo: NATS $NATS"
for n in api1 api2; do echo "cluster-demo: viewer on $n: http://127.0.0.1:${HTTP[$n]}/ (status /api/v1/cluster)"; done
cluster | python3 -c 'import json,sys; c=json.load(sys.stdin); [print("  partition %2d owner %-8s caught_up %s lag %d events %d" % (r["partition"], r["owner"], r["caught_up"], r["lag"], r["events"])) for r in c["partition_status"]]'

if [[ $SHORT == 0 ]]; then
	echo "cluster-demo: running; Ctrl-C stops every process"
	wait "${PIDS[0]}"
	exit 0
fi

# Short form: let the city run, kill an engine node under load, measure failover.
sleep 15
victim=engine2
eval "vp=\$PID_$victim"
t0=$(date +%s%N)
kill -KILL "$vp"
wait "$vp" 2>/dev/null || true
echo "cluster-demo: $(date +%T.%N | cut -c1-12) SIGKILL $victim (pid $vp)"
ok=0
for _ in $(seq 150); do
	if cluster | python3 -c '
import json,sys
c=json.load(sys.stdin); v=sys.argv[1]
p=c["partition_status"]
sys.exit(0 if all(r["owner"] and r["owner"]!=v and r["caught_up"] and r["lag"]==0 for r in p) else 1)' "$victim" 2>/dev/null; then
		ok=1
		break
	fi
	sleep 0.1
done
t1=$(date +%s%N)
if [[ $ok != 1 ]]; then echo "cluster-demo: FAIL: partitions not owned again within 15 s" >&2; KEEP=1; exit 1; fi
echo "cluster-demo: every partition owned again and caught up $(( (t1 - t0) / 1000000 )) ms after the kill"
kill -TERM "$PID_sim" 2>/dev/null || true
wait "$PID_sim" 2>/dev/null || true
# Every acknowledged event is reflected once: both api nodes show the log's count.
sleep 3
for n in api1 api2; do
	for _ in $(seq 100); do
		ev=$(curl -fs "http://127.0.0.1:${HTTP[$n]}/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_reflected"])')
		acc=$(for i in ingest1 ingest2; do curl -fs "http://127.0.0.1:${HTTP[$i]}/metrics"; done | awk '/^citybrain_ingest_events_total/ {s+=$2} END {print s+0}')
		[[ "$ev" == "$acc" ]] && break
		sleep 0.2
	done
	echo "cluster-demo: $n shows $ev events; the ingest nodes acknowledged $acc"
	if [[ "$ev" != "$acc" ]]; then echo "cluster-demo: FAIL: $n differs" >&2; KEEP=1; exit 1; fi
done
echo "cluster-demo: ok"
