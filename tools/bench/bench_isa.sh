#!/usr/bin/env bash
# bench_isa.sh: gemm's speed against the fp32 peak for every ISA build gad promises to
# be fast on, with gcc and clang, as markdown table rows for docs/perf.md.
#   tools/bench/bench_isa.sh [ROUNDS] [all]  (from the repository's root; default 3 rounds)
# -O2 is built for native and generic only, unless the second argument is "all".
# Each build (its own build directory under build/isa/) is core only, linked into
# tools/bench/peak.c. Builds this CPU can run are measured (one thread, the thread's CPU
# clock: sgemm 1024^3 and 4096^3 against the peak of the same build); builds it cannot
# run (AVX-512 on a CPU without it) are checked by their code instead: the full
# micro-kernel's loop must hold its accumulators in registers (no stack access), with
# 16 vector FMAs on zmm registers. Not a test; not for CI (minutes of CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
allopt=${2:-}
cpu="$(grep -m1 "model name" /proc/cpuinfo | sed "s/.*: //"), family $(grep -m1 "cpu family" /proc/cpuinfo | sed "s/.*: //") model $(grep -m1 "^model\s" /proc/cpuinfo | sed "s/.*: //")"
has512=$(grep -m1 -c avx512f /proc/cpuinfo || true)
echo "CPU: $cpu; $(date -u +%Y-%m-%d)"
echo
echo "| compiler | ARCH | opt | ISA | peak GFLOP/s | sgemm 1024³ | share | sgemm 4096³ | share |"
echo "|---|---|---|---|---|---|---|---|---|"
for cc in gcc clang; do
  ver=$($cc --version | head -1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1)
  for arch in native x86-64-v3 znver3 generic x86-64-v4 sapphirerapids icelake-server rocketlake; do
    for opt in -O3 -O2; do
      [ "$opt" = -O2 ] && [ "$allopt" != all ] && [ "$arch" != native ] && [ "$arch" != generic ] && continue
      case $arch in generic) flags="" ;; *) flags="-march=$arch" ;; esac
      dir=build/isa/$cc-$arch$opt
      make -s BUILD=$dir CC=$cc ARCH="$flags" OPT=$opt KERNEL_OPT=$opt $dir/peak >/dev/null 2>&1 ||
        { echo "| $cc $ver | $arch | $opt | build failed | | | | | |"; continue; }
      is512=$(echo | $cc $flags -dM -E - | grep -c __AVX512F__ || true)
      if [ "$is512" = 1 ] && [ "$has512" = 0 ]; then
        loop=$(objdump -d --no-show-raw-insn $dir/src/core/gemm.o | awk '/<kernel_full>:/,/ret/')
        fmas=$(echo "$loop" | grep -cE 'vfmadd[0-9]+ps.*zmm' || true)
        stack=$(echo "$loop" | grep -cE '\((%rsp|%rbp)\).*zmm|zmm.*\((%rsp|%rbp)\)' || true)
        echo "| $cc $ver | $arch | $opt | avx512f | not run here | kernel_full: $fmas zmm FMAs, $stack zmm stack accesses | | | |"
        continue
      fi
      out=$(./$dir/peak --rounds "$rounds" --size 1024,4096)
      isa=$(echo "$out" | sed -n 's/^fp32 peak (\([^)]*\)).*/\1/p')
      peak=$(echo "$out" | sed -n 's/^fp32 peak.*: *\([0-9.]*\) GFLOP.*/\1/p')
      g1=$(echo "$out" | sed -n 's/^sgemm 1024.*: *\([0-9.]*\) GFLOP\/s = \([0-9.]*\).*/\1 | \2/p')
      g4=$(echo "$out" | sed -n 's/^sgemm 4096.*: *\([0-9.]*\) GFLOP\/s = \([0-9.]*\).*/\1 | \2/p')
      echo "| $cc $ver | $arch | $opt | $isa | $peak | $g1 | $g4 |"
    done
  done
done
