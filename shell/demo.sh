#!/usr/bin/env bash
# demo.sh — the main job on local defaults, end to end, on this machine (no Docker):
# PostgreSQL 15 (pgoutput) → cdc-collector → Kafka → stream-worker → Parquet files,
# checked with `cdc-collector verify`.
#
#   ./shell/demo.sh [--help]
#
#  1. runs shell/ensure-tools.sh (Debian packages incl. Debian's current PostgreSQL 15,
#     Kafka jars), builds the release binaries (cargo build --release -p cdc-collector -p stream-worker);
#  2. starts a throwaway PostgreSQL 15 (initdb into a temp dir, free port, wal_level=logical;
#     run as the `postgres` system user when root), creates database rtdp_demo, loads
#     sql/postgres/demo-schema.sql (shop.customers, shop.orders, shop.order_items: a few
#     thousand rows) and prepares it with sql/setup-postgres-cdc.sql (a LOGIN REPLICATION
#     role `rtdp` with a random password, SELECT grants, REPLICA IDENTITY FULL, and the
#     publication of the shop tables the collector's slot streams, created by the owner);
#  3. starts a local Kafka (shell/local-kafka.sh, state in .tools/kafka-demo) unless that
#     one already runs, then cdc-collector (tables shop.*) and one stream-worker writing
#     output/demo (cleared first);
#  4. runs sql/postgres/demo-workload.sql for DEMO_SECONDS: multi-row transactions of
#     inserts, updates (some change primary keys) and deletes, a few hundred row changes a
#     second, started before the collector has created its slot and read its initial
#     snapshot; shows the collector's /status half-way;
#  5. polls `cdc-collector verify --output output/demo` (source tables vs. the state
#     rebuilt from the committed files) until it reports a match, then lists the files,
#     prints the report and a summary; exits 1 if there is no match within DEMO_VERIFY_TIMEOUT;
#  6. stops collector and worker (SIGTERM; both must exit 0), PostgreSQL, and Kafka if it
#     started it. Everything it started is stopped and the PostgreSQL dir removed on any exit.
#
# Environment:
#   DEMO_SECONDS          workload duration in seconds; default 30
#   DEMO_VERIFY_TIMEOUT   seconds to wait for verify to match after the workload; default 180
#   OUTPUT_FORMAT         parquet (default) | json | csv
#   KEEP_KAFKA=1          leave the broker running at the end
#   RTDP_KAFKA_DIR        broker state dir; default .tools/kafka-demo
#
# Logs: output/demo-run/{postgres,setup,collector,worker,workload}.log (tails are printed
# on failure). Re-runnable: each run has its own database server, topics, collector name
# and consumer group.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=demo
# Shared with start.sh --local: messages, ports, HTTP, stopping processes (common.sh) and
# the throwaway PostgreSQL with the demo schema (local-stack.sh).
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"
# shellcheck source=shell/lib/local-stack.sh
. "$ROOT/shell/lib/local-stack.sh"
case "${1:-}" in
    "") ;;
    -h | --help) usage_from_header; exit 0 ;;
    *) printf 'demo.sh: unknown argument %q\n\n' "$1" >&2; usage_from_header >&2; exit 2 ;;
esac
cd "$ROOT"

OUT_REL="output/demo"
OUT="$ROOT/$OUT_REL"
RUN="$ROOT/output/demo-run"
RUN_SECS="${DEMO_SECONDS:-30}"
VERIFY_TIMEOUT="${DEMO_VERIFY_TIMEOUT:-180}"
FORMAT="${OUTPUT_FORMAT:-parquet}"
KAFKA_STATE="${RTDP_KAFKA_DIR:-$ROOT/.tools/kafka-demo}"
STAMP="$(date +%Y%m%d%H%M%S)-$$"
DB_NAME="rtdp_demo"
DB_USER="rtdp"
COLLECTOR_NAME="rtdp-demo-$STAMP"
TOPIC="rtdp-demo-$STAMP"
OFFSETS_TOPIC="rtdp-demo-offsets-$STAMP"
GROUP="rtdp-demo-$STAMP"
COLLECTOR="$ROOT/target/release/cdc-collector"
WORKER="$ROOT/target/release/stream-worker"
T0=$SECONDS

