-- setup-postgres-cdc.sql — prepare a PostgreSQL (13+; tested on 15.20) database for rtdp's
-- cdc-collector. The collector streams logical decoding with PostgreSQL's built-in
-- pgoutput plugin over a replication connection (replication=database), from its own
-- slot and a publication of the captured tables. Background: docs/POSTGRESQL.md
-- ("Privileges", "Publication").
--
-- Run as a superuser, connected to the database to capture, with psql (Amazon RDS /
-- Aurora: see step 2 first). Steps 4 and 5 act as the tables' owner: a superuser, or the
-- role that owns them (with CREATE on the database for step 5).
--
--   psql "host=db port=5432 dbname=shop user=postgres" \
--        -v rtdp_password='…' -v schema=public -v collector=shop -f sql/setup-postgres-cdc.sql
--
-- Variables:
--   rtdp_password   the collector's password (required)
--   schema          the schema to capture (default public)
--   rtdp_user       the collector's login role (default rtdp_cdc)
--   collector       its collector.name, COLLECTOR_NAME (default rtdp-collector): names the
--                   publication like the collector does, rtdp_<name> in lower case with
--                   other characters as _ (collector "shop" -> publication rtdp_shop)
--   slot            COLLECTOR_SLOT_NAME, if you set one (the publication then defaults to it)
--   publication     COLLECTOR_PUBLICATION_NAME, if you set one
--   publication_by  who creates the publication:
--                     owner     (default) this script, as the tables' owner: the collector
--                               only reads; least privilege (variant a below)
--                     collector the collector at its start (variant b): the script grants
--                               CREATE on the database and lists the tables the role
--                               would have to own; it changes no owner itself
-- Idempotent: safe to run again (it also re-sets the password, adds tables of the schema
-- that are missing from the publication, and sets REPLICA IDENTITY FULL on new tables).
--
-- Server settings (postgresql.conf or ALTER SYSTEM; the first three need a restart, the
-- last a reload):
--   wal_level = logical
--   max_replication_slots >= number of collectors on this server (+ other slots)
--   max_wal_senders       >= number of collectors (+ standbys and other replication
--                            clients): each collector streams through one walsender
--   max_slot_wal_keep_size = '50GB'   -- optional: cap the WAL a stopped collector's slot
--                                     -- retains (past it the slot is lost: the collector
--                                     -- stops with SQLSTATE 55000 and needs a reset)
-- Nothing else: pgoutput is built into PostgreSQL (no shared_preload_libraries, no
-- extension, no change to output_plugin_libraries). Managed services: RDS/Aurora
-- rds.logical_replication = 1, Cloud SQL cloudsql.logical_decoding = on, Azure flexible
-- server wal_level = logical.
--
-- pg_hba.conf: the collector's connections name the database (its replication connection
-- too: replication=database), so an ordinary line for the database applies, e.g.
--   host  shop  rtdp_cdc  10.0.0.0/8  scram-sha-256
-- A line for the "replication" keyword is neither needed nor used (that is for physical
-- replication). The collector connects without TLS (not supported yet): hostssl-only
-- rules refuse it.
--
-- Then set DATABASE_TYPE=postgresql, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME=shop,
-- DATABASE_USERNAME=rtdp_cdc, DATABASE_PASSWORD, DATABASE_SCHEMA, DATABASE_TABLES
-- (e.g. public.*; a bare * is every table of DATABASE_SCHEMA, or of every schema when
-- DATABASE_SCHEMA is empty) and the COLLECTOR_NAME given here (unique per source).
-- Run this script before the collector's first start: pgoutput reads the publication as of
-- each change it decodes, so the publication must exist before the changes it should carry
-- are written.

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
\if :{?collector}
\else
  \set collector rtdp-collector
\endif
\if :{?slot}
\else
  \set slot ''
\endif
\if :{?publication}
\else
  \set publication ''
\endif
\if :{?publication_by}
\else
  \set publication_by owner
\endif
SELECT CASE WHEN :'publication_by' IN ('owner', 'collector') THEN 'true' ELSE 'false' END AS publication_by_ok,
       CASE WHEN :'publication_by' = 'owner' THEN 'true' ELSE 'false' END AS publication_by_owner \gset
