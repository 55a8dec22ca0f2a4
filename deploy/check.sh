#!/usr/bin/env bash
# CI check of deploy/: the Kubernetes manifests against the Kubernetes schema (offline)
# and against the binaries they run (variables, ports, probes, shutdown), and the Grafana
# dashboard's metrics against a scrape of those binaries. The checks are in
# deploy/check.py; this script prepares its Python environment.
#
# Assumes the binaries are built: BIN_DIR (or KAPSO_BIN_DIR) holds kapso-core and
# kapso-adapter; by default target/release when both are there, else target/debug.
# Needs python3 (with venv and pip) and, the first time, the PyPI registry. Uses
# kustomize or kubectl to render the kustomizations when either is installed. Ends with
# `deploy checks: N passed, M failed` and exits non-zero when anything fails.
#
# Usage: deploy/check.sh [BIN_DIR]
set -euo pipefail

deploy_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$deploy_dir/.." && pwd)"
venv="$repo_dir/target/deploy-check/venv"
python="$venv/bin/python"

die() {
  echo "deploy checks: FAILED: $*" >&2
  exit 1
}

[[ $# -le 1 ]] || die "usage: deploy/check.sh [BIN_DIR]"
bin_dir="${1:-${KAPSO_BIN_DIR:-}}"
if [[ -z "$bin_dir" ]]; then
  for candidate in "$repo_dir/target/release" "$repo_dir/target/debug"; do
    if [[ -x "$candidate/kapso-core" && -x "$candidate/kapso-adapter" ]]; then
      bin_dir="$candidate"
      break
    fi
  done
  [[ -n "$bin_dir" ]] ||
    die "no kapso-core and kapso-adapter in target/release or target/debug: run 'cargo build --bins' (or pass BIN_DIR)"
fi
for bin in kapso-core kapso-adapter; do
  [[ -x "$bin_dir/$bin" ]] || die "no executable $bin_dir/$bin"
done
bin_dir="$(cd "$bin_dir" && pwd)"

command -v python3 >/dev/null || die "python3 is not installed"
if [[ ! -x "$python" ]] || ! "$python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
"$python" -m pip install --disable-pip-version-check --quiet -r "$deploy_dir/requirements.txt" ||
  die "pip install -r deploy/requirements.txt failed"

exec "$python" "$deploy_dir/check.py" --repo "$repo_dir" --bin-dir "$bin_dir"
