# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here (STOP_RC, PG_PID, …) are read by the scripts that source this file
# shell/lib/local-stack.sh — the local (no-Docker) stack: a PostgreSQL 15 with the demo
# schema, a Kafka broker (shell/local-kafka.sh), cdc-collector and N stream-workers, run as
# background processes with pid files and logs in a state folder. Sourced after common.sh
# by start.sh, stop.sh, check-cdc-status.sh, restart-collector.sh, scale-workers.sh,
# quick-test-cdc.sh, dlq-inspect.sh (with --local) and, for the PostgreSQL part, demo.sh.
#
# State folder ($RTDP_LOCAL_STACK_DIR, default .tools/local-stack):
#   stack.env                  what start.sh chose (ports, names, paths; no secrets), among
#                              them PG_DIR: PostgreSQL's data and socket, in $TMPDIR
#   collector.env, worker.env  the services' environment (mode 0600: the database password)
#   kafka/                     the broker's state (RTDP_KAFKA_DIR of shell/local-kafka.sh)
#   run/<name>.pid, .exit, .port   pid, exit code once it ended, health/metrics port
#   logs/<name>.log            postgres, setup, collector, worker-1, worker-2, … (.log.1: the
#                              previous run of that service)
#
# Services are started through a small bash wrapper that records the service's pid, waits
# for it and writes its exit code to run/<name>.exit, so a later script (stop.sh,
# check-cdc-status.sh) can tell a clean stop (0) from a crash.

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
LS_DIR="${RTDP_LOCAL_STACK_DIR:-$ROOT/.tools/local-stack}"
LS_RUN="$LS_DIR/run"
LS_LOGS="$LS_DIR/logs"
LS_ENV="$LS_DIR/stack.env"

# Nothing in the caller's environment may redirect our psql / the services' database.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS PGSSLMODE

# --- PostgreSQL (also used by demo.sh) ---------------------------------------------------------

AS_PG=()

# Creates folder $1 for a PostgreSQL server, owned by the postgres system user when we are
# root (initdb and postgres refuse to run as root); sets AS_PG accordingly.
pg_prepare_dir() {
    local dir="$1"
    mkdir -p "$dir"
    AS_PG=()
    if [[ "$(id -u)" == 0 ]]; then
        if ! id -u postgres >/dev/null 2>&1; then
            useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
                --shell /usr/sbin/nologin postgres
        fi
        chown postgres:postgres "$dir"
        AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    fi
}