\if :publication_by_ok
\else
  \echo 'publication_by must be owner or collector'
  DO $$ BEGIN RAISE EXCEPTION 'publication_by must be owner or collector'; END $$;
\endif
-- The collector's own rule: publicationName, else slotName, else rtdp_<collector.name>
-- folded to lower-case letters, digits and _ (at most 63 characters).
SELECT coalesce(nullif(btrim(:'publication'), ''), nullif(btrim(:'slot'), ''),
                left('rtdp_' || regexp_replace(lower(btrim(:'collector')), '[^a-z0-9]', '_', 'g'), 63))
       AS publication \gset
\echo 'publication:' :publication

-- 1. Is logical decoding on? wal_level must say 'logical'. If it says 'replica':
--      ALTER SYSTEM SET wal_level = logical;   -- then restart PostgreSQL
--    max_replication_slots and max_wal_senders: at least 1 free each per collector.
SELECT name, setting FROM pg_settings
 WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size',
                'server_version')
 ORDER BY name;

-- 2. A login role with the REPLICATION attribute: it lets the collector open a replication
--    connection, create its slot and stream it. (The collector's start-up check accepts
--    REPLICATION, superuser, or membership of rds_replication, rds_superuser,
--    azure_pg_admin, cloudsqlsuperuser or alloydbsuperuser.) Amazon RDS / Aurora: the
--    master user is not a superuser and cannot give REPLICATION, so this step fails there.
--    Run instead
--      CREATE ROLE rtdp_cdc WITH LOGIN PASSWORD '...';
--      GRANT rds_replication TO rtdp_cdc;
--    then this script with step 2 commented out.
SELECT format('CREATE ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'rtdp_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'rtdp_user', :'rtdp_password') \gexec

-- 3. Read access: the initial snapshot and `cdc-collector verify` read the tables, and
--    the collector refuses to start on a captured table it cannot read. Also for tables
--    created later by the role running this script (ALTER DEFAULT PRIVILEGES covers only
--    tables created by that role: run it as each role that creates tables).
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'rtdp_user') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', :'schema', :'rtdp_user') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', :'schema', :'rtdp_user') \gexec

-- 4. REPLICA IDENTITY FULL (run by the tables' owner; before step 5). PostgreSQL logs for
--    an UPDATE/DELETE only what the replica identity asks for. With the default (the
--    primary key):
--      - `before` of deletes (and of updates that change the key) holds only the key
--        columns, so a delete (written from `before`) has its other columns null, or is
--        dead-lettered when they are NOT NULL;
--      - a large (TOASTed) value an update leaves unchanged is not sent: that column is
--        missing from the update's `after`, and the output row has null there;
--      - a table WITHOUT a primary key has no identity at all: in a publication that
--        publishes updates and deletes, PostgreSQL then refuses UPDATE and DELETE on it.
--        That is why this step comes before the publication.
--    FULL logs the whole old row (more WAL per update/delete), and the collector fills
--    unchanged TOASTed values from it. The collector refuses to start while a captured
--    table has neither a primary key nor FULL (the message lists the ALTER TABLE
--    statements, or exclude the table with DATABASE_EXCLUDE_TABLES), and warns at start
--    for a table with a key but without FULL. One table:
--      ALTER TABLE public.orders REPLICA IDENTITY FULL;
--    Here: every ordinary table and every partition of the schema (a partitioned parent
--    is skipped: its leaf partitions are what logical decoding reports).
SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r' AND c.relreplident <> 'f'
 ORDER BY c.relname \gexec

-- 5. The publication: which tables' changes pgoutput sends the collector's slot.
\if :publication_by_owner
--    Variant a (default, least privilege): created here, by the tables' owner (or a
--    superuser), for every table and partition of the schema, publishing inserts,
--    updates, deletes and truncates. The collector then only checks and uses it; its role
--    needs nothing beyond steps 2 and 3 (LOGIN REPLICATION, CONNECT, USAGE, SELECT). A
--    table of the schema that is missing from an existing publication is added, and a
--    publication that lacks inserts, updates or deletes gets them. Tables created later:
--    run this script again (or, as their owner, ALTER PUBLICATION … ADD TABLE …) before
--    they take rows — changes written before a table is in the publication are not
--    streamed, and a collector whose selection takes in a table missing from the
--    publication stops with the ALTER PUBLICATION statement to run. A publication
--    FOR ALL TABLES (superuser only) is accepted too and needs no upkeep.
SELECT format('CREATE PUBLICATION %I FOR TABLE %s WITH (publish = %L)', :'publication',
              string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.relname),
              'insert, update, delete, truncate')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r'
