-- enable-archivelog.sql: switch an Oracle database to ARCHIVELOG mode.
--
-- Why: the collector reads changes with LogMiner from the online redo logs and, once a
-- log has been overwritten, from its archived copy. In NOARCHIVELOG mode a filled log is
-- reused without a copy, so a collector that falls behind (or is stopped for a while)
-- would lose changes. The collector refuses to start unless V$DATABASE.LOG_MODE is
-- ARCHIVELOG.
--
-- Who and where: a SYSDBA, in SQL*Plus ON THE DATABASE HOST (SHUTDOWN and STARTUP need a
-- local "/ as sysdba" connection; a connection through the listener is lost when the
-- instance stops). CDB: connected to CDB$ROOT; the mode is one setting for the whole
-- CDB, every PDB included.
--
--   sqlplus / as sysdba @sql/enable-archivelog.sql
--
-- THIS RESTARTS THE DATABASE (SHUTDOWN IMMEDIATE, STARTUP MOUNT, ALTER DATABASE OPEN):
-- plan a maintenance window. A database already in ARCHIVELOG mode is left alone: the
-- script says so and ends without a restart.
--
-- Not for:
--   - RAC: stop every instance (srvctl stop database -d DB), start one instance in MOUNT
--     (srvctl start instance -d DB -i INST1 -o mount), run ALTER DATABASE ARCHIVELOG
--     there, then srvctl stop instance ... and srvctl start database -d DB.
--   - Amazon RDS for Oracle: ARCHIVELOG is on whenever automated backups are on (backup
--     retention > 0); keep the archived logs long enough with
--       EXEC rdsadmin.rdsadmin_util.set_configuration('archivelog retention hours', 24);
--   - Oracle Cloud (Base Database, Exadata): ARCHIVELOG is on by default. Autonomous
--     Database gives no access to CDB$ROOT, which the collector needs (docs/ORACLE.md).
--
-- Where the archived logs go: the fast recovery area (DB_RECOVERY_FILE_DEST) or a
-- LOG_ARCHIVE_DEST_n with LOCATION=. The script stops before the restart when neither is
-- set, because Oracle would then fall back to a platform default directory
-- ($ORACLE_HOME/dbs/arch on Linux) that nobody watches. Size the destination for the
-- longest collector outage you want to survive plus the time of an initial snapshot:
-- the collector can resume only from logs that still exist (docs/ORACLE.md, "Archive log
-- retention").
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

-- Stop at the first error, with a non-zero exit status. FAILURE rather than SQL.SQLCODE:
-- an ORA- number modulo 256 can be 0, which a calling shell would take for success.
WHENEVER SQLERROR EXIT FAILURE
WHENEVER OSERROR EXIT FAILURE
SET ECHO ON
SET VERIFY OFF
SET SERVEROUTPUT ON SIZE UNLIMITED
SET LINESIZE 200
SET PAGESIZE 100
SET SQLBLANKLINES ON

-- 1. Where are we? Version, CDB or not, the current container and the log mode.
COLUMN name FORMAT A12
COLUMN log_mode FORMAT A12
COLUMN cdb FORMAT A4
COLUMN con_name FORMAT A12
SELECT d.name, d.log_mode, d.cdb, SYS_CONTEXT('USERENV', 'CON_NAME') AS con_name
  FROM v$database d;

-- 2. Nothing to do when the database already archives. The block raises an error on
--    purpose; "WHENEVER SQLERROR EXIT SUCCESS" turns that into a clean end (status 0)
--    with the message below, so no restart happens.
WHENEVER SQLERROR EXIT SUCCESS
BEGIN
  FOR d IN (SELECT log_mode FROM v$database) LOOP
    IF d.log_mode = 'ARCHIVELOG' THEN
      RAISE_APPLICATION_ERROR(-20000,
        'nothing to do: the database is already in ARCHIVELOG mode (this is not an error)');
    END IF;
  END LOOP;
END;
/
WHENEVER SQLERROR EXIT FAILURE

-- 3. Refuse to go on in a PDB: only CDB$ROOT (or a non-CDB) can change the log mode,
--    and a SHUTDOWN in a PDB would only close that PDB.
BEGIN
  IF SYS_CONTEXT('USERENV', 'CON_NAME') <> 'CDB$ROOT'
     AND SYS_CONTEXT('USERENV', 'CON_ID') <> '0' THEN
    RAISE_APPLICATION_ERROR(-20001,
      'connected to the PDB ' || SYS_CONTEXT('USERENV', 'CON_NAME') ||
      '; connect to CDB$ROOT (sqlplus / as sysdba on the database host) and run this again');
  END IF;
END;
/

-- 4. Refuse to go on without an archive destination (see the header). To set one, e.g.
--    a fast recovery area of 50 GB (the size first, then the directory, which must
--    exist and belong to the oracle user):
--      ALTER SYSTEM SET db_recovery_file_dest_size = 50G SCOPE = BOTH;
--      ALTER SYSTEM SET db_recovery_file_dest = '/u01/app/oracle/fast_recovery_area' SCOPE = BOTH;
--    The current values are listed first so you can compare them with your sizing.
COLUMN name FORMAT A30
COLUMN value FORMAT A80
SELECT name, value
  FROM v$parameter
 WHERE name IN ('db_recovery_file_dest', 'db_recovery_file_dest_size', 'log_archive_dest', 'log_archive_format')
    OR (REGEXP_LIKE(name, '^log_archive_dest_[0-9]+$') AND value IS NOT NULL)
 ORDER BY name;
BEGIN
  FOR p IN (SELECT COUNT(*) AS n
              FROM v$parameter
             WHERE (name = 'db_recovery_file_dest' AND value IS NOT NULL)
                OR (name = 'log_archive_dest' AND value IS NOT NULL)
                OR (REGEXP_LIKE(name, '^log_archive_dest_[0-9]+$')
                    AND UPPER(value) LIKE '%LOCATION=%')) LOOP
    IF p.n = 0 THEN
      RAISE_APPLICATION_ERROR(-20002,
        'no archive destination is configured: set db_recovery_file_dest_size and ' ||
        'db_recovery_file_dest (see step 4 of this script), then run it again');
    END IF;
  END LOOP;
END;
/

-- 5. Remember which PDBs are open read-write now, so that step 7 can open them again
--    (PDBs without SAVE STATE come back MOUNTED after a restart). Empty in a non-CDB.
COLUMN open_pdbs NEW_VALUE rtdp_open_pdbs NOPRINT
-- The list is wrapped in commas (",PDB1,PDB2,", or ",," when empty) so that the
-- variable always gets a value and step 7 can match whole names.
SELECT ',' || LISTAGG(name, ',') WITHIN GROUP (ORDER BY name) || ',' AS open_pdbs
  FROM v$pdbs
 WHERE open_mode = 'READ WRITE';

-- 6. The restart. SHUTDOWN IMMEDIATE rolls back open transactions and disconnects
--    every session; STARTUP MOUNT opens the control file only, the one state in which
--    the log mode can change.
SHUTDOWN IMMEDIATE
STARTUP MOUNT
ALTER DATABASE ARCHIVELOG;
ALTER DATABASE OPEN;
-- The restart began a new database session: DBMS_OUTPUT must be enabled again in it.
SET SERVEROUTPUT ON SIZE UNLIMITED

-- 7. CDB: open again the PDBs that were open before the restart (those with a saved
--    state are open already). Keep them open across later restarts with
--      ALTER PLUGGABLE DATABASE <name> SAVE STATE;
BEGIN
  FOR p IN (SELECT name
              FROM v$pdbs
             WHERE open_mode <> 'READ WRITE'
               AND INSTR('&&rtdp_open_pdbs', ',' || name || ',') > 0) LOOP
    EXECUTE IMMEDIATE 'ALTER PLUGGABLE DATABASE ' || DBMS_ASSERT.ENQUOTE_NAME(p.name, FALSE) || ' OPEN';
    DBMS_OUTPUT.PUT_LINE('opened PDB ' || p.name);
  END LOOP;
END;
/
SELECT name, open_mode FROM v$pdbs ORDER BY con_id;

-- 8. Check: "Database log mode: Archive Mode", then archive the current log once to see
--    that archiving works (the new file is listed; on RAC one per redo thread).
ARCHIVE LOG LIST
SELECT log_mode FROM v$database;
ALTER SYSTEM ARCHIVE LOG CURRENT;
COLUMN name FORMAT A90
SELECT thread#, sequence#, name, first_change#, next_change#, completion_time
  FROM v$archived_log
 WHERE completion_time > SYSDATE - 1/24
 ORDER BY completion_time;

UNDEFINE rtdp_open_pdbs