# initdb into $1/data (log $2): superuser postgres over the Unix socket (trust), TCP
# clients from 127.0.0.1 with a password (scram-sha-256).
pg_init() {
    local dir="$1" log="$2"
    [[ -x "$PGBIN/initdb" ]] || die "no PostgreSQL 15 server in $PGBIN (apt-get install postgresql-15)"
    if ! (cd "$dir" && "${AS_PG[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync --no-instructions) >"$log" 2>&1; then
        die "initdb failed (log: ${log#"$ROOT"/})"
    fi
    cat >"$dir/data/pg_hba.conf" <<'HBA'
local   all             all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
HBA
}

# Starts the server of $1/data on 127.0.0.1:$2 (socket in $1) in the background, logging to
# $3; sets PG_PID and waits up to 60 s until it accepts connections.
PG_PID=""
pg_spawn() {
    local dir="$1" port="$2" log="$3" deadline
    (($(printf '%s' "$dir/.s.PGSQL.$port" | wc -c) < 100)) ||
        die "the PostgreSQL socket path $dir/.s.PGSQL.$port is too long for a Unix socket; use a shorter state folder"
    (cd "$dir" && exec "${AS_PG[@]}" "$PGBIN/postgres" -D "$dir/data" -p "$port" -k "$dir" \
        -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 \
        -c max_wal_senders=10 -c fsync=off -c full_page_writes=off) >>"$log" 2>&1 </dev/null &
    PG_PID=$!
    deadline=$((SECONDS + 60))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; do
        alive_or_die "$PG_PID" postgres "$log"
        ((SECONDS < deadline)) || die "PostgreSQL not ready within 60s (log: ${log#"$ROOT"/})"
        sleep 0.2
    done
}

# psql as the superuser over the socket of server $1 on port $2, database $3, then args.
pg_psql() {
    local dir="$1" port="$2" db="$3"
    shift 3
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}

# Creates database $3 on server ($1, $2), loads sql/postgres/demo-schema.sql (schema shop)
# and prepares it with sql/setup-postgres-cdc.sql for the LOGIN REPLICATION role $4 with
# password $5 (passed through the environment, never on a command line), including the
# publication of collector $7 (collector.name; rtdp_<name>, created here by the tables'
# owner, as the role owns no table). Log: $6.
pg_load_demo() {
    local dir="$1" port="$2" db="$3" user="$4" password="$5" log="$6" collector="$7"
    {
        pg_psql "$dir" "$port" postgres -c "CREATE DATABASE $db" &&
            pg_psql "$dir" "$port" "$db" -f "$ROOT/sql/postgres/demo-schema.sql" &&
            RTDP_DEMO_PASSWORD="$password" pg_psql "$dir" "$port" "$db" -v schema=shop -v rtdp_user="$user" \
                -v collector="$collector" \
                -c '\getenv rtdp_password RTDP_DEMO_PASSWORD' -f "$ROOT/sql/setup-postgres-cdc.sql"
    } >"$log" 2>&1 || die "loading the demo schema failed (log: ${log#"$ROOT"/})"
}

random_password() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# --- the stack's state -------------------------------------------------------------------------

# Loads stack.env (dies when there is no local stack).
ls_load() {
    [[ -f "$LS_ENV" ]] || die "no local stack in ${LS_DIR#"$ROOT"/} (start one with shell/start.sh --local)"
    # shellcheck disable=SC1090
    . "$LS_ENV"
}

# Writes KEY=VALUE lines (shell-quoted) for the named variables to file $1.
write_env() {
    local file="$1" var
    shift
    : >"$file"
    for var in "$@"; do
        printf '%s=%q\n' "$var" "${!var}" >>"$file"
    done
}

# The binary a service name runs.
ls_bin_of() {
    case "$1" in
        collector) echo "${COLLECTOR_BIN:?}" ;;
        worker-*) echo "${WORKER_BIN:?}" ;;
        postgres) echo "$PGBIN/postgres" ;;
        *) return 1 ;;
    esac
}

# Prints the pid of service $1 when it runs (and is what the pid file says it is).
ls_pid() {
    local name="$1" pid bin
    [[ -f "$LS_RUN/$name.pid" ]] || return 1
    pid="$(cat "$LS_RUN/$name.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    bin="$(ls_bin_of "$name")" || return 1
    # Guard against a reused pid: the process must run our binary.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(basename "$bin")" || return 1
    echo "$pid"
}

# Worker numbers with a pid file, ascending.
ls_workers() {
    local f n
    for f in "$LS_RUN"/worker-*.pid; do
        [[ -e "$f" ]] || continue
        n="${f##*/worker-}"
        echo "${n%.pid}"
    done | sort -n
}

# The health/metrics port of service $1 (from its log line "health and metrics server
# listening addr=…:PORT"; cached in run/<name>.port).
ls_port() {
    local name="$1" port
    if [[ -s "$LS_RUN/$name.port" ]]; then
        cat "$LS_RUN/$name.port"
        return 0
    fi
    [[ -f "$LS_LOGS/$name.log" ]] || return 1
    # Text logs: `… listening addr=0.0.0.0:PORT`; JSON logs (LOG_FORMAT=json): `"addr":"0.0.0.0:PORT"`.
    port="$(grep -F 'health and metrics server listening' "$LS_LOGS/$name.log" | tail -n 1 |
        sed -n 's/.*addr[":= ]*[^ ",]*:\([0-9][0-9]*\).*/\1/p' || true)"
    [[ -n "$port" ]] || return 1
    echo "$port" >"$LS_RUN/$name.port"
    echo "$port"
}