HAVING count(*) > 0 AND NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = :'publication') \gexec
SELECT format('ALTER PUBLICATION %I ADD TABLE %s', :'publication',
              string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.relname))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r'
   AND EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = :'publication' AND NOT p.puballtables)
   AND NOT EXISTS (SELECT 1 FROM pg_publication_tables pt
                    WHERE pt.pubname = :'publication' AND pt.schemaname = n.nspname AND pt.tablename = c.relname)
HAVING count(*) > 0 \gexec
SELECT format('ALTER PUBLICATION %I SET (publish = %L)', pubname, 'insert, update, delete, truncate')
  FROM pg_publication
 WHERE pubname = :'publication' AND NOT (pubinsert AND pubupdate AND pubdelete) \gexec
\else
--    Variant b: the collector creates the publication at its start when it is missing,
--    `CREATE PUBLICATION <name> FOR TABLE <captured tables> WITH (publish = 'insert,
--    update, delete, truncate')`, and later adds captured tables missing from it. For that
--    its role needs, besides steps 2 and 3, CREATE on the database (granted here) and
--    ownership of every captured table (or superuser). This script changes no owner: the
--    query below lists the tables the role does not own with the statement that would
--    hand it over — a decision for the database's owner, since the old owner loses its
--    owner's rights. Without them the collector stops at start with the CREATE PUBLICATION
--    statement to run as the owner (which is variant a).
SELECT format('GRANT CREATE ON DATABASE %I TO %I', current_database(), :'rtdp_user') \gexec
SELECT format('%I.%I', n.nspname, c.relname) AS table_not_owned_by_rtdp_user,
       pg_get_userbyid(c.relowner) AS owner,
       format('ALTER TABLE %I.%I OWNER TO %I;', n.nspname, c.relname, :'rtdp_user') AS to_hand_it_over
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r'
   AND NOT pg_has_role(:'rtdp_user', c.relowner, 'USAGE')
 ORDER BY c.relname;
\endif

-- 6. Check.
SELECT rolname, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = :'rtdp_user';
SELECT pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate
  FROM pg_publication WHERE pubname = :'publication';
SELECT c.relname AS table_name,
       c.relreplident AS replica_identity,               -- f = FULL, d = DEFAULT (key), n = NOTHING
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key,
       has_table_privilege(:'rtdp_user', c.oid, 'SELECT') AS rtdp_can_read,
       EXISTS (SELECT 1 FROM pg_publication_tables pt
                WHERE pt.pubname = :'publication' AND pt.schemaname = n.nspname
                  AND pt.tablename = c.relname) AS in_publication
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'schema' AND c.relkind = 'r' ORDER BY c.relname;

-- The replication slot (default rtdp_<collector name>, a pgoutput slot) is created by the
-- collector on its first start; nothing to do here. A slot keeps WAL until the collector
-- confirms it: a collector that stays down makes WAL grow. Watch it (md/RUNBOOK_COLLECTOR.md):
--   SELECT slot_name, plugin, active, confirmed_flush_lsn,
--          pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained_wal
--     FROM pg_replication_slots;
-- ("active" is true while the collector streams; false means it is not running.)
--
-- Retiring a collector for good (stop it first): drop its slot, then its publication —
--   SELECT pg_drop_replication_slot('rtdp_<collector name>');
--   DROP PUBLICATION IF EXISTS rtdp_<collector name>;
-- Dropping or re-creating the publication under a slot that is still read breaks that
-- collector (the stream fails with "publication … does not exist"): never do it to a live one.
--
-- Coming from an rtdp that read wal2json: its slot cannot be read on (the collector says
-- so at start). Give the collector a new COLLECTOR_NAME, run this script with that name
-- (-v collector=…), start the collector (new slot, new snapshot), then drop the old slot:
--   SELECT pg_drop_replication_slot('<old slot name>');
-- Setups made with an earlier version of this script also have a publication rtdp_pub
-- that nothing uses: DROP PUBLICATION IF EXISTS rtdp_pub;
