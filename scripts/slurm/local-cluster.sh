#!/usr/bin/env bash
# A single-node Slurm cluster from Debian's packages, without systemd, for the tests (issue #35):
#   scripts/slurm/local-cluster.sh start DIR   prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm/local-cluster.sh stop DIR
# start runs munged as user munge (with a generated key where there is none), then slurmctld and
# slurmd as root with a minimal slurm.conf under DIR (no cgroups: proctrack/linuxproc,
# task/none; select/cons_tres over this node's CPUs; arrays of up to 100,000 tasks), and waits
# until the node is idle. Needs root and `apt-get install --no-install-recommends slurm-wlm
# munge`. Every daemon it started is stopped by stop (by the pid it recorded).
set -euo pipefail
what=${1:?start or stop}
dir=$(realpath -m "${2:?a directory for the cluster\'s state}")

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "$what" = stop ]; then
  stop
  exit 0
fi
[ "$what" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: the cluster's daemons need root" >&2; exit 1; }
mkdir -p "$dir/state" "$dir/spool"
stop

# MUNGE: its key, its directories, and the daemon as user munge. A munged already running (the
# machine's own) is used as it is.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid --force
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  # Recorded, for stop, only once it is ours.
  cp /run/munge/munged.pid "$dir/munged.pid"
  munge -n | unmunge >/dev/null
fi

node=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
cat > "$dir/slurm.conf" <<CONF
ClusterName=tarfs-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MaxArraySize=100001
MaxJobCount=200000
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=600
SchedulerParameters=defer_batch=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -i
/usr/sbin/slurmd
# The node idle: registered and ready for jobs.
for _ in $(seq 300); do
  state=$(sinfo -h -N -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then
  echo "$0: the node is ${state:-not registered}, not idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
  stop
  exit 1
fi
echo "export SLURM_CONF=$dir/slurm.conf"
