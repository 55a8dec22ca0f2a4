#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, Rust tests, the README's
# walkthrough, the generated Python and TypeScript SDKs against a live core, and
# the deployment manifests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs one step and says how long it took: where the time goes, on every run.
step() {
  local started=$SECONDS
  "$@"
  echo "test.sh: $1 ${2:-} took $((SECONDS - started)) s"
}

step cargo fmt --all --check
step cargo clippy --workspace --all-targets --locked -- -D warnings
# Also builds target/debug/kapso-core: the core's process tests run the binary.
step cargo test --workspace --locked
# The README's walkthrough, its own commands against `kapso dev`, on those binaries.
step scripts/walkthrough.sh
# kapso-client and the proto crate it depends on package as they would be published
# (cargo package without the verifying build: about a second).
step client-sdk/scripts/check-package.sh
# The SDK tests drive that same binary. (A separate `cargo build -p kapso-core`
# would resolve features for that package alone and rebuild its dependencies.)
step client-sdk/scripts/test-sdks.sh
# The Kubernetes manifests against the schema, and their probes and the dashboard's
# metrics against the binaries the tests just built.
step deploy/check.sh target/debug
