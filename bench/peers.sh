# Start and stop the bench's own Redis and RabbitMQ servers: throwaway data
# directories under /tmp, free ports on 127.0.0.1, never the system
# services.  Source this file.
#
#   peers_start redis,rabbitmq   exports BENCH_REDIS_PORT and BENCH_AMQP_PORT,
#                                or BENCH_REDIS_SKIP / BENCH_AMQP_SKIP saying why not
#   peers_stop                   stops what peers_start started and removes its files
#
# A server that is missing or does not start is skipped, never an error:
# bench/bench.c prints the reason in the results.

RABBITMQ_BIN=/usr/lib/rabbitmq/bin
PEERS_DIR=""
REDIS_PID=""
RABBITMQ_PID=""

# A TCP port nothing listens on, from a range clear of the usual services.
_free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
}

_redis_start() {
    if ! command -v redis-server >/dev/null 2>&1; then
        export BENCH_REDIS_SKIP="redis-server is not installed"
        return
    fi
    local port dir=$PEERS_DIR/redis deadline=$((SECONDS + 20))
    port=$(_free_port)
    mkdir -p "$dir"
    # no RDB snapshots: the AOF is what makes it durable; appendfsync is
    # set per round by the bench
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --appendonly yes --appendfsync always --save '' \
        --logfile "$dir/redis.log" >/dev/null 2>&1 &
    REDIS_PID=$!
    until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do
        if ! kill -0 "$REDIS_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            export BENCH_REDIS_SKIP="redis-server did not start (see its log)"
            tail -5 "$dir/redis.log" >&2
            _redis_stop
            return
        fi
        sleep 0.1
    done
    export BENCH_REDIS_PORT=$port
    echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on port $port, pid $REDIS_PID" >&2
}

_redis_stop() {
    [ -n "$REDIS_PID" ] || return 0
    [ -z "${BENCH_REDIS_PORT:-}" ] || redis-cli -p "$BENCH_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    _stop_pid "$REDIS_PID"
    REDIS_PID=""
    unset BENCH_REDIS_PORT
}

# Wait up to 10 s for a process to end; then kill it.
_stop_pid() {
    local i
    for i in $(seq 100); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# rabbitmq-server and rabbitmqctl, with the environment of our own node.
# Runs as root: the Debian wrapper in /usr/sbin would switch to the
# rabbitmq user and drop this environment, so call the real scripts.
_rabbit() {
    local cmd=$1; shift
    env HOME="$PEERS_DIR/rabbitmq" \
        RABBITMQ_NODENAME="$RABBITMQ_NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$RABBITMQ_PORT" RABBITMQ_DIST_PORT="$RABBITMQ_DIST" \
        ERL_EPMD_PORT="$RABBITMQ_EPMD" ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_MNESIA_BASE="$PEERS_DIR/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$PEERS_DIR/rabbitmq/log" \
        RABBITMQ_CONFIG_FILE="$PEERS_DIR/rabbitmq/rabbitmq" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$PEERS_DIR/rabbitmq/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$PEERS_DIR/rabbitmq/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$PEERS_DIR/rabbitmq/enabled_plugins" \
        RABBITMQ_PID_FILE="$PEERS_DIR/rabbitmq/pid" \
        "$RABBITMQ_BIN/$cmd" "$@"
}

_rabbitmq_start() {
    if [ ! -x "$RABBITMQ_BIN/rabbitmq-server" ]; then
        export BENCH_AMQP_SKIP="rabbitmq-server is not installed"
        return
    fi
    local dir=$PEERS_DIR/rabbitmq t0=$SECONDS deadline=$((SECONDS + 90))
    mkdir -p "$dir"
    RABBITMQ_PORT=$(_free_port)
    RABBITMQ_DIST=$(_free_port)
    RABBITMQ_EPMD=$(_free_port)
    RABBITMQ_NODE="syrpcbench$$@localhost"
    touch "$dir/rabbitmq-env.conf"
    echo '[].' >"$dir/enabled_plugins"
    # the guest user may connect from 127.0.0.1 (it may only from localhost anyway)
    echo 'loopback_users = none' >"$dir/rabbitmq.conf"
    _rabbit rabbitmq-server >"$dir/server.out" 2>&1 &
    RABBITMQ_PID=$!
    until _rabbit rabbitmqctl -q -n "$RABBITMQ_NODE" -t 10 await_startup >/dev/null 2>&1; do
        if ! kill -0 "$RABBITMQ_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            export BENCH_AMQP_SKIP="rabbitmq-server did not start (see its log)"
            tail -5 "$dir/server.out" >&2
            _rabbitmq_stop
            return
        fi
        sleep 1
    done
    export BENCH_AMQP_PORT=$RABBITMQ_PORT
    echo "rabbitmq-server node $RABBITMQ_NODE on port $RABBITMQ_PORT, pid $RABBITMQ_PID, started in $((SECONDS - t0)) s" >&2
}

_rabbitmq_stop() {
    [ -n "$RABBITMQ_PID" ] || return 0
    local beam
    beam=$(cat "$PEERS_DIR/rabbitmq/pid" 2>/dev/null || true)
    _rabbit rabbitmqctl -q -n "$RABBITMQ_NODE" -t 30 stop >/dev/null 2>&1 || true
    [ -z "$beam" ] || kill "$beam" 2>/dev/null || true
    _stop_pid "$RABBITMQ_PID"
    # the Erlang VM leaves its port mapper running, on our own port
    "$(command -v epmd || echo /usr/lib/erlang/bin/epmd)" -port "$RABBITMQ_EPMD" -kill >/dev/null 2>&1 || true
    RABBITMQ_PID=""
    unset BENCH_AMQP_PORT
}

peers_start() {
    PEERS_DIR=$(mktemp -d /tmp/syrpc-bench-peers.XXXXXX)
    case ",$1," in *,redis,*) _redis_start ;; esac
    case ",$1," in *,rabbitmq,*) _rabbitmq_start ;; esac
    return 0
}

peers_stop() {
    [ -n "$PEERS_DIR" ] || return 0
    _redis_stop
    _rabbitmq_stop
    rm -rf "$PEERS_DIR"
    PEERS_DIR=""
}
