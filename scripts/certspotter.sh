#!/usr/bin/env bash
# Makes sure certspotter, a real RFC 6962 monitor (SSLMate's; 0.16 in
# Debian 12, which reads only the RFC 6962 API), is installed for the
# monitor test (ct-log/tests/rfc6962.rs), and prints the path of its binary
# as the last line of stdout. Idempotent and quiet.
#
#   CERTSPOTTER_BIN="$(scripts/certspotter.sh | tail -n 1)"
#
# Order: $CERTSPOTTER_BIN if it is executable; else `certspotter` on PATH,
# installed from Debian's package when missing (apt-tool.sh: as root, or
# through passwordless sudo). The package also ships a systemd unit; the
# tests never start it.
set -euo pipefail
if [ -n "${CERTSPOTTER_BIN:-}" ] && [ -x "$CERTSPOTTER_BIN" ]; then
  echo "$CERTSPOTTER_BIN"
  exit 0
fi
exec "$(dirname "$0")/apt-tool.sh" certspotter certspotter
