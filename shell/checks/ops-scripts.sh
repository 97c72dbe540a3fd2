#!/usr/bin/env bash
# shell/checks/ops-scripts.sh — the operations scripts against the local (no-Docker) stack.
#
#   ./shell/checks/ops-scripts.sh
#
# Runs, and checks the exit code and output of each step:
#   every script's --help (exit 0) and an unknown argument (exit 2);
#   start.sh --local (PostgreSQL, Kafka, collector, one worker), and again (already running);
#   quick-test-cdc.sh --local: the marker row arrives in an output file (also checked here
#   with grep) and is deleted from the source again;
#   check-cdc-status.sh --local: healthy, exit 0;
#   the worker killed (SIGKILL): check-cdc-status.sh exits 1 and names it;
#   scale-workers.sh --local 2 (replaces the dead worker, adds one), status healthy with two
#   workers owning partitions; scale back to 1, status healthy;
#   a record that is not JSON produced into the topic: dlq-inspect.sh summarises it (and
#   prints its value only with --values, exports it with --export), check-cdc-status.sh
#   warns (exit 0) and fails with --strict;
#   the compose mode of every script, with shell/lib/fake-docker.sh standing in for docker and
#   docker-compose (it maps containers to the local stack's processes): status, quick test,
#   dead letters, scale, restart, start and stop (the compose commands they run are checked);
#   restart-collector.sh --local, then quick-test-cdc.sh again;
#   stop.sh --local: exit 0 (every service exited 0), no process of the stack left,
#   check-cdc-status.sh exits 1, a second stop.sh exits 0.
#
# Uses free ports only and a state folder of its own under $TMPDIR; stops everything on any
# exit. Binaries: target/debug (built by `cargo test`; or cargo build -p cdc-collector -p
# stream-worker), or RTDP_OPS_BIN_DIR (e.g. target/release). KEEP_OPS_STATE=1 keeps the state
# folder (logs, output) after a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROG=ops-scripts
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

BIN_DIR="${RTDP_OPS_BIN_DIR:-$ROOT/target/debug}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
for b in cdc-collector stream-worker; do
    [[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b missing: cargo build -p cdc-collector -p stream-worker (or set RTDP_OPS_BIN_DIR)"
done
T0=$SECONDS
STATE="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-ops.XXXXXX")"
OUT="$STATE/output"
export RTDP_LOCAL_STACK_DIR="$STATE/stack" RTDP_BIN_DIR="$BIN_DIR" RTDP_SKIP_ENSURE_TOOLS=1
KAFKA_PORT="$(free_port)"
# A killed worker leaves the group after the session timeout: the smallest allowed keeps the
# rebalance after it short.
export KAFKA_PORT RTDP_COLLECTOR_PORT=0 CHECKPOINT_INTERVAL=3000 OUTPUT_ROLLING_INACTIVITY=500 \
    PIPELINE_KAFKA_SESSION_TIMEOUT_MS=6000
unset OUTPUT_FORMAT RTDP_MODE
STEP=0

cleanup() {
    local rc=$? f
    trap - EXIT INT TERM
    if [[ -f "$STATE/stack/stack.env" ]]; then
        "$ROOT/shell/stop.sh" --local --quiet >/dev/null 2>&1 || true
    fi
    if ((rc != 0)); then
        for f in "$STATE"/stack/logs/*.log; do
            [[ -s "$f" && "$f" != */setup.log ]] || continue
            printf '\n--- last 15 lines of %s ---\n' "$f" >&2
            tail -n 15 "$f" >&2 || true
        done
        printf '\n%s: FAILED at step %d after %ds\n' "$PROG" "$STEP" "$((SECONDS - T0))" >&2
    fi
    if ((rc != 0)) && [[ "${KEEP_OPS_STATE:-0}" == 1 ]]; then
        printf '%s: state kept in %s\n' "$PROG" "$STATE" >&2
    else
        rm -rf "$STATE"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { printf '\n%s: step %d: %s\n' "$PROG" "$STEP" "$*" >&2; exit 1; }

