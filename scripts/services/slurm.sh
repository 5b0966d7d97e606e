#!/usr/bin/env bash
# Start a throwaway single-node Slurm (munged, slurmctld, slurmd) for tests; print its slurm.conf.
#
#   scripts/services/slurm.sh DIR          -> DIR/slurm.conf (export SLURM_CONF=DIR/slurm.conf for sbatch...)
#   scripts/services/slurm.sh --stop DIR
#
# Uses Debian's packages (apt-get install slurmctld slurmd slurm-client munge) and runs as root,
# without systemd: every daemon's state, socket, pid and log lives in DIR, on free loopback
# ports, so it never touches /etc/slurm or a system munged. No accounting (no slurmdbd): sacct
# fails here, as on many small clusters, and tuigen falls back to squeue/scontrol.
set -euo pipefail

die() { echo "slurm.sh: $*" >&2; exit 3; }

alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }  # zombies count as gone

stop() {
  local dir=$1 f pid
  for f in slurmd slurmctld munged; do
    pid=$(cat "$dir/run/$f.pid" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  # Job step daemons outlive slurmd and ignore SIGTERM; ours are those working in DIR.
  for pid in $(pgrep -x slurmstepd || true); do
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$dir"/* ]] && kill -9 "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do  # the daemons must be gone before a next start binds their ports
    pid=$(cat "$dir/run/slurmd.pid" 2>/dev/null || true)
    { [[ -z "$pid" ]] || ! alive "$pid"; } && break
    sleep 0.1
  done
  rm -f "$dir"/run/*.pid
}

if [[ "${1:-}" == "--stop" ]]; then
  stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "must run as root (slurmd starts jobs as their owner)"
for b in munged mungekey slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || die "no $b on PATH (apt-get install slurmctld slurmd slurm-client munge)"
done

dir=$(mkdir -p "$1" && cd "$1" && pwd)
stop "$dir"  # a second start of the same DIR replaces the first
mkdir -p "$dir"/{munge,run,log,state,spool}
chmod 0755 "$dir" "$dir/run"
chmod 0711 "$dir/munge"  # munged refuses a key or socket dir that others can write

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctld_port=$(free_port)
slurmd_port=$(free_port)
node=$(hostname -s)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

[[ -f "$dir/munge/munge.key" ]] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null
munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" --force \
  || die "munged did not start; see $dir/log/munged.log"

cat >"$dir/slurm.conf" <<EOF
ClusterName=tuigen
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
# Containers have no writable cgroup hierarchy: track processes by walking /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobContainerType=job_container/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Fast turnaround for tests: schedule and requeue without the production-size delays.
SchedulerType=sched/builtin
SchedulerParameters=defer_batch=0
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
: >"$dir/plugstack.conf"  # no site SPANK plugins from /etc/slurm

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF" -i || die "slurmctld did not start; see $dir/log/slurmctld.log"
slurmd -f "$SLURM_CONF" -N "$node" || die "slurmd did not start; see $dir/log/slurmd.log"

for _ in $(seq 150); do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
  [[ "$state" == idle ]] && { echo "$SLURM_CONF"; exit 0; }
  sleep 0.2
done
die "node $node is '${state:-unreachable}', not idle after 30 s; see $dir/log/slurmctld.log and slurmd.log"
