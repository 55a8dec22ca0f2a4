#!/usr/bin/env bash
# The gateway under kapso-loadgen: single events, batches of 10, and
# conversations (each received message followed by the sent, delivered and read
# receipts of a reply), 64 connections, durable SQLite (fsync before every
# 200). Prints throughput, latency percentiles and the RSS of each process.
#
# Usage: tools/bench/bench-gateway.sh [SECONDS] [split]
#   split: run kapso-adapter and kapso-core as two processes (default: kapso-gateway)
# Needs the release build: cargo build --release --bins
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
MODE=${2:-combined}
SECRET=bench-secret-not-real
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export RUST_LOG=warn KAPSO_WEBHOOK_SECRET=$SECRET DATABASE_URL="sqlite://$WORK/gateway.db"
export ADAPTER_LISTEN_ADDR=127.0.0.1:18200 CORE_LISTEN_ADDR=127.0.0.1:15200 CORE_GRPC_URL=http://127.0.0.1:15200
export CORE_METRICS_ADDR=127.0.0.1:19200

wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

if [ "$MODE" = split ]; then
  target/release/kapso-core & CORE=$!
  wait_port 15200
  target/release/kapso-adapter & ADAPTER=$!
  PIDS=(--pid "adapter=$ADAPTER" --pid "core=$CORE")
else
  target/release/kapso-gateway & GATEWAY=$!
  PIDS=(--pid "gateway=$GATEWAY")
fi
wait_port 18200

echo "machine: $(nproc) cores, $(uname -r); mode: $MODE"
for load in "--batch 1" "--batch 10" "--batch 1 --traffic conversation"; do
  # shellcheck disable=SC2086 # $load is several arguments
  target/release/kapso-loadgen --target 127.0.0.1:18200 --concurrency 64 --duration "$SECS" --warmup 2 \
    $load --mix mixed "${PIDS[@]}"
  echo
done
curl -s "http://$CORE_METRICS_ADDR/metrics" | grep -E '^kapso_core_store_commit_batch_size_(sum|count)' || true
