#!/usr/bin/env bash
# First start of rtdp/postgres-demo (run by the postgres image's entrypoint as the postgres
# user, against POSTGRES_DB): the demo shop schema, then the collector's role, grants and
# REPLICA IDENTITY FULL from sql/setup-postgres-cdc.sql.
#   RTDP_DEMO_CDC_USER      the collector's login (default rtdp_cdc)
#   RTDP_DEMO_CDC_PASSWORD  its password (required; compose passes DATABASE_PASSWORD)
set -euo pipefail

: "${RTDP_DEMO_CDC_PASSWORD:?set RTDP_DEMO_CDC_PASSWORD (docker-compose passes DATABASE_PASSWORD)}"
sql="${RTDP_SQL_DIR:-/opt/rtdp-sql}"
psql=(psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}")

echo "rtdp-demo: loading the shop schema (sql/postgres/demo-schema.sql)"
"${psql[@]}" -f "$sql/demo-schema.sql"
echo "rtdp-demo: preparing it for the collector (sql/setup-postgres-cdc.sql, schema shop)"
# The password goes from the environment into a psql variable (\getenv), not on a command line.
"${psql[@]}" -v schema=shop -v rtdp_user="${RTDP_DEMO_CDC_USER:-rtdp_cdc}" \
    -c '\getenv rtdp_password RTDP_DEMO_CDC_PASSWORD' -f "$sql/setup-postgres-cdc.sql"
