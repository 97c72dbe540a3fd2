-- setup-postgres-cdc.sql — prepare a PostgreSQL (13+; tested on 15) database for rtdp's
-- cdc-collector. The collector reads logical decoding through the wal2json output
-- plugin over an ordinary SQL connection (pg_logical_slot_peek_changes, then
-- pg_replication_slot_advance): no pgoutput, no publication, no replication connection.
-- Background: docs/POSTGRESQL.md.
--
-- Run as a superuser (or a role with CREATEROLE that owns the tables), connected to the
-- database to capture, with psql (Amazon RDS / Aurora: see step 2 first):
--
--   psql "host=db port=5432 dbname=shop user=postgres" \
--        -v rtdp_password='…' -v schema=public -f sql/setup-postgres-cdc.sql
--
-- Variables: rtdp_password (required), schema (default public), rtdp_user (default
-- rtdp_cdc). Idempotent: safe to run again (it also re-sets the password).
--
-- Server settings (postgresql.conf or ALTER SYSTEM; the first two need a restart, the
-- third a reload):
--   wal_level = logical
--   max_replication_slots >= number of collectors on this server (+ other slots)
--   max_slot_wal_keep_size = '50GB'   -- optional: cap the WAL a stopped collector's slot
--                                     -- retains (past it the slot is lost: the collector
--                                     -- stops with SQLSTATE 55000 and needs a reset)
-- max_wal_senders does not matter to the collector (it does not use the replication
-- protocol). Managed services: RDS/Aurora rds.logical_replication = 1, Cloud SQL
-- cloudsql.logical_decoding = on, Azure flexible server wal_level = logical.
--
-- The wal2json output plugin on the database server: Debian/Ubuntu
--   apt install postgresql-15-wal2json      (the package of your major version; 2.6+
--                                            keeps NaN/Infinity, older sends them as null)
-- RDS, Aurora, Cloud SQL and Azure have it built in. Step 1 below checks it.
--
-- pg_hba.conf: an ordinary line for the database (no "replication" line is needed), e.g.
--   host  shop  rtdp_cdc  10.0.0.0/8  scram-sha-256
-- The collector connects without TLS (not supported yet): hostssl-only rules refuse it.
--
-- Then set DATABASE_TYPE=postgresql, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME=shop,
-- DATABASE_USERNAME=rtdp_cdc, DATABASE_PASSWORD, DATABASE_SCHEMA, DATABASE_TABLES
-- (e.g. public.*; a bare * is every table of DATABASE_SCHEMA, or of every schema when
-- DATABASE_SCHEMA is empty) and a COLLECTOR_NAME unique per source.

\set ON_ERROR_STOP on
\if :{?rtdp_password}
\else
  \echo 'set the password: psql -v rtdp_password=... -f sql/setup-postgres-cdc.sql'
  DO $$ BEGIN RAISE EXCEPTION 'rtdp_password is not set'; END $$;
\endif
\if :{?schema}
\else
  \set schema public
\endif
\if :{?rtdp_user}
\else
  \set rtdp_user rtdp_cdc
\endif

-- 1. Is logical decoding on, and is wal2json installed?
--    wal_level must say 'logical'. If it says 'replica':
--      ALTER SYSTEM SET wal_level = logical;   -- then restart PostgreSQL
SELECT name, setting FROM pg_settings
 WHERE name IN ('wal_level', 'max_replication_slots', 'max_slot_wal_keep_size', 'server_version')
 ORDER BY name;
--    wal2json: a throw-away slot, dropped right after (only when wal_level is logical).
--    An error 'could not access file "wal2json"' stops the script: the plugin is missing.
--    'all replication slots are in use': raise max_replication_slots. Creating a slot
--    waits for the transactions open at that moment to finish.
SELECT CASE WHEN current_setting('wal_level') = 'logical'
             AND NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'rtdp_setup_probe')
            THEN 'SELECT ''wal2json is installed'' AS wal2json FROM pg_create_logical_replication_slot(''rtdp_setup_probe'', ''wal2json'')'
            ELSE 'SELECT ''skipped: wal_level is not logical yet'' AS wal2json'
       END \gexec