# run EXPECTED_RC DESCRIPTION CMD… — runs CMD, output into $LAST, checks the exit code.
LAST="$STATE/last.txt"
run() {
    local want="$1" what="$2" rc=0
    shift 2
    STEP=$((STEP + 1))
    "$@" >"$LAST" 2>&1 || rc=$?
    if [[ "$rc" != "$want" ]]; then
        printf '\n--- output of: %s ---\n' "$*" >&2
        cat "$LAST" >&2
        fail "$what: exit code $rc, expected $want"
    fi
    printf 'ok %2d - %s (%ds)\n' "$STEP" "$what" "$((SECONDS - T0))"
}
expect() { # PATTERN DESCRIPTION — the last output matches the extended regex
    grep -Eq -- "$1" "$LAST" || { cat "$LAST" >&2; fail "output lacks /$1/ ($2)"; }
}
expect_not() {
    if grep -Eq -- "$1" "$LAST"; then cat "$LAST" >&2; fail "output has /$1/ ($2)"; fi
}

S="$ROOT/shell"
SCRIPTS=(start stop check-cdc-status quick-test-cdc restart-collector scale-workers dlq-inspect)

# --- usage -------------------------------------------------------------------------------------
for s in "${SCRIPTS[@]}"; do
    run 0 "$s.sh --help" "$S/$s.sh" --help
    expect "$s\.sh" "the help names the script"
    run 2 "$s.sh with an unknown argument" "$S/$s.sh" --local --no-such-option
done

# --- start ---------------------------------------------------------------------------------------
run 0 "start.sh --local" "$S/start.sh" --local --workers 1 --output "$OUT"
expect 'local stack up' "summary"
# shellcheck source=/dev/null
. "$STATE/stack/stack.env"
[[ "$BOOTSTRAP" == "127.0.0.1:$KAFKA_PORT" ]] || fail "Kafka is on $BOOTSTRAP, not on the free port $KAFKA_PORT"
run 0 "start.sh --local while it runs" "$S/start.sh" --local --output "$OUT"
expect 'already running' "says it runs"

# --- quick test ----------------------------------------------------------------------------------
run 0 "quick-test-cdc.sh --local" "$S/quick-test-cdc.sh" --local --timeout 90
expect 'OK: the marker arrived in an output file [0-9]+\.[0-9]{3} s after the insert' "elapsed time"
marker="$(sed -n 's/.*marker \(rtdp-quick-test-[^ ]*\) committed.*/\1/p' "$LAST")"
[[ -n "$marker" ]] || fail "no marker name in the output"
grep -rqF -- "\"$marker\"" "$OUT/shop.customers" || fail "marker $marker not in any file under $OUT/shop.customers"
left="$("$PGBIN/psql" -X -At -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$DB_NAME" \
    -c "SELECT count(*) FROM shop.customers WHERE name = '$marker'")"
[[ "$left" == 0 ]] || fail "the marker row is still in the source ($left rows)"

# --- status --------------------------------------------------------------------------------------
run 0 "check-cdc-status.sh --local: healthy" "$S/check-cdc-status.sh" --local
expect '^HEALTHY$' "verdict"
for c in postgresql kafka cdc-collector worker-1 partitions; do expect "^$c +OK " "$c OK"; done
expect '3 owned of 3' "partition count"
expect 'last checkpoint [0-9.]+ (s|min) ago' "last checkpoint"
expect 'source lag' "source lag shown"
expect 'consumer lag' "consumer lag shown"

# A worker that is not running makes the status fail.
worker_pid="$(cat "$STATE/stack/run/worker-1.pid")"
kill -KILL "$worker_pid"
deadline=$((SECONDS + 10))
while kill -0 "$worker_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
run 1 "check-cdc-status.sh --local with the worker killed: unhealthy" "$S/check-cdc-status.sh" --local
expect '^worker-1 +FAIL +not running \(exited with code 137\)' "names the dead worker and its exit code"
expect '^UNHEALTHY: ' "verdict"

