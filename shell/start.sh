#!/usr/bin/env bash
# start.sh — start rtdp: with Docker Compose (default), or the local no-Docker stack.
#
#   ./shell/start.sh [--profile P]… [--workers N] [--build] [--no-wait] [--timeout S]
#   ./shell/start.sh --local [--workers N] [--format F] [--partitions N] [--output DIR] [--timeout S]
#
# Compose mode runs `docker compose [--profile P]… up -d [--build] [--scale stream-worker=N]`
# from the repository root (docker-compose v1 works too), then waits until
# shell/check-cdc-status.sh reports every component healthy (unless --no-wait). Profiles:
# demo (a PostgreSQL source with a workload), monitoring (Prometheus, Grafana), ui (Kafka UI);
# COMPOSE_PROFILES works as well.
#
# --local starts everything on this machine, from nothing, in the background, and returns:
#   1. a PostgreSQL 15 (free port, data in a temporary folder) with the demo shop schema
#      (sql/postgres/demo-schema.sql), prepared by sql/setup-postgres-cdc.sql;
#   2. a Kafka broker (shell/local-kafka.sh; KAFKA_PORT, else 9092 or a free port);
#   3. cdc-collector capturing shop.* into topic rtdp-local (--partitions partitions),
#      health and metrics on RTDP_COLLECTOR_PORT (default 8080 when free, else any free port);
#   4. N stream-workers (--workers, default 1) writing --output (default output/local,
#      emptied first) in --format (json, or OUTPUT_FORMAT), each on its own free
#      MONITORING_PORT; it waits until every partition has an owner.
# Pid files, ports and logs are in the state folder (RTDP_LOCAL_STACK_DIR, default
# .tools/local-stack): run/, logs/. Stop with shell/stop.sh --local. If a start fails,
# everything it started is stopped again. Running start.sh --local while the stack runs
# prints where it is and exits 0.
#
# Options:
#   --profile P     compose profile to enable (repeatable)
#   --workers N     stream-worker replicas (compose: --scale; local: processes)
#   --build         compose: build the images first
#   --no-wait       compose: return right after `up -d`
#   --timeout S     seconds to wait for health (compose 180, local 120 per step)
#   --format F      local: json | csv | parquet
#   --partitions N  local: partitions of the change topic (3)
#   --output DIR    local: output folder (output/local)
#
# Environment (local): RTDP_LOCAL_STACK_DIR, RTDP_BIN_DIR (folder of cdc-collector and
# stream-worker; default target/release, built with cargo when missing), KAFKA_PORT,
# RTDP_COLLECTOR_PORT, CHECKPOINT_INTERVAL (5000 ms), OUTPUT_ROLLING_INACTIVITY (1000 ms),
# RTDP_SKIP_ENSURE_TOOLS=1 (do not run shell/ensure-tools.sh). The services get only what
# start.sh chose plus, when set, every PIPELINE_* variable and LOG_LEVEL, LOG_FORMAT, RUST_LOG,
# RTDP_CONFIG, OUTPUT_COMPRESSION, OUTPUT_ROLLING_SIZE, OUTPUT_ROLLING_INTERVAL,
# OUTPUT_MAX_RECORD_BYTES, OUTPUT_MAX_RETRIES, CHECKPOINT_TIMEOUT, SHUTDOWN_TIMEOUT,
# SNAPSHOT_MODE, COLLECTOR_POLL_INTERVAL, COLLECTOR_PRODUCER_MODE, MONITORING_METRICS_ENABLED
# (docs/CONFIGURATION.md), recorded in the state folder for later restarts and scaling.
#
# Exit codes: 0 started (and healthy), 1 failed, 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=start
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE=compose
PROFILES=()
WORKERS=""
BUILD=0
WAIT=1
TIMEOUT=""
FORMAT="${OUTPUT_FORMAT:-json}"
PARTITIONS=3
OUTPUT_ARG=""

