#!/usr/bin/env bash
# gad-slurm.sh: submit a whole GAD run to Slurm as three dependent jobs, over a
# directory that every node sees:
#   1. support: a job array over the alphas, one support model per alpha and model
#      (gad support ... --alpha A), into OUT/support;
#   2. shards:  a job array over the images, task K = shard K of N (gad run ...
#      --shard auto --shards N), after every support task succeeded
#      (--dependency=afterok);
#   3. merge:   gad merge OUT after every shard succeeded; submitted with
#      --kill-on-invalid-dep=yes, so a failed shard cancels it instead of leaving
#      it pending forever.
# The three batch scripts are written to OUT/slurm/ first, so that one step can be
# submitted again by hand (see "Rerun" below). Job logs: OUT/slurm/*.out.
#
# usage: tools/cluster/gad-slurm.sh --out OUT [options] [-- gad run flags]
#   --out OUT        the run's directory, on a shared filesystem (required)
#   --shards N       shards of the images (default 8)
#   --alphas LIST    the support models' alphas (default 2,4,6,8)
#   --cpus C         CPUs per task (default 2); gad uses them all (GAD_THREADS=C)
#   --gad PATH       the gad binary (default: gad on PATH, else ./gad)
#   --sbatch ARGS    more sbatch arguments for every job, e.g. "-p long -A proj -t 8:00:00"
#   --dry-run        write the batch scripts and print the sbatch commands only
# Everything after -- goes to gad support and gad run unchanged (--weights, --data,
# --images, --epochs, ...); relative paths are taken from the current directory.
#
# Rerun of a failed shard K (its log: OUT/slurm/shards-JOB_K.out):
#   id=$(sbatch --parsable --array=K OUT/slurm/shards.sbatch)
#   sbatch --dependency=afterok:$id --kill-on-invalid-dep=yes OUT/slurm/merge.sbatch
set -euo pipefail

out='' shards=8 alphas=2,4,6,8 cpus=2 gad='' sbargs='' dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --alphas) alphas=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --gad) gad=$2; shift 2 ;;
    --sbatch) sbargs=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gad-slurm.sh: unknown option '$1' (gad's own flags go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "gad-slurm.sh: give --out OUT (a directory every node sees)" >&2; exit 2; }
case "$shards" in ''|*[!0-9]*|0) echo "gad-slurm.sh: --shards takes a whole number >= 1" >&2; exit 2 ;; esac
if [ -z "$gad" ]; then gad=$(command -v gad || echo ./gad); fi
[ -x "$gad" ] || { echo "gad-slurm.sh: no gad binary at '$gad' (give --gad PATH)" >&2; exit 2; }
command -v sbatch >/dev/null || [ $dry = 1 ] || { echo "gad-slurm.sh: sbatch not found" >&2; exit 2; }

mkdir -p "$out/slurm"
out=$(cd "$out" && pwd)           # the jobs may start in another directory
gad=$(cd "$(dirname "$gad")" && pwd)/$(basename "$gad")
IFS=, read -r -a alist <<< "$alphas"
flags=$(printf ' %q' "$@")        # gad's flags, quoted for the batch scripts
common="--alphas $alphas --out $(printf %q "$out")"

# one batch script per step; SLURM_* come from sbatch
write() {  # write NAME LOG BODY
  local f="$out/slurm/$1.sbatch"
  printf '#!/usr/bin/env bash\n#SBATCH --job-name=gad-%s\n#SBATCH --output=%s/slurm/%s\n#SBATCH --cpus-per-task=%s\nset -euo pipefail\ncd %q\nexport GAD_THREADS=${SLURM_CPUS_PER_TASK:-%s}\n%s\n' \
    "$1" "$out" "$2" "$cpus" "$PWD" "$cpus" "$3" > "$f"
  chmod +x "$f"
}
write support 'support-%A_%a.out' "alphas=(${alist[*]})
exec $(printf %q "$gad") support$flags $common --alpha \"\${alphas[\$((SLURM_ARRAY_TASK_ID - 1))]}\" --quiet"
write shards 'shards-%A_%a.out' "exec $(printf %q "$gad") run$flags $common --shard auto --shards $shards --quiet"
write merge 'merge-%j.out' "exec $(printf %q "$gad") merge $(printf %q "$out")"

run() { if [ $dry = 1 ]; then echo "$*" >&2; echo 0; else "$@"; fi; }
# shellcheck disable=SC2086  # sbargs is a list of arguments
sup=$(run sbatch --parsable $sbargs --array=1-${#alist[@]} "$out/slurm/support.sbatch")
sup=${sup%%;*}
# shellcheck disable=SC2086
sh=$(run sbatch --parsable $sbargs --array=1-"$shards" --dependency=afterok:"$sup" --kill-on-invalid-dep=yes \
  "$out/slurm/shards.sbatch")
sh=${sh%%;*}
# shellcheck disable=SC2086
mg=$(run sbatch --parsable $sbargs --dependency=afterok:"$sh" --kill-on-invalid-dep=yes "$out/slurm/merge.sbatch")
mg=${mg%%;*}
echo "support $sup (array 1-${#alist[@]}), shards $sh (array 1-$shards), merge $mg"
echo "when merge $mg is done: $out/index.html (its tables: $out/slurm/merge-$mg.out)"
