#!/usr/bin/env bash
# A single-node Slurm on localhost for testing radflow's Slurm profile: munged, slurmctld and slurmd from Debian's
# packages (slurm-wlm, munge), with their own configuration, key, state and logs under one folder; the machine's
# /etc/slurm and /etc/munge are neither read nor changed. Like a real cluster's nodes, slurmd runs "configless": it
# fetches slurm.conf from slurmctld and caches it in /run/slurm/conf, where commands on the node (sbatch, and srun
# inside a job, whose environment the executor plugin strips of SLURM_CONF) find it. munged serves its default
# socket (/run/munge/munge.socket.2), or a munged already running there is used.
#
#   cluster/local-slurm.sh start   # idempotent: starts what is not running, waits until the node is idle
#   cluster/local-slurm.sh stop    # idempotent: stops the daemons it started (by their pid files)
#   cluster/local-slurm.sh env     # prints `export SLURM_CONF=...` for the client commands (sbatch, squeue, ...)
#   cluster/local-slurm.sh status
#
# Folder: $RADFLOW_SLURM_DIR (default /tmp/radflow-slurm). Ports: $RADFLOW_SLURM_PORT (slurmctld, default 16817)
# and the next one (slurmd). Install first (Debian, as root): apt-get install slurm-wlm munge
#
# No accounting daemon: job states come from `squeue` (slurmctld keeps finished jobs for MinJobAge = 900 s, and
# the executor plugin uses squeue when MinJobAge is long enough); `sacct` is not needed. Jobs run as the calling
# user; processes are tracked without cgroups (proctrack/linuxproc), so it works in containers without systemd.
set -euo pipefail

DIR=${RADFLOW_SLURM_DIR:-/tmp/radflow-slurm}
PORT=${RADFLOW_SLURM_PORT:-16817}
CONF="$DIR/etc/slurm.conf"
# munged must listen on its default socket: slurmd fetches its configuration from slurmctld (configless mode)
# before it has read any AuthInfo. A munged already serving that socket is used as it is (and left running).
MUNGE_SOCKET=/run/munge/munge.socket.2
NODE=localhost

die() { echo "local-slurm: $*" >&2; exit 1; }

need_binaries() {
    local missing=()
    for binary in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
        command -v "$binary" >/dev/null 2>&1 || [[ -x /usr/sbin/$binary ]] || missing+=("$binary")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}: install Debian's packages first (apt-get install slurm-wlm munge)"
}

sbin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

running() {  # pid file -> 0 if its process is alive
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_config() {
    local user cpus mem_mb
    user=$(id -un)
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$DIR"/{etc,state,spool,log,munge}
    chmod 700 "$DIR/munge"
    cat > "$CONF" <<CONF
# written by cluster/local-slurm.sh: a one-node test cluster on localhost
ClusterName=radflow-local
SlurmctldHost=$NODE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=900
MpiDefault=none
# nodes fetch this file from slurmctld and cache it in /run/slurm/conf, where `srun` inside a job finds it (the
# executor plugin's job step removes SLURM_CONF from the job's environment)
SlurmctldParameters=enable_configless
SwitchType=switch/none
LaunchParameters=use_interactive_step
PlugStackConfig=$DIR/etc/plugstack.conf
NodeName=$NODE CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
    : > "$DIR/etc/plugstack.conf"
    if [[ ! -s $DIR/munge/munge.key ]]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$DIR/munge/munge.key"
}

wait_for() {  # seconds description command...
    local seconds=$1 what=$2
    shift 2
    for ((i = 0; i < seconds * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up within ${seconds} s; see $DIR/log/"
}

start() {
    need_binaries
    write_config
    export SLURM_CONF=$CONF
    if ! running "$DIR/munged.pid" && ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p "$(dirname "$MUNGE_SOCKET")"
        "$(sbin munged)" --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
            --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed" \
            || die "munged did not start; see $DIR/log/munged.log"
        wait_for 10 munged test -S "$MUNGE_SOCKET"
    fi
    if ! running "$DIR/slurmctld.pid"; then
        "$(sbin slurmctld)" -f "$CONF" || die "slurmctld did not start; see $DIR/log/slurmctld.log"
        wait_for 30 slurmctld scontrol ping
    fi
    if ! running "$DIR/slurmd.pid"; then
        "$(sbin slurmd)" --conf-server "$NODE:$PORT" -N "$NODE" || die "slurmd did not start; see $DIR/log/slurmd.log"
    fi
    wait_for 60 "node $NODE" bash -c "sinfo -h -n $NODE -o %t | grep -Eq '^(idle|mix|alloc)'"
    echo "local-slurm: running (SLURM_CONF=$CONF)"
}

stop_daemon() {  # name pid-file
    local pidfile=$2
    if running "$pidfile"; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid"
        for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    fi
    rm -f "$pidfile"
}

stop() {
    export SLURM_CONF=$CONF
    if [[ -f $CONF ]] && running "$DIR/slurmctld.pid"; then
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    stop_daemon slurmd "$DIR/slurmd.pid"
    stop_daemon slurmctld "$DIR/slurmctld.pid"
    stop_daemon munged "$DIR/munged.pid"
    # slurmd (configless) links /run/slurm/conf to its config cache. Left behind, that link makes every later
    # `scontrol` on this machine wait ~10 s for a controller that is gone, and Snakemake's Slurm plugin runs
    # `scontrol show config` on import, so every `snakemake` call would start 10 s late.
    local cache=/run/slurm/conf
    if [[ -L $cache && $(readlink "$cache") == "$DIR"/* ]]; then rm -f "$cache"; fi
    echo "local-slurm: stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    status)
        export SLURM_CONF=$CONF
        for daemon in munged slurmctld slurmd; do
            if running "$DIR/$daemon.pid"; then echo "$daemon: running"; else echo "$daemon: stopped"; fi
        done
        ;;
    *) die "usage: $0 start|stop|env|status" ;;
esac
