#!/usr/bin/env bash
# Generates the Python and TypeScript client code from proto/ (the contract).
#
# Idempotent: each run deletes the previous output and writes it anew. The
# output is gitignored; run this after every change to proto/ and before
# testing an SDK in its tree. The packages generate the same code themselves
# when built (the Python build step in setup.py, the TypeScript prepack).
#
#   Python:     grpcio-tools (bundles protoc) -> client-sdk/python/src/kapso/gateway/v1/
#   TypeScript: @grpc/proto-loader's proto-loader-gen-types -> client-sdk/typescript/src/generated/
#               plus a copy of the .proto files in client-sdk/typescript/proto/, which the
#               client loads at run time.
#
# Needs the pinned tools installed first (test-sdks.sh does both):
#   python -m pip install -r client-sdk/python/requirements.txt   (PYTHON selects the interpreter)
#   (cd client-sdk/typescript && npm ci)
#
# Usage: client-sdk/scripts/generate.sh [python|typescript]...   (default: both)
set -euo pipefail

sdk_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "$sdk_dir/.." && pwd)"
proto_root="$repo_dir/proto"
default_venv="$repo_dir/target/client-sdk/venv"

die() {
  echo "generate.sh: $*" >&2
  exit 1
}

proto_files() {
  (cd "$proto_root" && find kapso -name '*.proto' | LC_ALL=C sort)
}

generate_python() {
  local python="${PYTHON:-}"
  if [[ -z "$python" ]]; then
    if [[ -x "$default_venv/bin/python" ]]; then
      python="$default_venv/bin/python"
    else
      python="python3"
    fi
  fi
  python="$(command -v "$python")" || die "no Python interpreter '${PYTHON:-python3}'"
  # Absolute, since protoc runs from inside proto/ (not resolved: a venv's python is a symlink).
  [[ "$python" == /* ]] || python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
  "$python" -c 'import grpc_tools.protoc' 2>/dev/null ||
    die "grpcio-tools is missing for $python: pip install -r client-sdk/python/requirements.txt"

  local out="$sdk_dir/python/src"
  rm -rf "$out/kapso"
  mkdir -p "$out"
  local files
  mapfile -t files < <(proto_files)
  # grpc_tools.protoc brings protoc and the well-known types; -I names the one import root.
  (cd "$proto_root" && "$python" -m grpc_tools.protoc -I . \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${files[@]}")
  echo "generated Python code in ${out#"$repo_dir"/}/kapso/gateway/v1"
}

generate_typescript() {
  local ts_dir="$sdk_dir/typescript"
  local gen="$ts_dir/node_modules/.bin/proto-loader-gen-types"
  [[ -x "$gen" ]] || die "proto-loader-gen-types is missing: run 'npm ci' in client-sdk/typescript"
  command -v node >/dev/null || die "node is not installed"

  rm -rf "$ts_dir/src/generated" "$ts_dir/proto"
  mkdir -p "$ts_dir/proto"
  cp -R "$proto_root/kapso" "$ts_dir/proto/"
  local files
  mapfile -t files < <(proto_files)
  # The options must match the loader options the client passes to protoLoader.loadSync.
  (cd "$ts_dir/proto" && "$gen" --grpcLib=@grpc/grpc-js --outDir="$ts_dir/src/generated" \
    --includeDirs=. --keepCase --longs=String --enums=String --defaults --oneofs \
    "${files[@]}" >/dev/null)
  echo "generated TypeScript types in ${ts_dir#"$repo_dir"/}/src/generated"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(python typescript)
for target in "${targets[@]}"; do
  case "$target" in
    python) generate_python ;;
    typescript) generate_typescript ;;
    *) die "unknown target '$target' (python or typescript)" ;;
  esac
done
