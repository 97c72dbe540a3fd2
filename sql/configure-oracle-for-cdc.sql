-- configure-oracle-for-cdc.sql — supplemental logging and redo checks for LogMiner-based
-- CDC. Run after enable-archivelog.sql.
--
--   sqlplus / as sysdba @sql/configure-oracle-for-cdc.sql
--
-- On a CDB run it in CDB$ROOT (database-level supplemental logging is set there); the
-- per-table statements run in the PDB that holds the tables (ALTER SESSION SET CONTAINER).
-- Amazon RDS: use rdsadmin.rdsadmin_util.alter_supplemental_logging(p_action => 'ADD')
-- and, per table, the same ALTER TABLE statements as the table owner.

WHENEVER SQLERROR EXIT SQL.SQLCODE
SET ECHO ON
SET VERIFY OFF

-- 1. Minimal supplemental logging at the database level: LogMiner needs it to build
--    complete SQL_REDO/SQL_UNDO and to tie row pieces (chained rows, IOTs) together.
ALTER DATABASE ADD SUPPLEMENTAL LOG DATA;

-- 2. Full before-images of the captured tables, so updates and deletes carry every
--    column (the worker writes deletes from the "before" row). Per table:
--      ALTER TABLE HR.EMPLOYEES ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;
--    or for the whole database (more redo, simplest when most tables are captured):
--      ALTER DATABASE ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;
--    The block below does it for every table of one schema (set the schema name).
DEFINE cdc_schema = HR
-- CDB: ALTER SESSION SET CONTAINER = ORCLPDB1;
BEGIN
  FOR t IN (SELECT owner, table_name
              FROM all_tables
             WHERE owner = UPPER('&&cdc_schema')
               AND temporary = 'N'
               AND nested = 'NO'
               AND dropped = 'NO'
               AND (iot_type IS NULL OR iot_type = 'IOT')
               AND (owner, table_name) NOT IN (SELECT owner, table_name FROM all_external_tables))
  LOOP
    EXECUTE IMMEDIATE 'ALTER TABLE "' || t.owner || '"."' || t.table_name ||
                      '" ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS';
  END LOOP;
END;
/

-- 3. Check: YES / IMPLICIT for minimal logging, and the tables with ALL COLUMNS logging.
SELECT supplemental_log_data_min AS min_logging,
       supplemental_log_data_pk  AS pk_logging,
       supplemental_log_data_all AS all_logging
  FROM v$database;
SELECT owner, table_name, log_group_type
  FROM dba_log_groups
 WHERE owner = UPPER('&&cdc_schema')
 ORDER BY table_name;

-- 4. Redo logs: LogMiner reads the online logs first. Too small logs switch often and
--    make mining sessions restart often; 1–4 GB per group is a common size for CDC.
SELECT l.group#, l.thread#, l.bytes / 1024 / 1024 AS size_mb, l.members, l.status, l.archived
  FROM v$log l
 ORDER BY l.group#;
-- Add larger groups, then drop the small ones once they are INACTIVE, e.g.:
--   ALTER DATABASE ADD LOGFILE GROUP 4 ('/opt/oracle/oradata/ORCLCDB/redo04.log') SIZE 2G;
--   ALTER SYSTEM SWITCH LOGFILE;
--   ALTER DATABASE DROP LOGFILE GROUP 1;

-- 5. Archived logs kept on disk (the collector resumes only from logs that still exist).
SELECT MIN(first_time) AS oldest_archived_log, COUNT(*) AS archived_logs
  FROM v$archived_log
 WHERE deleted = 'NO';
