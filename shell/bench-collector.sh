#!/usr/bin/env bash
# bench-collector.sh — drain rate of cdc-collector against pg_recvlogical (and, with
# --with-debezium, Debezium's PostgreSQL connector), and end-to-end latency of collector +
# stream-worker under a steady load.
# Prints numbers; it is not a test (it fails only when a run cannot finish).
#
#   ./shell/bench-collector.sh [--with-debezium] [N]
#                                      N row changes for phase 1, default 1000000
#                                      (rounded up to whole load transactions)
#   ./shell/bench-collector.sh --help
#
# 1. runs shell/ensure-tools.sh, builds cdc-collector and stream-worker
#    (cargo build --release -p cdc-collector -p stream-worker); with --with-debezium also
#    fetches the Debezium connector (see c.);
# 2. starts a throwaway PostgreSQL 15 (/usr/lib/postgresql/15/bin, as the postgres system
#    user when run as root; free port; wal_level=logical, fsync=off, synchronous_commit=off)
#    with a password role `bench` (LOGIN REPLICATION), and a throwaway Kafka broker
#    (shell/local-kafka.sh with its own RTDP_KAFKA_DIR and a free KAFKA_PORT); both live
#    in a mktemp folder and are stopped and removed on exit;
# 3. phase 1, drain rate: table bench_accounts (pgbench_accounts' shape: aid int primary
#    key, bid int, abalance int, filler char(84); REPLICA IDENTITY FULL, autovacuum off)
#    with 100,000 rows loaded before the slots exist; CREATE PUBLICATION rtdp_bench FOR
#    TABLE public.bench_accounts (pgoutput reads it as of the WAL it decodes, so it must
#    exist before that WAL is written), then one pgoutput slot per run below
#    (pg_create_logical_replication_slot(slot, 'pgoutput')), all created at the same point;
#    then N changes written by pgbench (-c 4 -j 2 -t N/400, each transaction 50 inserts +
#    50 updates of 50 existing rows = 100 changes); CHECKPOINT; end LSN =
#    pg_current_wal_insert_lsn(). Then, one after the other, each reading the whole backlog:
#    a. pg_recvlogical --start --endpos=<end LSN> -f /dev/null -o proto_version=1
#       -o publication_names=rtdp_bench on slot bench_recvlogical: the replication
#       protocol, one decoding pass, nothing parsed, nothing written — the ceiling for
#       this server;
#    b. cdc-collector on slot bench_collector (COLLECTOR_SLOT_NAME,
#       COLLECTOR_PUBLICATION_NAME=rtdp_bench, SNAPSHOT_MODE=never: it streams from the
#       slot as it is) into a fresh 3-partition topic, transactional producer, until
#       rtdp_collector_events_published_total >= N (or rtdp_collector_position
#       {kind="current"} >= the end LSN), polled on /metrics every 100 ms;
#       SKIP_COLLECTOR=1 leaves it out (its slot is then not created either);
#    c. with --with-debezium (or WITH_DEBEZIUM=1): Debezium's PostgreSQL connector
#       (io.debezium:debezium-connector-postgres DBZ_VERSION, default 3.2.7.Final, and its
#       runtime dependencies, fetched once with mvn from Maven Central into
#       .tools/debezium-pg by shell/lib/bench/debezium.sh) on Kafka Connect standalone (one
#       JVM, ConnectStandalone from the Kafka jars of shell/local-kafka.sh fetch) on slot
#       bench_debezium: plugin.name=pgoutput,
#       publication.name=rtdp_bench, publication.autocreate.mode=disabled,
#       snapshot.mode=no_data, table.include.list=public.bench_accounts, JsonConverter
#       with schemas.enable=false, producer settings left at Connect's defaults, a fresh
#       topic prefix (topic <prefix>.public.bench_accounts, 3 partitions, created by
#       Connect); done when the topic's end offsets, summed over its partitions and
#       polled every 250 ms (shell/lib/bench/EndOffsets.java, one JVM), reach N;
#       Connect is killed afterwards;
# 4. phase 2, end-to-end latency: a fresh collector (new name, slot, topic; the same
#    publication) and a stream-worker (OUTPUT_FORMAT=json, CHECKPOINT_INTERVAL=1000,
#    OUTPUT_ROLLING_INACTIVITY=500); pgbench --rate=LAT_RATE/100 for LAT_SECONDS (the same
#    100-change transaction); then waits until every change is in a committed file and
#    reads the delta of the worker's rtdp_latency_ms histogram (file commit time minus the
#    database commit time);
# 5. prints a summary table.
#
# Columns and terms: "seconds" = wall time from process start (pg_recvlogical: until it
# exits at the end LSN; collector: until everything is published; Debezium: from starting
# Connect until the topic holds N records; "first publish" is when the counter (Debezium:
# the topic's end offsets) first moved, so start-up cost is visible); changes/s = N /
# seconds; "vs recvlogical" = recvlogical seconds / the run's seconds; "collector /
# Debezium" = Debezium seconds / collector seconds; "client CPU s" = CPU of the process
# itself (user+sys; Debezium: the Connect JVM); "postgres CPU s" = CPU the whole
# PostgreSQL server used during the run (its processes plus reaped backends), i.e.
# logical decoding; peak RSS = VmHWM.
# Quantiles are interpolated within the histogram's buckets like PromQL's
# histogram_quantile (buckets 500 ms, 1 s, 2.5 s, 5 s, … so they are coarse).
#
# Aims: collector >= 0.6 x pg_recvlogical and >= 3 x Debezium; first publish < 1.5 s
# after start; peak RSS < 200 MB; p99 latency < checkpoint interval + 1 s (2,000 ms).
#
# Environment: N (instead of the argument), LAT_SECONDS (30), LAT_RATE (changes/s in
# phase 2, 10000), LOAD_CLIENTS (pgbench clients, 4), BENCH_TIMEOUT (seconds per wait,
# 1800), KEEP_WORK=1 (keep the mktemp folder: logs, PostgreSQL and Kafka data),
# SKIP_BUILD=1 (use target/release as it is), SKIP_LATENCY=1 (phase 1 only),
# SKIP_COLLECTOR=1 (no collector run in phase 1; with SKIP_LATENCY=1 too nothing is built
# and no release binary is needed), WITH_DEBEZIUM=1 (as --with-debezium), DBZ_VERSION
# (3.2.7.Final), DEBEZIUM_JVM_OPTS (the Connect JVM's heap and GC options; default those
# of Kafka's connect-standalone.sh: -Xms256m -Xmx2g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
# -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent).
# PIPELINE_COLLECTOR_* variables (e.g. PIPELINE_COLLECTOR_MAX_BATCH_CHANGES) reach the
# collector, to try other settings.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
WITH_DEBEZIUM="${WITH_DEBEZIUM:-0}"
N_ARG=""
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --with-debezium) WITH_DEBEZIUM=1 ;;
        -*) echo "usage: $0 [--with-debezium] [N>0] (--help)" >&2; exit 2 ;;
        *) [[ -z "$N_ARG" ]] || { echo "usage: $0 [--with-debezium] [N>0] (--help)" >&2; exit 2; }
           N_ARG="$arg" ;;
    esac
