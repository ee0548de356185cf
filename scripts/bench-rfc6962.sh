#!/usr/bin/env bash
# The RFC 6962 read API against the static tile reads of the same data
# (BENCHMARKS.md, "RFC 6962 read API"), all on 127.0.0.1:
#  1. builds ct-log and ct-loadgen (release) and generates real chains;
#  2. fills an fs log with BENCH_ENTRIES entries through add-chain
#     (ct-loadgen run), the server pinned to core BENCH_SERVER_CPU;
#  3. wrk (one thread, 64 connections, BENCH_READ_SECONDS each, on core
#     BENCH_LOADGEN_CPU) over the first 100 full tiles, hot in the read
#     cache: tile/data/N against get-entries of the same 256 entries;
#     tile/0/N against get-sth-consistency, get-proof-by-hash and
#     get-entry-and-proof at random sizes and leaves;
#  4. submissions at BENCH_RATE/s alone, then with wrk's get-entries burst
#     at the same time: what a burst of reads costs the write path.
# Needs wrk (apt-get install -y wrk). Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${BENCH_DIR:-/tmp/ct-bench-rfc6962}
ENTRIES=${BENCH_ENTRIES:-30000}
RATE=${BENCH_RATE:-1000}
SECONDS_READ=${BENCH_READ_SECONDS:-10}
SECONDS_WRITE=${BENCH_WRITE_SECONDS:-15}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOADGEN_CPU=${BENCH_LOADGEN_CPU:-1}
OUT="$WORK/results"
rm -rf "$WORK/log" "$OUT"
mkdir -p "$WORK/log" "$OUT"

say() { echo "== $*" >&2; }
die() {
  echo "bench-rfc6962.sh: $*" >&2
  exit 1
}
command -v wrk >/dev/null || die "wrk is needed: apt-get install -y wrk"
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true' EXIT

say "building (release)"
cargo build --release --locked -p ct-log -p ct-loadgen >&2
CTLOG="$ROOT/target/release/ct-log"
LOADGEN="$ROOT/target/release/ct-loadgen"
# The log's NotAfter window is this UTC year: a log is read-only once
# not_after_limit + sunset_grace_days has passed, so a fixed window would
# make every later run fail. The chains' NotAfter falls in the same year
# (chains made before New Year's midnight are made again).
YEAR=$(date -u +%Y)
for set in fill write; do
  count=$ENTRIES
  [ "$set" = write ] && count=$((RATE * SECONDS_WRITE * 3))
  if [ -z "$(find "$WORK/chains-$set-$count/chains.bin" -mmin -1440 -newermt "$YEAR-01-01 00:00:00 UTC" 2>/dev/null)" ]; then
    say "generating $count chains ($set)"
    "$LOADGEN" generate --out "$WORK/chains-$set-$count" --count "$count" --not-after-year "$YEAR" >&2
  fi
done
FILL="$WORK/chains-fill-$ENTRIES"
WRITE="$WORK/chains-write-$((RATE * SECONDS_WRITE * 3))"
cat "$FILL/roots.pem" "$WRITE/roots.pem" >"$WORK/roots.pem"
KEY="$WORK/log-key.pem"
[ -s "$KEY" ] || "$CTLOG" keygen --out "$KEY" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT/bench"
cat >"$WORK/log/ct-log.toml" <<EOF
listen = "127.0.0.1:$PORT"
lock_db = "$WORK/log/lock.db"

[[log]]
name = "bench"
submission_prefix = "$BASE"
monitoring_prefix = "$BASE"
key = "$KEY"
roots = "$WORK/roots.pem"
not_after_start = "$YEAR-01-01T00:00:00Z"
not_after_limit = "$((YEAR + 1))-01-01T00:00:00Z"
storage = { type = "fs", path = "$WORK/log/data" }
EOF
taskset -c "$SERVER_CPU" "$CTLOG" serve --config "$WORK/log/ct-log.toml" --create-missing \
  >"$WORK/log/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -sf "$BASE/ct/v1/get-sth" >/dev/null && break
  sleep 0.1
done

say "filling the log with $ENTRIES entries through add-chain"
taskset -c "$LOADGEN_CPU" "$LOADGEN" run --url "$BASE" --chains "$FILL/chains.bin" \
  --concurrency 3000 --duration 600 --label fill >&2
sleep 2
SIZE=$(curl -sf "$BASE/ct/v1/get-sth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree_size"])')
[ "$SIZE" -ge 25600 ] || die "the log holds $SIZE entries; 100 full tiles need 25600"
say "the log holds $SIZE entries"

# Request lists for wrk: the first 100 full tiles and what RFC 6962
# clients ask about the same 25,600 entries.
python3 - "$BASE" "$SIZE" "$OUT" <<'EOF'
import base64, hashlib, json, random, sys, urllib.request
base, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
path = base.split("/", 3)[3]
random.seed(6962)
def write(name, lines):
    with open(f"{out}/{name}.paths", "w") as f:
        f.write("".join(f"/{path}/{l}\n" for l in lines))
