#!/usr/bin/env bash
# Side by side in one run: the original FastAPI service (../shared/bench/seed_peer.py,
# in memory and with its durable SQLite step) and the gateway (durable, fsync
# before 200), under the same wrk script posting the same signed deliveries.
#
# Needs: wrk (apt-get install wrk), a Python with fastapi and uvicorn
# (pip install fastapi 'uvicorn[standard]'; set PYTHON to it), and the release
# build (cargo build --release --bin kapso-gateway).
# Usage: tools/bench/bench-peer.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-64}
PYTHON=${PYTHON:-python3}
PEER_DIR=${PEER_DIR:-../shared/bench}
SECRET=bench-secret-not-real
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

# One body per request: the wrk script cycles through the file, and a message id
# seen again is a duplicate the gateway rightly does not store, which is cheaper
# than storing it. 30,000 per second outlasts any run here.
BODIES=${BODIES:-$((SECS * 30000))}
"$PYTHON" "$PEER_DIR/make_signed.py" "$SECRET" "$PEER_DIR/payload_text.json" "$BODIES" "$WORK/signed.tsv"
UVICORN=$(dirname "$(command -v "$PYTHON")")/uvicorn
command -v "$UVICORN" >/dev/null || UVICORN=uvicorn

wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

run_wrk() { # name port
  local out
  # What the previous run left to write back must not land in this run's fsyncs.
  sync
  out=$(WRK_SIGNED="$WORK/signed.tsv" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$PEER_DIR/wrk_webhook.lua" --latency "http://127.0.0.1:$2")
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  printf '%-28s %10s req/s   p99 %-8s non-2xx %s\n' "$1" "$rps" "$p99" "${non2xx:-0}"
  echo "$rps" >"$WORK/$1.rps"
  awk '/requests in/{print $1}' <<<"$out" >"$WORK/$1.requests"
}

start_peer() { # port durable
  (cd "$PEER_DIR" && PEER_DURABLE=$2 PEER_DB="$WORK/peer$2.db" KAPSO_WEBHOOK_SECRET=$SECRET \
    "$UVICORN" seed_peer:app --port "$1" --workers 2 --no-access-log --log-level warning) &
  wait_port "$1"
}

echo "machine: $(nproc) cores, $(uname -r); wrk -t1 -c$CONNS -d${SECS}s"
start_peer 18101 0
run_wrk peer-in-memory 18101
start_peer 18102 1
run_wrk peer-durable 18102
KAPSO_WEBHOOK_SECRET=$SECRET RUST_LOG=warn DATABASE_URL="sqlite://$WORK/gateway.db" \
  ADAPTER_LISTEN_ADDR=127.0.0.1:18103 CORE_LISTEN_ADDR=127.0.0.1:15103 CORE_METRICS_ADDR=off \
  target/release/kapso-gateway &
wait_port 18103
run_wrk gateway-durable 18103

python3 - "$WORK" "$BODIES" <<'PY'
import sqlite3, sys, pathlib
w = pathlib.Path(sys.argv[1])
answered = int((w / "gateway-durable.requests").read_text())
db = sqlite3.connect(f"file:{w / 'gateway.db'}?mode=ro", uri=True)
stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
print(f"gateway stored {stored} events for {answered} answered requests ({sys.argv[2]} distinct bodies)")
g = float((w / "gateway-durable.rps").read_text())
for peer in ("peer-in-memory", "peer-durable"):
    p = float((w / f"{peer}.rps").read_text())
    print(f"gateway / {peer}: {g / p:.1f}x")
PY
