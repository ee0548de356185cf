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

"$(dirname "$0")/apt-install.sh" certspotter \
  || die "certspotter not found and not installed: install certspotter 0.16 and set CERTSPOTTER_BIN to its binary"
found=$(find_bin) || die "certspotter is installed but not on PATH"
echo "$found"
