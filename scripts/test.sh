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

# The crates match the diagram: the edge builds no store, its body parser alone
# (what the fuzz targets build, instrumented) no server, and a library user of
# kapso-client builds no CLI. A few seconds: cargo tree resolves, compiles nothing.
# no-proc-macro: prost-derive, a proc macro the client needs, itself uses anyhow.
check_dependencies() {
  # forbidden PATTERN TREE-ARGS...: fails naming the crates of the tree that match.
  forbidden() {
    local pattern="$1" tree found
    shift
    tree="$(cargo tree --locked --prefix none --format '{p}' "$@")" || return 1
    found="$(grep -E "^($pattern) " <<<"$tree" | cut -d' ' -f1,2 | sort -u | tr '\n' ' ' || true)"
    [[ -z "$found" ]] || {
      echo "test.sh: FAILED: cargo tree $*: must not contain $pattern, but has: $found" >&2
      return 1
    }
  }
  forbidden 'kapso-core|rusqlite|tokio-postgres' -p kapso-adapter -e normal
  forbidden 'tonic|axum|hyper|tokio|rustls' -p kapso-adapter --no-default-features -e normal
  forbidden 'clap|anyhow|reqwest' -p kapso-client --no-default-features -e normal,no-proc-macro
}

step cargo fmt --all --check
step check_dependencies
step cargo clippy --workspace --all-targets --locked -- -D warnings
# Also builds target/debug/kapso-core: the core's process tests run the binary.
step cargo test --workspace --locked
# The README's walkthrough, its own commands against `kapso dev`, on those binaries.
step scripts/walkthrough.sh
# kapso-client and the workspace crates it depends on package as they would be published
# (cargo package without the verifying build: about a second).
step client-sdk/scripts/check-package.sh
# The SDK tests drive that same binary. (A separate `cargo build -p kapso-core`
# would resolve features for that package alone and rebuild its dependencies.)
step client-sdk/scripts/test-sdks.sh
# The Kubernetes manifests against the schema, and their probes and the dashboard's
# metrics against the binaries the tests just built.
step deploy/check.sh target/debug
