#!/usr/bin/env bash
# A one-node SLURM on this machine for the SLURM tests (tests/test_slurm.py) and CI (.ci/run): Debian's slurm-wlm
# and munge, a slurm.conf for this machine's cores and memory, accounting off, the controller (slurmctld) and the
# node daemon (slurmd) on localhost.
#
#   tools/slurm.sh install   apt-get install slurm-wlm and munge (nothing to do when they are installed)
#   tools/slurm.sh start     install if needed, write /etc/slurm/slurm.conf, start munged, slurmctld and slurmd,
#                            wait until the node takes jobs (running already: nothing to do)
#   tools/slurm.sh stop      stop the three daemons (by the pids in their pid files)
#   tools/slurm.sh status    one line; exit 0 when the node takes jobs, 1 when not
#
# Where it cannot run (not root, no apt-get) it prints one line and exits 77; the tests skip with that line.
# Finished jobs stay visible to `scontrol show job` for an hour (MinJobAge=3600: accounting is off, so the
# controller's memory is the only record). A requeued job waits cred_expire=10 s, not SLURM's default 120 s, and
# the scheduler looks at pending jobs every 5 s, not 60 s: the tests' jobs are short.
set -euo pipefail

CANNOT=77
CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
PACKAGES=(slurm-wlm munge)
# pid files: slurmctld and slurmd write theirs where slurm.conf says; munged writes /run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGED_PID=/run/munge/munged.pid

say() { echo "slurm.sh: $*"; }
cannot() { say "$*"; exit "$CANNOT"; }

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; }

need_root() {
    [[ $EUID -eq 0 ]] || cannot "needs root to install and start SLURM (running as uid $EUID): run it as root, or skip the SLURM tests"
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_name() { hostname -s; }

node_state() { sinfo --noheader --nodes="$(node_name)" --format=%T 2>/dev/null | head -1; }

takes_jobs() {
    alive "$CTLD_PID" && alive "$SLURMD_PID" || return 1
    case "$(node_state)" in idle* | mixed* | allocated* | completing*) return 0 ;; *) return 1 ;; esac
}

install() {
    need_root
    installed && return 0
    command -v apt-get >/dev/null || cannot "needs apt-get (Debian/Ubuntu) to install slurm-wlm and munge; install SLURM yourself or skip the SLURM tests"
    # No systemd here: keep dpkg from starting the daemons before slurm.conf exists (policy-rc.d, as in containers).
    local policy=/usr/sbin/policy-rc.d made=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1
    fi
    local apt=(apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}")
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/tmp/slurm-apt.log 2>&1; then
        apt-get update -qq >>/tmp/slurm-apt.log 2>&1 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >>/tmp/slurm-apt.log 2>&1 \
            || { [[ -n $made ]] && rm -f "$policy"; say "apt-get install ${PACKAGES[*]} failed: see /tmp/slurm-apt.log"; exit 1; }
    fi
    [[ -n $made ]] && rm -f "$policy"
    installed || { say "installed ${PACKAGES[*]} but slurmctld/slurmd/munged/sbatch are missing"; exit 1; }
}

write_conf() {
    # slurmd -C: this machine's CPUs, sockets, cores, threads and RealMemory (MiB), as slurmd will report them
    local node
    node="$(slurmd -C | head -1)"
    mkdir -p /etc/slurm "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
    cat >"$CONF" <<EOF
# Written by oe_ad's tools/slurm.sh: one node, this machine; accounting off.
ClusterName=oe-ad
SlurmctldHost=$(node_name)(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=3600
KillWait=10
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    alive "$MUNGED_PID" && return 0
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
}

start() {
    if takes_jobs; then
        status
        return 0
    fi
    install
    local t0=$SECONDS
    write_conf
    start_munge
    alive "$CTLD_PID" || slurmctld </dev/null >/dev/null 2>&1
    alive "$SLURMD_PID" || slurmd </dev/null >/dev/null 2>&1
    for _ in $(seq 60); do
        takes_jobs && break
        [[ $(node_state) == down* || $(node_state) == drain* ]] && scontrol update nodename="$(node_name)" state=resume 2>/dev/null || true
        sleep 0.5
    done
    takes_jobs || { say "started, but the node does not take jobs ($(node_state)): see $LOG_DIR/slurmctld.log and slurmd.log"; exit 1; }
    status
    say "started in $((SECONDS - t0)) s"
}

stop() {
    local pidfile
    for pidfile in "$SLURMD_PID" "$CTLD_PID" "$MUNGED_PID"; do
        alive "$pidfile" || continue
        local pid
        pid="$(cat "$pidfile")"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    done
    say "stopped"
}

status() {
    if takes_jobs; then
        say "running: node $(node_name) $(node_state), $(scontrol show node "$(node_name)" | grep -o 'CPUTot=[0-9]*') $(scontrol show node "$(node_name)" | grep -o 'RealMemory=[0-9]*') MiB, accounting off, partition local"
        return 0
    fi
    installed || { say "not installed (tools/slurm.sh install)"; return 1; }
    say "not running (tools/slurm.sh start)"
    return 1
}

case "${1:-}" in
    install) install ;;
    start) need_root; start ;;
    stop) need_root; stop ;;
    status) status ;;
    *) echo "usage: tools/slurm.sh install|start|stop|status" >&2; exit 2 ;;
esac
