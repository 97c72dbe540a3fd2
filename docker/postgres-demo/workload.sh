#!/usr/bin/env bash
# rtdp-demo-workload: runs sql/postgres/demo-workload.sql against the demo database again
# and again until stopped (SIGTERM/SIGINT), so the pipeline always has changes to carry.
# Connection from the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).
#   DEMO_WORKLOAD_SECONDS  length of one run of the script (default 60)
#   DEMO_WORKLOAD_PAUSE    seconds between its transactions (default 0.1: ~10 transactions,
#                          ~300 row changes a second)
set -euo pipefail

seconds="${DEMO_WORKLOAD_SECONDS:-60}"
pause="${DEMO_WORKLOAD_PAUSE:-0.1}"
child=""
stopping=0
on_stop() {
    stopping=1
    [[ -z "$child" ]] || kill -TERM "$child" 2>/dev/null || true
}
trap on_stop TERM INT

echo "rtdp-demo-workload: ${seconds}s runs, pause ${pause}s, on ${PGHOST:-local}/${PGDATABASE:-postgres}"
while ((stopping == 0)); do
    # In the background, so the trap runs at once rather than after psql returns.
    psql -X -q -v ON_ERROR_STOP=1 -v seconds="$seconds" -v pause="$pause" \
        -f "${RTDP_SQL_DIR:-/opt/rtdp-sql}/demo-workload.sql" &
    child=$!
    status=0
    wait "$child" || status=$?
    child=""
    if ((stopping == 0 && status != 0)); then
        # The database restarting, for instance: try again shortly (the container's restart
        # policy would do the same, more slowly).
        echo "rtdp-demo-workload: psql exited with $status; retrying in 5 s" >&2
        sleep 5 &
        wait $! || true
    fi
done
echo "rtdp-demo-workload: stopped"
