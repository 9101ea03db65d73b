#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECS seconds each, two at a time, at
# low priority, with leak detection on. New inputs go to build/fuzz/work/<t> (the
# committed seeds in tests/fuzz/corpus/<t> are only read); crashes, leaks and hangs
# to build/fuzz/art/<t>/; logs to build/fuzz/<t>.log. Ends with one line per target.
#   tests/fuzz/run.sh [SECS] [TARGET...]        (make fuzz first)
set -u
cd "$(dirname "$0")/../.."
secs=${1:-600}; shift || true
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
run() {
  t=$1
  mkdir -p build/fuzz/work/$t build/fuzz/art/$t
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 nice -n 10 build/fuzz/fuzz_$t \
    build/fuzz/work/$t tests/fuzz/corpus/$t -max_total_time=$secs -rss_limit_mb=2048 -timeout=10 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix=build/fuzz/art/$t/ > build/fuzz/$t.log 2>&1
  echo "$t exit $? $(grep -E '^#[0-9]+.*DONE' build/fuzz/$t.log | tail -1) $(ls build/fuzz/art/$t | wc -l) artifacts"
}
set -- $targets
while [ $# -gt 0 ]; do
  run $1 & p1=$!
  if [ $# -gt 1 ]; then run $2 & p2=$!; wait $p2; shift; fi
  wait $p1; shift
done