done
[[ "$WITH_DEBEZIUM" == 0 || "$WITH_DEBEZIUM" == 1 ]] || { echo "WITH_DEBEZIUM must be 0 or 1" >&2; exit 2; }
SKIP_COLLECTOR="${SKIP_COLLECTOR:-0}"
SKIP_LATENCY="${SKIP_LATENCY:-0}"

N="${N_ARG:-${N:-1000000}}"
if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N == 0)); then echo "usage: $0 [--with-debezium] [N>0] (--help)" >&2; exit 2; fi
LAT_SECONDS="${LAT_SECONDS:-30}"
LAT_RATE="${LAT_RATE:-10000}"
CLIENTS="${LOAD_CLIENTS:-4}"
TIMEOUT="${BENCH_TIMEOUT:-1800}"
for v in LAT_SECONDS LAT_RATE CLIENTS TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
TX_CHANGES=100             # changes per load transaction: 50 inserts + 50 updates
PREFILL=100000             # rows present before the slots are created
CKPT_MS=1000               # the worker's CHECKPOINT_INTERVAL in phase 2
# Whole transactions, an equal number per pgbench client.
PER_CLIENT=$(((N + TX_CHANGES * CLIENTS - 1) / (TX_CHANGES * CLIENTS)))
TXS=$((PER_CLIENT * CLIENTS))
N_ASKED="$N"
N=$((TXS * TX_CHANGES))

STAMP="$(date +%Y%m%d-%H%M%S)"
REL="$ROOT/target/release"
PGBIN=/usr/lib/postgresql/15/bin
DB=bench
DB_USER=bench
DB_PASSWORD="bench-$RANDOM$RANDOM"
TABLE=bench_accounts
PUBLICATION=rtdp_bench

WORK=""
PG_STARTED=0
KAFKA_STARTED=0
declare -a PIDS=()

log() { printf 'bench-collector: %s\n' "$*" >&2; }
die() { printf 'bench-collector: ERROR: %s\n' "$*" >&2; exit 1; }

# Runs a PostgreSQL server binary as the postgres system user when we are root.
as_pg() {
    if (($(id -u) == 0)); then runuser -u postgres -- env HOME="$PGDIR" "$@"; else "$@"; fi
}

