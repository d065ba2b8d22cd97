#!/usr/bin/env bash
# Installs Debian's Slurm and MUNGE packages for tests/test_slurm.py, if they are missing.
# Idempotent and quiet: prints nothing when everything is installed already. It never fails
# the caller (CI runs it before `make test`): when the packages cannot be installed (not root,
# no apt-get, no registry) it says why on stderr and exits 0, and the Slurm test then skips
# with that reason. The packages' init scripts are kept from starting daemons: the test starts
# its own private cluster (tests/slurm/start_cluster.sh) and stops it afterwards.
set -uo pipefail

packages=(slurmctld slurmd slurm-client munge)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

warn() { echo "tests/slurm/install.sh: $*; the Slurm test will be skipped" >&2; exit 0; }
[ "$(id -u)" -eq 0 ] || warn "not root, cannot install ${missing[*]}"
command -v apt-get >/dev/null || warn "no apt-get, cannot install ${missing[*]}"

# Keep the packages' maintainer scripts from starting munged/slurmctld/slurmd (policy-rc.d
# exit 101 = "action forbidden"), unless the machine already has its own policy.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    warn "apt-get could not install ${missing[*]}"
fi
rm -f "$log"
exit 0
