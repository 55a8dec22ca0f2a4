#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, Rust tests, and the
# generated Python and TypeScript SDKs against a live core.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The SDK tests drive the real core binary (debug build, reused from above).
cargo build -p kapso-core --bin kapso-core --locked
client-sdk/scripts/test-sdks.sh