while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --profile) [[ $# -ge 2 ]] || bad_usage "--profile needs a name"; PROFILES+=("$2"); shift ;;
        --workers) [[ $# -ge 2 ]] || bad_usage "--workers needs a number"; WORKERS="$2"; shift ;;
        --build) BUILD=1 ;;
        --no-wait) WAIT=0 ;;
        --timeout) [[ $# -ge 2 ]] || bad_usage "--timeout needs seconds"; TIMEOUT="$2"; shift ;;
        --format) [[ $# -ge 2 ]] || bad_usage "--format needs json, csv or parquet"; FORMAT="$2"; shift ;;
        --partitions) [[ $# -ge 2 ]] || bad_usage "--partitions needs a number"; PARTITIONS="$2"; shift ;;
        --output) [[ $# -ge 2 ]] || bad_usage "--output needs a folder"; OUTPUT_ARG="$2"; shift ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done
[[ -z "$WORKERS" || "$WORKERS" =~ ^[0-9]+$ ]] || bad_usage "--workers needs a number (got '$WORKERS')"
[[ -z "$TIMEOUT" || "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout needs seconds (got '$TIMEOUT')"

# --- compose -----------------------------------------------------------------------------------
if [[ "$MODE" == compose ]]; then
    # shellcheck source=shell/lib/compose.sh
    . "$ROOT/shell/lib/compose.sh"
    compose_init
    compose_require_engine
    args=()
    for p in "${PROFILES[@]}"; do args+=(--profile "$p"); done
    up=(up -d)
    ((BUILD)) && up+=(--build)
    [[ -n "$WORKERS" ]] && up+=(--scale "$WORKER_SERVICE=$WORKERS")
    say "${COMPOSE_CMD[*]} ${args[*]} ${up[*]}"
    compose "${args[@]}" "${up[@]}"
    if ((WAIT)); then
        say "Waiting until every component is healthy (up to ${TIMEOUT:-180}s)"
        "$ROOT/shell/check-cdc-status.sh" --compose --wait "${TIMEOUT:-180}"
    fi
    exit 0
fi

# --- local -------------------------------------------------------------------------------------
# shellcheck source=shell/lib/local-stack.sh
. "$ROOT/shell/lib/local-stack.sh"

WORKERS="${WORKERS:-1}"
STEP_TIMEOUT="${TIMEOUT:-120}"
((WORKERS >= 1)) || bad_usage "--local needs at least one worker"
[[ "$PARTITIONS" =~ ^[1-9][0-9]*$ ]] || bad_usage "--partitions needs a positive number (got '$PARTITIONS')"
case "$FORMAT" in
    json | csv | parquet) ;;
    *) bad_usage "--format must be json, csv or parquet (got '$FORMAT')" ;;
esac

# Already running? All of it: say where and stop here. Part of it: refuse.
if [[ -f "$LS_ENV" ]]; then
    ls_load
    running=()
    ls_postgres_running && running+=(postgres)
    ls_kafka_running && running+=(kafka)
    ls_pid collector >/dev/null && running+=(collector)
    for n in $(ls_workers); do ls_pid "worker-$n" >/dev/null && running+=("worker-$n"); done
    if ((${#running[@]})); then
        if ls_postgres_running && ls_kafka_running && ls_pid collector >/dev/null; then
            note "the local stack in ${LS_DIR#"$ROOT"/} is already running: ${running[*]}"
            note "status: shell/check-cdc-status.sh --local    stop: shell/stop.sh --local"
            exit 0
        fi
        die "part of a local stack in ${LS_DIR#"$ROOT"/} is still running (${running[*]}); stop it first: shell/stop.sh --local"
    fi
fi

BIN_DIR="${RTDP_BIN_DIR:-$ROOT/target/release}"
COLLECTOR_BIN="$BIN_DIR/cdc-collector"
WORKER_BIN="$BIN_DIR/stream-worker"
OUTPUT_DIR="${OUTPUT_ARG:-$ROOT/output/local}"
[[ "$OUTPUT_DIR" == /* ]] || OUTPUT_DIR="$PWD/$OUTPUT_DIR"
OUTPUT_FORMAT="$FORMAT"
KAFKA_DIR="$LS_DIR/kafka"
DB_NAME=rtdp_demo
DB_USER=rtdp
TOPIC=rtdp-local
GROUP=rtdp-local
COLLECTOR_NAME=rtdp-local
OFFSETS_TOPIC=rtdp-local-offsets
T0=$SECONDS

if [[ "${RTDP_SKIP_ENSURE_TOOLS:-0}" != 1 ]]; then
    say "Checking tools (shell/ensure-tools.sh)"
    "$ROOT/shell/ensure-tools.sh" >/dev/null
fi
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
if [[ ! -x "$COLLECTOR_BIN" || ! -x "$WORKER_BIN" ]]; then
    if [[ -z "${RTDP_BIN_DIR:-}" ]]; then
        say "Building release binaries (cargo build --release -p cdc-collector -p stream-worker)"
        (cd "$ROOT" && cargo build --release -p cdc-collector -p stream-worker)
    else
        die "no cdc-collector and stream-worker in RTDP_BIN_DIR=$BIN_DIR (cargo build -p cdc-collector -p stream-worker)"
    fi
fi

# On failure stop whatever this run started (the state folder says what).
STARTED=0
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if ((rc != 0 && STARTED)); then
        note "start failed: stopping what was started"
        "$ROOT/shell/stop.sh" --local --quiet || true
        printf '\n%s: failed after %ds; logs in %s\n' "$PROG" "$((SECONDS - T0))" "${LS_LOGS#"$ROOT"/}" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A data folder of a previous stack stopped with --keep-data goes now.
if [[ -n "${PG_DIR:-}" && "$PG_DIR" == */rtdp-local-pg.* ]]; then rm -rf "$PG_DIR"; fi
rm -rf "$LS_RUN" "$LS_LOGS" "$OUTPUT_DIR"
mkdir -p "$LS_DIR" "$LS_RUN" "$LS_LOGS" "$OUTPUT_DIR"
# In the temporary folder rather than the state folder: when we are root the server runs as
# the postgres user, which must reach it (a state folder under a private home would not do).
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-local-pg.XXXXXX")"
PG_PORT="$(free_port)"
BOOTSTRAP=""
write_env "$LS_ENV" PG_DIR PG_PORT DB_NAME DB_USER KAFKA_DIR BOOTSTRAP TOPIC PARTITIONS GROUP \
    COLLECTOR_NAME OFFSETS_TOPIC OUTPUT_DIR OUTPUT_FORMAT COLLECTOR_BIN WORKER_BIN
STARTED=1

# 1. PostgreSQL
say "Starting PostgreSQL 15 on 127.0.0.1:$PG_PORT with the demo schema (database $DB_NAME, schema shop)"
pg_prepare_dir "$PG_DIR"
pg_init "$PG_DIR" "$LS_LOGS/postgres.log"
pg_spawn "$PG_DIR" "$PG_PORT" "$LS_LOGS/postgres.log"
echo "$PG_PID" >"$LS_RUN/postgres.pid"
DB_PASSWORD="$(random_password)"
pg_load_demo "$PG_DIR" "$PG_PORT" "$DB_NAME" "$DB_USER" "$DB_PASSWORD" "$LS_LOGS/setup.log" "$COLLECTOR_NAME"
note "pid $PG_PID, data in $PG_DIR/data (removed by stop.sh)"

# 2. Kafka
say "Starting Kafka (shell/local-kafka.sh, state in ${KAFKA_DIR#"$ROOT"/})"
kafka_out="$(ls_kafka start)" || die "shell/local-kafka.sh start failed"
BOOTSTRAP="$(printf '%s\n' "$kafka_out" | tail -n 1 | sed -n 's/^bootstrap=//p')"
[[ -n "$BOOTSTRAP" ]] || die "shell/local-kafka.sh start did not print bootstrap=HOST:PORT (got: $kafka_out)"
write_env "$LS_ENV" PG_DIR PG_PORT DB_NAME DB_USER KAFKA_DIR BOOTSTRAP TOPIC PARTITIONS GROUP \
    COLLECTOR_NAME OFFSETS_TOPIC OUTPUT_DIR OUTPUT_FORMAT COLLECTOR_BIN WORKER_BIN
note "bootstrap servers: $BOOTSTRAP"

# 3. cdc-collector
# Short environment names passed on to the services when set (besides every PIPELINE_*).
PASS_ENV=(RTDP_CONFIG RUST_LOG LOG_LEVEL LOG_FORMAT OUTPUT_COMPRESSION OUTPUT_ROLLING_SIZE OUTPUT_ROLLING_INTERVAL
    OUTPUT_MAX_RECORD_BYTES OUTPUT_MAX_RETRIES CHECKPOINT_TIMEOUT SHUTDOWN_TIMEOUT SNAPSHOT_MODE
    COLLECTOR_POLL_INTERVAL COLLECTOR_PRODUCER_MODE MONITORING_METRICS_ENABLED)
if [[ -n "${RTDP_COLLECTOR_PORT:-}" ]]; then
    C_PORT="$RTDP_COLLECTOR_PORT"
elif port_in_use 8080; then
    C_PORT=0
else
    C_PORT=8080
fi
(
    umask 077
    DATABASE_TYPE=postgresql DATABASE_HOST=127.0.0.1 DATABASE_PORT="$PG_PORT" DATABASE_USERNAME="$DB_USER" \
        DATABASE_PASSWORD="$DB_PASSWORD" DATABASE_NAME="$DB_NAME" DATABASE_TABLES='shop.*' \
        COLLECTOR_NAME="$COLLECTOR_NAME" COLLECTOR_OFFSETS_TOPIC="$OFFSETS_TOPIC" \
        KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_TOPIC="$TOPIC" KAFKA_TOPIC_PARTITIONS="$PARTITIONS" \
        MONITORING_PORT="$C_PORT" NO_COLOR=1 \
        write_env "$LS_DIR/collector.env" DATABASE_TYPE DATABASE_HOST DATABASE_PORT DATABASE_USERNAME \
        DATABASE_PASSWORD DATABASE_NAME DATABASE_TABLES COLLECTOR_NAME COLLECTOR_OFFSETS_TOPIC \
        KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC KAFKA_TOPIC_PARTITIONS MONITORING_PORT NO_COLOR
    KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_TOPIC="$TOPIC" KAFKA_GROUP_ID="$GROUP" OUTPUT_PATH="$OUTPUT_DIR" \
        OUTPUT_FORMAT="$FORMAT" CHECKPOINT_INTERVAL="${CHECKPOINT_INTERVAL:-5000}" \
        OUTPUT_ROLLING_INACTIVITY="${OUTPUT_ROLLING_INACTIVITY:-1000}" MONITORING_PORT=0 NO_COLOR=1 \
        write_env "$LS_DIR/worker.env" KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC KAFKA_GROUP_ID OUTPUT_PATH \
        OUTPUT_FORMAT CHECKPOINT_INTERVAL OUTPUT_ROLLING_INACTIVITY MONITORING_PORT NO_COLOR
    # Settings given to start.sh (PIPELINE_* and the usual short names) go to both services,
    # so a worker added or a collector restarted later runs with the same configuration.
    mapfile -t extra < <(compgen -e | grep -E "^(PIPELINE_[A-Z0-9_]+|$(IFS='|'; echo "${PASS_ENV[*]}"))\$" || true)
    if ((${#extra[@]})); then
        write_env "$LS_DIR/extra.env" "${extra[@]}"
        cat "$LS_DIR/extra.env" >>"$LS_DIR/collector.env"
        cat "$LS_DIR/extra.env" >>"$LS_DIR/worker.env"
        rm -f "$LS_DIR/extra.env"
    fi
)
unset DB_PASSWORD
say "Starting cdc-collector $COLLECTOR_NAME: $DB_NAME shop.* -> topic $TOPIC ($PARTITIONS partitions)"
ls_start_collector "$STEP_TIMEOUT"
note "pid $(ls_pid collector), health and metrics on :$(ls_port collector), log ${LS_LOGS#"$ROOT"/}/collector.log"

# 4. stream-workers
say "Starting $WORKERS stream-worker(s): $TOPIC -> ${OUTPUT_DIR#"$ROOT"/} ($FORMAT)"
for ((n = 1; n <= WORKERS; n++)); do
    ls_start_worker "$n" "$STEP_TIMEOUT"
    note "worker-$n: pid $(ls_pid "worker-$n"), health and metrics on :$(ls_port "worker-$n"), log ${LS_LOGS#"$ROOT"/}/worker-$n.log"
done
ls_wait_partitions_owned "$STEP_TIMEOUT"

STARTED=0
printf '\n%s: local stack up in %ds (state %s)\n' "$PROG" "$((SECONDS - T0))" "${LS_DIR#"$ROOT"/}"
printf '  PostgreSQL   127.0.0.1:%s  (psql -h %s -p %s -U postgres %s)\n' "$PG_PORT" "$PG_DIR" "$PG_PORT" "$DB_NAME"
printf '  Kafka        %s  topic %s\n' "$BOOTSTRAP" "$TOPIC"
printf '  collector    http://127.0.0.1:%s/status\n' "$(ls_port collector)"
for n in $(ls_workers); do
    printf '  worker-%-5s http://127.0.0.1:%s/status\n' "$n" "$(ls_port "worker-$n")"
done
printf '  output       %s (%s)\n' "${OUTPUT_DIR#"$ROOT"/}" "$FORMAT"
printf 'Next: shell/check-cdc-status.sh --local | shell/quick-test-cdc.sh --local | shell/stop.sh --local\n'