PG_DIR=""
PG_PID=""
COLLECTOR_PID=""
WORKER_PID=""
WORKLOAD_PID=""
STARTED_KAFKA=0

log_tails() {
    local f
    for f in "$RUN/collector.log" "$RUN/worker.log" "$RUN/workload.log" "$RUN/setup.log"; do
        [[ -s "$f" ]] || continue
        printf '\n--- last 25 lines of %s ---\n' "${f#"$ROOT"/}" >&2
        tail -n 25 "$f" >&2 || true
    done
    # Each start of the collector's stream logs "LOG: starting logical decoding ..." with
    # DETAIL and STATEMENT lines (LOG ranks above ERROR in log_min_messages): leave those out.
    if [[ -s "$RUN/postgres.log" ]]; then
        printf '\n--- last 15 lines of %s, without the logical decoding LOG lines ---\n' "${RUN#"$ROOT"/}/postgres.log" >&2
        awk '/ (LOG|WARNING|ERROR|FATAL|PANIC): / { skip = /logical decoding/ } !skip' "$RUN/postgres.log" | tail -n 15 >&2 || true
    fi
    if [[ -s "$KAFKA_STATE/logs/server.log" ]] && grep -q ' ERROR ' "$KAFKA_STATE/logs/server.log"; then
        printf '\n--- last ERROR lines of %s ---\n' "$KAFKA_STATE/logs/server.log" >&2
        grep ' ERROR ' "$KAFKA_STATE/logs/server.log" | tail -n 10 >&2 || true
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    ((rc == 0)) || log_tails
    if [[ -n "$WORKLOAD_PID" ]]; then stop_pid "$WORKLOAD_PID" 5; fi
    if [[ -n "$COLLECTOR_PID" ]]; then note "stopping cdc-collector"; stop_pid "$COLLECTOR_PID" 40; fi
    if [[ -n "$WORKER_PID" ]]; then note "stopping stream-worker"; stop_pid "$WORKER_PID" 40; fi
    if [[ -n "$PG_PID" ]]; then
        note "stopping PostgreSQL"
        stop_pid "$PG_PID" 30 INT # fast shutdown
    fi
    if [[ -n "$PG_DIR" && -d "$PG_DIR" ]]; then rm -rf "$PG_DIR"; fi
    if ((STARTED_KAFKA)) && [[ "${KEEP_KAFKA:-0}" != 1 ]]; then
        note "stopping the local Kafka broker"
        RTDP_KAFKA_DIR="$KAFKA_STATE" "$ROOT/shell/local-kafka.sh" stop >/dev/null 2>&1 || true
    fi
    if ((rc != 0)); then
        printf '\ndemo: failed (exit %d) after %ds. Logs: %s\n' "$rc" "$((SECONDS - T0))" "${RUN#"$ROOT"/}" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

print_json() {
    if command -v python3 >/dev/null; then
        python3 -m json.tool 2>/dev/null || cat
    else
        cat
    fi
}

# --- 0. prerequisites ------------------------------------------------------------------------
case "$FORMAT" in
    parquet) EXT=parquet ;;
    json) EXT=jsonl ;;
    csv) EXT=csv ;;
    *) die "OUTPUT_FORMAT must be parquet, json or csv (got '$FORMAT')" ;;
