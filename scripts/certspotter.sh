#!/usr/bin/env bash
# Makes sure certspotter, a real RFC 6962 monitor (SSLMate's; 0.16 in
# Debian 12, which reads only the RFC 6962 API), is installed for the
# monitor test (ct-log/tests/rfc6962.rs), and prints the path of its binary
# as the last line of stdout. Idempotent and quiet.
#
#   CERTSPOTTER_BIN="$(scripts/certspotter.sh | tail -n 1)"
#
# Order: $CERTSPOTTER_BIN if it is executable; `certspotter` on PATH; else
# `apt-get install certspotter` from Debian's packages (as root, or through
# passwordless sudo). The package also ships a systemd unit; the tests never
# start it.
set -euo pipefail

die() {
  echo "certspotter.sh: $*" >&2
  exit 1
}

find_bin() {
  if [ -n "${CERTSPOTTER_BIN:-}" ] && [ -x "$CERTSPOTTER_BIN" ]; then
    echo "$CERTSPOTTER_BIN"
    return 0
  fi
  command -v certspotter
}

if found=$(find_bin); then
  echo "$found"
  exit 0
fi

command -v apt-get >/dev/null \
  || die "certspotter not found and apt-get is missing: install certspotter 0.16 and set CERTSPOTTER_BIN to its binary"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "certspotter not found: installing it needs root or sudo"
  sudo=(sudo -n)
fi
echo "certspotter.sh: installing certspotter with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq certspotter; } >"$log" 2>&1; then
  cat "$log" >&2
  die "apt-get install certspotter failed"
fi
found=$(find_bin) || die "certspotter is installed but not on PATH"
echo "$found"
