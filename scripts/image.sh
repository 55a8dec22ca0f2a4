#!/usr/bin/env bash
# The container image: kapso-gateway, kapso-core, kapso-adapter and the kapso CLI,
# statically linked, in a `FROM scratch` image (the Containerfile at the root), built
# offline from this checkout with podman or docker.
#
# Usage:
#   scripts/image.sh build   compile the binaries, assemble the image's files, build $IMAGE
#   scripts/image.sh test    run $IMAGE as CI does (see `run_test` below); needs root
#                            (a DNS server on 127.0.0.1:53) and PostgreSQL on 127.0.0.1:5432
#
# Environment:
#   IMAGE             the image's name (default kapso-gateway:latest)
#   CONTAINER_ENGINE  podman or docker (default: podman when installed, else docker)
# The binaries come from cargo's `image` profile (Cargo.toml); cargo's own variables
# change it, e.g. CARGO_PROFILE_IMAGE_OPT_LEVEL=3 for speed over size.
#
# Why the binaries need nothing from the image:
#   - glibc is linked in (`-C target-feature=+crt-static`). The explicit --target keeps
#     build scripts and proc-macros dynamic, as the compiler must load them.
#   - Names resolve through glibc's own getaddrinfo, which every outbound connection
#     uses (the Kapso API, the adapter's channel to the core, PostgreSQL, the CLI).
#     Since glibc 2.34 its `files` and `dns` sources are part of the C library, the
#     static one included, so a static binary loads no NSS module: it reads /etc/hosts,
#     then the servers in /etc/resolv.conf, both of which every container runtime
#     provides. `build` refuses an older glibc; `test` resolves names both ways
#     inside the image.
#   - TLS roots are compiled in (webpki-roots: reqwest's rustls-tls, and
#     `sslrootcert=system` for PostgreSQL), so the image holds no CA bundle. `build`
#     refuses to go on when a crate that reads the system's CA store is linked.
#
# On the CI machine (a sandboxed VM; podman 4.3 and runc from Debian:
# `apt-get install -y podman runc`), podman runs containers with
#   - runc, the OCI runtime installed there (`--runtime runc` whenever runc is);
#   - a containers.conf holding `default_ulimits = []`: podman otherwise sets each
#     container's open-file limit to 1048576, above the hard limit even root gets
#     there ("error setting rlimit type 7: operation not permitted"). This script
#     points CONTAINERS_CONF at scripts/image/containers.conf unless it is set;
#   - `--network=host`, which `test` uses with either engine: the CLI outside the
#     containers reaches them on 127.0.0.1, and no bridge network is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-kapso-gateway:latest}"
TARGET=x86_64-unknown-linux-gnu
# Where cargo puts the binaries of the `image` profile for $TARGET.
BIN_DIR="target/$TARGET/image"
BINARIES=(kapso-gateway kapso-core kapso-adapter kapso)
# The image's user, as the Containerfile's USER and the manifests' runAsUser.
APP_UID=65532
DATA_DIR=/var/lib/kapso
# Crates that read the system's CA store, which the image does not ship.
SYSTEM_ROOTS='^(rustls-native-certs|openssl-probe|native-tls|rustls-platform-verifier) '
# The fake secret of `test`'s webhooks.
SECRET=test-secret-not-real
# Seconds `stop` waits before SIGKILL; a stop within it exits 0.
GRACE=20

die() {
  echo "image: FAILED: $*" >&2
  exit 1
}

choose_engine() {
  ENGINE="${CONTAINER_ENGINE:-}"
  if [[ -z "$ENGINE" ]]; then
    if command -v podman >/dev/null; then
      ENGINE=podman
    elif command -v docker >/dev/null; then
      ENGINE=docker
    else
      die "neither podman nor docker is installed (Debian: apt-get install -y podman runc)"
    fi
  fi
  [[ "$ENGINE" == podman || "$ENGINE" == docker ]] ||
    die "CONTAINER_ENGINE must be podman or docker, not $ENGINE"
  command -v "$ENGINE" >/dev/null || die "$ENGINE is not installed"
  # A read-only root, /tmp included: podman mounts a tmpfs there unless told not to.
  RUN_FLAGS=(--network=host --read-only)
  if [[ "$ENGINE" == podman ]]; then
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/image/containers.conf}"
    RUN_FLAGS+=(--read-only-tmpfs=false)
    if command -v runc >/dev/null; then RUN_FLAGS+=(--runtime runc); fi
  fi
}

# --- build -------------------------------------------------------------------------

