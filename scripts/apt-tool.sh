#!/usr/bin/env bash
# Makes sure the command COMMAND is installed, from Debian's package
# PACKAGE when it is missing, and prints its path as the last line of
# stdout. Idempotent and quiet. For the third-party tools the tests run
# against (faketime, certspotter, pebble, ...).
#
#   FAKETIME_BIN="$(scripts/apt-tool.sh faketime faketime | tail -n 1)"
set -euo pipefail
command=$1
package=${2:-$1}

die() {
  echo "apt-tool.sh: $*" >&2
  exit 1
}

if found=$(command -v "$command"); then
  echo "$found"
  exit 0
fi
command -v apt-get >/dev/null || die "$command not found and apt-get is missing: install $package"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "$command not found: installing $package needs root or sudo"
  sudo=(sudo -n)
fi
echo "apt-tool.sh: installing $package with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$package"; } >"$log" 2>&1; then
  cat "$log" >&2
  die "apt-get install $package failed"
fi
command -v "$command" || die "$package is installed but $command was not found"
