#!/usr/bin/env bash
# CI entry point of the Python and TypeScript SDKs: installs their pinned tools, generates
# both from proto/, and runs each SDK's tests against a real kapso-core whose Kapso API is a
# fake (fake_kapso.py), each suite on its own fresh core and fake.
#
# Assumes the core is built (`cargo build -p kapso-core`); KAPSO_CORE_BIN overrides
# target/debug/kapso-core. Needs python3 (with venv and pip), node 20+ and npm, and the
# PyPI and npm registries; no system protoc. Exits non-zero when anything fails.
#
# Usage: client-sdk/scripts/test-sdks.sh [python|typescript]...   (default: both)
set -euo pipefail

sdk_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "$sdk_dir/.." && pwd)"
core_bin="${KAPSO_CORE_BIN:-$repo_dir/target/debug/kapso-core}"
venv="$repo_dir/target/client-sdk/venv"
python="$venv/bin/python"

# Obviously fake values: the fake Kapso API checks the core sends this key.
fake_api_key="test-token-not-real"
phone_number_id="123456789012345"

die() {
  echo "test-sdks.sh: FAILED: $*" >&2
  exit 1
}
step() { echo "==> $*"; }

suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(python typescript)
for suite in "${suites[@]}"; do
  [[ "$suite" == python || "$suite" == typescript ]] || die "unknown suite '$suite' (python or typescript)"
done

# --- tools -----------------------------------------------------------------------------
for tool in python3 node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "node 20 or newer is needed, found $(node --version)"
[[ -x "$core_bin" ]] || die "no kapso-core at $core_bin: run 'cargo build -p kapso-core' (or set KAPSO_CORE_BIN)"
[[ "$core_bin" == /* ]] || core_bin="$PWD/$core_bin"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/kapso-sdk-test.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    echo "test-sdks.sh: logs kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Python tools ($venv)"
if [[ ! -x "$python" ]] || ! "$python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
"$python" -m pip install --disable-pip-version-check --quiet -r "$sdk_dir/python/requirements.txt"

step "TypeScript tools (npm ci)"
(cd "$sdk_dir/typescript" && npm ci --no-audit --no-fund --loglevel=error)

step "generate"
PYTHON="$python" "$sdk_dir/scripts/generate.sh" python typescript

step "build TypeScript"
(cd "$sdk_dir/typescript" && npx --no-install tsc -p tsconfig.json)

# --- the fake Kapso API and the core ------------------------------------------------------
free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive_or_die() {
  local pid=$1 name=$2 log=$3
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "--- $log" >&2
    tail -n 40 "$log" >&2 || true
    die "$name exited early"
  fi
}

# Starts a fake Kapso API and a core on a fresh database; sets core_addr and fake_log.
start_environment() {
  local name=$1 dir="$scratch/$1"
  mkdir -p "$dir"
  fake_log="$dir/kapso-requests.jsonl"
  "$python" "$sdk_dir/scripts/fake_kapso.py" --port-file "$dir/fake.port" --log "$fake_log" \
    --api-key "$fake_api_key" >"$dir/fake-kapso.log" 2>&1 &
  fake_pid=$!
  pids+=("$fake_pid")
  for _ in $(seq 100); do
    [[ -s "$dir/fake.port" ]] && break
    alive_or_die "$fake_pid" "fake Kapso API" "$dir/fake-kapso.log"
    sleep 0.1
  done
  [[ -s "$dir/fake.port" ]] || die "fake Kapso API did not start"
  local fake_port core_port
  fake_port="$(cat "$dir/fake.port")"
  core_port="$(free_port)"
  core_addr="127.0.0.1:$core_port"

  CORE_LISTEN_ADDR="$core_addr" \
    DATABASE_URL="sqlite://$dir/core.db" \
    KAPSO_API_BASE_URL="http://127.0.0.1:$fake_port" \
    KAPSO_API_TOKEN="$fake_api_key" \
    KAPSO_PHONE_NUMBER_ID="$phone_number_id" \
    "$core_bin" >"$dir/core.log" 2>&1 &
  core_pid=$!
  pids+=("$core_pid")

  # Ready when GetMessage answers NOT_FOUND: the gRPC server and the store both work.
  local ready=""
  for _ in $(seq 150); do
    alive_or_die "$core_pid" "kapso-core" "$dir/core.log"
    if PYTHONPATH="$sdk_dir/python/src" "$python" - "$core_addr" <<'EOF' 2>/dev/null; then
import sys, grpc
from kapso.gateway.v1 import messaging_pb2, messaging_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    try:
        messaging_pb2_grpc.MessagingStub(channel).GetMessage(
            messaging_pb2.GetMessageRequest(message_id="readiness-probe"), timeout=1)
    except grpc.RpcError as error:
        sys.exit(0 if error.code() == grpc.StatusCode.NOT_FOUND else 1)
EOF
      ready=yes
      break
    fi
    sleep 0.2
  done
  if [[ -z "$ready" ]]; then
    tail -n 40 "$dir/core.log" >&2 || true
    die "kapso-core did not become ready on $core_addr"
  fi
  echo "    kapso-core ready on $core_addr, fake Kapso API on 127.0.0.1:$fake_port"
}

stop_environment() {
  kill "$core_pid" "$fake_pid" 2>/dev/null || true
  wait "$core_pid" "$fake_pid" 2>/dev/null || true
}

# --- the suites -----------------------------------------------------------------------
run_python() {
  (cd "$sdk_dir/python" &&
    KAPSO_CORE_ADDR="$core_addr" FAKE_KAPSO_LOG="$fake_log" KAPSO_CORE_BIN="$core_bin" \
      "$python" -m pytest -v -rs -p no:cacheprovider)
}

run_typescript() {
  (cd "$sdk_dir/typescript" &&
    KAPSO_CORE_ADDR="$core_addr" FAKE_KAPSO_LOG="$fake_log" \
      node --test dist/test/*.test.js)
}

failed=()
for suite in "${suites[@]}"; do
  step "$suite SDK tests"
  start_environment "$suite"
  if "run_$suite"; then
    echo "    $suite: ok"
  else
    failed+=("$suite")
    echo "--- kapso-core log ($suite), last lines" >&2
    tail -n 30 "$scratch/$suite/core.log" >&2 || true
  fi
  stop_environment
done

echo "SDK suites: ${#suites[@]} run, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}, ${SECONDS}s"
[[ ${#failed[@]} -eq 0 ]] || die "SDK tests failed: ${failed[*]}"