check_glibc() {
  local version major minor
  version="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
  [[ -n "$version" ]] || die "not a glibc system: the static build needs glibc 2.34 or later"
  major="${version%%.*}"
  minor="${version#*.}"
  minor="${minor%%.*}"
  ((major > 2 || (major == 2 && minor >= 34))) ||
    die "glibc $version: before 2.34, a static binary loads NSS modules to resolve names, and a scratch image has none; build on glibc 2.34 or later"
}

check_no_system_roots() {
  local found
  found="$(cargo tree --workspace --locked -e normal --target "$TARGET" \
    --prefix none --format '{p}' | grep -E "$SYSTEM_ROOTS" | sort -u || true)"
  [[ -z "$found" ]] ||
    die "these crates read the system's CA store, which the image does not ship (use webpki-roots, or add a CA bundle to the image): $found"
}

# The image's files as one archive with their owners and modes: the binaries, the
# user, /tmp, and the data directory, the only one the user owns.
assemble() {
  local context="$1" bins="$2"
  local root="$context/rootfs"
  rm -rf "$context"
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root$DATA_DIR"
  for bin in "${BINARIES[@]}"; do
    install -m 0755 "$bins/$bin" "$root/usr/local/bin/$bin"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nkapso:x:%s:%s:kapso-gateway:%s:/sbin/nologin\n' \
    "$APP_UID" "$APP_UID" "$DATA_DIR" >"$root/etc/passwd"
  printf 'root:x:0:\nkapso:x:%s:\n' "$APP_UID" >"$root/etc/group"
  # /etc/hosts first, then DNS: written down rather than left to the C library's
  # default, which older glibc orders the other way round.
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root$DATA_DIR"
  # Fixed owners and times: the same binaries give the same layer.
  local common=(--numeric-owner --mtime=@0 --sort=name -C "$root")
  tar -cf "$context/rootfs.tar" --owner=0 --group=0 "${common[@]}" \
    --exclude=".$DATA_DIR" ./etc ./tmp ./usr ./var
  tar -rf "$context/rootfs.tar" --owner="$APP_UID" --group="$APP_UID" "${common[@]}" ".$DATA_DIR"
  rm -rf "$root"
}

build() {
  check_glibc
  check_no_system_roots
  local flags=()
  for bin in "${BINARIES[@]}"; do flags+=(--bin "$bin"); done
  echo "image: cargo build --profile image --target $TARGET, glibc linked statically"
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile image --target "$TARGET" "${flags[@]}"
  assemble target/image-context "$BIN_DIR"
  "$ENGINE" build --file Containerfile --tag "$IMAGE" target/image-context
  echo "image: built $IMAGE with $ENGINE, $(image_size) bytes"
}

image_size() {
  "$ENGINE" image inspect --format '{{.Size}}' "$IMAGE"
}

# --- test --------------------------------------------------------------------------

# What `test` checks, with the image and the kapso CLI built beside it:
#  1. the image: user 65532:65532, exactly the files `assemble` puts there (no shell);
#  2. kapso-gateway, the default command, on a read-only root with a volume for its
#     data: a webhook signed and sent by the CLI from outside is stored and read back
#     with `kapso get`; `stop -t $GRACE` (SIGTERM) ends it with exit code 0, not by
#     SIGKILL; a new container on the same volume still has the message;
#  3. the two halves apart, and names resolved inside the image: kapso-core on
#     PostgreSQL at a name from /etc/hosts, kapso-adapter reaching that core by a
#     name from /etc/hosts, and the CLI inside the image reaching the core by a name
#     only a DNS server in its resolv.conf knows.
run_test() {
  "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE: run scripts/image.sh build"
  CLI="$BIN_DIR/kapso"
  [[ -x "$CLI" ]] || die "no $CLI: run scripts/image.sh build"
  command -v curl >/dev/null || die "curl is not installed"
  command -v psql >/dev/null || die "psql is not installed (Debian: apt-get install -y postgresql-client)"
  WORK="$(mktemp -d)"
  RUN_ID="kapso-image-check-$$"
  CONTAINERS=()
  trap cleanup EXIT
  check_image
  check_gateway
  check_halves
  echo "image: all checks passed ($IMAGE, $(image_size) bytes)"
}

