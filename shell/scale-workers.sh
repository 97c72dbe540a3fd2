#!/usr/bin/env bash
# scale-workers.sh — run N stream-workers (one consumer group) and wait until they settle.
#
#   ./shell/scale-workers.sh [--local | --compose] N [--timeout S]
#
# Workers share the topic's partitions: more workers than partitions leaves the extra ones
# idle (live, not ready). Each change of the group makes Kafka move some partitions; their
# open files are dropped and re-consumed by the new owner (no loss, no duplicates; up to one
# checkpoint interval of repeated work per moved partition). md/RUNBOOK_STREAM_WORKER.md#scale.
#
# Compose mode (default): `docker compose up -d --no-recreate --scale stream-worker=N
# stream-worker`, then waits until N worker containers run and shell/check-cdc-status.sh
# reports healthy (N = 0: only until none runs).
# --local (stack of shell/start.sh --local): starts workers with the next free numbers, each
# with its own free MONITORING_PORT, or stops the highest-numbered ones with SIGTERM (they
# commit and must exit 0; SIGKILL after 45 s); then waits until every partition of the topic
# has exactly one owner. Workers that died are reported and replaced.
#
# Options:
#   --timeout S   seconds to wait for the group to settle (default 120)
#
# Exit codes: 0 scaled and settled, 1 failed (a stopped worker exited non-zero, a new one did
# not come up, no settlement in time), 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=scale-workers
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE="${RTDP_MODE:-compose}"
TIMEOUT=120
WANT=""
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --timeout) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout needs seconds"; TIMEOUT="$2"; shift ;;
        *)
            [[ "$1" =~ ^[0-9]+$ && -z "$WANT" ]] || bad_usage "unknown argument '$1'"
            WANT="$1" ;;
    esac
    shift
done
[[ -n "$WANT" ]] || bad_usage "how many workers? (scale-workers.sh N)"
T0=$SECONDS

if [[ "$MODE" == compose ]]; then
    # shellcheck source=shell/lib/compose.sh
    . "$ROOT/shell/lib/compose.sh"
    compose_init
    compose_require_engine
    say "${COMPOSE_CMD[*]} up -d --no-recreate --scale $WORKER_SERVICE=$WANT $WORKER_SERVICE"
    compose up -d --no-recreate --scale "$WORKER_SERVICE=$WANT" "$WORKER_SERVICE"
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        have="$(compose_ids "$WORKER_SERVICE" | grep -c . || true)"
        ((have != WANT)) || break
        ((SECONDS < deadline)) || die "$have $WORKER_SERVICE container(s) running after ${TIMEOUT}s, $WANT wanted"
        sleep 1
    done
    if ((WANT > 0)); then
        left=$((deadline - SECONDS))
        "$ROOT/shell/check-cdc-status.sh" --compose --wait "$((left > 10 ? left : 10))"
    fi
    printf '%s: OK: %d worker(s) in %ds\n' "$PROG" "$WANT" "$((SECONDS - T0))"
    exit 0
fi

# shellcheck source=shell/lib/local-stack.sh
. "$ROOT/shell/lib/local-stack.sh"
ls_load
ls_kafka_running || die "the local stack's Kafka is not running (shell/start.sh --local)"

# Forget workers that died, saying how they ended.
running=()
for n in $(ls_workers); do
    if ls_pid "worker-$n" >/dev/null; then
        running+=("$n")
    else
        warn "worker-$n was not running (exit code $(cat "$LS_RUN/worker-$n.exit" 2>/dev/null || echo unknown); log ${LS_LOGS#"$ROOT"/}/worker-$n.log)"
        rm -f "$LS_RUN/worker-$n.pid" "$LS_RUN/worker-$n.port" "$LS_RUN/worker-$n.exit"
    fi
done
have=${#running[@]}
note "$have worker(s) running, $WANT wanted"

if ((WANT > have)); then
    n=0
    for ((k = have; k < WANT; k++)); do
        # The lowest free number.
        n=1
        while [[ -e "$LS_RUN/worker-$n.pid" ]]; do n=$((n + 1)); done
        say "Starting worker-$n"
        ls_start_worker "$n" "$TIMEOUT"
        note "pid $(ls_pid "worker-$n"), health and metrics on :$(ls_port "worker-$n")"
    done
elif ((WANT < have)); then
    failed=()
    # Highest numbers first; they drain in parallel.
    mapfile -t stop < <(printf '%s\n' "${running[@]}" | sort -rn | head -n $((have - WANT)))
    say "Stopping worker(s) ${stop[*]} (SIGTERM: commit and exit)"
    for n in "${stop[@]}"; do kill -TERM "$(ls_pid "worker-$n")" 2>/dev/null || true; done
    for n in "${stop[@]}"; do
        ls_stop "worker-$n" 45
        [[ "$STOP_RC" == 0 ]] || failed+=("worker-$n exited with code $STOP_RC (log ${LS_LOGS#"$ROOT"/}/worker-$n.log)")
        rm -f "$LS_RUN/worker-$n.exit"
    done
    ((${#failed[@]} == 0)) || die "${failed[*]}"
fi

if ((WANT > 0)); then
    say "Waiting until each of the $PARTITIONS partitions has one owner"
    ls_wait_partitions_owned "$TIMEOUT"
fi
for n in $(ls_workers); do
    note "worker-$n: pid $(ls_pid "worker-$n"), port $(ls_port "worker-$n")"
done
printf '%s: OK: %d worker(s), settled in %ds\n' "$PROG" "$WANT" "$((SECONDS - T0))"
