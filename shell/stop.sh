#!/usr/bin/env bash
# stop.sh — stop rtdp: the Docker Compose deployment (default), or the local no-Docker stack.
#
#   ./shell/stop.sh [--volumes] [--profile P]…
#   ./shell/stop.sh --local [--keep-data] [--quiet]
#
# Compose mode runs `docker compose --profile P… down --remove-orphans` with every profile
# the compose file declares (or only those given with --profile), so the demo, monitoring and
# ui services go too. Volumes (output files, collector state, Kafka data) are kept unless
# --volumes is given (`down -v`: that deletes the output and the positions).
#
# --local stops the stack shell/start.sh --local started (state folder RTDP_LOCAL_STACK_DIR,
# default .tools/local-stack): the stream-workers and the collector with SIGTERM (each commits
# what it has and exits 0; SIGKILL after 45 s), then PostgreSQL (fast shutdown) and Kafka.
# The PostgreSQL data folder is removed unless --keep-data; logs and output files stay.
# Nothing running is not an error.
#
# Exit codes: 0 everything stopped and every service exited 0; 1 a service exited with
# another code (named in the output; its log is kept) or something could not be stopped;
# 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=stop
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE=compose
VOLUMES=0
KEEP_DATA=0
QUIET=0
PROFILES=()
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --volumes | -v) VOLUMES=1 ;;
        --profile) [[ $# -ge 2 ]] || bad_usage "--profile needs a name"; PROFILES+=("$2"); shift ;;
        --keep-data) KEEP_DATA=1 ;;
        --quiet | -q) QUIET=1 ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done
info() { ((QUIET)) || note "$@"; }

# --- compose -----------------------------------------------------------------------------------
if [[ "$MODE" == compose ]]; then
    # shellcheck source=shell/lib/compose.sh
    . "$ROOT/shell/lib/compose.sh"
    compose_init
    compose_require_engine
    args=()
    if ((${#PROFILES[@]})); then
        for p in "${PROFILES[@]}"; do args+=(--profile "$p"); done
    else
        mapfile -t args < <(compose_all_profile_args)
    fi
    down=(down --remove-orphans)
    ((VOLUMES)) && down+=(-v)
    say "${COMPOSE_CMD[*]} ${args[*]} ${down[*]}"
    compose "${args[@]}" "${down[@]}"
    exit 0
fi

# --- local -------------------------------------------------------------------------------------
# shellcheck source=shell/lib/local-stack.sh
. "$ROOT/shell/lib/local-stack.sh"
if [[ ! -f "$LS_ENV" ]]; then
    info "no local stack in ${LS_DIR#"$ROOT"/}: nothing to stop"
    exit 0
fi
ls_load
failed=()

# Workers first (they drain in parallel), then the collector.
workers=()
for n in $(ls_workers); do
    if pid="$(ls_pid "worker-$n")"; then
        kill -TERM "$pid" 2>/dev/null || true
        workers+=("$n")
    fi
done
((${#workers[@]} == 0)) || info "stopping stream-worker(s) ${workers[*]} (SIGTERM: commit and exit)"
for n in $(ls_workers); do
    ls_stop "worker-$n" 45
    if [[ "$STOP_RC" != 0 ]]; then failed+=("worker-$n exited with code $STOP_RC (log ${LS_LOGS#"$ROOT"/}/worker-$n.log)"); fi
    rm -f "$LS_RUN/worker-$n.exit"
done
if ls_pid collector >/dev/null || [[ -e "$LS_RUN/collector.pid" ]]; then
    info "stopping cdc-collector (SIGTERM)"
    ls_stop collector 45
    if [[ "$STOP_RC" != 0 ]]; then failed+=("collector exited with code $STOP_RC (log ${LS_LOGS#"$ROOT"/}/collector.log)"); fi
    rm -f "$LS_RUN/collector.exit"
fi

if ls_postgres_running; then info "stopping PostgreSQL"; fi
ls_stop_postgres
ls_postgres_running && failed+=("PostgreSQL still runs")
if ((!KEEP_DATA)); then
    # The database and the password of its CDC role go together.
    rm -rf "$PG_DIR" "$LS_DIR/collector.env"
fi

if ls_kafka_running; then
    info "stopping Kafka"
    ls_kafka stop >/dev/null 2>&1 || true
    ls_kafka_running && failed+=("Kafka still runs")
fi

# Everything gone?
for name in collector $(ls_workers | sed 's/^/worker-/'); do
    ls_pid "$name" >/dev/null && failed+=("$name still runs")
done

if ((${#failed[@]})); then
    for f in "${failed[@]}"; do printf '%s: %s\n' "$PROG" "$f" >&2; done
    exit 1
fi
info "local stack stopped (logs in ${LS_LOGS#"$ROOT"/}, output in ${OUTPUT_DIR#"$ROOT"/})"
