#!/usr/bin/env bash
# check-cdc-status.sh — is rtdp healthy? One line per component, then HEALTHY or UNHEALTHY.
#
#   ./shell/check-cdc-status.sh [--local | --compose] [--wait S] [--strict]
#                               [--max-source-lag S] [--max-consumer-lag N] [--partitions N]
#
# Reads every service's /health, /status and /metrics (docs/METRICS.md) and the output
# folder's manifests (docs/OUTPUT.md) and reports:
#   - PostgreSQL (local stack) and Kafka: running;
#   - cdc-collector: state, readiness (failing checks), source position, source lag
#     (rtdp_collector_source_lag_seconds), events published, reconnects, snapshot progress;
#   - each stream-worker: state, readiness, owned partitions, consumer lag
#     (rtdp_consumer_lag), records in/out, checkpoints (failed), p99 latency;
#   - partitions: each owned by exactly one worker;
#   - output: the last checkpoint (newest manifest updatedAtMs), data and dead-letter files
#     written in the last minute;
#   - dead letters (records and _dlq/ files) and the alerts each service raises in /status.
#
# Compose mode (default) finds the containers with `docker compose ps` and reads their
# endpoints and output volume through `docker exec` (see shell/lib/compose.sh for the
# service names it assumes). --local reads the stack of shell/start.sh --local from its
# state folder (RTDP_LOCAL_STACK_DIR, default .tools/local-stack).
#
# Unhealthy (exit 1): a component not running or not live, a service in state failed, the
# collector not ready, no ready worker, a partition without an owner (local stack; compose:
# with --partitions), source lag above --max-source-lag (default 60 s, the old system's
# latency alert) outside the initial snapshot, consumer lag above --max-consumer-lag (off by
# default), an unreadable manifest, a firing alert of severity high (details.alerts of
# /status). Warnings (exit 0; exit 1 with --strict): a worker without partitions, a partition
# owned twice (rebalance), dead letters, failed checkpoint attempts, other alerts.
#
# Options:
#   --wait S              re-check every second until healthy, up to S seconds (then exit 1)
#   --strict              warnings count as unhealthy
#   --max-source-lag S    seconds (60)
#   --max-consumer-lag N  records over all partitions (not checked by default)
#   --partitions N        partitions of the change topic that must each have an owner
#                         (local: from the stack; compose: KAFKA_TOPIC_PARTITIONS in .env, 6,
#                         checked as a warning only unless given here)
#
# Exit codes: 0 healthy, 1 unhealthy, 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=check-cdc-status
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE="${RTDP_MODE:-compose}"
WAIT=""
REPORT_ARGS=()
WANT_PARTITIONS=""
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --wait) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || bad_usage "--wait needs seconds"; WAIT="$2"; shift ;;
        --strict) REPORT_ARGS+=(--strict) ;;
        --max-source-lag)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad_usage "--max-source-lag needs seconds"
            REPORT_ARGS+=(--max-source-lag "$2"); shift ;;
        --max-consumer-lag)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || bad_usage "--max-consumer-lag needs a number of records"
            REPORT_ARGS+=(--max-consumer-lag "$2"); shift ;;
        --partitions) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || bad_usage "--partitions needs a number"; WANT_PARTITIONS="$2"; shift ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done
PY="$(python_json)"