SELECT pg_drop_replication_slot('rtdp_setup_probe')
 WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'rtdp_setup_probe');

-- 2. A login role with the REPLICATION attribute: it lets the collector create its slot
--    and read and advance it. (The collector's start-up check accepts REPLICATION,
--    superuser, or membership of rds_replication, rds_superuser, azure_pg_admin,
--    cloudsqlsuperuser or alloydbsuperuser.) Amazon RDS / Aurora: the master user is not a
--    superuser and cannot give REPLICATION, so this step fails there. Run instead
--      CREATE ROLE rtdp_cdc WITH LOGIN PASSWORD '...';
--      GRANT rds_replication TO rtdp_cdc;
--    then this script with step 2 commented out (its GRANT SET ON PARAMETER is optional).
SELECT format('CREATE ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'rtdp_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password') \gexec
--    Every poll makes the server log "starting logical decoding for slot ..." at LOG level.
--    The collector lowers log_min_messages to warning for its own sessions, which needs
--    this grant (PostgreSQL 15+; superusers need none). Older versions: as a superuser,
--      ALTER ROLE rtdp_cdc SET log_min_messages = warning;
SELECT format('GRANT SET ON PARAMETER log_min_messages TO %I', :'rtdp_user')
 WHERE current_setting('server_version_num')::int >= 150000 \gexec

-- 3. Read access: the initial snapshot and `cdc-collector verify` read the tables, and
--    the collector refuses to start on a captured table it cannot read. Also for tables
--    created later by the role running this script (ALTER DEFAULT PRIVILEGES covers only
--    tables created by that role: run it as each role that creates tables).
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'rtdp_user') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', :'schema', :'rtdp_user') \gexec

-- 4. REPLICA IDENTITY FULL. PostgreSQL logs for an UPDATE/DELETE only what the replica
--    identity asks for. With the default (the primary key):
--      - `before` of updates and deletes holds only the key columns, so a delete (written
--        from `before`) has its other columns null, or is dead-lettered when they are
--        NOT NULL;
--      - an unchanged large (TOASTed) value is missing from `after` of an update;
--      - a table WITHOUT a primary key gets no UPDATE/DELETE at all: wal2json skips them.
--    FULL logs the whole old row (more WAL per update/delete). The collector refuses to
--    start while a captured table has neither a primary key nor FULL (the message lists
--    the ALTER TABLE statements, or exclude the table with DATABASE_EXCLUDE_TABLES), and
--    warns at start for a table with a key but without FULL. One table:
--      ALTER TABLE public.orders REPLICA IDENTITY FULL;
--    Here: every ordinary table and every partition of the schema (a partitioned parent
--    is skipped: its leaf partitions are what logical decoding reports).
SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r' AND c.relreplident <> 'f'
 ORDER BY c.relname \gexec

-- 5. Check.
SELECT rolname, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = :'rtdp_user';
SELECT c.relname AS table_name,
       c.relreplident AS replica_identity,               -- f = FULL, d = DEFAULT (key), n = NOTHING
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key,
       has_table_privilege(:'rtdp_user', c.oid, 'SELECT') AS rtdp_can_read
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r' ORDER BY c.relname;

-- The replication slot (default rtdp_<collector name>) is created by the collector on its
-- first start; nothing to do here. A slot keeps WAL until the collector confirms it: a
-- collector that stays down makes WAL grow. Watch it (md/RUNBOOK_COLLECTOR.md):
--   SELECT slot_name, plugin, active, confirmed_flush_lsn,
--          pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained_wal
--     FROM pg_replication_slots;
-- ("active" is true only while a poll runs: the collector reads over SQL, so false is normal.)
-- Drop the slot of a collector that is gone for good:
--   SELECT pg_drop_replication_slot('<slot name>');
-- Setups made with an earlier version of this script also created a publication
-- (rtdp_pub, for pgoutput); the collector does not use it:  DROP PUBLICATION IF EXISTS rtdp_pub;
