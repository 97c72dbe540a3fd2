-- setup-postgres-cdc.sql — prepare a PostgreSQL (10+; tested on 15) database for rtdp's
-- cdc-collector (logical replication with the built-in pgoutput plugin).
--
-- Run as a superuser (or the owner of the tables, with CREATEROLE), connected to the
-- database to capture, with psql:
--
--   psql "host=db port=5432 dbname=shop user=postgres" \
--        -v rtdp_password='…' -v schema=public -f sql/setup-postgres-cdc.sql
--
-- Variables: rtdp_password (required), schema (default public), rtdp_user (default
-- rtdp_cdc), publication (default rtdp_pub). Idempotent: safe to run again.
--
-- Server settings (postgresql.conf or ALTER SYSTEM; wal_level needs a restart):
--   wal_level = logical
--   max_replication_slots >= number of collectors on this server (+ others' slots)
--   max_wal_senders       >= number of collectors on this server (+ standbys)
--   max_slot_wal_keep_size = '50GB'   -- optional (13+): cap the WAL a stopped collector's slot retains
-- and in pg_hba.conf a line letting the CDC user connect for replication, e.g.
--   host  shop         rtdp_cdc  10.0.0.0/8  scram-sha-256
--   host  replication  rtdp_cdc  10.0.0.0/8  scram-sha-256
-- Then set DATABASE_TYPE=postgresql, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME=shop,
-- DATABASE_USERNAME=rtdp_cdc, DATABASE_PASSWORD, DATABASE_SCHEMA, DATABASE_TABLES.

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
\if :{?publication}
\else
  \set publication rtdp_pub
\endif

-- 1. Is logical decoding on? (If this says 'replica', set wal_level = logical and restart.)
SHOW wal_level;
SELECT name, setting FROM pg_settings
 WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size');
-- To switch it on (superuser; takes effect after a restart):
-- ALTER SYSTEM SET wal_level = logical;

-- 2. A login role with the REPLICATION attribute (needed to stream changes and create
--    its replication slot).
SELECT format('CREATE ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'rtdp_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password') \gexec

-- 3. Read access for the initial snapshot, now and for tables created later.
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'rtdp_user') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', :'schema', :'rtdp_user') \gexec

-- 4. Full before-images: with REPLICA IDENTITY DEFAULT an UPDATE/DELETE logs only the
--    primary key of the old row, so deletes (written from the "before" row) and updates
--    would lack the other columns. FULL logs the whole old row. Example for one table:
--      ALTER TABLE public.orders REPLICA IDENTITY FULL;
--    For every table of the schema:
SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', schemaname, tablename)
  FROM pg_tables WHERE schemaname = :'schema' ORDER BY tablename \gexec

-- 5. The publication the collector streams (pgoutput). One of:
--      CREATE PUBLICATION rtdp_pub FOR TABLE public.orders, public.customers;  -- a list
--      CREATE PUBLICATION rtdp_pub FOR ALL TABLES;                             -- superuser
--    Here: every table of the schema, including tables created later (PostgreSQL 15+).
SELECT format('CREATE PUBLICATION %I FOR TABLES IN SCHEMA %I', :'publication', :'schema')
 WHERE NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = :'publication') \gexec
-- PostgreSQL 10–14 have no FOR TABLES IN SCHEMA: list the tables instead, e.g.
--   CREATE PUBLICATION rtdp_pub FOR TABLE public.orders, public.customers;

-- 6. Check.
SELECT rolname, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = :'rtdp_user';
SELECT pubname, puballtables FROM pg_publication WHERE pubname = :'publication';
SELECT * FROM pg_publication_tables WHERE pubname = :'publication' ORDER BY schemaname, tablename;
SELECT c.relname, c.relreplident AS replica_identity   -- f = FULL, d = DEFAULT
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind IN ('r', 'p') ORDER BY c.relname;

-- The replication slot is created by the collector on its first start. A slot keeps WAL
-- until the collector confirms it: a collector that stays down makes WAL grow. Watch:
--   SELECT slot_name, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained
--     FROM pg_replication_slots;
-- and drop the slot of a collector that is gone for good:
--   SELECT pg_drop_replication_slot('<slot name>');
