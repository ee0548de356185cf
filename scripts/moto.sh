#!/usr/bin/env bash
# Makes sure moto's server `moto_server` is installed, for the web-identity
# credentials test (crates/storage/tests/credentials.rs, which uses it as a
# local STS), and prints its absolute path as the last line of stdout.
# Idempotent and quiet; it does not start a server.
#
#   MOTO_BIN=$(scripts/moto.sh | tail -n 1)
#
# Order: $MOTO_BIN if it is executable; the console script of an installed
# `moto` with its server extras; else `python3 -m pip install --quiet
# 'moto[server]'` (about 60 packages, a minute or two).
set -euo pipefail

die() {
  echo "moto.sh: $*" >&2
  exit 1
}

# Where pip put moto_server, if moto and its server extras are installed.
installed_moto() {
  python3 - <<'PY' 2>/dev/null
import importlib.metadata as m, os
import flask, flask_cors  # the server extras
try:
    files = m.distribution("moto").files or []
except m.PackageNotFoundError:
    raise SystemExit(1)
for f in files:
    if f.name == "moto_server":
        p = os.path.realpath(f.locate())
        if os.path.isfile(p) and os.access(p, os.X_OK):
            print(p)
            raise SystemExit(0)
raise SystemExit(1)
PY
}

if [ -n "${MOTO_BIN:-}" ] && [ -x "$MOTO_BIN" ]; then
  echo "$MOTO_BIN"
  exit 0
fi

if found=$(installed_moto); then
  echo "$found"
  exit 0
fi

echo "moto.sh: installing moto[server] with pip" >&2
"$(dirname "$0")/pip-install.sh" 'moto[server]'
found=$(installed_moto) || die "moto[server] is installed but its moto_server was not found"
echo "$found"
