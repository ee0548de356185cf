#!/usr/bin/env bash
# Renders the server's home page in headless Chromium and saves a PNG and
# the rendered DOM, to check by eye that it is readable without JavaScript.
# (ct-log/tests/ops.rs checks the rendered text in CI.)
#
#   scripts/home-screenshot.sh [out.png]     (default: target/home.png)
#
# Starts the development log (testdata/dev.toml) with its data in a temporary
# folder on a free loopback port, submits the dev certificate and
# precertificate so the page shows a non-empty tree, screenshots
# http://127.0.0.1:PORT/, and stops the server. Installs Debian's chromium
# (scripts/apt-tool.sh) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/home.png}"
chromium="$(scripts/apt-tool.sh chromium chromium | tail -n 1)"
cargo build --quiet -p ct-log
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
sed -e 's#^listen = .*#listen = "127.0.0.1:0"#' \
    -e "s#\"../data/#\"$work/#g" \
    -e "s#\"dev/#\"$PWD/testdata/dev/#g" testdata/dev.toml > "$work/dev.toml"
target/debug/ct-log serve --config "$work/dev.toml" --create-missing > "$work/stdout" 2> "$work/stderr" &
server=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/stdout" && break
  sleep 0.1
done
base="$(sed -n 's/^listening on //p' "$work/stdout")"
[ -n "$base" ] || { cat "$work/stderr" >&2; exit 1; }
curl -sf -d @testdata/dev/add-chain.json "$base/dev2026/ct/v1/add-chain" > /dev/null
curl -sf -d @testdata/dev/add-pre-chain.json "$base/dev2026/ct/v1/add-pre-chain" > /dev/null
mkdir -p "$(dirname "$out")"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$work/chromium")
"$chromium" "${flags[@]}" --window-size=1400,1200 --screenshot="$PWD/$out" "$base/" 2> "$work/chromium.log"
"$chromium" "${flags[@]}" --dump-dom "$base/" > "${out%.png}.html" 2>> "$work/chromium.log"
echo "home page rendered to $out, its DOM to ${out%.png}.html"
