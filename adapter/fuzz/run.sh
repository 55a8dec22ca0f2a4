#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeded with the shared
# Kapso fixtures in adapter/tests/fixtures (copied into the corpus at run time).
#
#   adapter/fuzz/run.sh 30
#
# FUZZ_RUNS=N instead runs N inputs per target from a fixed seed: the same
# inputs on every machine, so CI passes or fails reproducibly (exploring new
# ground is what the timed runs are for).
#
# Needs only the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags
# (sanitizer, coverage instrumentation), and RUSTC_BOOTSTRAP=1 makes stable
# rustc accept them. Installs cargo-fuzz if it is missing. Crashes are kept
# under adapter/fuzz/artifacts/<target>/; the script exits non-zero on the first.
set -euo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixtures="${KAPSO_FIXTURES:-$here/../tests/fixtures}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd "$here"
for target in $(cargo fuzz list); do
    corpus="$here/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "$fixtures" ]; then
        cp "$fixtures"/*.json "$corpus"/
    else
        echo "no fixtures at $fixtures: starting $target from an empty corpus" >&2
    fi
    # -a: debug assertions (overflow checks) on; -max_len: webhook bodies run to KBs.
    if [ -n "${FUZZ_RUNS:-}" ]; then
        budget=(-runs="$FUZZ_RUNS" -seed=1)
    else
        budget=(-max_total_time="$seconds")
    fi
    echo "== $target: ${budget[*]}"
    cargo fuzz run -a "$target" "$corpus" -- \
        "${budget[@]}" -max_len=16384 -print_final_stats=1
done
