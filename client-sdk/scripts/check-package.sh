#!/usr/bin/env bash
# Packages kapso-client and the workspace crates it depends on (the proto crate,
# kapso-signature, kapso-process) as they would be published
# (cargo package, without the verifying build), and checks what went in: complete
# metadata, the .proto files inside the proto crate, nothing of the other SDKs in the
# client's. A few seconds; works offline once the dependencies are in cargo's cache.
#
# Usage: client-sdk/scripts/check-package.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

die() {
  echo "check-package.sh: FAILED: $*" >&2
  exit 1
}

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[[ -n "$version" ]] || die "no workspace version in Cargo.toml"

# All at once: the client's workspace dependencies are not on a registry, so cargo
# resolves each from the package it makes beside it. --allow-dirty: the check is about contents, not git state.
log="$(cargo package -p kapso-gateway-proto -p kapso-signature -p kapso-process -p kapso-client --no-verify --locked --offline --allow-dirty 2>&1)" ||
  die "cargo package failed:
$log"
if grep -q "warning: manifest has no" <<<"$log"; then
  die "incomplete package metadata:
$(grep "warning: manifest has no" <<<"$log")"
fi

listing() { tar -tzf "target/package/$1-$version.crate" | sed "s|^$1-$version/||"; }

proto="$(listing kapso-gateway-proto)"
for file in build.rs kapso/gateway/v1/{content,types,ingest,messaging}.proto; do
  grep -qx "$file" <<<"$proto" || die "kapso-gateway-proto's package lacks $file"
done

client="$(listing kapso-client)"
for file in README.md src/lib.rs examples/ayuda_bot.rs; do
  grep -qx "$file" <<<"$client" || die "kapso-client's package lacks $file"
done
if grep -qE '^(python|typescript|scripts)/' <<<"$client"; then
  die "kapso-client's package holds files of the other SDKs"
fi
grep -q '^version = "'"$version"'"' <(tar -xzOf "target/package/kapso-client-$version.crate" "kapso-client-$version/Cargo.toml" | sed -n '/kapso-gateway-proto/,/^$/p') ||
  die "kapso-client's packaged manifest does not depend on kapso-gateway-proto $version"

echo "check-package.sh: kapso-gateway-proto, kapso-signature, kapso-process and kapso-client $version package cleanly"
