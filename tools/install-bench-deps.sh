#!/usr/bin/env bash
# Install what the benchmark's peers need, if it is missing (Debian 12):
# Redis and hiredis, RabbitMQ and librabbitmq.  Separate from
# install-deps.sh, which is for the test suite: none of the tests need
# these.  Never fails: bench/bench.c skips a peer whose server or library
# is missing, so a machine that cannot install them still runs the bench.
set -uo pipefail

pkgs=(redis-server libhiredis-dev rabbitmq-server librabbitmq-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing for the bench: ${missing[*]}"
if ! { $SUDO apt-get update -qq &&
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef \
           "${missing[@]}" >/dev/null; }; then
    echo "could not install ${missing[*]}; the bench skips the peers that need them"
fi
# The packages start system services; the bench starts its own servers on
# throwaway ports and data directories, and wants nothing else competing
# for the two cores.
for s in redis-server rabbitmq-server epmd.socket epmd; do
    $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
done
exit 0
