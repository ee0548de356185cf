#!/usr/bin/env bash
# Installs Python packages with pip, quietly: a plain install first; an
# "externally managed" system Python (PEP 668) refuses it, so then a user
# install. Shows pip's output only when every try failed. Used by the
# scripts that install what the tests run against (seaweedfs.sh, pkits.sh,
# moto.sh).
#
#   scripts/pip-install.sh 'moto[server]'
set -euo pipefail
command -v python3 >/dev/null || {
  echo "pip-install.sh: python3 not found: it is needed to install $* with pip" >&2
  exit 1
}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for flags in "" "--user" "--user --break-system-packages"; do
  # shellcheck disable=SC2086 # $flags is zero or more words
  if python3 -m pip install --quiet $flags "$@" >"$log" 2>&1; then
    exit 0
  fi
done
cat "$log" >&2
echo "pip-install.sh: pip install $* failed" >&2
exit 1
