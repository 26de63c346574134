#!/usr/bin/env bash
# A one-node SLURM on this machine, to try profiles/slurm locally and to test it in CI.
#
#   sudo profiles/slurm/local_cluster.sh start   # installs Debian's slurm if missing, starts it
#   sudo profiles/slurm/local_cluster.sh stop    # stops the daemons it started (by PID)
#
# Needs root and Debian/Ubuntu (apt-get). The node offers all cores, ~85 % of the memory and one
# fake GPU (gres gpu:1 on /dev/null), so `gpu=1` jobs are scheduled and get CUDA_VISIBLE_DEVICES.
# No slurmdbd: sacct does not work, so use the executor plugin's squeue status command (set in
# profiles/slurm/config.yaml); MinJobAge=300 keeps finished jobs visible to squeue long enough.
# The PIDs go to $COHORTREG_SLURM_STATE (default /run/cohortreg-slurm) for `stop`.
set -euo pipefail

STATE=${COHORTREG_SLURM_STATE:-/run/cohortreg-slurm}
CONF=/etc/slurm/slurm.conf   # the plugin's job step drops SLURM_CONF, so the default path it is

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q munge slurmctld slurmd slurm-client >/dev/null
    fi
}

write_config() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm "$STATE"
    cat >"$CONF" <<EOF
# Written by CohortReg's profiles/slurm/local_cluster.sh: a one-node test cluster.
ClusterName=cohortreg
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
GresTypes=gpu
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >/etc/slurm/gres.conf <<EOF
AutoDetect=off
NodeName=localhost Name=gpu File=/dev/null
EOF
}

start() {
    install
    write_config
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none;
                                     chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- /usr/sbin/munged --force
    cp /run/munge/munged.pid "$STATE/munged.pid"
    slurmctld
    slurmd -N localhost
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "local SLURM up: $(sinfo -h -o '%P %D %c %m %G')"
            return 0
        fi
        sleep 0.5
    done
    echo "local SLURM did not come up; see /var/log/slurm" >&2
    return 1
}

stop() {
    for name in slurmd slurmctld munged; do
        if [ -s "$STATE/$name.pid" ]; then
            kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
            rm -f "$STATE/$name.pid"
        fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
