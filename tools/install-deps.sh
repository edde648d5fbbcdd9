#!/usr/bin/env bash
# Install what syrpc needs to build and test, if it is missing (Debian 12).
set -euo pipefail

# libkrb5-dev: libpq-be.h (the client socket, for noticing a client that has
# gone) includes gssapi.h, which postgresql-server-dev-15 does not bring.
# python3-*: the Python client and its tests, for /usr/bin/python3 (no
# package index is needed).  spin: the model of the waiter protocol
# (extension/waiters.pml, test/model_test.sh).
pkgs=(postgresql-15 postgresql-server-dev-15 libpq-dev libjansson-dev libkrb5-dev
      pkg-config gcc make valgrind pgbouncer spin
      python3-psycopg python3-pytest python3-pip python3-setuptools)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The Node client: Debian's nodejs and npm, unless a node and npm are there
# already (another vendor's nodejs package brings its own npm, and conflicts
# with Debian's).  Its one dependency, pg, comes from the npm registry by
# its lockfile (client/node/run-tests.sh runs npm ci).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
# Debian's postgresql-common would create and start a default cluster;
# we start our own throwaway clusters instead.
if [ ! -e /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf; then
    $SUDO mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "${missing[@]}" >/dev/null
# pgbouncer's package starts a system service we do not use.
$SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