stop_pid() {
    local pid="$1" deadline
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 40))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if ((PG_STARTED)); then
        as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if ((KAFKA_STARTED)); then
        RTDP_KAFKA_DIR="$WORK/kafka" "$ROOT/shell/local-kafka.sh" stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$WORK" ]]; then
        if [[ "${KEEP_WORK:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
untrack() { local p="$1" i; for i in "${!PIDS[@]}"; do [[ "${PIDS[$i]}" != "$p" ]] || unset 'PIDS[i]'; done; }

# scrape PORT FILE: the /metrics text into FILE (empty when unreachable).
scrape() { curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" >"$2" 2>/dev/null || : >"$2"; }
# mval FILE NAME [LABEL-SUBSTRING]: sum of the series of NAME (0 when none), as an integer.
mval() {
    awk -v m="$2" -v l="${3:-}" '!/^#/ && NF >= 2 {
        b = $1; sub(/\{.*/, "", b)
        if (b == m && (l == "" || index($1, l))) s += $2
    } END { printf "%.0f", s }' "$1"
}
# Bytes of a running process' peak RSS (VmHWM) in MB, and its CPU seconds (user+sys).
peak_mb() { awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
proc_cpu() {
    python3 - "$1" <<'PY'
import os, sys
s = open(f"/proc/{sys.argv[1]}/stat").read()
f = s[s.rindex(")") + 2:].split()
print(f"{(int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'):.2f}")
PY
}
# CPU seconds used so far by the PostgreSQL server: the postmaster, its live children and
# the children it has reaped (backends that exited).
pg_cpu() {
    python3 - "$(head -n 1 "$PGDIR/data/postmaster.pid")" <<'PY'
import os, sys
pm = sys.argv[1]
def fields(pid):
    s = open(f"/proc/{pid}/stat").read()
    return s[s.rindex(")") + 2:].split()
f = fields(pm)
ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            g = fields(p)
        except OSError:
            continue
        if g[1] == pm:
            ticks += int(g[11]) + int(g[12])
print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")
PY
}
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

psql_pg() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PGDIR" -p "$PGPORT" "$@"; }
sql() { psql_pg -U "$DB_USER" -d "$DB" -c "$1"; }
lsn_num() { echo $((16#${1%/*} * 4294967296 + 16#${1#*/})); } # X/Y -> X * 2^32 + Y
# drop_slot SLOT: drops it once no walsender holds it any more (waits up to 20 s).
drop_slot() {
    local deadline=$((SECONDS + 20))
    until [[ "$(sql "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'")" != t ]]; do
        ((SECONDS < deadline)) || { log "slot $1 still active after 20 s; left in place"; return 0; }
        sleep 0.2
    done
    sql "SELECT pg_drop_replication_slot('$1') FROM pg_replication_slots WHERE slot_name = '$1'" >/dev/null
}

wait_http() { # wait_http PORT PATH WHAT PID LOG
    local deadline=$((SECONDS + 120))
    until curl -sf --max-time 2 "http://127.0.0.1:$1$2" >/dev/null 2>&1; do
        kill -0 "$4" 2>/dev/null || { tail -n 30 "$5" >&2; die "$3 exited"; }
        ((SECONDS < deadline)) || { tail -n 30 "$5" >&2; die "$3 not ready after 120 s"; }
        sleep 0.1
    done
}

# start_collector NAME SLOT TOPIC PORT LOG: sets COLLECTOR_PID.
COLLECTOR_PID=""
start_collector() {
    env DATABASE_TYPE=postgresql DATABASE_HOST=127.0.0.1 DATABASE_PORT="$PGPORT" \
        DATABASE_USERNAME="$DB_USER" DATABASE_PASSWORD="$DB_PASSWORD" DATABASE_NAME="$DB" \
        DATABASE_TABLES="public.$TABLE" COLLECTOR_NAME="$1" COLLECTOR_SLOT_NAME="$2" \
        COLLECTOR_PUBLICATION_NAME="$PUBLICATION" SNAPSHOT_MODE=never \
        KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_TOPIC="$3" \
        COLLECTOR_OFFSETS_TOPIC="rtdp-bench-offsets-$STAMP" MONITORING_PORT="$4" \
        LOG_LEVEL=info NO_COLOR=1 \
        "$REL/cdc-collector" >"$5" 2>&1 &
    COLLECTOR_PID=$!
    PIDS+=("$COLLECTOR_PID")
}

# --- tools, build -------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
log "ensure-tools"
"$ROOT/shell/ensure-tools.sh" >/dev/null
[[ -x "$PGBIN/postgres" && -x "$PGBIN/pgbench" && -x "$PGBIN/pg_recvlogical" ]] ||
    die "PostgreSQL 15 binaries not found in $PGBIN (apt-get install postgresql-15)"
if [[ "$SKIP_COLLECTOR" == 1 && "$SKIP_LATENCY" == 1 ]]; then
    log "SKIP_COLLECTOR=1 and SKIP_LATENCY=1: no release binary needed, nothing built"
else
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        log "building (cargo build --release -p cdc-collector -p stream-worker)"
        cargo build --release -p cdc-collector -p stream-worker >&2
    fi
    [[ -x "$REL/cdc-collector" ]] || die "release binary missing: $REL/cdc-collector"
    [[ "$SKIP_LATENCY" == 1 || -x "$REL/stream-worker" ]] || die "release binary missing: $REL/stream-worker"
fi
KAFKA_HOME=""
if ((WITH_DEBEZIUM)); then
    command -v java >/dev/null || die "java is needed for --with-debezium (apt-get install openjdk-17-jre-headless)"
    read -r DBZ_VERSION_USED DBZ_PLUGIN_PATH < <("$ROOT/shell/lib/bench/debezium.sh" fetch) || true
    [[ -n "${DBZ_PLUGIN_PATH:-}" ]] || die "could not fetch the Debezium PostgreSQL connector"
    KAFKA_HOME="$("$ROOT/shell/local-kafka.sh" fetch)" || die "shell/local-kafka.sh fetch failed"
    compgen -G "$KAFKA_HOME/libs/connect-runtime-*.jar" >/dev/null || die "no connect-runtime jar in $KAFKA_HOME/libs"
    log "Debezium PostgreSQL connector $DBZ_VERSION_USED, Kafka Connect from $KAFKA_HOME"
fi

for v in PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGDATA PGSSLMODE; do
    unset "$v"
done

WORK="$(mktemp -d /tmp/rtdp-bench-collector.XXXXXX)"
chmod 755 "$WORK"
PGDIR="$WORK/pg"
mkdir -p "$PGDIR" "$WORK/logs"
if (($(id -u) == 0)); then
    id -u postgres >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres: "$PGDIR"
fi

# --- PostgreSQL -----------------------------------------------------------------------------
PGPORT="$(free_port)"
log "starting PostgreSQL 15 on 127.0.0.1:$PGPORT ($PGDIR)"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C --no-sync --no-instructions >"$WORK/logs/initdb.log" 2>&1 ||
    { cat "$WORK/logs/initdb.log" >&2; die "initdb failed"; }
PG_STARTED=1
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c synchronous_commit=off -c fsync=off" \
    start >/dev/null || { tail -n 30 "$PGDIR/server.log" >&2; die "PostgreSQL did not start"; }
psql_pg -U postgres -d postgres <<SQL
CREATE ROLE $DB_USER LOGIN REPLICATION PASSWORD '$DB_PASSWORD';
CREATE DATABASE $DB OWNER $DB_USER;
SQL
psql_pg -U "$DB_USER" -d "$DB" <<SQL
CREATE TABLE $TABLE (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))
    WITH (autovacuum_enabled = off);
ALTER TABLE $TABLE REPLICA IDENTITY FULL;
CREATE SEQUENCE ${TABLE}_aid START $((PREFILL + 1)) CACHE 1000;
INSERT INTO $TABLE SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, $PREFILL) g;
VACUUM ANALYZE $TABLE;
SQL

# The load transaction: 50 new rows, and 50 existing rows of this client's own slice
# (no two clients touch the same row: no lock waits, no deadlocks).
cat >"$WORK/load.sql" <<SQL
\\set a :client_id * :slice + random(1, :slice - 50)
BEGIN;
INSERT INTO $TABLE SELECT nextval('${TABLE}_aid'), 1, 0, '' FROM generate_series(1, 50);
UPDATE $TABLE SET abalance = abalance + 1 WHERE aid BETWEEN :a AND :a + 49;
END;
SQL
pgbench_run() { # pgbench_run LOG CLIENTS ARGS...: prints processed transactions
    local logf="$1" c="$2" processed failed
    shift 2
    "$PGBIN/pgbench" -n -M prepared -h "$PGDIR" -p "$PGPORT" -U "$DB_USER" \
        -f "$WORK/load.sql" -D slice=$((PREFILL / c)) -c "$c" -j "$(( c < 2 ? c : 2 ))" "$@" "$DB" \
        >"$logf" 2>&1 || { tail -n 20 "$logf" >&2; die "pgbench failed"; }
    processed="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logf")"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$logf")"
    [[ -n "$processed" ]] || { cat "$logf" >&2; die "pgbench printed no transaction count"; }
    ((${failed:-0} == 0)) || { cat "$logf" >&2; die "pgbench: $failed failed transactions"; }
    echo "$processed"
}

# --- Kafka ----------------------------------------------------------------------------------
log "starting a local Kafka broker ($WORK/kafka)"
KAFKA_STARTED=1
BOOTSTRAP="$(RTDP_KAFKA_DIR="$WORK/kafka" KAFKA_PORT="$(free_port)" "$ROOT/shell/local-kafka.sh" start |
    tail -n 1 | sed -n 's/^bootstrap=//p')"
[[ -n "$BOOTSTRAP" ]] || die "shell/local-kafka.sh start printed no bootstrap=HOST:PORT"

# --- phase 1: the backlog -----------------------------------------------------------------------
SLOT_C=bench_collector
SLOT_R=bench_recvlogical
SLOT_D=bench_debezium
# pgoutput looks the publication up as of the WAL it decodes: it must exist before the load.
sql "CREATE PUBLICATION $PUBLICATION FOR TABLE public.$TABLE" >/dev/null
SLOTS=("$SLOT_R")
[[ "$SKIP_COLLECTOR" == 1 ]] || SLOTS+=("$SLOT_C")
((WITH_DEBEZIUM == 0)) || SLOTS+=("$SLOT_D")
for slot in "${SLOTS[@]}"; do
    sql "SELECT 1 FROM pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
done
log "publication $PUBLICATION; pgoutput slots ${SLOTS[*]}"
START_LSN="$(sql "SELECT pg_current_wal_insert_lsn()")"
((N == N_ASKED)) || log "N=$N_ASKED rounded up to $N (whole transactions of $TX_CHANGES changes, $CLIENTS clients)"
log "phase 1: writing $N changes ($TXS transactions of 50 inserts + 50 updates, pgbench -c $CLIENTS)"
t0="$(now)"
processed="$(pgbench_run "$WORK/logs/pgbench-load.log" "$CLIENTS" -t "$PER_CLIENT")"
LOAD_S="$(elapsed "$t0" "$(now)")"
((processed == TXS)) || die "pgbench processed $processed of $TXS transactions"
END_LSN="$(sql "SELECT pg_current_wal_insert_lsn()")"
psql_pg -U postgres -d "$DB" -c CHECKPOINT >/dev/null
END_NUM="$(lsn_num "$END_LSN")"
WAL_MB="$(sql "SELECT round(pg_wal_lsn_diff('$END_LSN', '$START_LSN') / 1e6, 1)")"
ROWS_NOW="$(sql "SELECT count(*) FROM $TABLE")"
((ROWS_NOW == PREFILL + TXS * 50)) || die "table has $ROWS_NOW rows, expected $((PREFILL + TXS * 50))"
log "loaded in $LOAD_S s; WAL $START_LSN .. $END_LSN ($WAL_MB MB)"

recv_opts=(-o proto_version=1 -o "publication_names=$PUBLICATION")

# a. pg_recvlogical ------------------------------------------------------------------------------
log "run pg_recvlogical: slot $SLOT_R up to $END_LSN"
cpu0="$(pg_cpu)"
recv_out="$(PGPASSWORD="$DB_PASSWORD" python3 - "$TIMEOUT" "$PGBIN/pg_recvlogical" \
    -h 127.0.0.1 -p "$PGPORT" -U "$DB_USER" -d "$DB" --slot="$SLOT_R" --start \
    --endpos="$END_LSN" --no-loop "${recv_opts[@]}" -f /dev/null <<'PY' 2>"$WORK/logs/recvlogical.log"
import resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[2:], timeout=float(sys.argv[1]))
t1 = time.monotonic()
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"seconds={t1 - t0:.3f} cpu={u.ru_utime + u.ru_stime:.2f} maxrss_kb={u.ru_maxrss} rc={r.returncode}")
PY
)" || { cat "$WORK/logs/recvlogical.log" >&2; die "pg_recvlogical run failed"; }
sleep 0.5 # let the postmaster reap the walsender
cpu1="$(pg_cpu)"
[[ "$recv_out" == *rc=0 ]] || { cat "$WORK/logs/recvlogical.log" >&2; die "pg_recvlogical: $recv_out"; }
RECV_S="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$recv_out")"
RECV_CPU="$(sed -n 's/.* cpu=\([0-9.]*\).*/\1/p' <<<"$recv_out")"
RECV_RSS=$(($(sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' <<<"$recv_out") / 1024))
RECV_PGCPU="$(fsub "$cpu0" "$cpu1")"
RECV_CONFIRMED="$(sql "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT_R'")"
log "pg_recvlogical: $RECV_S s (confirmed_flush_lsn now $RECV_CONFIRMED)"
drop_slot "$SLOT_R"

# b. the collector --------------------------------------------------------------------------------
C_DONE=0
if [[ "$SKIP_COLLECTOR" == 1 ]]; then
    log "SKIP_COLLECTOR=1: no collector run"
else
    C_PORT="$(free_port)"
    C_LOG="$WORK/logs/collector-drain.log"
    DRAIN_TOPIC="rtdp-bench-drain-$STAMP"
    log "run cdc-collector: slot $SLOT_C -> $DRAIN_TOPIC (metrics :$C_PORT)"
    cpu0="$(pg_cpu)"
    t_start="$(now)"
    start_collector "bench-drain-$STAMP" "$SLOT_C" "$DRAIN_TOPIC" "$C_PORT" "$C_LOG"
    t_first="" t_done="" published=0 position=0 done_by="" last_progress=0 last_pub=-1
    M="$WORK/metrics.txt"
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        kill -0 "$COLLECTOR_PID" 2>/dev/null || { tail -n 30 "$C_LOG" >&2; die "collector exited early"; }
        scrape "$C_PORT" "$M"
        published="$(mval "$M" rtdp_collector_events_published_total)"
        position="$(mval "$M" rtdp_collector_position 'kind="current"')"
        if [[ -z "$t_first" ]] && ((published > 0)); then t_first="$(now)"; fi
        if ((published >= N)); then done_by="events published"; fi
        if ((position >= END_NUM)); then done_by="${done_by:+$done_by and }position"; fi
        if [[ -n "$done_by" ]]; then t_done="$(now)"; break; fi
        if ((published != last_pub)); then last_pub=$published; last_progress=$SECONDS; fi
        if ((SECONDS - last_progress >= 60)); then
            log "collector: no progress for 60 s (published $published of $N, position $position < $END_NUM)"
            last_progress=$SECONDS
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$C_LOG" >&2; die "collector not done after ${TIMEOUT}s (published $published of $N)"; }
        sleep 0.1
    done
    C_RSS="$(peak_mb "$COLLECTOR_PID")"
    C_CPU="$(proc_cpu "$COLLECTOR_PID")"
    sleep 1 # anything published past N would show now
    scrape "$C_PORT" "$M"
    cp "$M" "$WORK/logs/collector-drain.metrics"
    published="$(mval "$M" rtdp_collector_events_published_total)"
    captured="$(mval "$M" rtdp_collector_events_captured_total)"
    kafka_txns="$(mval "$M" rtdp_collector_kafka_transaction_seconds_count)"
    kafka_txn_s="$(awk '$1 == "rtdp_collector_kafka_transaction_seconds_sum" { print $2 }' "$M")"
    reconnects="$(mval "$M" rtdp_collector_reconnects_total)"
    position="$(mval "$M" rtdp_collector_position 'kind="current"')"
    stop_pid "$COLLECTOR_PID"; untrack "$COLLECTOR_PID"
    sleep 0.5
    cpu1="$(pg_cpu)"
    C_PGCPU="$(fsub "$cpu0" "$cpu1")"
    C_S="$(elapsed "$t_start" "$t_done")"
    C_FIRST="$(elapsed "$t_start" "${t_first:-$t_done}")"
    C_AFTER_FIRST="$(elapsed "${t_first:-$t_start}" "$t_done")"
    warn_lines="$(grep -ciE ' (WARN|ERROR) ' "$C_LOG" || true)"
    log "collector: $C_S s (first publish after $C_FIRST s; done by $done_by; published $published," \
        "captured $captured, $kafka_txns Kafka transactions, $reconnects reconnects, $warn_lines WARN/ERROR log lines)"
    ((published == N)) || log "NOTE: published $published events, expected exactly $N"
    if ((warn_lines > 0)); then grep -iE ' (WARN|ERROR) ' "$C_LOG" | head -n 5 | sed 's/^/    /' >&2; fi
    SLOT_C_STATE="$(sql "SELECT 'restart_lsn ' || restart_lsn || ', confirmed_flush_lsn ' || confirmed_flush_lsn
        FROM pg_replication_slots WHERE slot_name = '$SLOT_C'")"
    log "collector slot at the end: $SLOT_C_STATE (a restart would decode from restart_lsn)"
    drop_slot "$SLOT_C"
    C_DONE=1
fi

# c. Debezium ------------------------------------------------------------------------------------
D_DONE=0
if ((WITH_DEBEZIUM)); then
    D_DIR="$WORK/debezium"
    mkdir -p "$D_DIR"
    D_PREFIX="rtdp_bench_dbz_$STAMP"
    D_TOPIC="$D_PREFIX.public.$TABLE"
    D_LOG="$D_DIR/connect.log"
    "$ROOT/shell/lib/bench/debezium.sh" config "$D_DIR" "$BOOTSTRAP" "$DBZ_PLUGIN_PATH" \
        "$(free_port)" "bench-dbz-$STAMP" "$PGPORT" "$DB_USER" "$DB_PASSWORD" "$DB" "$SLOT_D" \
        "$PUBLICATION" "public.$TABLE" "$D_PREFIX" 3
    # The poller runs before Connect starts (its JVM start and compile are not timed).
    java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$D_DIR/log4j-tools.properties" \
        -cp "$KAFKA_HOME/libs/*" "$ROOT/shell/lib/bench/EndOffsets.java" "$BOOTSTRAP" "$D_TOPIC" 250 \
        >"$D_DIR/end-offsets.txt" 2>"$D_DIR/end-offsets.log" </dev/null &
    POLL_PID=$!
    PIDS+=("$POLL_PID")
    deadline=$((SECONDS + 120))
    until [[ -s "$D_DIR/end-offsets.txt" ]]; do
        kill -0 "$POLL_PID" 2>/dev/null || { cat "$D_DIR/end-offsets.log" >&2; die "the end-offsets poller exited"; }
        ((SECONDS < deadline)) || { cat "$D_DIR/end-offsets.log" >&2; die "the end-offsets poller printed nothing in 120 s"; }
        sleep 0.1
    done
    read -ra D_JVM <<<"${DEBEZIUM_JVM_OPTS:--Xms256m -Xmx2g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
    log "run Debezium $DBZ_VERSION_USED on Kafka Connect standalone: slot $SLOT_D -> $D_TOPIC (JVM ${D_JVM[*]})"
    cpu0="$(pg_cpu)"
    t_start="$(now)"
    java "${D_JVM[@]}" -Djava.awt.headless=true -Dlog4j.configuration="file:$D_DIR/log4j.properties" \
        -cp "$KAFKA_HOME/libs/*" org.apache.kafka.connect.cli.ConnectStandalone \
        "$D_DIR/worker.properties" "$D_DIR/connector.properties" >"$D_DIR/connect.out" 2>&1 </dev/null &
    CONNECT_PID=$!
    PIDS+=("$CONNECT_PID")
    dbz_fail() { tail -n 40 "$D_LOG" "$D_DIR/connect.out" >&2 2>/dev/null || true; die "$1"; }
    t_first="" t_done="" d_count=0 last_progress=$SECONDS last_count=-1
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        kill -0 "$CONNECT_PID" 2>/dev/null || dbz_fail "Kafka Connect exited early"
        kill -0 "$POLL_PID" 2>/dev/null || { cat "$D_DIR/end-offsets.log" >&2; die "the end-offsets poller exited"; }
        if grep -q 'Task threw an uncaught and unrecoverable exception\|Failed to start connector' "$D_LOG" 2>/dev/null; then
            dbz_fail "the Debezium connector failed"
        fi
        # Lines "<unix seconds> <sum of end offsets>", one per change of the sum.
        read -r t_line d_count < <(tail -n 1 "$D_DIR/end-offsets.txt") || true
        [[ "$t_line" =~ ^[0-9.]+$ && "$d_count" =~ ^[0-9]+$ ]] || { sleep 0.05; continue; }
        if [[ -z "$t_first" ]] && ((d_count > 0)); then
            t_first="$(awk '$2 > 0 { print $1; exit }' "$D_DIR/end-offsets.txt")"
        fi
        if ((d_count >= N)); then t_done="$t_line"; break; fi
        if ((d_count != last_count)); then last_count=$d_count; last_progress=$SECONDS; fi
        if ((SECONDS - last_progress >= 60)); then
            log "Debezium: no progress for 60 s ($d_count of $N records in $D_TOPIC)"
            last_progress=$SECONDS
        fi
        ((SECONDS < deadline)) || dbz_fail "Debezium not done after ${TIMEOUT}s ($d_count of $N records in $D_TOPIC)"
        sleep 0.25
    done
    D_RSS="$(peak_mb "$CONNECT_PID")"
    D_CPU="$(proc_cpu "$CONNECT_PID")"
    sleep 1 # anything produced past N would show now
    read -r _ d_count < <(tail -n 1 "$D_DIR/end-offsets.txt") || true
    stop_pid "$POLL_PID"; untrack "$POLL_PID"
    stop_pid "$CONNECT_PID"; untrack "$CONNECT_PID"
    sleep 0.5
    cpu1="$(pg_cpu)"
    D_PGCPU="$(fsub "$cpu0" "$cpu1")"
    D_S="$(elapsed "$t_start" "$t_done")"
    D_FIRST="$(elapsed "$t_start" "${t_first:-$t_done}")"
    D_AFTER_FIRST="$(elapsed "${t_first:-$t_start}" "$t_done")"
    d_warn="$(grep -cE '^\[[^]]*\] (WARN|ERROR) ' "$D_LOG" || true)"
    log "Debezium: $D_S s (first record after $D_FIRST s; $d_count records in $D_TOPIC;" \
        "$d_warn WARN/ERROR log lines in ${D_LOG#"$WORK"/})"
    ((d_count == N)) || log "NOTE: $D_TOPIC holds $d_count records, expected exactly $N"
    if ((d_warn > 0)); then grep -E '^\[[^]]*\] (WARN|ERROR) ' "$D_LOG" | head -n 5 | cut -c1-300 | sed 's/^/    /' >&2; fi
    drop_slot "$SLOT_D"
    D_DONE=1
fi

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
at_least() { awk -v v="$1" -v a="$2" 'BEGIN { print (v + 0 >= a + 0 ? "yes" : "NO") }'; }
below() { awk -v v="$1" -v a="$2" 'BEGIN { print (v + 0 < a + 0 ? "yes" : "NO") }'; }
RECV_RATE="$(rate "$N" "$RECV_S")"
if ((C_DONE)); then
    C_RATE="$(rate "$N" "$C_S")"
    C_RATE_AFTER_FIRST="$(rate "$N" "$C_AFTER_FIRST")"
    RATIO="$(ratio "$RECV_S" "$C_S")"
    AIM_RATIO="$(at_least "$RATIO" 0.6)"
    AIM_FIRST="$(below "$C_FIRST" 1.5)"
    AIM_RSS="$(below "$C_RSS" 200)"
fi
if ((D_DONE)); then
    D_RATE="$(rate "$N" "$D_S")"
    D_RATE_AFTER_FIRST="$(rate "$N" "$D_AFTER_FIRST")"
    D_VS_RECV="$(ratio "$RECV_S" "$D_S")"
    if ((C_DONE)); then
        DBZ_RATIO="$(ratio "$D_S" "$C_S")"
        AIM_DBZ="$(at_least "$DBZ_RATIO" 3)"
    fi
fi

# --- phase 2: latency -----------------------------------------------------------------------------
LAT_DONE=0
if [[ "$SKIP_LATENCY" != 1 ]]; then
    LAT_TOPIC="rtdp-bench-lat-$STAMP"
    C_PORT="$(free_port)"
    C_LOG="$WORK/logs/collector-latency.log"
    log "phase 2: collector (new slot bench_latency) -> $LAT_TOPIC, worker json, CHECKPOINT_INTERVAL=$CKPT_MS"
    start_collector "bench-lat-$STAMP" bench_latency "$LAT_TOPIC" "$C_PORT" "$C_LOG"
    LAT_COLLECTOR_PID="$COLLECTOR_PID"
    wait_http "$C_PORT" /health/ready collector "$LAT_COLLECTOR_PID" "$C_LOG"
    W_PORT="$(free_port)"
    W_LOG="$WORK/logs/worker-latency.log"
    mkdir -p "$WORK/out"
    env KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_TOPIC="$LAT_TOPIC" \
        KAFKA_GROUP_ID="rtdp-bench-lat-$STAMP" OUTPUT_PATH="$WORK/out" \
        OUTPUT_FORMAT=json OUTPUT_COMPRESSION=none CHECKPOINT_INTERVAL="$CKPT_MS" \
        OUTPUT_ROLLING_INACTIVITY=500 MONITORING_PORT="$W_PORT" LOG_LEVEL=warn NO_COLOR=1 \
        "$REL/stream-worker" >"$W_LOG" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    wait_http "$W_PORT" /health/ready stream-worker "$WORKER_PID" "$W_LOG"
    scrape "$W_PORT" "$WORK/worker-before.txt"
    scrape "$C_PORT" "$WORK/collector-before.txt"
    out0="$(mval "$WORK/worker-before.txt" rtdp_records_out_total)"
    pub0="$(mval "$WORK/collector-before.txt" rtdp_collector_events_published_total)"
    c_cpu0="$(proc_cpu "$LAT_COLLECTOR_PID")"
    w_cpu0="$(proc_cpu "$WORKER_PID")"
    p_cpu0="$(pg_cpu)"
    TPS=$(((LAT_RATE + TX_CHANGES - 1) / TX_CHANGES))
    LAT_CLIENTS=2
    log "phase 2: pgbench --rate=$TPS (x $TX_CHANGES changes) for $LAT_SECONDS s"
    t0="$(now)"
    lat_tx="$(pgbench_run "$WORK/logs/pgbench-latency.log" "$LAT_CLIENTS" --rate="$TPS" -T "$LAT_SECONDS")"
    LAT_LOAD_S="$(elapsed "$t0" "$(now)")"
    c_cpu1="$(proc_cpu "$LAT_COLLECTOR_PID")"
    w_cpu1="$(proc_cpu "$WORKER_PID")"
    p_cpu1="$(pg_cpu)"
    LAT_N=$((lat_tx * TX_CHANGES))
    sched_lag="$(sed -n 's/^rate limit schedule lag: avg \([0-9.]*\).*/\1/p' "$WORK/logs/pgbench-latency.log")"
    log "phase 2: $lat_tx transactions ($LAT_N changes) in $LAT_LOAD_S s; waiting for every change in a committed file"
    deadline=$((SECONDS + 300))
    while :; do
        scrape "$W_PORT" "$WORK/worker-after.txt"
        out="$(mval "$WORK/worker-after.txt" rtdp_records_out_total)"
        ((out - out0 >= LAT_N)) && break
        kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 30 "$W_LOG" >&2; die "worker exited"; }
        kill -0 "$LAT_COLLECTOR_PID" 2>/dev/null || { tail -n 30 "$C_LOG" >&2; die "collector exited"; }
        ((SECONDS < deadline)) || { tail -n 20 "$C_LOG" "$W_LOG" >&2; die "only $((out - out0)) of $LAT_N changes committed after 300 s"; }
        sleep 0.2
    done
    DRAIN_AFTER_S="$(elapsed "$t0" "$(now)")"
    scrape "$C_PORT" "$WORK/collector-after.txt"
    cp "$WORK/worker-after.txt" "$WORK/logs/worker-latency.metrics"
    cp "$WORK/collector-after.txt" "$WORK/logs/collector-latency.metrics"
    pub1="$(mval "$WORK/collector-after.txt" rtdp_collector_events_published_total)"
    LAT_PUBLISHED=$((pub1 - pub0))
    LAT_OUT=$(($(mval "$WORK/worker-after.txt" rtdp_records_out_total) - out0))
    LAT_RATE_DONE="$(awk -v n="$LAT_N" -v s="$LAT_LOAD_S" 'BEGIN { printf "%.0f", n / s }')"
    C_CPU_PCT="$(awk -v a="$c_cpu0" -v b="$c_cpu1" -v s="$LAT_LOAD_S" 'BEGIN { printf "%.0f", (b - a) / s * 100 }')"
    W_CPU_PCT="$(awk -v a="$w_cpu0" -v b="$w_cpu1" -v s="$LAT_LOAD_S" 'BEGIN { printf "%.0f", (b - a) / s * 100 }')"
    P_CPU_PCT="$(awk -v a="$p_cpu0" -v b="$p_cpu1" -v s="$LAT_LOAD_S" 'BEGIN { printf "%.0f", (b - a) / s * 100 }')"
    read -r P50 P95 P99 PMEAN LAT_COUNT < <(python3 - "$WORK/worker-before.txt" "$WORK/worker-after.txt" <<'PY'
import math, re, sys
def read(path):
    b, s, c = {}, 0.0, 0.0
    for line in open(path):
        m = re.match(r'rtdp_latency_ms_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            b[float(m.group(1))] = float(m.group(2))
        elif line.startswith("rtdp_latency_ms_sum "):
            s = float(line.split()[1])
        elif line.startswith("rtdp_latency_ms_count "):
            c = float(line.split()[1])
    return b, s, c
b0, s0, c0 = read(sys.argv[1])
b1, s1, c1 = read(sys.argv[2])
les = sorted(b1)
cum = [b1[le] - b0.get(le, 0.0) for le in les]
total = cum[-1] if cum else 0.0
def q(p):
    # PromQL histogram_quantile: linear within the bucket; the +Inf bucket gives the
    # highest finite bound.
    if total <= 0:
        return float("nan")
    rank = p * total
    for i, le in enumerate(les):
        if cum[i] >= rank:
            if math.isinf(le):
                return les[i - 1] if i > 0 else float("nan")
            lo = les[i - 1] if i > 0 else 0.0
            below = cum[i - 1] if i > 0 else 0.0
            inside = cum[i] - below
            return lo + (le - lo) * ((rank - below) / inside if inside > 0 else 1.0)
    return float("nan")
n = c1 - c0
mean = (s1 - s0) / n if n > 0 else float("nan")
print(f"{q(0.5):.0f} {q(0.95):.0f} {q(0.99):.0f} {mean:.0f} {n:.0f}")
PY
)
    # The same from the files: per row, the file's mtime (its last write, just before the
    # fsync and rename that commit it) minus _source_ts; and _processed_at minus _source_ts
    # (database commit -> decoded by the worker: the collector and Kafka part).
    read -r FROWS F50 F95 F99 FMAX K50 K95 K99 < <(python3 - "$WORK/out" <<'PY'
import datetime, os, re, sys
pat = re.compile(r'"_source_ts":"([^"]+)","_processed_at":"([^"]+)"')
cache = {}
def ms(t):
    v = cache.get(t)
    if v is None:
        v = datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000
        cache[t] = v
    return v
commit, worker = [], []
for d, _, files in os.walk(sys.argv[1]):
    if "/_" in d[len(sys.argv[1]):]:
        continue
    for f in files:
        if not f.endswith(".jsonl"):
            continue
        p = os.path.join(d, f)
        mtime = os.stat(p).st_mtime_ns / 1e6
        with open(p) as fh:
            for line in fh:
                m = pat.search(line)
                if m:
                    src = ms(m.group(1))
                    commit.append(mtime - src)
                    worker.append(ms(m.group(2)) - src)
def pct(v, p):
    return v[min(len(v) - 1, max(0, int(round(p * len(v))) - 1))] if v else float("nan")
commit.sort(); worker.sort()
print(len(commit), *(f"{pct(commit, p):.0f}" for p in (0.5, 0.95, 0.99, 1.0)),
      *(f"{pct(worker, p):.0f}" for p in (0.5, 0.95, 0.99)))
PY
)
    AIM_P99="$(below "$P99" "$((CKPT_MS + 1000))")"
    AIM_LOAD="$(awk -v r="$LAT_RATE_DONE" -v a="$LAT_RATE" 'BEGIN { print (r >= 0.95 * a ? "yes" : "NO") }')"
    c_warn="$(grep -ciE ' (WARN|ERROR) ' "$C_LOG" || true)"
    w_warn="$(grep -ciE ' (WARN|ERROR) ' "$W_LOG" || true)"
    log "phase 2: published $LAT_PUBLISHED, committed $LAT_OUT, latency observations $LAT_COUNT;" \
        "WARN/ERROR log lines: collector $c_warn, worker $w_warn"
    stop_pid "$WORKER_PID"; untrack "$WORKER_PID"
    stop_pid "$LAT_COLLECTOR_PID"; untrack "$LAT_COLLECTOR_PID"
    LAT_DONE=1
fi

# --- report ---------------------------------------------------------------------------------------
echo
echo "cdc-collector benchmark: N = $N row changes ($TXS transactions of $TX_CHANGES: 50 inserts + 50 updates), table $TABLE"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') (pgoutput, publication $PUBLICATION); load: $LOAD_S s with pgbench -c $CLIENTS, $WAL_MB MB of WAL ($START_LSN .. $END_LSN)"
if ((D_DONE)); then
    echo "Debezium PostgreSQL connector $DBZ_VERSION_USED on Kafka Connect standalone ($(basename "$KAFKA_HOME"), JVM ${D_JVM[*]})"
fi
echo
echo "Phase 1 — draining a backlog of $N changes"
echo
printf '| %-14s | %8s | %13s | %10s | %14s | %12s | %14s | %11s |\n' \
    run seconds "first publish" changes/s "vs recvlogical" "client CPU s" "postgres CPU s" "peak RSS MB"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------------- ---------: --------------: -----------: \
    ---------------: -------------: ---------------: ------------:
printf '| %-14s | %8.2f | %13s | %10d | %14.2f | %12.2f | %14.2f | %11d |\n' \
    pg_recvlogical "$RECV_S" - "$RECV_RATE" 1 "$RECV_CPU" "$RECV_PGCPU" "$RECV_RSS"
if ((C_DONE)); then
    printf '| %-14s | %8.2f | %13.2f | %10d | %14.2f | %12.2f | %14.2f | %11d |\n' \
        cdc-collector "$C_S" "$C_FIRST" "$C_RATE" "$RATIO" "$C_CPU" "$C_PGCPU" "$C_RSS"
else
    printf '| %-14s | %8s | %13s | %10s | %14s | %12s | %14s | %11s |\n' \
        cdc-collector skipped - - - - - -
fi
if ((D_DONE)); then
    printf '| %-14s | %8.2f | %13.2f | %10d | %14.2f | %12.2f | %14.2f | %11d |\n' \
        Debezium "$D_S" "$D_FIRST" "$D_RATE" "$D_VS_RECV" "$D_CPU" "$D_PGCPU" "$D_RSS"
fi
echo
if ((C_DONE)); then
    echo "collector: $published events published, $kafka_txns Kafka transactions" \
        "($(awk -v n="$published" -v t="$kafka_txns" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }') events each," \
        "$(awk -v s="${kafka_txn_s:-0}" 'BEGIN { printf "%.2f", s }') s in publish), $reconnects reconnects;" \
        "$C_RATE_AFTER_FIRST changes/s from the first publish on; done by: $done_by"
else
    echo "collector: skipped (SKIP_COLLECTOR=1)"
fi
if ((D_DONE)); then
    echo "Debezium: $d_count records in $D_TOPIC (3 partitions), $D_RATE_AFTER_FIRST changes/s from the first record on"
fi
if ((LAT_DONE)); then
    echo
    echo "Phase 2 — latency at ${LAT_RATE} changes/s for $LAT_SECONDS s (worker json, CHECKPOINT_INTERVAL=$CKPT_MS ms)"
    echo
    echo "pgbench: $lat_tx transactions = $LAT_N changes in $LAT_LOAD_S s = $LAT_RATE_DONE changes/s" \
        "(schedule lag avg ${sched_lag:-?} ms); published $LAT_PUBLISHED, committed $LAT_OUT," \
        "all committed ${DRAIN_AFTER_S} s after the load started"
    echo "CPU during the load: collector ${C_CPU_PCT} %, worker ${W_CPU_PCT} %, postgres ${P_CPU_PCT} % (of one core)"
    echo "rtdp_latency_ms over $LAT_COUNT rows: p50 $P50 ms, p95 $P95 ms, p99 $P99 ms, mean $PMEAN ms"
    echo "from the $FROWS rows in the files, exact: file mtime - _source_ts p50 $F50, p95 $F95, p99 $F99," \
        "max $FMAX ms; _processed_at - _source_ts (collector + Kafka) p50 $K50, p95 $K95, p99 $K99 ms"
fi
echo
echo "Summary"
echo
printf '| %-38s | %18s | %-26s | %-4s |\n' measure value aim met
printf '|%s|%s|%s|%s|\n' ---------------------------------------- -------------------: ---------------------------- ------
printf '| %-38s | %18s | %-26s | %-4s |\n' "pg_recvlogical drain, changes/s" "$RECV_RATE" "-" ""
if ((C_DONE)); then
    printf '| %-38s | %18s | %-26s | %-4s |\n' "cdc-collector drain, changes/s" "$C_RATE" "-" ""
    if ((D_DONE)); then
        printf '| %-38s | %18s | %-26s | %-4s |\n' "Debezium drain, changes/s" "$D_RATE" "-" ""
    fi
    printf '| %-38s | %18s | %-26s | %-4s |\n' "collector / pg_recvlogical" "$RATIO" ">= 0.6" "$AIM_RATIO"
    if ((D_DONE)); then
        printf '| %-38s | %18s | %-26s | %-4s |\n' "collector / Debezium (vs Debezium)" "$DBZ_RATIO" ">= 3" "$AIM_DBZ"
    fi
    printf '| %-38s | %18s | %-26s | %-4s |\n' "collector time to first publish, s" "$C_FIRST" "< 1.5" "$AIM_FIRST"
    printf '| %-38s | %18s | %-26s | %-4s |\n' "collector peak RSS, MB" "$C_RSS" "< 200" "$AIM_RSS"
else
    printf '| %-38s | %18s | %-26s | %-4s |\n' "cdc-collector drain" "skipped" "-" ""
    if ((D_DONE)); then
        printf '| %-38s | %18s | %-26s | %-4s |\n' "Debezium drain, changes/s" "$D_RATE" "-" ""
    fi
fi
if ((LAT_DONE)); then
    printf '| %-38s | %18s | %-26s | %-4s |\n' "phase 2 load achieved, changes/s" "$LAT_RATE_DONE" "$LAT_RATE (-5 %)" "$AIM_LOAD"
    printf '| %-38s | %18s | %-26s | %-4s |\n' "end-to-end latency p50 / p95, ms" "$P50 / $P95" "-" ""
    printf '| %-38s | %18s | %-26s | %-4s |\n' "end-to-end latency p99, ms" "$P99" "< $((CKPT_MS + 1000)) (interval + 1 s)" "$AIM_P99"
    printf '| %-38s | %18s | %-26s | %-4s |\n' "from the files p50 / p99 / max, ms" "$F50 / $F99 / $FMAX" "-" ""
fi
