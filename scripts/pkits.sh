#!/usr/bin/env bash
# Makes sure the NIST PKITS test data is installed, for the path-validation
# tests (crates/validate/tests/pkits.rs), and prints the absolute path of its
# PKITS_data directory as the last line of stdout. Idempotent and quiet.
#
#   PKITS_DIR=$(scripts/pkits.sh | tail -n 1)
#
# The data comes from PyPI's cryptography_vectors (about 125 MB installed), so
# it is read in place and never copied into this repository. Order:
# $PKITS_DIR if it holds the data; an installed cryptography_vectors; else
# `python3 -m pip install --quiet cryptography_vectors`.
set -euo pipefail

die() {
  echo "pkits.sh: $*" >&2
  exit 1
}

# The PKITS_data directory of the installed cryptography_vectors, if any.
installed_pkits() {
  python3 - <<'EOF' 2>/dev/null
import importlib.util, os
spec = importlib.util.find_spec("cryptography_vectors")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit(1)
for location in spec.submodule_search_locations:
    path = os.path.join(location, "x509", "PKITS_data")
    if os.path.isfile(os.path.join(path, "certs", "TrustAnchorRootCertificate.crt")):
        print(os.path.realpath(path))
        raise SystemExit(0)
raise SystemExit(1)
EOF
}

if [ -n "${PKITS_DIR:-}" ] && [ -f "$PKITS_DIR/certs/TrustAnchorRootCertificate.crt" ]; then
  echo "$PKITS_DIR"
  exit 0
fi

if found=$(installed_pkits); then
  echo "$found"
  exit 0
fi

echo "pkits.sh: installing cryptography_vectors with pip" >&2
"$(dirname "$0")/pip-install.sh" cryptography_vectors
found=$(installed_pkits) || die "cryptography_vectors is installed but has no x509/PKITS_data"
echo "$found"
