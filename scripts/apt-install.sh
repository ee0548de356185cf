#!/usr/bin/env bash
# Installs Debian packages for the test scripts (postgres.sh,
# certspotter.sh): `apt-get update` then `apt-get install`, as root or
# through passwordless sudo, quietly; on failure it prints apt's output and
# exits non-zero.
#
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail

die() {
  echo "apt-install.sh: $*" >&2
  exit 1
}

command -v apt-get >/dev/null || die "apt-get is missing: install $* by hand"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "installing $* needs root or sudo"
  sudo=(sudo -n)
fi
echo "apt-install.sh: installing $* with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$@"; } >"$log" 2>&1; then
  cat "$log" >&2
  die "apt-get install $* failed"
fi
