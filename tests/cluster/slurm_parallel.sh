#!/usr/bin/env bash
# slurm_parallel.sh: the scale-out path under real schedulers. Starts a private
# single-node Slurm (munged, slurmctld, slurmd, with their own key, socket, ports,
# state and logs in a scratch directory; no systemd), runs a small GAD run through
# tools/cluster/gad-slurm.sh (support array, shard array, merge) and through
# tools/cluster/gad-parallel.sh, and compares each merged result with the same run
# in one process, byte for byte (tables, curves, results.json without timings).
# Also: a failed shard leaves its merge job cancelled, not pending, and its rerun
# alone (the README's recipe) completes the run.
# Installs slurm-wlm, munge and parallel when missing (Debian, as root). Stops only
# the daemons it started, by pid. Prints "slurm_parallel: ok" and exits 0, or names
# what failed and exits 1. From the repository root, after `make gad`.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "slurm_parallel: $*"; }
fail() { say "FAILED: $*"; exit 1; }
[ -x ./gad ] || make -j2 gad >/dev/null
[ "$(id -u)" = 0 ] || fail "needs root (it starts munged as user munge and slurmd as root)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v parallel >/dev/null; then
  say "installing slurm-wlm, munge, parallel"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq slurm-wlm munge parallel >/dev/null
fi
id munge >/dev/null 2>&1 || fail "no user 'munge' after installing munge"

T=$(mktemp -d /tmp/gad-slurm.XXXXXX)
chmod 755 "$T"
pids=()
stop() {
  local p
  # jobs still in this private cluster (a failure or a timeout) end before the daemons
  if [ -n "${SLURM_CONF:-}" ] && [ -n "$(squeue -h 2>/dev/null)" ]; then
    scancel --partition=ci 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then say "kept $T"; else rm -rf "$T"; fi
}
trap stop EXIT
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }

# munged: a private key (owned by munge, mode 600, as munged demands), socket and pid
M=$T/munge
mkdir -p "$M"
dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$M"
chmod 711 "$M"  # the socket needs x for all; the key stays 600
chmod 600 "$M/munge.key"
runuser -u munge -- munged --key-file="$M/munge.key" --socket="$M/munge.socket" --pid-file="$M/munged.pid" \
  --log-file="$M/munged.log" --seed-file="$M/munged.seed" || fail "munged did not start: $(cat "$M/munged.log" 2>/dev/null)"
wait_file "$M/munged.pid" || fail "munged wrote no pid file"
pids+=("$(cat "$M/munged.pid")")

# slurm.conf: one node, localhost (the hostname is not localhost: NodeAddr, slurmd -N),
# no cgroups and no accounting, ports of its own
port=$(( 20000 + $$ % 20000 ))
node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ RealMemory=[0-9]*//')
mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<EOF
ClusterName=gadci
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$M/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 $node
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start: $(tail -3 "$T/slurmctld.log")"
wait_file "$T/slurmctld.pid" || fail "slurmctld wrote no pid file"
pids=("$(cat "$T/slurmctld.pid")" "${pids[@]}")
slurmd -f "$SLURM_CONF" -N localhost || fail "slurmd did not start: $(tail -3 "$T/slurmd.log")"
wait_file "$T/slurmd.pid" || fail "slurmd wrote no pid file"
pids=("$(cat "$T/slurmd.pid")" "${pids[@]}")
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o %T | grep -q idle || fail "the node did not come up: $(sinfo 2>&1; tail -5 "$T/slurmd.log")"
say "single-node Slurm up ($(sinfo -h -o '%D node, %c CPUs'))"

# a small run: the bundled resnet18, 2 alphas, 1 epoch, 12 images
flags=(--weights weights/resnet18.safetensors --data data/fashion-pc-images-idx3-ubyte.gz --classes 2,4
       --images 12 --epochs 1 --train-images 64 --methods saliency,guided,ig --ig-steps 8 --curves both
       --fig-images 1 --fig-least 2)
