#!/usr/bin/env bash
# valgrind memcheck over the commands that read files and write outputs: gad predict
# (image and .npy input, both bundled models), gad explain (saliency and ig, .npy and
# PNG outputs) and a small gad run (bundled data and models, two methods, one alpha,
# one epoch). Any memcheck error or any definite, indirect or possible leak fails,
# as does a command that does not exit 0. Ends with one summary line.
# The gad under test is built here into build/valgrind/gad without -march=native
# (valgrind 3.19 does not decode AVX-512) and with -g; outputs go to a temporary
# directory that is removed afterwards. Takes a few minutes on two cores.
#   tools/checks/valgrind_check.sh            (from anywhere; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind_check: valgrind is not installed"; exit 1; }
B=build/valgrind
objs=$(ls src/cli/*.c | sed "s|^|$B/|; s|\.c$|.o|")
make -s BUILD=$B GENERIC=1 OPT="-O1 -g" $B/libgad.a $objs
cc -o $B/gad $objs $B/libgad.a -lm -lpthread
T=$(mktemp -d /tmp/gad-valgrind.XXXXXX)
trap 'rm -rf "$T"' EXIT
export GAD_THREADS=2 # exercise the thread pool (valgrind runs threads one at a time)

fail=0 n=0
expect() { # expect STATUS NAME ARGS...: run $B/gad ARGS under memcheck, want exit STATUS
  local want=$1 name=$2; shift 2
  n=$((n + 1))
  local rc=0
  valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=101 \
    --log-file="$T/$name.vg" "$B/gad" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  if [ $rc -ne "$want" ] || [ -s "$T/$name.vg" ]; then
    fail=$((fail + 1))
    echo "FAIL $name (exit $rc, want $want): gad $*"
    cat "$T/$name.err" "$T/$name.vg" | head -60
  else
    echo "ok   $name"
  fi
}
check() { expect 0 "$@"; }

img=tests/fixtures/images/png/rgb8.png
check predict_png_vgg16 predict --weights weights/vgg16.safetensors --input "$img" --out "$T/p.npy"
check explain_saliency explain --weights weights/vgg16.safetensors --input "$img" --method saliency \
  --out "$T/sal.npy" --png "$T/sal.png"
check explain_ig explain --weights weights/resnet18.safetensors --input "$img" --method ig --steps 8 \
  --out "$T/ig.npy" --png "$T/ig.png"
# the saliency map is an [1,3,32,32] .npy: a model input of the right shape
check predict_npy_resnet18 predict --weights weights/resnet18.safetensors --input "$T/sal.npy" --batch 1
check run_small run --images 4 --alphas 2 --epochs 1 --methods saliency,gxi --train-images 8 \
  --out "$T/run" --support-dir "$T/run/support" --quiet
# a rerun reuses the support models saved by the first
check run_resume run --images 4 --alphas 2 --epochs 1 --methods saliency,gxi --train-images 8 \
  --out "$T/run" --support-dir "$T/run/support" --quiet
# errors free what they allocated too
expect 1 predict_bad_input predict --weights weights/vgg16.safetensors --input weights/README.md
expect 2 explain_bad_target explain --weights weights/vgg16.safetensors --input "$img" --method gxi --target 7
expect 2 run_bad_class run --images 4 --classes 2,99 --out "$T/run2" --quiet
echo "valgrind_check: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
