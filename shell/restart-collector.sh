#!/usr/bin/env bash
# restart-collector.sh — restart cdc-collector and wait until it is ready again.
#
#   ./shell/restart-collector.sh [--local | --compose] [--timeout S]
#
# The collector stops on SIGTERM after the batch in flight (its position is stored with
# every batch) and resumes strictly after the stored position when it starts again: a
# restart loses and doubles nothing (md/RUNBOOK_COLLECTOR.md). Use it after changing its
# settings, when a new table should be captured (the table selection is made when a
# session starts), or to clear a stuck session. The Flink-based system's
# restart-flink-cdc-job.sh needed a savepoint; rtdp needs none.
#
# Compose mode (default): `docker compose restart -t 45 cdc-collector`, then waits until
# the container's /health/ready answers 200. --local: SIGTERM to the collector of the
# stack of shell/start.sh --local (SIGKILL after 45 s), the same binary and environment
# started again, then waits for /health/ready. Prints the old process's exit code, the
# position before and after, and how long it took.
#
# Options:
#   --timeout S   seconds to wait for readiness after the start (default 90)
#
# Exit codes: 0 restarted and ready, 1 not ready in time / not running afterwards (the log
# tail is printed), 2 bad arguments. A non-zero exit code of the stopped process is
# reported as a warning.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=restart-collector
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE="${RTDP_MODE:-compose}"
TIMEOUT=90
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --timeout) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout needs seconds"; TIMEOUT="$2"; shift ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done
PY="$(python_json)"
T0=$SECONDS

# sourcePosition of a /status body on stdin ("-" when there is none).
position_of() {
    "$PY" -c 'import json, sys
try:
    print((json.load(sys.stdin).get("details") or {}).get("sourcePosition") or "-")
except ValueError:
    print("-")'
}

if [[ "$MODE" == local ]]; then
    # shellcheck source=shell/lib/local-stack.sh
    . "$ROOT/shell/lib/local-stack.sh"
    ls_load
    before="-"
    if port="$(ls_port collector 2>/dev/null)" && ls_pid collector >/dev/null; then
        before="$(http_get "$port" /status 2>/dev/null | position_of || echo -)"
        say "Stopping cdc-collector (pid $(ls_pid collector), SIGTERM)"
    else
        say "cdc-collector is not running; starting it"
    fi
    ls_stop collector 45
    if [[ "$STOP_RC" != 0 ]]; then
        warn "the stopped collector exited with code $STOP_RC (its log: ${LS_LOGS#"$ROOT"/}/collector.log.1)"
    fi
    rm -f "$LS_RUN/collector.exit"
    say "Starting cdc-collector again"
    ls_start_collector "$TIMEOUT"
    after="$(http_get "$(ls_port collector)" /status 2>/dev/null | position_of || echo -)"
    printf '%s: OK: restarted in %ds (old process exit code %s); pid %s, port %s; position before %s, now %s\n' \
        "$PROG" "$((SECONDS - T0))" "$STOP_RC" "$(ls_pid collector)" "$(ls_port collector)" "$before" "$after"
    exit 0
fi

# shellcheck source=shell/lib/compose.sh
. "$ROOT/shell/lib/compose.sh"
compose_init
compose_require_engine
id="$(compose_ids "$COLLECTOR_SERVICE" | head -n 1)"
before="-"
if [[ -n "$id" ]]; then
    body="$(mktemp)"
    container_http "$id" /status "$body"
    before="$(position_of <"$body")"
    rm -f "$body"
fi
say "${COMPOSE_CMD[*]} restart -t 45 $COLLECTOR_SERVICE"
compose restart -t 45 "$COLLECTOR_SERVICE"
deadline=$((SECONDS + TIMEOUT))
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
while :; do
    id="$(compose_ids "$COLLECTOR_SERVICE" | head -n 1)"
    if [[ -n "$id" ]]; then
        container_http "$id" /health/ready "$body"
        [[ "$HTTP_CODE" != 200 ]] || break
    fi
    if ((SECONDS >= deadline)); then
        compose logs --tail 30 "$COLLECTOR_SERVICE" >&2 || true
        die "$COLLECTOR_SERVICE not ready within ${TIMEOUT}s after the restart (last answer: HTTP $HTTP_CODE $(cat "$body"))"
    fi
    sleep 1
done
container_http "$id" /status "$body"
printf '%s: OK: restarted in %ds; position before %s, now %s\n' "$PROG" "$((SECONDS - T0))" "$before" "$(position_of <"$body")"
