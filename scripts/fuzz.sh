#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and prints the
# executions each one reached. Exits non-zero if any target finds a crash,
# a hang or an out-of-memory input, or does not build.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh chain precert_tbs
#   CI=1 scripts/fuzz.sh            # CI: every target, 15 s each
#
# Environment: FUZZ_SECONDS per target (default 60, or 15 when CI is set);
# FUZZ_SANITIZER (default "none": the code under test is safe Rust, and a
# sanitizer build needs a nightly std; "address" works where one is
# available).
#
# cargo-fuzz needs nightly-only rustc flags. With only a stable toolchain,
# RUSTC_BOOTSTRAP=1 lets stable accept them (set here). cargo-fuzz itself
# is installed with `cargo install cargo-fuzz --locked` when missing.
#
# Corpora: fuzz/corpus/<target>/ holds the small committed seeds
# (regression-* inputs that once found a bug); the growing working corpus
# lives in fuzz/target/corpus/<target>/ (not in git). Seeds are also made
# at each run from testdata/dev and, when present, ../shared/vectors (read
# in place, never copied into the repository). Crashes land in
# fuzz/artifacts/<target>/; the log also shows them in base64, since a CI
# machine's files are gone once the job ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ -n "${CI:-}" ]; then
  seconds=${FUZZ_SECONDS:-15}
else
  seconds=${FUZZ_SECONDS:-60}
fi
sanitizer=${FUZZ_SANITIZER:-none}
all_targets=(add_chain_body chain precert_tbs tile_path checkpoint tile_leaves)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi
# fuzz/ is not a workspace member, so `cargo test --locked` never checks
# its lock file, and cargo-fuzz has no --locked: check it here.
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz/Cargo.lock is out of date: cargo update --workspace --manifest-path fuzz/Cargo.toml" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$root/fuzz/target"
seeds="$root/fuzz/target/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"

# Seed inputs made from the project's dev PKI and the shared vectors.
python3 - "$root" "$seeds" <<'PY'
import base64, json, os, re, struct, sys
root, seeds = sys.argv[1], sys.argv[2]
def put(target, name, data):
    d = os.path.join(seeds, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)
def frame(chain):
    return b"".join(struct.pack(">H", len(c)) + c for c in chain)
def pem_certs(path):
    text = open(path).read()
    return [base64.b64decode("".join(b.split())) for b in
            re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)]
bodies = [os.path.join(root, "testdata/dev", f) for f in ("add-chain.json", "add-pre-chain.json")]
vectors = os.path.join(root, "..", "shared", "vectors")
if os.path.isdir(vectors):
    bodies += [os.path.join(vectors, f) for f in ("add-chain.json", "add-pre-chain.json")]
for i, path in enumerate(bodies):
    if not os.path.exists(path): continue
    body = open(path, "rb").read()
    put("add_chain_body", f"body-{i}", body)
    chain = [base64.b64decode(c) for c in json.loads(body)["chain"]]
    put("chain", f"chain-{i}", frame(chain))
if os.path.isdir(vectors):
    for f in ("preissuer-chain.pem", "real-precert-with-eku.pem"):
        p = os.path.join(vectors, f)
        if os.path.exists(p):
            certs = pem_certs(p)
            if f == "real-precert-with-eku.pem":
                certs += pem_certs(os.path.join(vectors, "real-precert-intermediate.pem"))
            put("chain", f"pem-{f}", frame(certs))
    tiles = os.path.join(vectors, "navigli2025h2", "tile", "data")
    for dirpath, _, files in os.walk(tiles):
        for f in files:
            data = open(os.path.join(dirpath, f), "rb").read()
            if data[:2] == b"\x1f\x8b":
                import gzip; data = gzip.decompress(data)
            # Mode byte 0 (raw tile); keep the seeds small: first 8 entries' worth.
            put("tile_leaves", "navigli-" + f.replace("/", "_"), b"\x00" + data[:64 * 1024])
            break
for p in ("tile/0/000", "tile/1/x001/x234/067.p/255", "tile/data/x999/000", "tile/63/000.p/1"):
    put("tile_path", p.replace("/", "_"), p.encode())
put("checkpoint", "empty", b"\x00")
put("precert_tbs", "empty", b"\x00")
PY

# Names each input libFuzzer saved, how to replay it, and (if small) its
# bytes in base64.
report_artifacts() {
  local t=$1 log=$2 file
  grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to //' |
    while read -r file; do
      echo "!! input: $file" >&2
      echo "!! replay: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer -O $t $file" >&2
      if [ -f "$file" ] && [ "$(wc -c <"$file")" -le 65536 ]; then
        echo "!! base64: $(base64 -w0 "$file")" >&2
      fi
    done
}

cargo fuzz build --sanitizer "$sanitizer" -O
summary=()
status=0
for t in "${targets[@]}"; do
  work="$root/fuzz/target/corpus/$t"
  mkdir -p "$work" "$root/fuzz/corpus/$t" "$root/fuzz/artifacts/$t"
  corpora=("$work" "$root/fuzz/corpus/$t")
  [ -d "$seeds/$t" ] && corpora+=("$seeds/$t")
  log="$root/fuzz/target/$t.log"
  echo "== $t: ${seconds}s" >&2
  # -timeout: one input taking 10 s is a hang (libFuzzer's default, 20
  # minutes, would outlast the whole run).
  if ! cargo fuzz run --sanitizer "$sanitizer" -O "$t" "${corpora[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1; then
    status=1
    echo "!! $t FAILED, see $log and fuzz/artifacts/$t/" >&2
    grep -m1 -A3 'panicked' "$log" >&2 || tail -20 "$log" >&2
    report_artifacts "$t" "$log"
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  summary+=("$(printf '%-16s %12s execs  %s' "$t" "${execs:-?}" "$cov")")
done
echo
echo "fuzzed ${seconds}s per target (sanitizer: $sanitizer)"
printf '%s\n' "${summary[@]}"
exit $status
