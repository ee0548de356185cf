#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) are installed,
# for the PostgreSQL lock tests (crates/storage/tests/locks.rs), and prints
# the directory holding them as the last line of stdout. Idempotent and
# quiet; it does not start a server (each test starts its own).
#
#   PG_BIN="$(scripts/postgres.sh | tail -n 1)"
#
# Order: $PG_BIN if it holds initdb and postgres; the newest
# /usr/lib/postgresql/<version>/bin (Debian, Ubuntu); `pg_config --bindir`;
# else `apt-get install postgresql` from Debian's packages (as root, or
# through passwordless sudo).
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

has_server() {
  [ -x "$1/initdb" ] && [ -x "$1/postgres" ]
}

find_bin() {
  if [ -n "${PG_BIN:-}" ] && has_server "$PG_BIN"; then
    echo "$PG_BIN"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if has_server "$dir"; then
      echo "$dir"
      return 0
    fi
  done
  if command -v pg_config >/dev/null && dir=$(pg_config --bindir 2>/dev/null) && has_server "$dir"; then
    echo "$dir"
    return 0
  fi
  return 1
}

if found=$(find_bin); then
  echo "$found"
  exit 0
fi

command -v apt-get >/dev/null \
  || die "PostgreSQL not found and apt-get is missing: install PostgreSQL and set PG_BIN to the directory holding initdb and postgres"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "PostgreSQL not found: installing it needs root or sudo"
  sudo=(sudo -n)
fi
echo "postgres.sh: installing postgresql with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq postgresql; } >"$log" 2>&1; then
  cat "$log" >&2
  die "apt-get install postgresql failed"
fi
found=$(find_bin) || die "postgresql is installed but its initdb and postgres were not found"
echo "$found"