cleanup() {
  local status=$?
  set +e
  if ((status != 0)); then
    for name in "${CONTAINERS[@]}"; do
      echo "--- logs of $name" >&2
      "$ENGINE" logs "$name" >&2 2>&1 || true
    done
  fi
  # -v: with the anonymous volume each got for the image's VOLUME.
  for name in "${CONTAINERS[@]}"; do "$ENGINE" rm -f -v "$name" >/dev/null 2>&1 || true; done
  "$ENGINE" volume rm -f "$RUN_ID" >/dev/null 2>&1 || true
  [[ -n "${DNS_PID:-}" ]] && kill "$DNS_PID" 2>/dev/null
  [[ -n "${PG_DB:-}" ]] && psql_admin -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
  return "$status"
}

ok() { echo "  ok    $*"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a detached container NAME from the image with the given run arguments.
start() {
  local name="$RUN_ID-$1"
  shift
  CONTAINERS+=("$name")
  "$ENGINE" run --detach --name "$name" "${RUN_FLAGS[@]}" "$@" >/dev/null
}

# Waits up to 30 s for URL to answer 200 while container NAME runs.
wait_ok() {
  local name="$RUN_ID-$1" url="$2"
  for _ in $(seq 120); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    [[ "$("$ENGINE" inspect --format '{{.State.Running}}' "$name")" == true ]] ||
      die "$name exited before $url answered"
    sleep 0.25
  done
  die "$url did not answer 200 within 30 s"
}

# Stops container NAME with SIGTERM; exit code 0 means it ended within $GRACE s on its own.
stop_cleanly() {
  local name="$RUN_ID-$1" code
  "$ENGINE" stop -t "$GRACE" "$name" >/dev/null
  code="$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$name")"
  [[ "$code" == 0 ]] || die "$name exited $code on SIGTERM (137: killed after $GRACE s)"
  ok "$1 stops on SIGTERM within $GRACE s with exit code 0"
}

check_image() {
  echo "== the image"
  local user files expected
  user="$("$ENGINE" image inspect --format '{{.Config.User}}' "$IMAGE")"
  [[ "$user" == "$APP_UID:$APP_UID" ]] || die "image user is '$user', not $APP_UID:$APP_UID"
  ok "runs as $APP_UID:$APP_UID"
  "$ENGINE" create --name "$RUN_ID-files" "$IMAGE" >/dev/null
  CONTAINERS+=("$RUN_ID-files")
  # Owner, mode and path of every entry but what the engine itself adds at create time.
  files="$("$ENGINE" export "$RUN_ID-files" | tar -tv --numeric-owner |
    awk '{sub(/\/$/, "", $6); print $2, $1, $6}' |
    grep -Ev ' (dev|proc|sys|run)(/|$)| etc/(hosts|hostname|resolv\.conf|mtab)$| (\.|\.dockerenv)?$' | sort)"
  expected="$(
    cat <<EOF
0/0 -rw-r--r-- etc/group
0/0 -rw-r--r-- etc/nsswitch.conf
0/0 -rw-r--r-- etc/passwd
0/0 -rwxr-xr-x usr/local/bin/kapso
0/0 -rwxr-xr-x usr/local/bin/kapso-adapter
0/0 -rwxr-xr-x usr/local/bin/kapso-core
0/0 -rwxr-xr-x usr/local/bin/kapso-gateway
0/0 drwxr-xr-x etc
0/0 drwxr-xr-x usr
0/0 drwxr-xr-x usr/local
0/0 drwxr-xr-x usr/local/bin
0/0 drwxr-xr-x var
0/0 drwxr-xr-x var/lib
0/0 drwxrwxrwt tmp
$APP_UID/$APP_UID drwx------ ${DATA_DIR#/}
EOF
  )"
  expected="$(sort <<<"$expected")"
  [[ "$files" == "$expected" ]] || die "the image's files differ from the expected ones:
$(diff <(echo "$expected") <(echo "$files") || true)"
  ok "holds the four binaries, /etc/passwd, group and nsswitch.conf, /tmp and $DATA_DIR (owned by $APP_UID), nothing else"
}

