#!/usr/bin/env bash
# Runs the README's walkthrough as written, from the quick start to consuming:
# every ```sh block that follows a `<!-- walkthrough -->` comment, in order, in
# one shell, against `kapso dev` standing in for Kapso. The commands are read
# from README.md each time, so the README and this test cannot drift.
#
# `<!-- walkthrough: wait URL... -->` marks a block that starts servers in the
# background: before the next block, each URL must answer 2xx (bounded).
#
# What differs from a reader's machine, and why:
# - CI builds debug only: `cargo build --release` runs as the debug build
#   `scripts/test.sh` has just made (`cargo test --workspace --no-run`, which
#   builds every binary a test runs and, with the tests' features, rebuilds
#   nothing), and `target/release` reads as `target/debug`.
# - Settings the README leaves at their defaults: the gateway's SQLite file
#   goes to a scratch directory (`DATABASE_URL`), the adapter listens on
#   loopback only (`ADAPTER_LISTEN_ADDR`) and the core's metrics port is off,
#   so nothing is left in the tree, nothing is exposed and no other core
#   collides. Nothing else of the caller's environment reaches the commands
#   but the toolchain's variables.
# After the README's commands it checks what the README says they do.
set -euo pipefail
cd "$(dirname "$0")/.."

# The addresses the README's commands use; taken ones would test something else.
PORTS=(8000 8001 50051)
# Longest wait for the whole walkthrough, the build included.
DEADLINE_SECS=900

for port in "${PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "walkthrough: 127.0.0.1:$port is taken; the README's commands need it free" >&2
        exit 1
    fi
done

work=$(mktemp -d)
log="$work/walkthrough.log"
script="$work/walkthrough.sh"
pgid=""

stop_group() {
    [[ -n $pgid ]] || return 0
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    # The gateway drains for at most 10 s on SIGTERM.
    for _ in $(seq 150); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
}
trap 'stop_group; rm -rf "$work"' EXIT

# The README's blocks, each followed by its waits.
blocks=$(awk '
    /^<!-- walkthrough(: wait [^>]*)? -->$/ {
        waits = $0
        sub(/^<!-- walkthrough(: wait)? ?/, "", waits)
        sub(/ ?-->$/, "", waits)
        marked = NR
        next
    }
    marked && !inside {
        if ($0 != "```sh") {
            printf "README.md:%d: a walkthrough marker must come right before a ```sh block\n", marked > "/dev/stderr"
            exit 1
        }
        inside = 1
        count++
        printf "\n# README block %d (README.md:%d)\n", count, NR
        next
    }
    inside && /^```$/ {
        if (waits != "") print "wait_for " waits
        inside = 0
        marked = 0
        next
    }
    inside { print }
    END {
        if (inside) { print "README.md: a walkthrough block is not closed" > "/dev/stderr"; exit 1 }
        if (count < 5) { printf "README.md: only %d walkthrough blocks\n", count > "/dev/stderr"; exit 1 }
    }
' README.md)
blocks=$(printf '%s\n' "$blocks" | sed -e 's#cargo build --release#cargo test --workspace --locked --no-run#' \
    -e 's#target/release#target/debug#g')

cat >"$script" <<EOF
set -euo pipefail
# Session leader of every process the walkthrough starts: stopped as one group.
echo \$\$ >"$work/pgid"
wait_for() {
    for url; do
        for _ in \$(seq 600); do
            curl -sf -o /dev/null "\$url" && continue 2
            sleep 0.1
        done
        echo "walkthrough: \$url did not answer 2xx within 60 s" >&2
        exit 1
    done
}
eventually() {
    local what=\$1
    shift
    for _ in \$(seq 300); do
        "\$@" && return 0
        sleep 0.1
    done
    echo "walkthrough: \$what" >&2
    exit 1
}
$blocks

# What the README says the commands did.
echo "walkthrough: checking"
conversation=conv_123456789012345_15551234567
eventually "the reply never reached MESSAGE_STATUS_READ" \
    sh -c 'kapso get order-12345-reply | grep -q "\"status\":\"MESSAGE_STATUS_READ\""'
kapso list "\$conversation" >"$work/conversation.jsonl"
for stored in '"text":"Hola, necesito ayuda"' '"id":"wamid.test-1"' '"idempotency_key":"order-12345-reply"'; do
    grep -qF "\$stored" "$work/conversation.jsonl" \
        || { echo "walkthrough: \$conversation has no message with \$stored" >&2; exit 1; }
done
eventually "the billing consumer never printed the customer's next message" \
    grep -q '"event_type":"whatsapp.message.received".*Quiero pagar' "$log"
echo "walkthrough: ok"
EOF

passed=(HOME="$HOME" PATH="$PATH" LANG=C.UTF-8)
while IFS='=' read -r name value; do
    passed+=("$name=$value")
done < <(env | grep -E '^(CARGO_|RUSTUP_|RUSTFLAGS=|RUSTDOCFLAGS=|RUSTC)' || true)

env -i "${passed[@]}" DATABASE_URL="sqlite://$work/kapso-gateway.db" CORE_METRICS_ADDR=off \
    ADAPTER_LISTEN_ADDR=127.0.0.1:8000 \
    setsid --wait bash "$script" >"$log" 2>&1 </dev/null &
runner=$!
status=""
for _ in $(seq $((DEADLINE_SECS * 10))); do
    [[ -z $pgid && -s $work/pgid ]] && pgid=$(cat "$work/pgid")
    if ! kill -0 "$runner" 2>/dev/null; then
        status=0
        wait "$runner" || status=$?
        break
    fi
    sleep 0.1
done
[[ -z $pgid && -s $work/pgid ]] && pgid=$(cat "$work/pgid")

if [[ $status != 0 ]]; then
    cat "$log" >&2
    if [[ -z $status ]]; then
        echo "walkthrough: not done within $DEADLINE_SECS s" >&2
    fi
    echo "walkthrough: FAILED (the commands ran from README.md; output above)" >&2
    exit 1
fi
tail -n 1 "$log"