# Starts service $1 (its environment from file $2) running "$3 $4…" in the background,
# through a wrapper that writes run/$1.pid and, when it ends, run/$1.exit. Waits for the
# pid file (10 s).
ls_spawn() {
    local name="$1" envfile="$2" deadline
    shift 2
    mkdir -p "$LS_RUN" "$LS_LOGS"
    rm -f "$LS_RUN/$name.pid" "$LS_RUN/$name.exit" "$LS_RUN/$name.port"
    # The previous run's log is kept as <name>.log.1.
    if [[ -s "$LS_LOGS/$name.log" ]]; then mv -f "$LS_LOGS/$name.log" "$LS_LOGS/$name.log.1"; fi
    : >"$LS_LOGS/$name.log"
    # shellcheck disable=SC2016 # the wrapper's own variables
    # A clean environment: the service sees its env file only, whoever starts it.
    (cd "$ROOT" && exec nohup env -i PATH="$PATH" HOME="${HOME:-/}" LANG="${LANG:-C.UTF-8}" TMPDIR="${TMPDIR:-/tmp}" bash -c '
        envfile=$1 pidfile=$2 exitfile=$3
        shift 3
        set -a
        . "$envfile"
        set +a
        "$@" &
        pid=$!
        echo "$pid" >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
        trap "" INT TERM HUP   # signals are for the service; the wrapper waits for it
        rc=0
        wait "$pid" || rc=$?
        echo "$rc" >"$exitfile"
    ' rtdp-wrapper "$envfile" "$LS_RUN/$name.pid" "$LS_RUN/$name.exit" "$@") >>"$LS_LOGS/$name.log" 2>&1 </dev/null &
    deadline=$((SECONDS + 10))
    until [[ -s "$LS_RUN/$name.pid" ]]; do
        ((SECONDS < deadline)) || die "$name: no pid file within 10s (log: ${LS_LOGS#"$ROOT"/}/$name.log)"
        sleep 0.1
    done
}

# Dies (with the log's tail) when service $1 no longer runs.
ls_alive_or_die() {
    local name="$1" rc
    if ! ls_pid "$name" >/dev/null; then
        rc="$(cat "$LS_RUN/$name.exit" 2>/dev/null || echo '?')"
        printf '\n--- last 20 lines of %s ---\n' "${LS_LOGS#"$ROOT"/}/$name.log" >&2
        tail -n 20 "$LS_LOGS/$name.log" >&2 || true
        die "$name exited with code $rc (log: ${LS_LOGS#"$ROOT"/}/$name.log)"
    fi
}

# Waits up to $3 s until service $1 answers 2xx on path $2; it must stay alive.
ls_wait_http() {
    local name="$1" path="$2" secs="$3" deadline port=""
    deadline=$((SECONDS + secs))
    while :; do
        ls_alive_or_die "$name"
        if [[ -n "$port" ]] || port="$(ls_port "$name")"; then
            http_get "$port" "$path" >/dev/null 2>&1 && return 0
        fi
        ((SECONDS < deadline)) || die "$name: $path not answering 200 within ${secs}s (log: ${LS_LOGS#"$ROOT"/}/$name.log)"
        sleep 0.3
    done
}

# Stops service $1: signal $3 (TERM), wait up to $2 s, then SIGKILL. Sets STOP_RC to the
# exit code its wrapper recorded (137 when it had to be killed; 0 when it was not running
# and left no code; 255 when the code is unknown).
ls_stop() {
    local name="$1" secs="$2" sig="${3:-TERM}" pid deadline killed=0
    STOP_RC=0
    if pid="$(ls_pid "$name")"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        deadline=$((SECONDS + secs))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            note "$name (pid $pid) still running ${secs}s after SIG$sig; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            killed=1
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
        # The wrapper writes the exit code right after the service ended.
        deadline=$((SECONDS + 5))
        while [[ ! -s "$LS_RUN/$name.exit" ]] && ((SECONDS < deadline)); do sleep 0.1; done
    fi
    if [[ -s "$LS_RUN/$name.exit" ]]; then
        STOP_RC="$(cat "$LS_RUN/$name.exit")"
    elif ((killed)); then
        STOP_RC=137
    elif [[ -n "${pid:-}" ]]; then
        STOP_RC=255
    fi
    rm -f "$LS_RUN/$name.pid" "$LS_RUN/$name.port"
}

# Stops PostgreSQL (fast shutdown, SIGINT) and waits up to 30 s.
ls_stop_postgres() {
    local pid deadline
    [[ -f "$LS_RUN/postgres.pid" ]] || return 0
    pid="$(cat "$LS_RUN/postgres.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q postgres; then
        kill -INT "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            note "PostgreSQL (pid $pid) still running 30s after SIGINT; sending SIGQUIT"
            kill -QUIT "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        fi
    fi
    rm -f "$LS_RUN/postgres.pid"
}

# True while the stack's PostgreSQL runs.
ls_postgres_running() {
    local pid
    [[ -f "$LS_RUN/postgres.pid" ]] || return 1
    pid="$(cat "$LS_RUN/postgres.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q postgres
}

ls_kafka() { RTDP_KAFKA_DIR="$LS_DIR/kafka" "$ROOT/shell/local-kafka.sh" "$@"; }

ls_kafka_running() { ls_kafka status 2>/dev/null | grep -q '^running'; }

# Starts worker number $1 and waits until it is live ($2 s, default 60).
ls_start_worker() {
    local n="$1"
    ls_spawn "worker-$n" "$LS_DIR/worker.env" "$WORKER_BIN"
    ls_wait_http "worker-$n" /health/live "${2:-60}"
}

# Starts the collector and waits until it is ready: slot created, Kafka connected ($1 s,
# default 90).
ls_start_collector() {
    ls_spawn collector "$LS_DIR/collector.env" "$COLLECTOR_BIN"
    ls_wait_http collector /health/ready "${1:-90}"
}

# The partitions the running workers own (from their /status): prints "<owned> <distinct>
# <owners> <workers>": (worker, partition) pairs, different partitions among them, workers
# that own at least one, running workers.
ls_partition_owners() {
    local n port st py mine parts=() owners=0 workers=0
    py="$(python_json)"
    for n in $(ls_workers); do
        ls_pid "worker-$n" >/dev/null || continue
        workers=$((workers + 1))
        port="$(ls_port "worker-$n")" || continue
        st="$(http_get "$port" /status 2>/dev/null)" || continue
        mine="$(printf '%s' "$st" | "$py" -c '
import json, sys
d = json.load(sys.stdin).get("details") or {}
print(" ".join(str(p.get("partition")) for p in d.get("partitions") or []))')"
        [[ -n "$mine" ]] || continue
        owners=$((owners + 1))
        # shellcheck disable=SC2206 # one partition number per word
        parts+=($mine)
    done
    if ((${#parts[@]} == 0)); then
        echo "0 0 $owners $workers"
    else
        echo "${#parts[@]} $(printf '%s\n' "${parts[@]}" | sort -u | wc -l) $owners $workers"
    fi
}

# Waits up to $1 s until the group has settled: every partition of the topic has exactly one
# owner among the running workers, and as many workers own partitions as can (all of them,
# or one per partition when there are more workers than partitions).
ls_wait_partitions_owned() {
    local secs="$1" deadline owned distinct owners workers n
    deadline=$((SECONDS + secs))
    while :; do
        for n in $(ls_workers); do ls_alive_or_die "worker-$n"; done
        read -r owned distinct owners workers < <(ls_partition_owners)
        if ((owned == PARTITIONS && distinct == PARTITIONS && owners == (workers < PARTITIONS ? workers : PARTITIONS))); then
            return 0
        fi
        ((SECONDS < deadline)) || die "the workers did not settle within ${secs}s: $owned assignments of $distinct distinct partitions ($PARTITIONS expected), $owners of $workers workers own partitions"
        sleep 0.5
    done
}
