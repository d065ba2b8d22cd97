#!/usr/bin/env bash
# Stops the cluster that start_cluster.sh started in DIR:  tests/slurm/stop_cluster.sh DIR
# Cancels its jobs, stops slurmd, slurmctld and munged by their pid files, then ends any
# process left over from this cluster only (job steps and job scripts: the processes whose
# environment names this cluster's SLURM_CONF). Safe to run twice, or on a half-started cluster.
set -uo pipefail

dir=${1:?usage: stop_cluster.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
conf="$dir/etc/slurm.conf"

if [ -f "$conf" ] && [ -f "$dir/run/slurmctld.pid" ]; then
    SLURM_CONF="$conf" timeout 10 scancel --user="$(id -un)" >/dev/null 2>&1 || true
    for _ in $(seq 20); do
        jobs=$(SLURM_CONF="$conf" timeout 5 squeue -h -t running,completing,pending 2>/dev/null)
        [ -z "$jobs" ] && break
        sleep 0.5
    done
fi

stop_pid() {  # stop_pid PIDFILE: TERM, up to 10 s, then KILL
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null)
    [[ "$pid" =~ ^[0-9]+$ ]] || { rm -f "$file"; return 0; }
    kill -TERM "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}
stop_pid "$dir/run/slurmd.pid"
stop_pid "$dir/run/slurmctld.pid"
stop_pid "$dir/run/munged.pid"

# Leftovers of this cluster (slurmstepd, job scripts): their environment holds SLURM_CONF=$conf.
for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ] && continue
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
exit 0
