#!/usr/bin/env bash
# tests/report/responsive.sh (make test-report): the report of a small `gad run` laid out at
# 390 px (a phone) and 1366 px (a laptop) in headless Chromium. For each width it writes a
# screenshot (OUT/shot-W.png) and fails unless the report has a viewport meta, the page does
# not scroll sideways and no element overflows the page width (figure grids may scroll
# inside their own box): see measure.html. Chromium is Debian's package, installed here if
# missing; it runs offline (no network is used), with a fresh profile per run, and exits by
# itself (--dump-dom, --screenshot) or is stopped by `timeout`.
# Not part of `make test` (it needs Chromium); .ci/run runs it. Ends "N passed, N failed".
# OUT (default build/report-test), WIDTHS (default "390 1366") and REUSE=1 may be set.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build/report-test}
WIDTHS=${WIDTHS:-"390 1366"}
if ! command -v chromium >/dev/null 2>&1; then
  echo "test-report: installing chromium (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
make -j2 gad >/dev/null
# a small run with both models (every kind of table row and figure), about 30 s of CPU;
# REUSE=1 keeps the run of a previous call (to try CSS changes made to its index.html)
if [ "${REUSE:-0}" != 1 ] || [ ! -f "$OUT/run/index.html" ]; then
  rm -rf "$OUT"
  mkdir -p "$OUT"
  ./gad run --weights weights/resnet18.safetensors,weights/vgg16.safetensors --images 20 --alphas 2,4 \
    --epochs 1 --train-images 32 --out "$OUT/run" --quiet > "$OUT/run.log"
fi
rm -f "$OUT"/shot-*.png "$OUT"/dom-*.html "$OUT/chromium.log"
cp tests/report/measure.html "$OUT/run/measure.html"
url="file://$PWD/$OUT/run/measure.html"
chrome() { # chrome WINDOW_W WINDOW_H ARGS...: one headless Chromium, fresh profile, killed after 120 s
  local ww=$1 wh=$2 ud
  shift 2
  ud=$(mktemp -d)
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$ud" \
    --allow-file-access-from-files --hide-scrollbars --window-size="$ww,$wh" --virtual-time-budget=15000 "$@" \
    2>>"$OUT/chromium.log" || true
  rm -rf "$ud"
}
passed=0 failed=0
for w in $WIDTHS; do
  ww=$(( w < 500 ? 500 : w ))
  chrome "$ww" 1000 --dump-dom "$url?w=$w" > "$OUT/dom-$w.html"
  res=$(grep -o 'RESULT width=[^<]*' "$OUT/dom-$w.html" | head -1 || true)
  if [ -z "$res" ]; then
    echo "FAIL $w px: no measurement (see $OUT/chromium.log)"; failed=$((failed + 1)); continue
  fi
  get() { echo "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  width=$(get width) sw=$(get scrollwidth) h=$(get height) meta=$(get meta) over=$(get overflow)
  boxes=$(get scrolling_boxes) bad=$(get bad)
  shot_h=$(( h > 16000 ? 16000 : h ))
  chrome "$ww" "$shot_h" --screenshot="$PWD/$OUT/shot-$w.png" "$url?w=$w" >/dev/null
  echo "$w px: layout width $width, page width $sw, height $h, viewport meta $meta, overflowing elements $over," \
       "boxes scrolling inside $boxes; screenshot $OUT/shot-$w.png"
  if [ "$width" = "$w" ] && [ "$sw" -le "$w" ] && [ "$meta" = 1 ] && [ "$over" = 0 ] && [ -s "$OUT/shot-$w.png" ]; then
    passed=$((passed + 1))
  else
    echo "FAIL $w px${bad:+: overflowing $bad}"; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