check_gateway() {
  echo "== kapso-gateway, SQLite on a volume"
  local web core out
  web="$(free_port)"
  core="$(free_port)"
  "$ENGINE" volume create "$RUN_ID" >/dev/null
  local args=(--volume "$RUN_ID:$DATA_DIR"
    --env "KAPSO_WEBHOOK_SECRET=$SECRET"
    --env "ADAPTER_LISTEN_ADDR=127.0.0.1:$web"
    --env "CORE_LISTEN_ADDR=127.0.0.1:$core"
    --env CORE_METRICS_ADDR=off
    "$IMAGE")
  start gateway "${args[@]}"
  wait_ok gateway "http://127.0.0.1:$web/readyz"
  ok "kapso-gateway (the default command) is ready"
  "$CLI" webhook send adapter/tests/fixtures/received_text.json --secret "$SECRET" \
    --url "http://127.0.0.1:$web/api/whatsapp/webhook" >"$WORK/send.out" ||
    die "the webhook was not stored: $(cat "$WORK/send.out")"
  ok "a signed webhook sent by the kapso CLI is stored"
  out="$("$CLI" --core-url "127.0.0.1:$core" get wamid.123)"
  grep -q '"wamid.123"' <<<"$out" || die "kapso get did not find the message: $out"
  ok "kapso get reads it back"
  stop_cleanly gateway
  start gateway-again "${args[@]}"
  wait_ok gateway-again "http://127.0.0.1:$web/readyz"
  out="$("$CLI" --core-url "127.0.0.1:$core" get wamid.123)"
  grep -q '"wamid.123"' <<<"$out" || die "the message did not survive a restart on the volume: $out"
  ok "a new container on the same volume still has it"
  stop_cleanly gateway-again
}

psql_admin() {
  psql "${KAPSO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -v ON_ERROR_STOP=1 -qAt "$@"
}

check_halves() {
  echo "== kapso-core on PostgreSQL and kapso-adapter, names resolved in the image"
  local web core out
  web="$(free_port)"
  core="$(free_port)"
  PG_DB="kapso_image_check_$$"
  psql_admin -c "CREATE DATABASE $PG_DB" >/dev/null ||
    die "PostgreSQL is required at 127.0.0.1:5432 (or KAPSO_TEST_POSTGRES_URL)"
  start core --add-host pg.kapso.test:127.0.0.1 \
    --env "DATABASE_URL=postgres://postgres@pg.kapso.test:5432/$PG_DB" \
    --env "CORE_LISTEN_ADDR=127.0.0.1:$core" --env CORE_METRICS_ADDR=off \
    "$IMAGE" kapso-core
  start adapter --add-host core.kapso.test:127.0.0.1 \
    --env "CORE_GRPC_URL=http://core.kapso.test:$core" \
    --env "ADAPTER_LISTEN_ADDR=127.0.0.1:$web" --env "KAPSO_WEBHOOK_SECRET=$SECRET" \
    "$IMAGE" kapso-adapter
  # Ready: the adapter reached the core by name, and the core wrote to PostgreSQL.
  wait_ok adapter "http://127.0.0.1:$web/readyz"
  ok "kapso-core reaches PostgreSQL at pg.kapso.test, kapso-adapter the core at core.kapso.test (/etc/hosts)"
  "$CLI" webhook send adapter/tests/fixtures/received_text.json --secret "$SECRET" \
    --url "http://127.0.0.1:$web/api/whatsapp/webhook" >"$WORK/send.out" ||
    die "the webhook was not stored: $(cat "$WORK/send.out")"
  ok "a signed webhook goes through kapso-adapter into kapso-core"

  python3 scripts/image/dns_server.py 53 dns.kapso.test=127.0.0.1 >"$WORK/dns.log" 2>&1 &
  DNS_PID=$!
  for _ in $(seq 40); do grep -q ready "$WORK/dns.log" && break; sleep 0.25; done
  grep -q ready "$WORK/dns.log" || die "the DNS server did not start on 127.0.0.1:53: $(cat "$WORK/dns.log")"
  echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
  for name in dns.kapso.test hosts.kapso.test; do
    out="$("$ENGINE" run --rm "${RUN_FLAGS[@]}" --add-host hosts.kapso.test:127.0.0.1 \
      --volume "$WORK/resolv.conf:/etc/resolv.conf:ro" \
      "$IMAGE" kapso --core-url "http://$name:$core" get wamid.123)" ||
      die "kapso in the image could not reach the core at $name: $out"
    grep -q '"wamid.123"' <<<"$out" || die "kapso get in the image did not find the message: $out"
  done
  grep -q 'query dns.kapso.test type 1' "$WORK/dns.log" || die "the DNS server was not asked"
  ok "kapso in the image reaches the core at dns.kapso.test, a name only the DNS server knows"
  # The DNS server answers NXDOMAIN for it: found only if /etc/hosts comes first.
  ! grep -q 'hosts.kapso.test' "$WORK/dns.log" || die "hosts.kapso.test was asked of DNS before /etc/hosts"
  ok "and at hosts.kapso.test from /etc/hosts, which is read before DNS"
  stop_cleanly adapter
  stop_cleanly core
}

case "${1:-}" in
  build)
    choose_engine
    build
    ;;
  test)
    choose_engine
    run_test
    ;;
  *) die "usage: scripts/image.sh build|test" ;;
esac