# --- scale ---------------------------------------------------------------------------------------
run 0 "scale-workers.sh --local 2 (replaces the dead worker)" "$S/scale-workers.sh" --local 2 --timeout 90
expect 'worker-1 was not running' "reports the dead worker"
expect 'OK: 2 worker\(s\)' "summary"
run 0 "check-cdc-status.sh --local --wait: healthy with 2 workers" "$S/check-cdc-status.sh" --local --wait 60
for c in worker-1 worker-2; do expect "^$c +OK .*ready; partitions [0-9]" "$c owns partitions"; done
expect '^HEALTHY$' "verdict"
run 0 "scale-workers.sh --local 1" "$S/scale-workers.sh" --local 1 --timeout 90
run 0 "check-cdc-status.sh --local: healthy with 1 worker" "$S/check-cdc-status.sh" --local --wait 60
expect '^worker-1 +OK .*partitions 0,1,2' "worker-1 owns every partition"
expect_not '^worker-2 ' "worker-2 is gone"
[[ ! -e "$STATE/stack/run/worker-2.pid" ]] || fail "worker-2's pid file is left"
run 0 "quick-test-cdc.sh --local after the crash and the rebalances" "$S/quick-test-cdc.sh" --local --timeout 90

# --- dead letters --------------------------------------------------------------------------------
run 0 "dlq-inspect.sh --local: none yet" "$S/dlq-inspect.sh" --local
expect '^no dead letters' "none"
kafka_home="$("$S/local-kafka.sh" fetch)"
STEP=$((STEP + 1))
printf 'ops-key\tthis is not JSON\n' |
    java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j.configuration="file:$STATE/stack/kafka/log4j.properties" -cp "$kafka_home/libs/*" \
        kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
        --property parse.key=true --property "key.separator=$(printf '\t')" >"$LAST" 2>&1 ||
    { cat "$LAST" >&2; fail "producing a bad record failed"; }
printf 'ok %2d - a record that is not JSON produced into %s\n' "$STEP" "$TOPIC"
deadline=$((SECONDS + 60))
until "$S/dlq-inspect.sh" --local --show 0 2>/dev/null | grep -q '^1 dead letter'; do
    ((SECONDS < deadline)) || fail "no dead letter committed within 60s"
    sleep 0.5
done
run 0 "dlq-inspect.sh --local: summary" "$S/dlq-inspect.sh" --local
expect '^1 dead letter\(s\) in 1 file' "count"
expect '^ +1 +decode +not JSON' "by stage and error"
expect "^ +1 +$TOPIC / [0-9]+: [0-9]+ \.\. [0-9]+" "by topic and partition"
expect_not 'this is not JSON' "no values without --values"
run 0 "dlq-inspect.sh --local --values --export" "$S/dlq-inspect.sh" --local --values --export "$STATE/dlq.tsv"
expect 'value: this is not JSON' "the value"
grep -qxF "$(printf 'ops-key\tthis is not JSON')" "$STATE/dlq.tsv" || fail "the export lacks the record"
run 0 "check-cdc-status.sh --local: dead letters are a warning" "$S/check-cdc-status.sh" --local
expect '^dead letters +WARN +1 committed' "dead-letter line"
expect '^HEALTHY with [0-9]+ warning' "verdict"
run 1 "check-cdc-status.sh --local --strict: dead letters fail" "$S/check-cdc-status.sh" --local --strict
expect '^UNHEALTHY: .*dead letters' "verdict"

