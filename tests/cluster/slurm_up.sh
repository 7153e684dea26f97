#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the tests (root only): installs Debian's slurmctld, slurmd,
# slurm-client and munge when missing, writes a slurm.conf for this host (its name, CPUs and memory) into a
# fresh state folder, starts munged, slurmctld and slurmd there and waits until the node is idle.
#
#   bash tests/cluster/slurm_up.sh          # prints the line to export: SLURM_CONF=<state folder>/slurm.conf
#   bash tests/cluster/slurm_down.sh        # stops the daemons
#
# Everything lives in $DDKD_SLURM_DIR (default /tmp/ddkd-slurm), emptied first: a reused CI machine starts
# fresh. The daemons run as root (SlurmUser=root); jobs see the submitting user's environment.
set -euo pipefail
DIR=${DDKD_SLURM_DIR:-/tmp/ddkd-slurm}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "slurm_up.sh: needs root (it installs packages and starts daemons)" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

bash "$HERE/slurm_down.sh" >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR/ctld" "$DIR/spool" "$DIR/munge"
chmod 700 "$DIR/munge"

# munge: its own key, socket and files, so the system's munge (if any) is untouched
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1k count=1 status=none
chmod 400 "$DIR/munge/munge.key"
munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
cat > "$DIR/slurm.conf" <<CONF
ClusterName=ddkd-test
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=300
InactiveLimit=0
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
echo "$DIR/slurm.conf" > "$DIR/conf-path"

slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

for _ in $(seq 1 60); do
    if sinfo -h -o "%t" 2>/dev/null | grep -qx "idle"; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "slurm_up.sh: the node did not become idle in 60 s; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
sinfo >&2 || true
exit 1
