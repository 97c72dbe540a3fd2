#!/usr/bin/env bash
# dlq-inspect.sh — summarise and print the stream-workers' dead letters.
#
#   ./shell/dlq-inspect.sh [--local | --compose | --path DIR] [--show N] [--values]
#                          [--max-chars N] [--since YYYY-MM-DD] [--stage decode|convert]
#                          [--export FILE]
#
# Records a worker could not decode or convert are committed to <output>/_dlq/dt=<day>/
# <topic>+<partition>+<first>+<last>.jsonl[.gz|.zst] (docs/OUTPUT.md#dead-letters). This
# prints how many there are, grouped by stage and error (the error names the field or
# column and the rule, never a value), by topic and partition (offset ranges) and by day,
# then the newest N records' metadata. Keys and values (the original Kafka bytes) are
# printed only with --values, and --export writes them as key<TAB>value lines, the input
# of the reprocessing steps in md/RUNBOOK_STREAM_WORKER.md#reprocess-dead-letters.
#
# Where: --local the output folder of shell/start.sh --local's stack; --path DIR an output
# folder (or its _dlq folder); compose mode (default) copies _dlq out of a running worker
# container (docker cp of RTDP_CONTAINER_OUTPUT/_dlq, default /data/output/_dlq).
#
# Options:
#   --show N        newest records to print (10; 0 = summary only)
#   --values        also print each shown record's key and value (decoded; --max-chars, 300)
#   --since DAY     only dt= folders from that day on
#   --stage S       only decode or only convert failures
#   --export FILE   write the records' key<TAB>value lines to FILE
#
# Exit codes: 0 (also when there are none), 1 a file could not be read, 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=dlq-inspect
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE="${RTDP_MODE:-compose}"
DIR=""
ARGS=()
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --path) [[ $# -ge 2 ]] || bad_usage "--path needs a folder"; MODE=path; DIR="$2"; shift ;;
        --show | --max-chars)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || bad_usage "$1 needs a number"
            ARGS+=("$1" "$2"); shift ;;
        --since)
            [[ $# -ge 2 && "$2" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || bad_usage "--since needs a day YYYY-MM-DD"
            ARGS+=(--since "$2"); shift ;;
        --stage)
            [[ $# -ge 2 && ("$2" == decode || "$2" == convert) ]] || bad_usage "--stage needs decode or convert"
            ARGS+=(--stage "$2"); shift ;;
        --export) [[ $# -ge 2 ]] || bad_usage "--export needs a file"; ARGS+=(--export "$2"); shift ;;
        --values) ARGS+=(--values) ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done
PY="$(python_json)"

case "$MODE" in
    path)
        [[ -d "$DIR" ]] || die "$DIR is not a folder"
        [[ ! -d "$DIR/_dlq" ]] || DIR="$DIR/_dlq"
        ;;
    local)
        # shellcheck source=shell/lib/local-stack.sh
        . "$ROOT/shell/lib/local-stack.sh"
        ls_load
        DIR="$OUTPUT_DIR/_dlq"
        ;;
    compose)
        # shellcheck source=shell/lib/compose.sh
        . "$ROOT/shell/lib/compose.sh"
        compose_init
    compose_require_engine
        id="$(compose_ids "$WORKER_SERVICE" | head -n 1)"
        [[ -n "$id" ]] || die "no running $WORKER_SERVICE container to read $CONTAINER_OUTPUT/_dlq through"
        WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-dlq.XXXXXX")"
        trap 'rm -rf "$WORK"' EXIT
        DIR="$WORK/_dlq"
        # shellcheck disable=SC2016 # runs in the container
        if container_sh "$id" '[ -d "$1" ]' "$CONTAINER_OUTPUT/_dlq"; then
            docker cp "$id:$CONTAINER_OUTPUT/_dlq" "$WORK/" >/dev/null
        fi
        ;;
esac

"$PY" "$ROOT/shell/lib/dlq_inspect.py" "$DIR" "${ARGS[@]}"