esac
if ! [[ "$RUN_SECS" =~ ^[1-9][0-9]*$ ]]; then die "DEMO_SECONDS must be a positive integer (got '$RUN_SECS')"; fi
[[ "$VERIFY_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "DEMO_VERIFY_TIMEOUT must be an integer (got '$VERIFY_TIMEOUT')"
if ! command -v cargo >/dev/null; then
    die "cargo not found. Install Rust first:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\""
fi

say "Checking tools (shell/ensure-tools.sh installs what is missing)"
"$ROOT/shell/ensure-tools.sh" >/dev/null
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
[[ -x "$PGBIN/postgres" ]] || die "no PostgreSQL 15 server in $PGBIN (apt-get install postgresql-15)"

say "Building release binaries (cargo build --release -p cdc-collector -p stream-worker)"
cargo build --release -p cdc-collector -p stream-worker

rm -rf "$OUT" "$RUN"
mkdir -p "$RUN"

# --- 1. PostgreSQL ---------------------------------------------------------------------------
PG_PORT="$(free_port)"
say "Starting a throwaway PostgreSQL 15 on 127.0.0.1:$PG_PORT"
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-demo-pg.XXXXXX")"
pg_prepare_dir "$PG_DIR"
((${#AS_PG[@]} == 0)) || note "running as root: the server runs as the postgres system user"
pg_init "$PG_DIR" "$RUN/postgres.log"
pg_spawn "$PG_DIR" "$PG_PORT" "$RUN/postgres.log"
note "pid $PG_PID, data dir $PG_DIR/data (removed on exit)"

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres)
DB_PASSWORD="$(random_password)"

say "Loading sql/postgres/demo-schema.sql into database $DB_NAME, preparing it with sql/setup-postgres-cdc.sql"
pg_load_demo "$PG_DIR" "$PG_PORT" "$DB_NAME" "$DB_USER" "$DB_PASSWORD" "$RUN/setup.log" "$COLLECTOR_NAME"
"${PSQL[@]}" -d "$DB_NAME" -At -F ' ' -c "SELECT 'shop.customers', count(*) FROM shop.customers
    UNION ALL SELECT 'shop.orders', count(*) FROM shop.orders
    UNION ALL SELECT 'shop.order_items', count(*) FROM shop.order_items" |
    while read -r t n; do note "$(printf '%-18s %6d rows' "$t" "$n")"; done

# Rows inserted, updated, deleted in schema shop so far (cascades included; a session's
# counts arrive when it ends).
shop_changes() {
    "${PSQL[@]}" -d "$DB_NAME" -At -F ' ' -c "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0),
        coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables WHERE schemaname = 'shop'"
}

# --- 2. Kafka --------------------------------------------------------------------------------
say "Starting a local Kafka broker (shell/local-kafka.sh start, state in ${KAFKA_STATE#"$ROOT"/})"
if RTDP_KAFKA_DIR="$KAFKA_STATE" "$ROOT/shell/local-kafka.sh" status | grep -q '^running'; then
    note "that broker is already running; using it and leaving it running"
else
    STARTED_KAFKA=1
fi
kafka_out="$(RTDP_KAFKA_DIR="$KAFKA_STATE" "$ROOT/shell/local-kafka.sh" start)"
BOOTSTRAP="$(printf '%s\n' "$kafka_out" | tail -n 1 | sed -n 's/^bootstrap=//p')"
[[ -n "$BOOTSTRAP" ]] || die "shell/local-kafka.sh start did not print bootstrap=HOST:PORT (got: $kafka_out)"
note "bootstrap servers: $BOOTSTRAP"

# --- 3. collector, workload, worker ------------------------------------------------------------
C_PORT="$(free_port)"
W_PORT="$(free_port)"
collector_env=(
    DATABASE_TYPE=postgresql
    DATABASE_HOST=127.0.0.1
    DATABASE_PORT="$PG_PORT"
    DATABASE_USERNAME="$DB_USER"
    DATABASE_PASSWORD="$DB_PASSWORD"
    DATABASE_NAME="$DB_NAME"
    DATABASE_TABLES='shop.*'
    COLLECTOR_NAME="$COLLECTOR_NAME"
    COLLECTOR_OFFSETS_TOPIC="$OFFSETS_TOPIC"
    KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP"
    KAFKA_TOPIC="$TOPIC"
    MONITORING_PORT="$C_PORT"
    NO_COLOR=1
)
worker_env=(
    KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP"
    KAFKA_TOPIC="$TOPIC"
    KAFKA_GROUP_ID="$GROUP"
    OUTPUT_PATH="./$OUT_REL"
    OUTPUT_FORMAT="$FORMAT"
    CHECKPOINT_INTERVAL=2000
    OUTPUT_ROLLING_INACTIVITY=1000
    MONITORING_PORT="$W_PORT"
    NO_COLOR=1
)
# Exported inside a subshell, so the password is never on a command line.
verify() { (export "${collector_env[@]}" && exec "$COLLECTOR" verify --output "$OUT_REL" "$@"); }

say "Starting cdc-collector $COLLECTOR_NAME: $DB_NAME shop.* -> topic $TOPIC, health and metrics on :$C_PORT"
(export "${collector_env[@]}" && exec "$COLLECTOR") >"$RUN/collector.log" 2>&1 </dev/null &
COLLECTOR_PID=$!
note "pid $COLLECTOR_PID, log ${RUN#"$ROOT"/}/collector.log"
wait_http "$C_PORT" /health/live "$COLLECTOR_PID" cdc-collector "$RUN/collector.log" 30

# The workload starts now, while the collector creates its slot and reads the snapshot:
# changes committed before, during and after the snapshot must each land exactly once.
say "Running the workload for ${RUN_SECS}s (sql/postgres/demo-workload.sql)"
read -r INS0 UPD0 DEL0 < <(shop_changes) || true
"${PSQL[@]}" -d "$DB_NAME" -v seconds="$RUN_SECS" -v pause=0.1 \
    -f "$ROOT/sql/postgres/demo-workload.sql" >"$RUN/workload.log" 2>&1 </dev/null &
WORKLOAD_PID=$!
wait_http "$C_PORT" /health/ready "$COLLECTOR_PID" cdc-collector "$RUN/collector.log" 60
note "cdc-collector ready (slot created, Kafka connected)"

say "Starting stream-worker: $TOPIC -> $OUT_REL ($FORMAT), health and metrics on :$W_PORT"
(export "${worker_env[@]}" && exec "$WORKER") >"$RUN/worker.log" 2>&1 </dev/null &
WORKER_PID=$!
note "pid $WORKER_PID, log ${RUN#"$ROOT"/}/worker.log"

workload_deadline=$((SECONDS + RUN_SECS + 60))
half=$((SECONDS + RUN_SECS / 2))
shown_status=0
last_note=$SECONDS
while kill -0 "$WORKLOAD_PID" 2>/dev/null; do
    alive_or_die "$COLLECTOR_PID" cdc-collector "$RUN/collector.log"
    alive_or_die "$WORKER_PID" stream-worker "$RUN/worker.log"
    ((SECONDS < workload_deadline)) || die "the workload did not finish within $((RUN_SECS + 60))s"
    if ((!shown_status && SECONDS >= half)); then
        shown_status=1
        say "cdc-collector status half-way (curl -s localhost:$C_PORT/status)"
        { http_get "$C_PORT" /status || echo '(no answer)'; } | print_json >&2
    fi
    if ((SECONDS - last_note >= 5)); then
        last_note=$SECONDS
        note "collector published $(metric_sum "$C_PORT" rtdp_collector_events_published_total) events;" \
            "worker committed $(metric_sum "$W_PORT" rtdp_records_out_total) records to files"
    fi
    sleep 0.5
done
rc=0
wait "$WORKLOAD_PID" || rc=$?
WORKLOAD_PID=""
((rc == 0)) || die "the workload failed with exit code $rc (log: ${RUN#"$ROOT"/}/workload.log)"
WORKLOAD_SUMMARY="$(sed -n 's/.*NOTICE: *workload done: //p' "$RUN/workload.log" | tail -n 1)"
note "workload finished: ${WORKLOAD_SUMMARY:-see ${RUN#"$ROOT"/}/workload.log}"

# --- 4. verify -------------------------------------------------------------------------------
say "Waiting until cdc-collector verify --output $OUT_REL matches the source (up to ${VERIFY_TIMEOUT}s)"
deadline=$((SECONDS + VERIFY_TIMEOUT))
last_note=$SECONDS
attempts=0
while :; do
    alive_or_die "$COLLECTOR_PID" cdc-collector "$RUN/collector.log"
    alive_or_die "$WORKER_PID" stream-worker "$RUN/worker.log"
    attempts=$((attempts + 1))
    vrc=0
    verify >"$RUN/verify.txt" 2>&1 || vrc=$?
    ((vrc != 0)) || break
    if ((SECONDS >= deadline)); then
        printf '\nLast verify report (exit %d):\n' "$vrc" >&2
        cat "$RUN/verify.txt" >&2
        verify --show-keys >"$RUN/verify-keys.txt" 2>&1 || true
        die "verify found no match within ${VERIFY_TIMEOUT}s ($attempts attempts; with keys: ${RUN#"$ROOT"/}/verify-keys.txt)"
    fi
    if ((SECONDS - last_note >= 10)); then
        last_note=$SECONDS
        note "not yet (verify exit $vrc; collector published $(metric_sum "$C_PORT" rtdp_collector_events_published_total)," \
            "worker committed $(metric_sum "$W_PORT" rtdp_records_out_total))"
    fi
    sleep 2
done
SNAP_ROWS="$(metric_sum "$C_PORT" rtdp_collector_snapshot_rows_total)"
PUBLISHED="$(metric_sum "$C_PORT" rtdp_collector_events_published_total)"
COMMITTED="$(metric_sum "$W_PORT" rtdp_records_out_total)"
note "match after $attempts verify run(s), $((SECONDS - T0))s since start"
read -r INS1 UPD1 DEL1 < <(shop_changes) || true
W_INS=$((INS1 - INS0)) W_UPD=$((UPD1 - UPD0)) W_DEL=$((DEL1 - DEL0))

# --- 5. stop the services --------------------------------------------------------------------
say "Stopping cdc-collector and stream-worker (SIGTERM)"
stop_pid "$COLLECTOR_PID" 40
COLLECTOR_PID=""
c_rc=$STOP_RC
stop_pid "$WORKER_PID" 40
WORKER_PID=""
w_rc=$STOP_RC
note "cdc-collector exited with code $c_rc, stream-worker with code $w_rc"
((c_rc == 0)) || die "cdc-collector exited with code $c_rc after SIGTERM (expected 0)"
((w_rc == 0)) || die "stream-worker exited with code $w_rc after SIGTERM (expected 0)"

# --- 6. results -------------------------------------------------------------------------------
say "Files written under $OUT_REL"
files="$(find "$OUT_REL" -path "$OUT_REL/_*" -prune -o -type f -name "*.$EXT*" -printf '%10s  %p\n' | sort -k2)"
printf '%s\n' "$files"
n_files="$(printf '%s\n' "$files" | grep -c . || true)"
bytes="$(printf '%s\n' "$files" | awk '{ s += $1 } END { printf "%d", s }')"
note "$n_files $FORMAT files, $bytes bytes (_state/ holds the per-partition manifests)"

say "Verify report (cdc-collector verify --output $OUT_REL)"
cat "$RUN/verify.txt"

say "Stopping PostgreSQL and Kafka"
stop_pid "$PG_PID" 30 INT
PG_PID=""
rm -rf "$PG_DIR"
PG_DIR=""
if ((STARTED_KAFKA)) && [[ "${KEEP_KAFKA:-0}" != 1 ]]; then
    RTDP_KAFKA_DIR="$KAFKA_STATE" "$ROOT/shell/local-kafka.sh" stop
elif ((STARTED_KAFKA)); then
    note "leaving the broker running (KEEP_KAFKA=1); stop it with: RTDP_KAFKA_DIR=${KAFKA_STATE#"$ROOT"/} shell/local-kafka.sh stop"
fi
STARTED_KAFKA=0

tables="$(grep -c ' MATCH$' "$RUN/verify.txt" || true)"
printf '\ndemo: workload changed %d rows in %ss (%d inserts, %d updates, %d deletes, cascades included).\n' \
    "$((W_INS + W_UPD + W_DEL))" "$RUN_SECS" "$W_INS" "$W_UPD" "$W_DEL"
printf 'demo: OK in %ds: PostgreSQL %s snapshot rows + %s streamed changes -> %s events in Kafka -> %s records in %s %s files; verify: %s tables match.\n' \
    "$((SECONDS - T0))" "$SNAP_ROWS" "$((PUBLISHED - SNAP_ROWS))" "$PUBLISHED" "$COMMITTED" "$n_files" "$FORMAT" "$tables"
