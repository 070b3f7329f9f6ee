#!/bin/sh
# Renders the demo's review report (HTML) to a PNG in headless Chromium, to look at it as a
# browser draws it. Usage: tests/render-report.sh [OUT.png]   (installs Debian's chromium if missing)
set -eu
out=${1:-review.png}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk; }
cargo build --release -q
# A new demo database records the campaigns' past; quit at once.
printf q | timeout 60 script -qec "target/release/cockpit demo --db $dir/db" /dev/null >/dev/null || true
target/release/cockpit report 618-promo --db "$dir/db" --format html -o "$dir/review.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,3200 \
  --screenshot="$(realpath -m "$out")" "file://$dir/review.html" 2>/dev/null
echo "wrote $out"
