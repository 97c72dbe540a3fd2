-- setup-oracle-cdc.sql: prepare an Oracle database for cdc-collector in one run. A thin
-- wrapper (its name is kept from the system rtdp replaces): it runs, in this order,
--   1. setup-supplemental-logging.sql  minimal + per-table ALL-column supplemental logging
--   2. create-logminer-user.sql        the CDC user and its privileges
--   3. check-cdc-prereqs.sql           everything checked, MISSING lines with the fix
-- Each of them can also be run alone; their headers say what and why in detail.
--
-- NOT included: enable-archivelog.sql, because it restarts the database. Run it first,
-- on its own, in a maintenance window (it does nothing when ARCHIVELOG is on already):
--   sqlplus / as sysdba @sql/enable-archivelog.sql
--
-- Run as SYSDBA, connected to CDB$ROOT in a CDB (to the database in a non-CDB):
--   sqlplus / as sysdba @sql/setup-oracle-cdc.sql
-- It asks once for rtdp_pdb, rtdp_schema, rtdp_tables (the captured tables, as in
-- DATABASE_PDB / DATABASE_SCHEMA / DATABASE_TABLES), rtdp_user, rtdp_any_table and the
-- password (without echo). To run it unattended, DEFINE the answers first (sql/README.md).
-- Section 3 then checks as SYSDBA: its privilege verdicts are SYS's own. Run
-- check-cdc-prereqs.sql once more as the CDC user to see the user's view.
--
-- Then point the collector at the database (docs/ORACLE.md, "Collector configuration"):
-- DATABASE_TYPE=oracle, DATABASE_HOST, DATABASE_PORT=1521, DATABASE_NAME=<service name:
-- the CDB root's in a CDB>, DATABASE_PDB=<the PDB> (CDB only), DATABASE_USERNAME,
-- DATABASE_PASSWORD, DATABASE_SCHEMA, DATABASE_TABLES.
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

-- @@ runs a script from the directory of this one, wherever SQL*Plus was started.
@@setup-supplemental-logging.sql
@@create-logminer-user.sql
@@check-cdc-prereqs.sql
