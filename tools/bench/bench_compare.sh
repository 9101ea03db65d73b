#!/bin/bash
# bench_compare: gad against PyTorch on this machine, same cases, same threads,
# interleaved (gad, PyTorch under each environment, gad again, case group by case
# group, so a change in machine load hits both), then a table of the ratios. Each
# engine gets two process runs per case (gad before and after PyTorch, PyTorch under
# its two environments) and is scored by its better one: this VM's neighbours
# sometimes take a core for seconds, which halves whichever run it hits.
#
#   tools/bench/bench_compare.sh [--threads N] [--model vgg16|resnet18|sgemm|gad|all]
#                          [--size S] [--batch B] [--min-time SEC] [--out DIR]
#                          [--settle SEC] [--repeats R]
#
# Each pass runs until it has taken --min-time seconds (or R timed runs, default 256,
# gad bench's most), in both engines, and reports the median. The engines' own cap of
# 20 runs timed a 1024^3 sgemm over a quarter of a second, shorter than the machine's
# slow and fast stretches (docs/perf.md).
#
# Settling: after a process (either engine) whose peak RSS passed 3 GiB, the next run
# waits --settle seconds (default 60). Measured here: after PyTorch's vgg16 224x224
# batch 8 training step (4.3 GB), every process ran up to a third slower for about a
# minute (the host's memory monitor, kdamond, at work), which hit whichever engine
# came next, gad's resnet18 32x32 runs most.
#
# PyTorch (tools/bench/bench_torch.py, /usr/bin/python3) runs under these environments and
# the best of them is the figure compared against:
#   as-is          the environment as given (skipped when it sets none of the
#                  OpenBLAS variables, as it is then the same as the next one)
#   auto           OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: OpenBLAS picks its
#                  kernels for this CPU (AVX-512 where it has them)
#   auto+malloc    as auto, with glibc keeping freed memory and huge pages:
#                  MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
#                  MALLOC_TOP_PAD_=1073741824 GLIBC_TUNABLES=glibc.malloc.hugetlb=1
# Core-to-core latency: before each gad run the log shows build/pingpong's round trip
# of a cache line between the two threads. It is 50-110 ns most of the time here and
# 350-530 ns in stretches of a minute or so (seen after PyTorch's 4.3 GB vgg16 training
# step), in which gad's two-thread ResNet passes lose up to a third of their speed (the
# same binary: resnet18 224x224 batch 1 forward 50 images/s at 54-112 ns, 36 at 343-531).
# Also measured: the fp32 peak (build/peak) to state sgemm as a fraction of it, and
# the peak RSS of vgg16 224x224 batch 8 forward + input gradient, each engine in a
# process of its own. Raw JSON lines are kept in DIR (default build/bench).
# Needs: make, /usr/bin/python3 with torch + torchvision, and OpenBLAS (Debian's
# libopenblas0-pthread) for PyTorch's matrix products: without it PyTorch falls back
# to the reference BLAS, the comparison would flatter gad, and the script refuses.
# Not for: CI (minutes of full-machine load); correctness.
set -euo pipefail
cd "$(dirname "$0")/../.."

CMDLINE="tools/bench/bench_compare.sh $*"
THREADS=$(nproc)
MODEL=all
SIZE=0
BATCH=0
MIN_TIME=1
REPEATS=256
OUT=build/bench
SETTLE=60
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_compare: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
# gad bench takes 1-256 runs; a run that fails leaves its case out of the table
case "$REPEATS" in
'' | *[!0-9]*) echo "bench_compare: --repeats '$REPEATS' is not a count (1-256)" >&2; exit 2 ;;
esac
if [ "$REPEATS" -lt 1 ] || [ "$REPEATS" -gt 256 ]; then
    echo "bench_compare: --repeats $REPEATS is outside 1-256 (gad bench's range)" >&2
    exit 2
fi

PY=/usr/bin/python3
make -s gad build/peak build/pingpong >&2
mkdir -p "$OUT"
GAD_JSON=$OUT/gad.jsonl
TORCH_JSON=$OUT/torch.jsonl
: >"$GAD_JSON"
: >"$TORCH_JSON"