def index_path(n):
    s = f"{n % 1000:03d}"
    while n >= 1000:
        n //= 1000
        s = f"x{n % 1000:03d}/{s}"
    return s
write("data-tiles", [f"tile/data/{index_path(n)}" for n in range(100)])
write("hash-tiles", [f"tile/0/{index_path(n)}" for n in range(100)])
write("get-entries", [f"ct/v1/get-entries?start={n * 256}&end={n * 256 + 255}" for n in range(100)])
pairs = []
for _ in range(10000):
    second = random.randint(2, 25600)
    pairs.append(f"ct/v1/get-sth-consistency?first={random.randint(1, second - 1)}&second={second}")
write("get-sth-consistency", pairs)
hashes, leaves = [], random.sample(range(25600), 2000)
for index in leaves:
    with urllib.request.urlopen(f"{base}/ct/v1/get-entries?start={index}&end={index}") as r:
        leaf = base64.b64decode(json.load(r)["entries"][0]["leaf_input"])
    h = base64.b64encode(hashlib.sha256(b"\0" + leaf).digest()).decode()
    hashes.append(f"ct/v1/get-proof-by-hash?hash={h.replace('+', '%2B').replace('/', '%2F')}&tree_size={size}")
write("get-proof-by-hash", hashes)
write("get-entry-and-proof", [f"ct/v1/get-entry-and-proof?leaf_index={i}&tree_size={size}" for i in leaves])
EOF

# wrk_list NAME: wrk over $OUT/NAME.paths, in turn; one line of results.
wrk_list() {
  local name=$1
  printf '%s\n' \
    'local paths = {}' \
    "for line in io.lines(\"$OUT/$name.paths\") do paths[#paths + 1] = line end" \
    'local i = 0' \
    'request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end' \
    'done = function(summary, latency, requests)' \
    '  io.write(string.format("RESULT %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, %.1f MB/s\n",' \
    '    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,' \
    '    latency:percentile(99) / 1000, summary.errors.status + summary.errors.read,' \
    '    summary.bytes / (summary.duration / 1e6) / 1e6))' \
    'end' >"$OUT/$name.lua"
  # Once through to warm the read cache, then measured.
  taskset -c "$LOADGEN_CPU" wrk -t1 -c8 -d2s -s "$OUT/$name.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1 || true
  taskset -c "$LOADGEN_CPU" wrk -t1 -c64 -d"${SECONDS_READ}s" -s "$OUT/$name.lua" "http://127.0.0.1:$PORT" \
    >"$OUT/$name.wrk" 2>&1 || true
  echo "$name: $(grep RESULT "$OUT/$name.wrk" | sed 's/RESULT //')"
}

echo "Machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Reads, hot (wrk -t1 -c64 -d${SECONDS_READ}s on core $LOADGEN_CPU, ct-log on core $SERVER_CPU, tree of $SIZE):"
for name in data-tiles get-entries hash-tiles get-sth-consistency get-proof-by-hash get-entry-and-proof; do
  wrk_list "$name"
done

# write_run LABEL OFFSET: submissions at RATE/s for SECONDS_WRITE s.
write_run() {
  taskset -c "$LOADGEN_CPU" "$LOADGEN" run --url "$BASE" --chains "$WRITE/chains.bin" \
    --rate "$RATE" --duration "$SECONDS_WRITE" --warmup 2 --offset "$2" \
    --server-pid "$SERVER_PID" --label "$1" --json-out "$OUT/$1.json" >/dev/null 2>&1
  python3 - "$OUT/$1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_s"]
print(f"{r['label']}: {r['accepted_per_s']:.0f} accepted/s, p50 {l['p50']:.3f} s, p99 {l['p99']:.3f} s, "
      f"server CPU {100 * (r['server_cpu_utilization'] or 0):.0f}%, statuses {r['statuses']}")
EOF
}
echo "Submissions at $RATE/s (${SECONDS_WRITE} s, after 2 s), alone and beside a get-entries burst:"
write_run writes-alone 0
taskset -c "$LOADGEN_CPU" wrk -t1 -c64 -d"$((SECONDS_WRITE + 4))s" -s "$OUT/get-entries.lua" \
  "http://127.0.0.1:$PORT" >"$OUT/burst.wrk" 2>&1 &
WRK_PID=$!
write_run writes-beside-get-entries $((RATE * SECONDS_WRITE * 3 / 2))
wait "$WRK_PID" || true
echo "get-entries burst meanwhile: $(grep RESULT "$OUT/burst.wrk" | sed 's/RESULT //')"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^ct_requests_(refused_total|in_flight)' || true
