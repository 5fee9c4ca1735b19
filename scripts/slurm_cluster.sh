#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for `snakemake --profile profiles/slurm`
# and tests/slurm. Needs root (installs Debian's SLURM 22.05 + MUNGE, starts the daemons
# without systemd).
#
#   scripts/slurm_cluster.sh start    install if missing, write slurm.conf, start, smoke-test
#   scripts/slurm_cluster.sh status   daemons, node state, partitions, job-completion log
#   scripts/slurm_cluster.sh stop     stop the daemons this script started (by PID file)
#
# Environment: UNIEMBED_SLURM_DIR (state dir, default /tmp/uniembed-slurm),
# UNIEMBED_SLURM_GPUS (emulated GPUs on the node, default 2; 0 disables),
# UNIEMBED_SLURM_CRED_EXPIRE (seconds; also how long a requeued job waits, default 20),
# UNIEMBED_SLURM_PORTS (slurmctld and slurmd ports, default "6817 6818").
# The cluster has partitions `main` (default) and `urgent`, which preempts `main` jobs by
# requeueing them. Clients need `SLURM_CONF=<state dir>/slurm.conf` unless
# /etc/slurm/slurm.conf is this script's link (made when no other slurm.conf exists).
set -euo pipefail

STATE="${UNIEMBED_SLURM_DIR:-/tmp/uniembed-slurm}"
GPUS="${UNIEMBED_SLURM_GPUS:-2}"
CRED_EXPIRE="${UNIEMBED_SLURM_CRED_EXPIRE:-20}"
read -r CTLD_PORT SLURMD_PORT <<<"${UNIEMBED_SLURM_PORTS:-6817 6818}"
CONF="$STATE/slurm.conf"
JOBCOMP="$STATE/log/jobcomp.log"
HOST="$(hostname -s)"
export SLURM_CONF="$CONF"

log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "SLURM is not installed and installing it needs root"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show slurmctld >/dev/null 2>&1 || apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
  runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$STATE/munged.pid"
  touch "$STATE/munged.started"
}

write_config() {
  local cpus mem_kb real_mem gres_line=""
  cpus="$(nproc)"
  mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  real_mem=$((mem_kb * 9 / 10 / 1024))
  mkdir -p "$STATE"/{ctld,slurmd,log,gpu}
  if [ "$GPUS" -gt 0 ]; then
    # Emulated GPUs (links to /dev/null): SLURM schedules them and sets CUDA_VISIBLE_DEVICES.
    for i in $(seq 0 $((GPUS - 1))); do ln -sfn /dev/null "$STATE/gpu/nvidia$i"; done
    gres_line="Gres=gpu:emulated:$GPUS"
    echo "NodeName=$HOST Name=gpu Type=emulated File=$STATE/gpu/nvidia[0-$((GPUS - 1))]" >"$STATE/gres.conf"
  else
    : >"$STATE/gres.conf"
  fi
  cat >"$CONF" <<EOF
# Written by scripts/slurm_cluster.sh: one node ($HOST), no slurmdbd, no cgroups.
ClusterName=uniembed
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
# No CPU binding: a container's cpuset may not hold the CPU ids the node reports.
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
# The workflow's status checks use squeue (no slurmdbd): finished jobs must stay visible
# for at least 3x the longest poll interval (180 s).
MinJobAge=600
ReturnToService=2
# The node is what this file says, whatever topology slurmd detects (hyperthreads, a cgroup-limited
# nproc): without this a topology that differs from CPUs=$cpus can leave the node drained (INVAL).
SlurmdParameters=config_overrides
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem $gres_line State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
}

link_etc_conf() {
  local etc=/etc/slurm/slurm.conf
  if [ ! -e "$etc" ] || { [ -L "$etc" ] && [ "$(readlink "$etc")" = "$CONF" ]; }; then
    mkdir -p /etc/slurm && ln -sfn "$CONF" "$etc"
  else
    log "$etc belongs to another cluster: export SLURM_CONF=$CONF"
  fi
}

diagnose() {  # what a person needs when the cluster does not come up, on stderr
  {
    echo "--- sinfo -R (node reasons)"; sinfo -R 2>&1 || true
    echo "--- scontrol show node"; scontrol show node "$HOST" 2>&1 || true
    echo "--- slurmd -C (what this machine reports)"; /usr/sbin/slurmd -C 2>&1 || true
    echo "--- processes"; pgrep -a -f 'slurmctld|slurmd|munged' 2>&1 || true
    for f in "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log"; do
      echo "--- tail $f"; tail -n 40 "$f" 2>&1 || true
    done
  } >&2
}

wait_until() {  # wait_until <seconds> <what> <command...>
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  diagnose
  die "$what not reached after ${limit}s (logs in $STATE/log)"
}

node_in() { sinfo -h -n "$HOST" -o %t | grep -qxE "$1"; }  # node_in <state regex>

node_idle_or_resume() {  # a node left down or drained (e.g. by a saved state) is resumed, then waited for
  node_in idle && return 0
  node_in "down.*|drain.*|drng.*|inval.*|fail.*" && scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1
  return 1
}

stop_strays() {  # daemons of this state dir whose PID files were lost (a killed run, a wiped PID file)
  local pids
  pids="$(pgrep -f -- "slurm(ctld|d) -f $CONF" || true)"
  [ -z "$pids" ] && return 0
  log "stopping stray daemons of $CONF: $pids"
  kill $pids 2>/dev/null || true
  sleep 2
  kill -9 $pids 2>/dev/null || true
}

start() {
  install_packages
  mkdir -p "$STATE"
  if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
    log "already running"
    link_etc_conf
    wait_until 120 "node $HOST up" node_in "idle|mix|alloc|comp"
  else
    stop_daemons
    stop_strays
    # A fresh start begins from a clean controller state: no saved node state (a drained node
    # from an earlier run) and no saved jobs.
    rm -rf "$STATE/ctld" "$STATE/slurmd"
    write_config
    start_munge
    /usr/sbin/slurmctld -f "$CONF" || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
    wait_until 30 "slurmctld answering" scontrol ping
    /usr/sbin/slurmd -f "$CONF" -N "$HOST" || die "slurmd did not start (see $STATE/log/slurmd.log)"
    link_etc_conf
    wait_until 120 "node $HOST idle" node_idle_or_resume
    timeout 60 srun -p main -N1 -n1 -t 1 true || { diagnose; die "smoke job 'srun true' failed (see $STATE/log)"; }
    log "ready: node $HOST idle, 'srun true' ok"
  fi
  echo "SLURM_CONF=$CONF"
  echo "job-completion log: $JOBCOMP"
}

stop_daemons() {
  local name pid
  for name in slurmd slurmctld munged; do
    [ "$name" = munged ] && [ ! -e "$STATE/munged.started" ] && continue
    alive "$STATE/$name.pid" || continue
    pid="$(cat "$STATE/$name.pid")"
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped $name ($pid)"
  done
  rm -f "$STATE/munged.started"
}

status() {
  local name
  for name in slurmctld slurmd munged; do
    if alive "$STATE/$name.pid"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"
    else echo "$name: not running"; fi
  done
  if alive "$STATE/slurmctld.pid"; then
    sinfo -o "%P %a %D %t %C %m %G"
    squeue
  fi
  echo "SLURM_CONF=$CONF"
  echo "job-completion log: $JOBCOMP"
  alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop_daemons ;;
  status) status ;;
  *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
