#!/usr/bin/env bash
# How ingest cost grows with the stored history: single-event webhooks against an
# empty store and against one holding EVENTS events, same build, same run.
#
#   1. an empty store: kapso-loadgen, single events, 64 connections, SECONDS
#   2. a second store filled to at least EVENTS with 30 s runs of batches of 10 (not measured)
#   3. the filled store, after a restart of the gateway: the same load as 1
#   4. another empty store, the same load again (drift of the machine during the run)
#
# Ends with the full store's rate as a share of the empty stores' mean, and the bytes
# the gateway wrote to the disk per event in each.
#
# Usage: tools/bench/bench-history.sh [EVENTS] [SECONDS]   (defaults 5000000 and 10)
# Needs the release build (cargo build --release --bins), python3 (to count events and compare the runs)
# and about 1.6 KB of disk per event (8 GB for 5 M) under $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${1:-5000000}
SECS=${2:-10}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export RUST_LOG=warn KAPSO_WEBHOOK_SECRET=bench-secret-not-real
export ADAPTER_LISTEN_ADDR=127.0.0.1:18300 CORE_LISTEN_ADDR=127.0.0.1:15300 CORE_METRICS_ADDR=off
TARGET=127.0.0.1:18300

wait_port() { for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

start() {
  DATABASE_URL="sqlite://$WORK/$1.db" target/release/kapso-gateway & GATEWAY=$!
  wait_port 18300
}

stop() { kill "$GATEWAY"; wait "$GATEWAY" || true; }

stored() {
  python3 - "$WORK/$1.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT coalesce(max(sequence), 0) FROM events").fetchone()[0])
EOF
}

# measure NAME LABEL: one run; its report, ending in a line of JSON, is also kept as $WORK/NAME.out.
measure() {
  echo "== $2"
  target/release/kapso-loadgen --target "$TARGET" --concurrency 64 --duration "$SECS" --warmup 2 \
    --batch 1 --mix mixed --pid "gateway=$GATEWAY" --json | tee "$WORK/$1.out"
}

echo "machine: $(nproc) cores, $(uname -r)"
start empty && measure empty "empty store" && stop

start history
while [ "$(stored history)" -lt "$EVENTS" ]; do
  target/release/kapso-loadgen --target "$TARGET" --concurrency 64 --duration 30 --warmup 0 \
    --batch 10 --mix mixed >/dev/null
  echo "filling: $(stored history) events stored" >&2
done
stop
start history
measure history "store holding $(stored history) events ($(du -sh "$WORK/history.db" | cut -f1))"
stop

start empty-again && measure empty-again "empty store, again" && stop

# The target compares the full store with the empty ones' mean: the machine may drift during the run.
python3 - "$WORK"/{empty,history,empty-again}.out <<'EOF'
import json, sys
empty, full, again = (json.loads(open(path).read().splitlines()[-1]) for path in sys.argv[1:])
def mean_of_empty(key): return (empty[key] + again[key]) / 2
print(f"full store: {100 * full['deliveries_per_s'] / mean_of_empty('deliveries_per_s'):.0f}% of the empty stores' mean (target: at least 80%)")
key = "written_kib_per_event_gateway"
if all(key in run for run in (empty, full, again)):
    print(f"disk writes: {full[key]:.1f} KiB per event against {mean_of_empty(key):.1f} for the empty stores")
EOF
