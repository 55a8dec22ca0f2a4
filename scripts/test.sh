#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, Rust tests, the README's
# walkthrough, the generated Python and TypeScript SDKs against a live core, and
# the deployment manifests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Also builds target/debug/kapso-core: the core's process tests run the binary.
cargo test --workspace --locked
# The README's walkthrough, its own commands against `kapso dev`, on those binaries.
scripts/walkthrough.sh
# kapso-client and the proto crate it depends on package as they would be published
# (cargo package without the verifying build: about a second).
client-sdk/scripts/check-package.sh
# The SDK tests drive that same binary. (A separate `cargo build -p kapso-core`
# would resolve features for that package alone and rebuild its dependencies.)
client-sdk/scripts/test-sdks.sh
# The Kubernetes manifests against the schema, and their probes and the dashboard's
# metrics against the binaries the tests just built.
deploy/check.sh target/debug
