-- enable-archivelog.sql — switch an Oracle database to ARCHIVELOG mode, which LogMiner
-- needs to read changes that have left the online redo logs.
--
-- Run in SQL*Plus as SYSDBA on the database server (or a host with a SYSDBA connection):
--   sqlplus / as sysdba @sql/enable-archivelog.sql
--
-- It RESTARTS THE DATABASE (SHUTDOWN IMMEDIATE / STARTUP MOUNT): plan a maintenance
-- window. On a CDB run it in CDB$ROOT; the setting applies to every PDB.
-- Managed services do this differently: Amazon RDS keeps ARCHIVELOG on when automated
-- backups are enabled (retention with rdsadmin.rdsadmin_util.set_configuration
-- ('archivelog retention hours', 24)); Oracle Cloud / Exadata have it on by default.
--
-- Size the fast recovery area for at least the longest collector outage you want to
-- survive: the collector can only resume from archived logs that still exist.

WHENEVER SQLERROR EXIT SQL.SQLCODE
SET ECHO ON

-- Current mode: ARCHIVELOG or NOARCHIVELOG.
SELECT log_mode FROM v$database;

-- Where archived logs go and how much space they may use (adjust size and path).
ALTER SYSTEM SET db_recovery_file_dest_size = 50G SCOPE = BOTH;
-- ALTER SYSTEM SET db_recovery_file_dest = '/opt/oracle/oradata/fast_recovery_area' SCOPE = BOTH;

SHUTDOWN IMMEDIATE
STARTUP MOUNT
ALTER DATABASE ARCHIVELOG;
ALTER DATABASE OPEN;
-- CDB: open the PDBs again (and keep them open across restarts).
-- ALTER PLUGGABLE DATABASE ALL OPEN;
-- ALTER PLUGGABLE DATABASE ALL SAVE STATE;

-- Check: "Database log mode: Archive Mode".
ARCHIVE LOG LIST
SELECT log_mode FROM v$database;

-- Archive the current log once to see that archiving works.
ALTER SYSTEM ARCHIVE LOG CURRENT;
SELECT name, first_change#, next_change#, completion_time
  FROM v$archived_log
 WHERE completion_time > SYSDATE - 1/24
 ORDER BY completion_time;