# Prints what is in the output folder $1 that the report needs (see status_report.py).
# shellcheck disable=SC2016 # runs in bash -c, locally or in a container
OUTPUT_SNIPPET='out=$1
[ -d "$out" ] || { echo "output folder $out does not exist" >&2; exit 3; }
for f in "$out"/_state/*/*.json; do
    [ -f "$f" ] || continue
    printf "@@MANIFEST %s\n" "${f#"$out"/}"
    cat "$f"
    printf "\n"
done
printf "@@RECENT\n"
find "$out" -mindepth 1 \( -path "$out/_tmp" -o -path "$out/_state" \) -prune -o -type f -mmin -1 -printf "%P\n" 2>/dev/null || true
printf "@@DLQFILES\n"
if [ -d "$out/_dlq" ]; then find "$out/_dlq" -type f | wc -l; else echo 0; fi'

comp() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$T/components.tsv"; }

# GET /health, /status, /metrics of 127.0.0.1:$2 into $T/$1.*
fetch_local() {
    local name="$1" port="$2" path code
    for path in health status metrics; do
        code="$(curl -s --max-time 5 -o "$T/$name.$path" -w '%{http_code}' "http://127.0.0.1:$port/$path" 2>/dev/null || true)"
        echo "${code:-000}" >"$T/$name.$path.code"
    done
}

fetch_container() {
    local name="$1" id="$2" path
    for path in health status metrics; do
        container_http "$id" "/$path" "$T/$name.$path"
        echo "$HTTP_CODE" >"$T/$name.$path.code"
    done
}

# Service $1 of the local stack, shown as $2, of kind $3 (collector, worker).
local_service() {
    local name="$1" shown="$2" kind="$3" pid port rc
    if pid="$(ls_pid "$name")" && port="$(ls_port "$name")"; then
        fetch_local "$shown" "$port"
        comp "$kind" "$shown" 1 "pid $pid, port $port"
    else
        rc="$(cat "$LS_RUN/$name.exit" 2>/dev/null || true)"
        comp "$kind" "$shown" 0 "not running${rc:+ (exited with code $rc)}; log ${LS_LOGS#"$ROOT"/}/$name.log"
    fi
}

collect_local() {
    local n
    if ls_postgres_running && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres; then
        comp postgres postgresql 1 "127.0.0.1:$PG_PORT, pid $(cat "$LS_RUN/postgres.pid")"
    else
        comp postgres postgresql 0 "not running (log ${LS_LOGS#"$ROOT"/}/postgres.log)"
    fi
    if ls_kafka_running && port_in_use "${BOOTSTRAP##*:}"; then
        comp kafka kafka 1 "$BOOTSTRAP"
    else
        comp kafka kafka 0 "not running ($BOOTSTRAP; logs in ${KAFKA_DIR#"$ROOT"/}/logs)"
    fi
    local_service collector cdc-collector collector
    for n in $(ls_workers); do local_service "worker-$n" "worker-$n" worker; done
    bash -c "$OUTPUT_SNIPPET" rtdp-sh "$OUTPUT_DIR" >"$T/output.txt" 2>"$T/output.err" || rm -f "$T/output.txt"
}

collect_compose() {
    local id status health cname restarts code kind svc first="" ids
    if ! compose ps >/dev/null 2>&1; then
        comp kafka kafka 0 "'${COMPOSE_CMD[*]} ps' failed: is Docker running and the project up? (or use --local)"
        return 0
    fi
    for svc in "$KAFKA_SERVICE" "$SOURCE_DB_SERVICE"; do
        kind=kafka
        [[ "$svc" == "$KAFKA_SERVICE" ]] || kind=source-db
        id="$(compose_all_ids "$svc" | head -n 1)"
        if [[ -z "$id" ]]; then
            if [[ "$kind" == kafka ]]; then comp kafka "$svc" 0 "no container (start.sh)"; fi
            continue
        fi
        read -r status health cname restarts code <<<"$(container_info "$id")"
        if [[ "$status" == running && ("$health" == healthy || "$health" == -) ]]; then
            comp "$kind" "$svc" 1 "$cname: $status${health/#-/}"
        else
            comp "$kind" "$svc" 0 "$cname: $status, health $health, restarts $restarts, exit code $code"
        fi
    done
    for svc in "$COLLECTOR_SERVICE" "$WORKER_SERVICE"; do
        kind=worker
        [[ "$svc" == "$WORKER_SERVICE" ]] || kind=collector
        mapfile -t ids < <(compose_all_ids "$svc")
        if ((${#ids[@]} == 0)); then
            if [[ "$kind" == collector ]]; then comp collector "$svc" 0 "no container (start.sh, or ${COMPOSE_CMD[*]} up -d)"; fi
            continue
        fi
        for id in "${ids[@]}"; do
            read -r status health cname restarts code <<<"$(container_info "$id")"
            if [[ "$status" == running ]]; then
                fetch_container "$cname" "$id"
                comp "$kind" "$cname" 1 "container ${health/#-/no healthcheck}, restarts $restarts"
                [[ "$kind" != worker || -n "$first" ]] || first="$id"
            else
                comp "$kind" "$cname" 0 "container $status (exit code $code, restarts $restarts): ${COMPOSE_CMD[*]} logs $svc"
            fi
        done
    done
    if [[ -n "$first" ]]; then
        container_sh "$first" "$OUTPUT_SNIPPET" "$CONTAINER_OUTPUT" >"$T/output.txt" 2>"$T/output.err" || rm -f "$T/output.txt"
    else
        echo "no running worker to read $CONTAINER_OUTPUT through" >"$T/output.err"
    fi
}

if [[ "$MODE" == local ]]; then
    # shellcheck source=shell/lib/local-stack.sh
    . "$ROOT/shell/lib/local-stack.sh"
    ls_load
    REPORT_ARGS+=(--mode local --partitions "${WANT_PARTITIONS:-$PARTITIONS}" --partitions-strict)
else
    # shellcheck source=shell/lib/compose.sh
    . "$ROOT/shell/lib/compose.sh"
    compose_init
    if [[ -n "$WANT_PARTITIONS" ]]; then
        REPORT_ARGS+=(--mode compose --partitions "$WANT_PARTITIONS" --partitions-strict)
    else
        p="$(dotenv_get KAFKA_TOPIC_PARTITIONS)"
        REPORT_ARGS+=(--mode compose --partitions "${p:-6}")
    fi
fi

T=""
cleanup() { [[ -z "$T" ]] || rm -rf "$T"; }
trap cleanup EXIT

# One look: collect into a fresh folder, judge it, remove the folder. Arguments go to the
# report.
check_once() {
    local rc=0
    T="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-status.XXXXXX")"
    : >"$T/components.tsv"
    if [[ "$MODE" == local ]]; then collect_local; else collect_compose; fi
    "$PY" "$ROOT/shell/lib/status_report.py" "$T" "${REPORT_ARGS[@]}" "$@" || rc=$?
    rm -rf "$T"
    T=""
    return "$rc"
}

if [[ -z "$WAIT" ]]; then
    check_once
    exit $?
fi

deadline=$((SECONDS + WAIT))
last=""
while :; do
    rc=0
    line="$(check_once --quiet)" || rc=$?
    if ((rc == 0)); then
        check_once
        exit $?
    fi
    if ((SECONDS >= deadline)); then
        printf '%s: still unhealthy after %ss:\n' "$PROG" "$WAIT" >&2
        check_once || exit $?
        exit 1
    fi
    if [[ "$line" != "$last" ]]; then
        printf '%s: waiting: %s\n' "$PROG" "${line#UNHEALTHY: }" >&2
        last="$line"
    fi
    sleep 1
done