# --- compose mode, with a fake docker --------------------------------------------------------------
# No Docker engine here: shell/lib/fake-docker.sh answers as docker and docker-compose, mapping
# containers to the local stack's processes, so the compose paths of the scripts run too.
mkdir -p "$STATE/fakebin"
ln -s "$ROOT/shell/lib/fake-docker.sh" "$STATE/fakebin/docker"
ln -s "$ROOT/shell/lib/fake-docker.sh" "$STATE/fakebin/docker-compose"
CALLS="$STATE/docker-calls.log"
fake() { env PATH="$STATE/fakebin:$PATH" FAKE_DOCKER_LOG="$CALLS" COMPOSE= "$@"; }
called() { grep -qF -- "$1" "$CALLS" || { cat "$CALLS" >&2; fail "docker was not called with: $1"; }; }
run 0 "compose mode: check-cdc-status.sh" fake "$S/check-cdc-status.sh" --partitions 3
for c in kafka postgres rtdp-cdc-collector-1 rtdp-stream-worker-1 partitions; do expect "^$c +OK " "$c OK"; done
expect '^HEALTHY with' "healthy (with the dead letter as a warning)"
run 0 "compose mode: quick-test-cdc.sh" fake "$S/quick-test-cdc.sh" --timeout 90
expect 'OK: the marker arrived' "marker"
called "docker compose exec -T postgres psql"
run 0 "compose mode: dlq-inspect.sh" fake "$S/dlq-inspect.sh"
expect '^1 dead letter\(s\)' "count"
run 0 "compose mode: scale-workers.sh 1" fake "$S/scale-workers.sh" 1 --timeout 60
called "docker compose up -d --no-recreate --scale stream-worker=1 stream-worker"
run 0 "compose mode: restart-collector.sh" fake "$S/restart-collector.sh" --timeout 60
called "docker compose restart -t 45 cdc-collector"
run 0 "compose mode: start.sh --profile demo --workers 1" fake "$S/start.sh" --profile demo --workers 1 --timeout 60
called "docker compose --profile demo up -d --scale stream-worker=1"
run 0 "compose mode: stop.sh" fake "$S/stop.sh"
called "docker compose --profile demo --profile monitoring --profile ui down --remove-orphans"

# --- restart the collector -----------------------------------------------------------------------
old_pid="$(cat "$STATE/stack/run/collector.pid")"
run 0 "restart-collector.sh --local" "$S/restart-collector.sh" --local --timeout 90
expect 'OK: restarted in [0-9]+s \(old process exit code 0\)' "clean stop and start"
[[ "$(cat "$STATE/stack/run/collector.pid")" != "$old_pid" ]] || fail "the collector's pid did not change"
run 0 "quick-test-cdc.sh --local after the collector restart" "$S/quick-test-cdc.sh" --local --timeout 90

# --- stop ----------------------------------------------------------------------------------------
pids=("$(cat "$STATE/stack/run/collector.pid")" "$(cat "$STATE/stack/run/worker-1.pid")"
    "$(cat "$STATE/stack/run/postgres.pid")" "$(cat "$STATE/stack/kafka/kafka.pid")")
run 0 "stop.sh --local (every service exits 0)" "$S/stop.sh" --local
for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then fail "pid $p still runs after stop.sh: $(tr '\0' ' ' <"/proc/$p/cmdline")"; fi
done
[[ ! -d "$PG_DIR" ]] || fail "the PostgreSQL data folder is left"
[[ -z "$(find "$STATE/stack/run" -name '*.pid')" ]] || fail "pid files left: $(ls "$STATE/stack/run")"
run 1 "check-cdc-status.sh --local after stop: unhealthy" "$S/check-cdc-status.sh" --local
expect '^cdc-collector +FAIL' "collector down"
run 0 "stop.sh --local again: nothing to stop" "$S/stop.sh" --local
run 1 "compose mode: check-cdc-status.sh with nothing running: unhealthy" fake "$S/check-cdc-status.sh"
expect '^kafka +FAIL' "no Kafka"

printf '%s: all %d steps passed in %ds\n' "$PROG" "$STEP" "$((SECONDS - T0))"
