#!/usr/bin/env bash
# Starts a private one-node Slurm cluster on this machine for tests/test_slurm.py:
#   tests/slurm/start_cluster.sh DIR        (stop it with tests/slurm/stop_cluster.sh DIR)
# Everything lives under DIR: munge key and socket, slurm.conf, state, spool, logs, pid files.
# Nothing in /etc is read or changed; a Slurm or munged already running here is left alone.
# Clients reach this cluster with SLURM_CONF=DIR/etc/slurm.conf, which the script prints as
# its last line of output. Settings (environment): SLURM_TEST_PARTITION (fashionai),
# SLURM_TEST_CTLD_PORT / SLURM_TEST_SLURMD_PORT (16817 / 16818), SLURM_TEST_GPUS (2).
# Exit status: 0 up and the node idle; 3 Slurm or munge not installed; 1 it did not start
# (the reason and the daemons' log tails on stderr).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: start_cluster.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
partition=${SLURM_TEST_PARTITION:-fashionai}
ctld_port=${SLURM_TEST_CTLD_PORT:-16817}
slurmd_port=${SLURM_TEST_SLURMD_PORT:-16818}
gpus=${SLURM_TEST_GPUS:-2}

for tool in munged munge slurmctld slurmd sbatch squeue sinfo scontrol scancel srun; do
    if ! command -v "$tool" >/dev/null; then
        echo "start_cluster.sh: '$tool' not found: Slurm/munge not installed (tests/slurm/install.sh)" >&2
        exit 3
    fi
done

fail() {
    echo "start_cluster.sh: $*" >&2
    for log in "$dir"/log/*.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
    done
    "$here/stop_cluster.sh" "$dir" >/dev/null 2>&1 || true
    exit 1
}

mkdir -p "$dir"/{etc,state,spool,run,log,munge}
chmod 700 "$dir/munge"

# munged with its own key and socket.
key="$dir/munge/munge.key"
[ -s "$key" ] || head -c 1024 /dev/urandom >"$key"
chmod 400 "$key"
socket="$dir/run/munge.socket"
munged --force --key-file="$key" --socket="$socket" --pid-file="$dir/run/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    || fail "munged did not start"
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
munge -n -S "$socket" >/dev/null 2>&1 || fail "munged does not answer on $socket"

# slurm.conf and gres.conf from the template, with this machine's CPUs and memory.
host=$(hostname -s)
hardware=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$dir|g" -e "s|@USER@|$(id -un)|g" \
    -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    -e "s|@PARTITION@|$partition|g" -e "s|@HARDWARE@|$hardware|g" -e "s|@GPUS@|$gpus|g" \
    "$here/slurm.conf.in" >"$dir/etc/slurm.conf"
# Stand-in GPUs: gres/gpu wants one device file per GPU. DIR/dev/gpuN are copies of /dev/null's
# device node (plain empty files where mknod is not allowed: slurmd then only logs an error).
mkdir -p "$dir/dev"
for ((i = 0; i < gpus; i++)); do
    [ -e "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3 2>/dev/null || : >"$dir/dev/gpu$i"
done
printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/gpu[0-%s]\n' "$host" "$dir" "$((gpus - 1))" \
    >"$dir/etc/gres.conf"
export SLURM_CONF="$dir/etc/slurm.conf"

slurmctld -c || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"

state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    [ "$state" = "idle" ] && break
    if [[ "$state" == drain* || "$state" == down* ]]; then
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.5
done
[ "$state" = "idle" ] || fail "node $host is '${state:-unknown}', not idle, after 30 s"
echo "SLURM_CONF=$SLURM_CONF"
