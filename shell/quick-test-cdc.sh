#!/usr/bin/env bash
# quick-test-cdc.sh — end-to-end smoke test: write a marker row into the source database and
# wait until it appears in an output file; print how long that took.
#
#   ./shell/quick-test-cdc.sh [--local | --compose] [--timeout S] [--keep]
#
# The marker is a row of shop.customers (the demo schema) whose name is
# rtdp-quick-test-<time>-<pid> and whose customer_id is far above the demo's ids. The script
# inserts it, then looks at the files committed under <output>/shop.customers/ since just
# before the insert until one of them holds the marker (JSON lines and CSV, also .gz/.zst,
# with grep; Parquet with the Python of .tools/venv, pyarrow). Afterwards it deletes the row
# again (the delete flows through the pipeline like any change) unless --keep.
#
# --local uses the stack of shell/start.sh --local (psql over its socket, its output
# folder). Compose mode (default) runs psql in the source database container (the demo
# profile's service RTDP_SOURCE_DB_SERVICE, default postgres; user RTDP_SOURCE_DB_USER,
# default postgres; database DATABASE_NAME of .env, default rtdp_demo, as in docker-compose.yml)
# with `docker compose exec`, and copies new files out of a worker container to search them.
# Rows reach files at a checkpoint: with compose defaults (OUTPUT_ROLLING_INACTIVITY and
# CHECKPOINT_INTERVAL of 60 s) expect up to a minute.
#
# Another table: QUICK_TEST_TABLE (output folder name, schema.table), QUICK_TEST_INSERT and
# QUICK_TEST_DELETE (SQL run by psql with the variables :id and :'marker').
#
# Options:
#   --timeout S   seconds to wait for the marker (default 120)
#   --keep        leave the marker row in the source
#
# Exit codes: 0 the marker arrived (the last line says after how long), 1 it did not
# arrive in time or something failed, 2 bad arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=quick-test-cdc
# shellcheck source=shell/lib/common.sh
. "$ROOT/shell/lib/common.sh"

MODE="${RTDP_MODE:-compose}"
TIMEOUT=120
KEEP=0
while (($#)); do
    case "$1" in
        -h | --help) usage_from_header; exit 0 ;;
        --local) MODE=local ;;
        --compose) MODE=compose ;;
        --timeout) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout needs seconds"; TIMEOUT="$2"; shift ;;
        --keep) KEEP=1 ;;
        *) bad_usage "unknown argument '$1'" ;;
    esac
    shift
done

TABLE="${QUICK_TEST_TABLE:-shop.customers}"
INSERT_SQL="${QUICK_TEST_INSERT:-INSERT INTO shop.customers (customer_id, name, country) VALUES (:id, :'marker', 'ZZ');}"
DELETE_SQL="${QUICK_TEST_DELETE:-DELETE FROM shop.customers WHERE customer_id = :id;}"
MARKER="rtdp-quick-test-$(date -u +%Y%m%dT%H%M%SZ)-$$"
# Far above the demo's ids (and below 2^63), different on every run.
ID=$((9000000000000000000 + $(date +%s%3N) * 100 + RANDOM % 100))
RTDP_PYTHON="${RTDP_PYTHON:-$ROOT/.tools/venv/bin/python}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtdp-quick-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

now_ms() { date +%s%3N; }

# True when file $1 holds the marker.
file_has_marker() {
    local f="$1"
    case "$f" in
        *.parquet)
            [[ -x "$RTDP_PYTHON" ]] || die "searching Parquet needs $RTDP_PYTHON with pyarrow (shell/ensure-tools.sh sets it up)"
            "$RTDP_PYTHON" - "$f" "$MARKER" <<'PY'
import sys
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyarrow as pa
table = pq.read_table(sys.argv[1])
for col in table.columns:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        if pc.any(pc.equal(col, sys.argv[2])).as_py():
            sys.exit(0)
sys.exit(1)
PY
            ;;
        *.gz) gzip -dc -- "$f" | grep -qF -- "$MARKER" ;;
        *.zst) zstd -qdc -- "$f" | grep -qF -- "$MARKER" ;;
        *) grep -qF -- "$MARKER" "$f" ;;
    esac
}