# provenance that differs by design: timings, whether this process trained a
# support model or found it in the cache, and the cache's directory (the file names,
# which carry the models' keys, stay)
prov() { sed 's/"seconds":[^,}]*//g; s/"trained":[a-z]*//g; s#"path":"[^"]*/#"path":"#g' "$1"; }
same() {  # same DIR_A DIR_B: the merged run against the one-process run
  local f
  for f in table1.csv table2.csv curves.csv; do cmp -s "$1/$f" "$2/$f" || fail "$f of $1 differs from $2"; done
  for f in "$2"/support/*.safetensors; do
    cmp -s "$f" "$1/support/${f##*/}" || fail "support model ${f##*/} of $1 differs from $2's"
  done
  cmp -s <(prov "$1/results.json") <(prov "$2/results.json") || fail "results.json of $1 differs from $2"
}
wait_jobs() {  # wait_jobs SECONDS ID...: until none is queued or running
  local limit=$1; shift
  local ids; ids=$(IFS=,; echo "$*")
  for _ in $(seq $((limit * 2))); do
    [ -z "$(squeue -h -j "$ids" 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  fail "jobs $ids still queued after ${limit}s: $(squeue -j "$ids")"
}

t0=$(date +%s)
sub=$(tools/cluster/gad-slurm.sh --out "$T/slurm-run" --shards 3 --alphas 2,4 --cpus 1 --gad ./gad -- "${flags[@]}")
ids=$(echo "$sub" | head -1 | grep -o '[0-9]\+ (array\|merge [0-9]\+' | grep -o '[0-9]\+')
[ -n "$ids" ] || fail "gad-slurm.sh submitted nothing: $sub"
# shellcheck disable=SC2086
wait_jobs 600 $ids
[ -s "$T/slurm-run/results.json" ] || fail "no merged results: $(cat "$T"/slurm-run/slurm/*.out 2>/dev/null | tail -20)"
t1=$(date +%s)
# the reference: one process that trains its own support models (so the jobs' gad
# support must have trained the same bits)
./gad run "${flags[@]}" --alphas 2,4 --out "$T/one" --quiet >/dev/null
same "$T/slurm-run" "$T/one"
say "Slurm: support array, 3 shards, merge in $((t1 - t0)) s; merged = one process"

# a run whose shard 2 fails (a wrapper that exits 3 for that task while $T/fail
# exists): the merge job must be cancelled, not left pending; then the README's
# rerun of that one shard, and a merge that again equals the one-process run
cat > "$T/gadw" <<EOF
#!/bin/sh
if [ "\$1" = run ] && [ "\${SLURM_ARRAY_TASK_ID:-}" = 2 ] && [ -e "$T/fail" ]; then
  echo "shard 2 fails on purpose" >&2; exit 3
fi
exec "$PWD/gad" "\$@"
EOF
chmod 755 "$T/gadw"
touch "$T/fail"
sub=$(tools/cluster/gad-slurm.sh --out "$T/slurm-bad" --shards 3 --alphas 2,4 --cpus 1 --gad "$T/gadw" -- "${flags[@]}")
sh=$(echo "$sub" | head -1 | grep -o 'shards [0-9]\+' | grep -o '[0-9]\+')
mg=$(echo "$sub" | head -1 | grep -o 'merge [0-9]\+' | grep -o '[0-9]\+')
[ -n "$sh" ] && [ -n "$mg" ] || fail "gad-slurm.sh submitted nothing: $sub"
# shellcheck disable=SC2046
wait_jobs 600 $(echo "$sub" | head -1 | grep -o '[0-9]\+ (array' | grep -o '[0-9]\+') "$mg"
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
[ "$(state "${sh}_2")" = FAILED ] || fail "shard 2 of job $sh: state '$(state "${sh}_2")', not FAILED"
[ "$(state "$mg")" = CANCELLED ] || fail "merge job $mg after a failed shard: state '$(state "$mg")', not CANCELLED"
[ ! -e "$T/slurm-bad/results.json" ] || fail "a run with a failed shard was merged"
[ -e "$T/slurm-bad/shards/1-of-3/shard.json" ] && [ ! -e "$T/slurm-bad/shards/2-of-3/shard.json" ] ||
  fail "after shard 2 failed: shards 1 and 3 should be there, shard 2 not"
rm "$T/fail"
id=$(sbatch --parsable --array=2 "$T/slurm-bad/slurm/shards.sbatch")
mg=$(sbatch --parsable --dependency=afterok:"$id" --kill-on-invalid-dep=yes "$T/slurm-bad/slurm/merge.sbatch")
wait_jobs 300 "$id" "$mg"
[ "$(state "$mg")" = COMPLETED ] || fail "merge job $mg after the rerun: state '$(state "$mg")'"
same "$T/slurm-bad" "$T/one"
say "Slurm: a failed shard cancels the merge job; its rerun alone completes the run; merged = one process"

t0=$(date +%s)
tools/cluster/gad-parallel.sh --out "$T/par-run" --shards 3 --jobs 2 --threads 1 --alphas 2,4 --gad ./gad -- \
  "${flags[@]}" >"$T/parallel.log" 2>&1 || fail "gad-parallel.sh: $(tail -5 "$T/parallel.log")"
t1=$(date +%s)
same "$T/par-run" "$T/one"
say "GNU parallel: 2 support models, 3 shards, merge in $((t1 - t0)) s; merged = one process"
say ok