MALLOC_ENV=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
    MALLOC_TOP_PAD_=1073741824 GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
ENVS=()
if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then ENVS+=(as-is); fi
ENVS+=(auto auto+malloc)

torch_run() { # label, bench_torch.py args...
    local label=$1
    shift
    case "$label" in
    as-is) $PY tools/bench/bench_torch.py --json --label "$label" "$@" ;;
    auto) env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY tools/bench/bench_torch.py --json --label "$label" "$@" ;;
    auto+malloc) env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${MALLOC_ENV[@]}" \
        $PY tools/bench/bench_torch.py --json --label "$label" "$@" ;;
    esac
}

torch_quiet() { torch_run "$@" 2>/dev/null; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores;" \
    "$(date -u '+%Y-%m-%d %H:%M UTC'); threads $THREADS; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $CMDLINE"
# PyTorch must multiply matrices with OpenBLAS: Debian's python3-torch without
# libopenblas0-pthread runs on the reference BLAS (vgg16 32x32 forward 5.6 images/s
# instead of 165 on one machine), and the comparison would flatter gad
for label in "${ENVS[@]}"; do # which BLAS PyTorch gets in each environment
    blas=$(torch_run "$label" --model sgemm --size 1 2>&1 >/dev/null | sed -n 's/^# //p')
    echo "PyTorch ($label): $blas"
    case "$blas" in
    *"BLAS: openblas"* | *"BLAS: OpenBLAS"*) ;;
    *)
        echo "bench_compare: PyTorch ($label) does not use OpenBLAS but the reference BLAS or" \
            "none; install Debian's libopenblas0-pthread (apt-get install libopenblas0-pthread)" >&2
        exit 1
        ;;
    esac
done
# the peak is measured again at the end: the larger reading is used (another
# process running at either moment only lowers it)
./build/peak --threads "$THREADS" --rounds 3 | tee "$OUT/peak.txt"

# case groups: model size batch (every pass of a group runs in one process)
CASES=()
for m in sgemm:1024:1 sgemm:4096:1 vgg16:32:32 vgg16:224:1 vgg16:224:8 resnet18:32:32 resnet18:224:1 resnet18:224:8 \
    vgg16-w0.125:32:32 vgg16-w0.125:32:64 vgg16-w0.125:32:128 resnet18-w0.125:32:32 resnet18-w0.125:32:64 \
    resnet18-w0.125:32:128 vgg16-2cls:32:32 vgg16-2cls:32:64 vgg16-2cls:32:128 resnet18-2cls:32:32 \
    resnet18-2cls:32:64 resnet18-2cls:32:128; do
    IFS=: read -r gm gs gb <<<"$m"
    [ "$MODEL" = all ] || [ "$MODEL" = "$gm" ] || { [ "$MODEL" = gad ] && [[ "$gm" == *-* ]]; } || continue
    [ "$SIZE" = 0 ] || [ "$SIZE" = "$gs" ] || continue
    [ "$BATCH" = 0 ] || [ "$BATCH" = "$gb" ] || continue
    CASES+=("$gm $gs $gb")
done

# run: one process's JSON lines appended to file $1 (and shown); then, if its peak RSS
# passed 3 GiB, the settling pause before whatever runs next
run() {
    local file=$1 out
    shift
    out=$("$@") || true
    printf '%s\n' "$out" | tee -a "$file" >&2
    if printf '%s\n' "$out" | grep -oE '"max_rss_mb": [0-9]+' | awk '$2 > 3072 {big = 1} END {exit !big}'; then
        echo "(settling ${SETTLE}s after a process of more than 3 GiB)" >&2
        sleep "$SETTLE"
    fi
}

for g in "${CASES[@]}"; do
    read -r gm gs gb <<<"$g"
    args=(--model "$gm" --size "$gs" --batch "$gb" --threads "$THREADS" --min-time "$MIN_TIME" --repeats "$REPEATS")
    echo "running $gm $gs batch $gb ..." >&2
    ./build/pingpong >&2 || true
    run "$GAD_JSON" ./gad bench --json "${args[@]}"
    for label in "${ENVS[@]}"; do run "$TORCH_JSON" torch_quiet "$label" "${args[@]}"; done
    ./build/pingpong >&2 || true
    run "$GAD_JSON" ./gad bench --json "${args[@]}" # gad again: two runs each, as PyTorch has
