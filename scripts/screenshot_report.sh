#!/usr/bin/env bash
# Documented visual check of the report: render reports/index.html in headless Chromium
# (Debian package `chromium`) and write reports/screenshot.png to look at.
# Usage: bash scripts/screenshot_report.sh [reports/index.html] [out.png]
set -euo pipefail
page=$(realpath "${1:-reports/index.html}")
out=$(realpath -m "${2:-reports/screenshot.png}")
command -v chromium >/dev/null || { echo "needs chromium: apt-get install chromium" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1300,2400 --screenshot="$out" "file://$page" \
  >/dev/null 2>&1
echo "wrote $out"
