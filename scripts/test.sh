#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, Rust tests, and the
# generated Python and TypeScript SDKs against a live core.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
if [ -x client-sdk/scripts/test-sdks.sh ]; then
  client-sdk/scripts/test-sdks.sh
fi
