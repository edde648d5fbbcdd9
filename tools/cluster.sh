# Start and stop a throwaway PostgreSQL cluster.  Source this file.
#
#   cluster_start [postgres -c options...]   sets PGHOST PGPORT PGUSER PGDATABASE
#   cluster_stop                             stops it and removes its files
#
# initdb refuses to run as root, so as root the cluster belongs to the
# postgres user.  It listens only on a Unix socket in its own directory.

PGBIN=$(pg_config --bindir)

_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_start() {
    CLUSTER_DIR=$(mktemp -d /tmp/syrpc-cluster.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$CLUSTER_DIR"
    _as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust \
        --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$CLUSTER_DIR/initdb.log"; return 1; }
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
port = 5432
max_connections = 1200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
    local opt
    for opt in "$@"; do echo "$opt" >>"$CLUSTER_DIR/data/postgresql.conf"; done
    _as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
        -w -t 60 start >/dev/null || { cat "$CLUSTER_DIR/server.log"; return 1; }
    export PGHOST="$CLUSTER_DIR" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

# Stop the server the hard way (as a crash would) and start it again.
cluster_crash_restart() {
    _as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null
    _as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
        -w -t 60 start >/dev/null
}

cluster_stop() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    _as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=""
}
