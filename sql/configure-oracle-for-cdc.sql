-- configure-oracle-for-cdc.sql: the database-side configuration for LogMiner-based CDC,
-- without the user. A thin wrapper (its name is kept from the system rtdp replaces):
--   - ARCHIVELOG mode: NOT switched here, because that restarts the database. Run
--       sqlplus / as sysdba @sql/enable-archivelog.sql
--     on its own in a maintenance window (it does nothing when the mode is on already).
--   - supplemental logging: runs setup-supplemental-logging.sql (minimal logging for the
--     database, ALL-column logging for each captured table), which asks for rtdp_pdb,
--     rtdp_schema and rtdp_tables.
-- The CDC user comes next: create-logminer-user.sql (or setup-oracle-cdc.sql for both).
--
-- Run as SYSDBA, connected to CDB$ROOT in a CDB (to the database in a non-CDB):
--   sqlplus / as sysdba @sql/configure-oracle-for-cdc.sql
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

-- Show the log mode first, so the output says whether enable-archivelog.sql is still due.
SELECT log_mode FROM v$database;
-- @@ runs a script from the directory of this one, wherever SQL*Plus was started.
@@setup-supplemental-logging.sql