run_sql() { # $1 = SQL; psql with :id and :'marker'
    if [[ "$MODE" == local ]]; then
        printf '%s\n' "$1" | pg_psql "$PG_DIR" "$PG_PORT" "$DB_NAME" -v id="$ID" -v marker="$MARKER" -f -
    else
        printf '%s\n' "$1" | compose exec -T "$SOURCE_DB_SERVICE" psql -X -q -v ON_ERROR_STOP=1 \
            -U "$DB_USER" -d "$DB_NAME" -v id="$ID" -v marker="$MARKER" -f -
    fi
}

# Prints files under the table folder committed since $1 (epoch seconds), one per line,
# as local paths (compose: copied into $WORK first).
new_files() {
    local since="$1" f
    if [[ "$MODE" == local ]]; then
        [[ -d "$OUTPUT_DIR/$TABLE" ]] || return 0
        find "$OUTPUT_DIR/$TABLE" -type f -newermt "@$since" -print
    else
        local id
        id="$(compose_ids "$WORKER_SERVICE" | head -n 1)"
        [[ -n "$id" ]] || die "no running $WORKER_SERVICE container"
        # shellcheck disable=SC2016 # runs in the container
        container_sh "$id" '[ -d "$1/$2" ] || exit 0; find "$1/$2" -type f -newermt "@$3" -printf "%P\n"' \
            "$CONTAINER_OUTPUT" "$TABLE" "$since" | while read -r f; do
            [[ -n "$f" ]] || continue
            mkdir -p "$WORK/files/$(dirname "$f")"
            if [[ ! -e "$WORK/files/$f" ]]; then
                docker cp "$id:$CONTAINER_OUTPUT/$TABLE/$f" "$WORK/files/$f" >/dev/null
            fi
            echo "$WORK/files/$f"
        done
    fi
}

if [[ "$MODE" == local ]]; then
    # shellcheck source=shell/lib/local-stack.sh
    . "$ROOT/shell/lib/local-stack.sh"
    ls_load
    ls_postgres_running || die "the local stack's PostgreSQL is not running (shell/start.sh --local)"
    WHERE="${OUTPUT_DIR#"$ROOT"/}/$TABLE"
else
    # shellcheck source=shell/lib/compose.sh
    . "$ROOT/shell/lib/compose.sh"
    compose_init
    compose_require_engine
    DB_USER="${RTDP_SOURCE_DB_USER:-postgres}"
    DB_NAME="$(dotenv_get DATABASE_NAME)"
    DB_NAME="${DB_NAME:-rtdp_demo}"
    WHERE="$WORKER_SERVICE:$CONTAINER_OUTPUT/$TABLE"
fi

# The file modification times are whole or fractional seconds; look from a second before.
since=$(($(date +%s) - 1))
t0="$(now_ms)"
run_sql "$INSERT_SQL" || die "inserting the marker row failed"
t_commit="$(now_ms)"
note "marker $MARKER committed in $TABLE (id $ID); waiting for it in $WHERE (up to ${TIMEOUT}s)"

declare -A checked=()
found=""
deadline=$((SECONDS + TIMEOUT))
while [[ -z "$found" ]]; do
    while read -r f; do
        [[ -n "$f" && -z "${checked[$f]:-}" ]] || continue
        checked[$f]=1
        if file_has_marker "$f"; then
            found="$f"
            break
        fi
    done < <(new_files "$since")
    [[ -z "$found" ]] || break
    if ((SECONDS >= deadline)); then
        if ((!KEEP)); then run_sql "$DELETE_SQL" >/dev/null 2>&1 || true; fi
        die "the marker did not arrive within ${TIMEOUT}s (${#checked[@]} new file(s) searched in $WHERE); check shell/check-cdc-status.sh"
    fi
    sleep 0.2
done
t1="$(now_ms)"

if ((!KEEP)); then
    run_sql "$DELETE_SQL" || warn "deleting the marker row failed (id $ID)"
fi
shown="$found"
[[ "$MODE" == local ]] || shown="$CONTAINER_OUTPUT/$TABLE/${found#"$WORK/files/"}"
note "found in ${shown#"$ROOT"/}"
printf 'quick-test-cdc: OK: the marker arrived in an output file %d.%03d s after the insert (%d ms to commit it in the source)\n' \
    $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000)) $((t_commit - t0))