done

# peak RSS: vgg16 224x224 batch 8 forward + input gradient, one process each
RSS_ARGS=(--model vgg16 --size 224 --batch 8 --pass input_grad --threads "$THREADS" --min-time 0 --repeats 1)
if [ "$MODEL" = all ] || [ "$MODEL" = vgg16 ]; then
    echo "measuring peak RSS ..." >&2
    ./gad bench --json "${RSS_ARGS[@]}" | sed 's/"model"/"rss_case": 1, "model"/' >>"$OUT/rss.jsonl.tmp" || true
    for label in "${ENVS[@]}"; do
        torch_run "$label" "${RSS_ARGS[@]}" --warmup 0 2>/dev/null | sed 's/"model"/"rss_case": 1, "model"/' \
            >>"$OUT/rss.jsonl.tmp" || true
    done
    mv "$OUT/rss.jsonl.tmp" "$OUT/rss.jsonl"
fi

./build/peak --threads "$THREADS" --rounds 3 | tee -a "$OUT/peak.txt"

$PY - "$GAD_JSON" "$TORCH_JSON" "$OUT/peak.txt" "$OUT/rss.jsonl" <<'EOF'
import json, os, re, sys
gad_path, torch_path, peak_path, rss_path = sys.argv[1:5]
def rows(p):
    return [json.loads(l) for l in open(p) if l.startswith("{")] if os.path.exists(p) else []
key = lambda r: (r["model"], r["pass"], r["size"], r["batch"])
value = lambda r: r["gflops"] if r["model"] == "sgemm" else r["images_per_s"]
gad = {}  # the better of gad's two runs (before and after PyTorch's)
for r in rows(gad_path):
    if key(r) not in gad or value(r) > value(gad[key(r)]):
        gad[key(r)] = r
best, envs = {}, {}
for r in rows(torch_path):
    k = key(r)
    envs.setdefault(k, {})[r["env"]] = value(r)
    if k not in best or value(r) > value(best[k]):
        best[k] = r
readings = {}  # threads -> best reading
for line in open(peak_path):
    m = re.search(r"fp32 peak \([^)]*\), (\d+) threads?:\s+([\d.]+)", line)
    if m:
        n = int(m.group(1))
        readings[n] = max(readings.get(n, 0.0), float(m.group(2)))
peak = readings.get(max(readings)) if readings else None  # with all the threads
labels = sorted({e for d in envs.values() for e in d})
print()
print("%-9s %-11s %-7s %5s %11s %11s %7s  %s" % ("model", "pass", "size", "batch", "gad", "PyTorch", "ratio",
                                                  "PyTorch by env (same unit)"))
for k, g in gad.items():
    t = best.get(k)
    gv = value(g)
    tv = None if t is None else value(t)
    per_env = ", ".join("%s %.4g" % (e, envs[k][e]) for e in labels if e in envs.get(k, {}))
    print("%-9s %-11s %-7s %5d %11.4g %11s %7s  %s" % (k[0], k[1], k[2], k[3], gv,
          "-" if tv is None else "%.4g" % tv, "-" if not tv else "%.2fx" % (gv / tv), per_env))
    if k[0] == "sgemm" and peak:
        print("%-9s %-11s %-7s %5s %10.0f%% %10.0f%%   of the measured fp32 peak %.1f GFLOP/s" % (
            "", "", "", "", 100 * g["gflops"] / peak, 100 * t["gflops"] / peak if t else 0, peak))
print("(unit: GFLOP/s for sgemm, images/s for models; ratio = gad, better of its two runs, / best PyTorch environment)")
rss = rows(rss_path)
if rss:
    print()
    print("peak RSS, vgg16 224x224 batch 8 forward + input gradient:")
    for r in rss:
        print("  %-7s %-12s %8.0f MiB" % (r.get("engine", "gad"), r.get("env", "-"), r["max_rss_mb"]))
EOF
