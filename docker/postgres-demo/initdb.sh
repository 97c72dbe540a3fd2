#!/usr/bin/env bash
# First start of rtdp/postgres-demo (run by the postgres image's entrypoint as the postgres
# user, against POSTGRES_DB): the demo shop schema, then the collector's role, grants,
# REPLICA IDENTITY FULL and publication from sql/setup-postgres-cdc.sql. The publication is
# created here, by the tables' owner, so the collector's role needs no ownership.
#   RTDP_DEMO_CDC_USER        the collector's login (default rtdp_cdc)
#   RTDP_DEMO_CDC_PASSWORD    its password (required; compose passes DATABASE_PASSWORD)
#   RTDP_DEMO_COLLECTOR_NAME  its collector.name (default rtdp-collector), which names the
#                             publication rtdp_<name> as the collector does, unless
#   RTDP_DEMO_SLOT_NAME / RTDP_DEMO_PUBLICATION_NAME  are set (COLLECTOR_SLOT_NAME,
#                             COLLECTOR_PUBLICATION_NAME)
set -euo pipefail

: "${RTDP_DEMO_CDC_PASSWORD:?set RTDP_DEMO_CDC_PASSWORD (docker-compose passes DATABASE_PASSWORD)}"
sql="${RTDP_SQL_DIR:-/opt/rtdp-sql}"
psql=(psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}")

echo "rtdp-demo: loading the shop schema (sql/postgres/demo-schema.sql)"
"${psql[@]}" -f "$sql/demo-schema.sql"
echo "rtdp-demo: preparing it for the collector (sql/setup-postgres-cdc.sql, schema shop)"
# The password goes from the environment into a psql variable (\getenv), not on a command line.
"${psql[@]}" -v schema=shop -v rtdp_user="${RTDP_DEMO_CDC_USER:-rtdp_cdc}" \
    -v collector="${RTDP_DEMO_COLLECTOR_NAME:-rtdp-collector}" -v slot="${RTDP_DEMO_SLOT_NAME:-}" \
    -v publication="${RTDP_DEMO_PUBLICATION_NAME:-}" \
    -c '\getenv rtdp_password RTDP_DEMO_CDC_PASSWORD' -f "$sql/setup-postgres-cdc.sql"
