#!/usr/bin/env bash
# gad-parallel.sh: a whole GAD run on one many-core machine with GNU parallel, in
# the three steps gad-slurm.sh submits to Slurm: the support models (one job per
# alpha), the shards of the images (one job per shard), the merge. Each job runs
# with --threads threads; --jobs of them at once. A failing job stops the step
# (--halt now,fail=1) and the script exits non-zero before the merge.
#
# usage: tools/cluster/gad-parallel.sh --out OUT [options] [-- gad run flags]
#   --out OUT        the run's directory (required)
#   --shards N       shards of the images (default: --jobs)
#   --jobs J         jobs at once (default: the cores / --threads)
#   --threads T      threads per job (default 2)
#   --alphas LIST    the support models' alphas (default 2,4,6,8)
#   --gad PATH       the gad binary (default: gad on PATH, else ./gad)
# Everything after -- goes to gad support and gad run unchanged.
# Rerun of a failed shard K: gad run [the same flags] --out OUT --shard K/N, then
# gad merge OUT.
set -euo pipefail

out='' shards='' jobs='' threads=2 alphas=2,4,6,8 gad=''
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --alphas) alphas=$2; shift 2 ;;
    --gad) gad=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gad-parallel.sh: unknown option '$1' (gad's own flags go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "gad-parallel.sh: give --out OUT" >&2; exit 2; }
command -v parallel >/dev/null || { echo "gad-parallel.sh: GNU parallel not found (apt-get install parallel)" >&2; exit 2; }
if [ -z "$gad" ]; then gad=$(command -v gad || echo ./gad); fi
[ -x "$gad" ] || { echo "gad-parallel.sh: no gad binary at '$gad' (give --gad PATH)" >&2; exit 2; }
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
[ -n "$jobs" ] || jobs=$(( cores / threads > 0 ? cores / threads : 1 ))
[ -n "$shards" ] || shards=$jobs
IFS=, read -r -a alist <<< "$alphas"
mkdir -p "$out"

# -q: every argument passed as it is (no shell in between); {} is the job's value
p() { parallel --will-cite --halt now,fail=1 -j "$jobs" -q "$@"; }
echo "gad-parallel.sh: ${#alist[@]} support models per model, $shards shards, $jobs jobs of $threads threads" >&2
p env GAD_THREADS="$threads" "$gad" support "$@" --alphas "$alphas" --out "$out" --alpha {} --quiet ::: "${alist[@]}"
p env GAD_THREADS="$threads" "$gad" run "$@" --alphas "$alphas" --out "$out" --shard {}/"$shards" --quiet \
  ::: $(seq 1 "$shards")
"$gad" merge "$out"
