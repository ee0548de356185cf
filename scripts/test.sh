#!/usr/bin/env bash
# Runs the whole test suite, exactly as CI does (.ci/run calls this).
# Needs a Rust toolchain, python3 (to install SeaweedFS, the real
# S3-compatible server the storage tests start) and apt (PostgreSQL, for
# the PostgreSQL lock backend's tests). Tests that use the
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
WEED_BIN="$(scripts/seaweedfs.sh | tail -n 1)"
export WEED_BIN
PG_BIN="$(scripts/postgres.sh | tail -n 1)"
export PG_BIN
cargo test --workspace --locked "$@"
