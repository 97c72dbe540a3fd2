-- check-cdc-prereqs.sql: everything cdc-collector needs from an Oracle database, checked
-- and shown in one read-only run, with the statement that fixes each missing piece.
--
-- It changes nothing (only SELECTs, and in a CDB an ALTER SESSION SET CONTAINER into the
-- PDB and back). Errors do not stop it: a section the user may not read prints the ORA-
-- error and the script goes on.
--
-- Who: best as the CDC user itself (C##RTDP / RTDP), because the privilege verdicts are
-- about the session that runs the script: they then show exactly what the collector will
-- be allowed to do. A DBA can run it too (sections 1, 2, 4 and 5 mean the same; the
-- privilege verdicts are then the DBA's own).
-- Where: CDB$ROOT in a CDB (connect to the root service, like the collector), the
-- database itself in a non-CDB.
--
--   sqlplus C##RTDP@//db-host:1521/ORCLCDB @sql/check-cdc-prereqs.sql
--   sql C##RTDP@//db-host:1521/ORCLCDB @sql/check-cdc-prereqs.sql      (SQLcl)
--
-- It asks for (or takes, when DEFINEd beforehand):
--   rtdp_pdb, rtdp_schema, rtdp_tables: the captured tables, as DATABASE_PDB,
--   DATABASE_SCHEMA and DATABASE_TABLES say (see setup-supplemental-logging.sql).
--
-- Sections: 1 database (log mode, supplemental logging, force logging, version);
-- 2 redo and archived logs (groups, switch rate, the logs on disk and the oldest SCN the
-- collector can resume from, daily archive volume, recovery area, RMAN deletion policy);
-- 3 the session's privileges and roles; 4 per captured table (ALL-column logging,
-- SELECT and FLASHBACK, key, LOBs, names LogMiner cannot mine); 5 undo and flashback
-- reach for the initial snapshot. Lines starting with MISSING are what to fix; "fix:"
-- gives the statement (run as SYSDBA unless said otherwise).
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

-- Report everything: an error in one section must not hide the others.
WHENEVER SQLERROR CONTINUE
WHENEVER OSERROR CONTINUE
SET ECHO OFF
SET VERIFY OFF
SET FEEDBACK OFF
SET SERVEROUTPUT ON SIZE UNLIMITED FORMAT WRAPPED
SET LINESIZE 220
SET PAGESIZE 200
SET TRIMSPOOL ON
SET SQLBLANKLINES ON

PROMPT
PROMPT rtdp_pdb: CDB - the PDB that holds the captured tables (DATABASE_PDB); non-CDB - press Enter
PROMPT rtdp_schema: the schema of table names given without one (DATABASE_SCHEMA)
PROMPT rtdp_tables: the captured tables as in DATABASE_TABLES (e.g. * or ORDERS,ORDER_ITEMS or HR.EMP*)
PROMPT
PROMPT PDB: &&rtdp_pdb
PROMPT schema: &&rtdp_schema
PROMPT tables: &&rtdp_tables

-- The clauses of ALTER SESSION SET that move the session into the PDB and back to the
-- root; in a non-CDB (or without a PDB name) a clause that changes nothing
-- (CURRENT_SCHEMA = the session user). Also remembered: database-wide ALL-column
-- logging, which section 4 accepts in place of per-table logging.
COLUMN into_pdb NEW_VALUE rtdp_into_pdb NOPRINT
COLUMN into_root NEW_VALUE rtdp_into_root NOPRINT
COLUMN db_all NEW_VALUE rtdp_db_all NOPRINT
SELECT CASE WHEN cdb = 'YES' AND TRIM(q'~&&rtdp_pdb~') IS NOT NULL
            THEN 'CONTAINER = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_pdb~')))
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_pdb,
       CASE WHEN cdb = 'YES'
            THEN 'CONTAINER = CDB$ROOT'
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_root,
       supplemental_log_data_all AS db_all
  FROM v$database;

PROMPT
PROMPT ==== 1. Database ====================================================================
COLUMN name FORMAT A10
COLUMN version FORMAT A12
COLUMN cdb FORMAT A4
COLUMN container FORMAT A12
COLUMN log_mode FORMAT A12
COLUMN force_logging FORMAT A8 HEADING FORCE_LOG
COLUMN min_logging FORMAT A8 HEADING MIN_LOG
COLUMN all_logging FORMAT A8 HEADING ALL_LOG
COLUMN charset FORMAT A12
SELECT d.name, i.version, d.cdb, SYS_CONTEXT('USERENV', 'CON_NAME') AS container,
       d.log_mode, d.force_logging, d.supplemental_log_data_min AS min_logging,
       d.supplemental_log_data_all AS all_logging, d.current_scn,
       (SELECT value FROM nls_database_parameters WHERE parameter = 'NLS_CHARACTERSET') AS charset
  FROM v$database d CROSS JOIN v$instance i;
-- Verdicts. The character set matters for the collector host: Instant Client "Basic
-- Light" before 23ai supports only US7ASCII, WE8DEC, WE8ISO8859P1, WE8MSWIN1252, UTF8
-- and AL32UTF8 databases (ZHS16GBK, for instance, needs the full Basic package).
BEGIN
  FOR d IN (SELECT log_mode, supplemental_log_data_min AS min_log, force_logging, cdb,
                   (SELECT value FROM nls_database_parameters WHERE parameter = 'NLS_CHARACTERSET') AS charset
              FROM v$database) LOOP
    IF d.log_mode = 'ARCHIVELOG' THEN
      DBMS_OUTPUT.PUT_LINE('ok       ARCHIVELOG mode');
    ELSE
      DBMS_OUTPUT.PUT_LINE('MISSING  ARCHIVELOG mode (the database is in ' || d.log_mode || ')');
      DBMS_OUTPUT.PUT_LINE('         fix: sqlplus / as sysdba @sql/enable-archivelog.sql   (restarts the database)');
    END IF;
    IF d.min_log IN ('YES', 'IMPLICIT') THEN
      DBMS_OUTPUT.PUT_LINE('ok       minimal supplemental logging (' || d.min_log || ')');
    ELSE
      DBMS_OUTPUT.PUT_LINE('MISSING  minimal supplemental logging');
      DBMS_OUTPUT.PUT_LINE('         fix: ALTER DATABASE ADD SUPPLEMENTAL LOG DATA;' ||
                           CASE WHEN d.cdb = 'YES' THEN '   (in CDB$ROOT)' END);
    END IF;
    IF d.force_logging <> 'YES' THEN
      DBMS_OUTPUT.PUT_LINE('note     FORCE LOGGING is off: NOLOGGING direct-path loads into captured tables ' ||
                           'write no redo and are not captured (section 4 lists NOLOGGING tables)');
    END IF;
    IF d.charset NOT IN ('US7ASCII', 'WE8DEC', 'WE8ISO8859P1', 'WE8MSWIN1252', 'UTF8', 'AL32UTF8') THEN
      DBMS_OUTPUT.PUT_LINE('note     database character set ' || d.charset ||
                           ': use Instant Client Basic (not Basic Light) 19c/21c on the collector host');
    END IF;
  END LOOP;
END;
/

PROMPT
PROMPT ==== 2. Redo and archived logs ======================================================
PROMPT Online redo log groups (LogMiner reads the CURRENT and ACTIVE ones live; a group is
PROMPT reused once archived). Small logs switch often: aim for a switch every 15-30 minutes at peak.
COLUMN status FORMAT A10
COLUMN archived FORMAT A8
SELECT thread#, group#, sequence#, ROUND(bytes / 1048576) AS size_mb, members, status, archived,
       first_change#, first_time
  FROM v$log
 ORDER BY thread#, group#;

PROMPT Log switches in the last 24 hours, per redo thread (RAC: one thread per instance).
SELECT thread#, COUNT(*) AS switches_24h, MAX(per_hour) AS max_per_hour
  FROM (SELECT thread#, TRUNC(first_time, 'HH24') AS hour, COUNT(*) OVER (PARTITION BY thread#, TRUNC(first_time, 'HH24')) AS per_hour
          FROM v$log_history
         WHERE first_time > SYSDATE - 1)
 GROUP BY thread#
 ORDER BY thread#;

PROMPT Logs the collector can read now, per thread: the unbroken run of sequence numbers that
PROMPT ends at the current log (archived copies still on disk plus the online logs). A stored
PROMPT position whose restart SCN is older than RESUMABLE_FROM_SCN can no longer be resumed.
COLUMN oldest_time FORMAT A19
WITH avail AS (
  SELECT thread#, sequence#, first_change#, first_time
    FROM v$archived_log
   WHERE status = 'A'
     AND deleted = 'NO'
     AND standby_dest = 'NO'
     AND name IS NOT NULL
     AND resetlogs_change# = (SELECT resetlogs_change# FROM v$database)
  UNION
  SELECT thread#, sequence#, first_change#, first_time
    FROM v$log
   WHERE status <> 'UNUSED'
), numbered AS (
  SELECT thread#, sequence#, first_change#, first_time,
         MAX(sequence#) OVER (PARTITION BY thread#) AS last_seq,
         ROW_NUMBER() OVER (PARTITION BY thread# ORDER BY sequence# DESC) AS rn
    FROM avail
)
SELECT thread#, MIN(sequence#) AS oldest_seq, MAX(sequence#) AS newest_seq, COUNT(*) AS logs,
       MIN(first_change#) AS resumable_from_scn,
       TO_CHAR(MIN(first_time), 'YYYY-MM-DD HH24:MI:SS') AS oldest_time
  FROM numbered
 WHERE sequence# + rn - 1 = last_seq
 GROUP BY thread#
 ORDER BY thread#;
PROMPT (RAC: the collector can resume only from the largest RESUMABLE_FROM_SCN of all threads.)

PROMPT Archived redo per day (last 7 days): size the archive destination for the longest
PROMPT collector outage to survive, plus the initial snapshot.
SELECT TRUNC(first_time) AS day, COUNT(*) AS logs,
       ROUND(SUM(blocks * block_size) / 1073741824, 2) AS gb
  FROM (SELECT DISTINCT thread#, sequence#, first_time, blocks, block_size
          FROM v$archived_log
         WHERE first_time > TRUNC(SYSDATE) - 7
           AND standby_dest = 'NO')
 GROUP BY TRUNC(first_time)
 ORDER BY 1;

PROMPT Fast recovery area: when it fills, Oracle deletes reclaimable files (archived logs
PROMPT already backed up or obsolete) - possibly logs the collector still needs - and when
PROMPT nothing is reclaimable the database stops (ORA-00257). Keep it well below its limit.
COLUMN name FORMAT A50
SELECT name, ROUND(space_limit / 1073741824, 1) AS limit_gb, ROUND(space_used / 1073741824, 1) AS used_gb,
       ROUND(space_reclaimable / 1073741824, 1) AS reclaimable_gb, number_of_files
  FROM v$recovery_file_dest;
COLUMN file_type FORMAT A24
SELECT file_type, percent_space_used, percent_space_reclaimable, number_of_files
  FROM v$recovery_area_usage
 WHERE file_type IN ('ARCHIVED LOG', 'BACKUP PIECE', 'FLASHBACK LOG');

PROMPT RMAN archived-log deletion policy (no row = the default, NONE). RMAN knows nothing of
PROMPT the collector: its DELETE ARCHIVELOG jobs must keep the hours the collector may need.
COLUMN value FORMAT A100
SELECT name, value FROM v$rman_configuration WHERE name = 'ARCHIVELOG DELETION POLICY';

PROMPT
PROMPT ==== 3. Privileges of this session (user &&_USER) ======================================
DECLARE
  v_cdb     BOOLEAN;
  v_flag    VARCHAR2(3);
  v_missing PLS_INTEGER := 0;
  v_n       PLS_INTEGER;
  v_user    VARCHAR2(128) := SYS_CONTEXT('USERENV', 'SESSION_USER');
  v_all     VARCHAR2(20);
  PROCEDURE verdict(p_ok BOOLEAN, p_what VARCHAR2, p_fix VARCHAR2) IS
  BEGIN
    IF p_ok THEN
      DBMS_OUTPUT.PUT_LINE('ok       ' || p_what);
    ELSE
      v_missing := v_missing + 1;
      DBMS_OUTPUT.PUT_LINE('MISSING  ' || p_what);
      DBMS_OUTPUT.PUT_LINE('         fix: ' || p_fix || v_all || ';');
    END IF;
  END;
  FUNCTION has_priv(p VARCHAR2) RETURN BOOLEAN IS
    n PLS_INTEGER;
  BEGIN
    SELECT COUNT(*) INTO n FROM session_privs WHERE privilege = p;
    RETURN n > 0;
  END;
  FUNCTION has_role(r VARCHAR2) RETURN BOOLEAN IS
    n PLS_INTEGER;
  BEGIN
    SELECT COUNT(*) INTO n FROM session_roles WHERE role = r;
    RETURN n > 0;
  END;
  -- Can this session read the view? ORA-00942 / ORA-01031 mean no; any other error
  -- (such as ORA-01306 from V$LOGMNR_CONTENTS outside a LogMiner session) means the
  -- privilege is there.
  FUNCTION can_read(v VARCHAR2) RETURN BOOLEAN IS
    n PLS_INTEGER;
  BEGIN
    EXECUTE IMMEDIATE 'SELECT COUNT(*) FROM (SELECT 1 FROM ' || v || ' WHERE ROWNUM = 1)' INTO n;
    RETURN TRUE;
  EXCEPTION
    WHEN OTHERS THEN
      RETURN SQLCODE NOT IN (-942, -1031);
  END;
BEGIN
  SELECT cdb INTO v_flag FROM v$database;
  v_cdb := v_flag = 'YES';
  v_all := CASE WHEN v_cdb THEN ' CONTAINER = ALL' END;
  verdict(has_priv('CREATE SESSION'), 'CREATE SESSION', 'GRANT CREATE SESSION TO ' || v_user);
  IF v_cdb THEN
    verdict(has_priv('SET CONTAINER'), 'SET CONTAINER (switch to the PDB for the snapshot and the table definitions)',
            'GRANT SET CONTAINER TO ' || v_user);
  END IF;
  verdict(has_priv('LOGMINING'), 'LOGMINING', 'GRANT LOGMINING TO ' || v_user);
  verdict(has_priv('SELECT ANY TRANSACTION'), 'SELECT ANY TRANSACTION', 'GRANT SELECT ANY TRANSACTION TO ' || v_user);
  SELECT COUNT(*) INTO v_n FROM all_objects
   WHERE owner = 'SYS' AND object_name = 'DBMS_LOGMNR' AND object_type = 'PACKAGE';
  verdict(v_n > 0, 'EXECUTE on SYS.DBMS_LOGMNR', 'GRANT EXECUTE ON SYS.DBMS_LOGMNR TO ' || v_user);
  verdict(has_role('SELECT_CATALOG_ROLE'), 'role SELECT_CATALOG_ROLE', 'GRANT SELECT_CATALOG_ROLE TO ' || v_user);
  verdict(has_role('EXECUTE_CATALOG_ROLE'), 'role EXECUTE_CATALOG_ROLE', 'GRANT EXECUTE_CATALOG_ROLE TO ' || v_user);
  FOR v IN (SELECT column_value AS view_name
              FROM TABLE(sys.odcivarchar2list('DATABASE', 'LOG', 'LOGFILE', 'ARCHIVED_LOG',
                                              'LOGMNR_LOGS', 'LOGMNR_CONTENTS', 'TRANSACTION',
                                              'THREAD', 'INSTANCE'))) LOOP
    verdict(can_read('V$' || v.view_name), 'SELECT on V$' || v.view_name,
            'GRANT SELECT ON SYS.V_$' || v.view_name || ' TO ' || v_user);
  END LOOP;
  verdict(can_read('DBA_LOG_GROUPS'), 'SELECT on DBA_LOG_GROUPS (through SELECT_CATALOG_ROLE)',
          'GRANT SELECT_CATALOG_ROLE TO ' || v_user);
  FOR v IN (SELECT column_value AS view_name
              FROM TABLE(sys.odcivarchar2list('ALL_TABLES', 'ALL_TAB_COLUMNS', 'ALL_CONSTRAINTS', 'ALL_CONS_COLUMNS'))) LOOP
    verdict(can_read(v.view_name), 'SELECT on ' || v.view_name || ' (public)',
            'GRANT SELECT ON SYS.' || v.view_name || ' TO ' || v_user);
  END LOOP;
  -- CDB: in the root, V$ views show only the root's rows unless the user's CONTAINER_DATA
  -- attribute names the PDB; then V$TRANSACTION would hide the PDB's open transactions
  -- from the snapshot start. V$CONTAINERS is such a view: the PDB's row shows whether the
  -- attribute covers it.
  IF v_cdb AND TRIM(q'~&&rtdp_pdb~') IS NOT NULL THEN
    BEGIN
      EXECUTE IMMEDIATE 'SELECT COUNT(*) FROM v$containers WHERE name = :1'
        INTO v_n USING UPPER(TRIM(q'~&&rtdp_pdb~'));
    EXCEPTION
      WHEN OTHERS THEN v_n := 0;
    END;
    IF v_n > 0 THEN
      DBMS_OUTPUT.PUT_LINE('ok       CONTAINER_DATA covers ' || UPPER(TRIM(q'~&&rtdp_pdb~')) ||
                           ' (its transactions are visible in V$TRANSACTION from the root)');
    ELSE
      v_missing := v_missing + 1;
      DBMS_OUTPUT.PUT_LINE('MISSING  CONTAINER_DATA for ' || UPPER(TRIM(q'~&&rtdp_pdb~')) ||
                           ' (or the PDB is not open, or the name is wrong)');
      DBMS_OUTPUT.PUT_LINE('         fix: ALTER USER ' || v_user || ' SET CONTAINER_DATA = (CDB$ROOT, ' ||
                           UPPER(TRIM(q'~&&rtdp_pdb~')) || ') CONTAINER = CURRENT;');
    END IF;
  END IF;
  -- An expired password stops the collector (ORA-28001) at its next connection.
  FOR u IN (SELECT account_status, expiry_date FROM user_users) LOOP
    IF u.account_status <> 'OPEN' THEN
      DBMS_OUTPUT.PUT_LINE('MISSING  the account is ' || u.account_status);
      DBMS_OUTPUT.PUT_LINE('         fix: ALTER USER ' || v_user || ' ACCOUNT UNLOCK' || v_all || ';   (and a new password if it expired)');
      v_missing := v_missing + 1;
    ELSIF u.expiry_date IS NOT NULL AND u.expiry_date < SYSDATE + 30 THEN
      DBMS_OUTPUT.PUT_LINE('note     the password expires on ' || TO_CHAR(u.expiry_date, 'YYYY-MM-DD') ||
                           ': the collector stops with ORA-28001 then. A profile with PASSWORD_LIFE_TIME UNLIMITED avoids that.');
    END IF;
  END LOOP;
  DBMS_OUTPUT.PUT_LINE(v_missing || ' privilege(s) missing' ||
                       CASE WHEN v_missing > 0 THEN ' (or run sql/create-logminer-user.sql again as SYSDBA)' END);
  DBMS_OUTPUT.PUT_LINE('Table privileges (SELECT and FLASHBACK): section 4.');
END;
/

PROMPT
PROMPT ==== 4. Captured tables (in the PDB, or the database) ===============================
ALTER SESSION SET &&rtdp_into_pdb;
-- A container switch starts a new DBMS_OUTPUT context: enable it again.
SET SERVEROUTPUT ON SIZE UNLIMITED FORMAT WRAPPED
SELECT SYS_CONTEXT('USERENV', 'CON_NAME') AS container FROM dual;
PROMPT ALL_LOG: ALL-column supplemental logging (db = database-wide). SELECT / FLASHBACK: this
PROMPT session may read the table AS OF an SCN. KEY: primary key (none = all its changes go to
PROMPT one Kafka partition). NOTES: what else to know.
DECLARE
  v_user    VARCHAR2(128) := SYS_CONTEXT('USERENV', 'SESSION_USER');
  v_db_all  VARCHAR2(3) := q'~&&rtdp_db_all~';
  v_n       PLS_INTEGER := 0;
  v_missing PLS_INTEGER := 0;
  v_tab     VARCHAR2(300);
BEGIN
  DBMS_OUTPUT.PUT_LINE(RPAD('TABLE', 50) || RPAD('ALL_LOG', 9) || RPAD('SELECT', 8) || RPAD('FLASHBK', 9) ||
                       RPAD('KEY', 6) || LPAD('ROWS', 14) || '  NOTES');
  FOR t IN (
    -- The selection, as in setup-supplemental-logging.sql: entries of rtdp_tables turned
    -- into LIKE patterns (literal _ and % escaped, * to %, ? to _).
    WITH entries AS (
      SELECT TRIM(REGEXP_SUBSTR(q'~&&rtdp_tables~', '[^,]+', 1, LEVEL)) AS entry
        FROM dual
     CONNECT BY REGEXP_SUBSTR(q'~&&rtdp_tables~', '[^,]+', 1, LEVEL) IS NOT NULL
    ), split AS (
      SELECT CASE WHEN INSTR(entry, '.') > 0 THEN SUBSTR(entry, 1, INSTR(entry, '.') - 1)
                  ELSE CASE WHEN REGEXP_LIKE(TRIM(q'~&&rtdp_schema~'), '[A-Z]', 'c') THEN TRIM(q'~&&rtdp_schema~')
                            ELSE UPPER(TRIM(q'~&&rtdp_schema~')) END END AS schema_pat,
             CASE WHEN INSTR(entry, '.') > 0 THEN SUBSTR(entry, INSTR(entry, '.') + 1)
                  ELSE entry END AS table_pat
        FROM (SELECT CASE WHEN REGEXP_LIKE(entry, '[A-Z]', 'c') THEN entry ELSE UPPER(entry) END AS entry
               FROM entries)
       WHERE entry IS NOT NULL
    ), patterns AS (
      SELECT REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(schema_pat, '\', '\\'), '_', '\_'), '%', '\%'), '*', '%'), '?', '_') AS s,
             REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(table_pat, '\', '\\'), '_', '\_'), '%', '\%'), '*', '%'), '?', '_') AS t
        FROM split
    ), selected AS (
      SELECT tb.owner, tb.table_name, tb.num_rows, tb.logging
        FROM dba_tables tb
        JOIN dba_users u ON u.username = tb.owner
       WHERE u.oracle_maintained = 'N'
         AND tb.temporary = 'N'
         AND tb.nested = 'NO'
         AND tb.dropped = 'NO'
         AND tb.secondary = 'N'
         AND (tb.iot_type IS NULL OR tb.iot_type = 'IOT')
         AND EXISTS (SELECT 1 FROM patterns p
                      WHERE tb.owner LIKE p.s ESCAPE '\'
                        AND tb.table_name LIKE p.t ESCAPE '\')
    )
    SELECT s.owner, s.table_name, s.num_rows, s.logging,
           (SELECT COUNT(*) FROM dba_log_groups g
             WHERE g.owner = s.owner AND g.table_name = s.table_name
               AND g.log_group_type = 'ALL COLUMN LOGGING') AS all_log,
           CASE WHEN s.owner = v_user
                  OR EXISTS (SELECT 1 FROM session_privs WHERE privilege = 'SELECT ANY TABLE')
                  OR EXISTS (SELECT 1 FROM all_tab_privs p
                              WHERE p.table_schema = s.owner AND p.table_name = s.table_name
                                AND p.privilege IN ('SELECT', 'READ')
                                AND (p.grantee IN (v_user, 'PUBLIC') OR p.grantee IN (SELECT role FROM session_roles)))
                THEN 1 ELSE 0 END AS can_select,
           CASE WHEN s.owner = v_user
                  OR EXISTS (SELECT 1 FROM session_privs WHERE privilege = 'FLASHBACK ANY TABLE')
                  OR EXISTS (SELECT 1 FROM all_tab_privs p
                              WHERE p.table_schema = s.owner AND p.table_name = s.table_name
                                AND p.privilege = 'FLASHBACK'
                                AND (p.grantee IN (v_user, 'PUBLIC') OR p.grantee IN (SELECT role FROM session_roles)))
                THEN 1 ELSE 0 END AS can_flashback,
           (SELECT COUNT(*) FROM dba_constraints c
             WHERE c.owner = s.owner AND c.table_name = s.table_name AND c.constraint_type = 'P') AS has_pk,
           (SELECT COUNT(*) FROM dba_tab_columns c
             WHERE c.owner = s.owner AND c.table_name = s.table_name
               AND c.data_type IN ('CLOB', 'NCLOB', 'BLOB')) AS lob_cols,
           -- Columns that make LogMiner ignore the whole table (the data types Oracle lists as
           -- unsupported: BFILE, collections such as VARRAYs and nested tables, REFs).
           (SELECT LISTAGG(c.column_name || ' ' || c.data_type, ', ') WITHIN GROUP (ORDER BY c.column_id)
              FROM dba_tab_columns c
             WHERE c.owner = s.owner AND c.table_name = s.table_name
               AND (c.data_type = 'BFILE'
                    OR c.data_type_mod = 'REF'
                    OR EXISTS (SELECT 1 FROM dba_coll_types ct
                                WHERE ct.owner = c.data_type_owner AND ct.type_name = c.data_type))) AS ignored_cols,
           -- Columns LogMiner mines but whose values are not among the types the collector
           -- maps (docs/ORACLE.md, "Types").
           (SELECT LISTAGG(c.column_name || ' ' || c.data_type, ', ') WITHIN GROUP (ORDER BY c.column_id)
              FROM dba_tab_columns c
             WHERE c.owner = s.owner AND c.table_name = s.table_name
               AND c.data_type <> 'BFILE'
               AND NVL(c.data_type_mod, '-') <> 'REF'
               AND (c.data_type IN ('LONG', 'LONG RAW', 'ROWID', 'UROWID', 'XMLTYPE', 'ANYDATA')
                    OR c.data_type_owner IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM dba_coll_types ct
                                WHERE ct.owner = c.data_type_owner AND ct.type_name = c.data_type)) AS odd_cols,
           (SELECT COUNT(*) FROM dba_tab_columns c
             WHERE c.owner = s.owner AND c.table_name = s.table_name
               AND LENGTHB(c.column_name) > 30) AS long_col_names
      FROM selected s
     ORDER BY s.owner, s.table_name
  ) LOOP
    v_n := v_n + 1;
    v_tab := DBMS_ASSERT.ENQUOTE_NAME(t.owner, FALSE) || '.' || DBMS_ASSERT.ENQUOTE_NAME(t.table_name, FALSE);
    DBMS_OUTPUT.PUT_LINE(
      RPAD(t.owner || '.' || t.table_name, 50) ||
      RPAD(CASE WHEN t.all_log > 0 THEN 'yes' WHEN v_db_all = 'YES' THEN 'db' ELSE 'NO' END, 9) ||
      RPAD(CASE WHEN t.can_select = 1 THEN 'yes' ELSE 'NO' END, 8) ||
      RPAD(CASE WHEN t.can_flashback = 1 THEN 'yes' ELSE 'NO' END, 9) ||
      RPAD(CASE WHEN t.has_pk > 0 THEN 'PK' ELSE 'none' END, 6) ||
      LPAD(NVL(TO_CHAR(t.num_rows), '?'), 14) || '  ' ||
      CASE WHEN LENGTHB(t.table_name) > 30 THEN 'name > 30 bytes: LogMiner does not mine it; ' END ||
      CASE WHEN t.long_col_names > 0 THEN 'column names > 30 bytes: LogMiner does not mine it; ' END ||
      CASE WHEN t.logging = 'NO' THEN 'NOLOGGING: direct-path loads are not captured; ' END ||
      CASE WHEN t.lob_cols > 0 THEN t.lob_cols || ' LOB column(s): captured only with oracle.lobEnabled; ' END ||
      CASE WHEN t.odd_cols IS NOT NULL THEN 'types the collector does not map: ' || t.odd_cols || '; ' END);
    IF t.ignored_cols IS NOT NULL THEN
      v_missing := v_missing + 1;
      DBMS_OUTPUT.PUT_LINE('  MISSING LogMiner ignores this whole table because of ' || t.ignored_cols ||
                           '.  fix: leave it out (DATABASE_EXCLUDE_TABLES) or change those columns');
    END IF;
    IF t.all_log = 0 AND v_db_all <> 'YES' THEN
      v_missing := v_missing + 1;
      DBMS_OUTPUT.PUT_LINE('  MISSING ALL-column logging.  fix: ALTER TABLE ' || v_tab || ' ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;');
    END IF;
    IF t.can_select = 0 OR t.can_flashback = 0 THEN
      v_missing := v_missing + 1;
      DBMS_OUTPUT.PUT_LINE('  MISSING table privileges.    fix: GRANT SELECT, FLASHBACK ON ' || v_tab || ' TO ' || v_user || ';' ||
                           '   (in the PDB; or GRANT SELECT ANY TABLE, FLASHBACK ANY TABLE TO ' || v_user || ' in the root)');
    END IF;
  END LOOP;
  IF v_n = 0 THEN
    DBMS_OUTPUT.PUT_LINE('MISSING  rtdp_tables selects no table here (an entry without capital letters is upper-cased; ' ||
                         'check the schema, the spelling and the PDB)');
  ELSE
    DBMS_OUTPUT.PUT_LINE(v_n || ' table(s) selected, ' || v_missing || ' problem(s) to fix' ||
                         CASE WHEN v_missing > 0 THEN ' (sql/setup-supplemental-logging.sql and sql/create-logminer-user.sql fix them all)' END);
  END IF;
END;
/

PROMPT
PROMPT ==== 5. Undo and flashback reach for the initial snapshot ============================
PROMPT The snapshot reads every table AS OF one SCN. Oracle can rebuild the rows as of that
PROMPT SCN only while the undo of the changes made since then is kept: the whole snapshot must
PROMPT finish within the undo retention actually achieved (TUNED_RETENTION_S below), or a table
PROMPT read fails with ORA-01555 (snapshot too old) and the snapshot starts again.
COLUMN value FORMAT A30
SELECT name, value FROM v$parameter
 WHERE name IN ('undo_management', 'undo_tablespace', 'undo_retention', 'db_block_size')
 ORDER BY name;
COLUMN property_value FORMAT A10 HEADING LOCAL_UNDO
SELECT property_value FROM database_properties WHERE property_name = 'LOCAL_UNDO_ENABLED';
PROMPT Undo tablespaces here (RETENTION GUARANTEE keeps UNDO_RETENTION even if DML must fail for it).
COLUMN tablespace_name FORMAT A20
COLUMN retention FORMAT A12
COLUMN autoextensible FORMAT A6 HEADING AUTOEXT
SELECT t.tablespace_name, t.retention, ROUND(SUM(f.bytes) / 1048576) AS size_mb,
       ROUND(SUM(GREATEST(f.maxbytes, f.bytes)) / 1048576) AS max_mb, MAX(f.autoextensible) AS autoextensible
  FROM dba_tablespaces t JOIN dba_data_files f ON f.tablespace_name = t.tablespace_name
 WHERE t.contents = 'UNDO'
 GROUP BY t.tablespace_name, t.retention;
PROMPT Undo statistics (V$UNDOSTAT, 10-minute intervals over up to 4 days). UNDO_MB_FOR_RETENTION:
PROMPT undo space needed to keep UNDO_RETENTION seconds at the busiest interval's rate.
SELECT TO_CHAR(MIN(u.begin_time), 'YYYY-MM-DD HH24:MI') AS since,
       MAX(u.maxquerylen) AS longest_query_s,
       MIN(u.tuned_undoretention) AS min_tuned_retention_s,
       MAX(u.tuned_undoretention) AS max_tuned_retention_s,
       SUM(u.ssolderrcnt) AS ora_01555_errors,
       SUM(u.nospaceerrcnt) AS no_space_errors,
       ROUND(MAX(u.undoblks / NULLIF((u.end_time - u.begin_time) * 86400, 0)), 1) AS peak_undo_blocks_per_s,
       ROUND(MAX(u.undoblks / NULLIF((u.end_time - u.begin_time) * 86400, 0))
             * (SELECT TO_NUMBER(value) FROM v$parameter WHERE name = 'db_block_size')
             * (SELECT TO_NUMBER(value) FROM v$parameter WHERE name = 'undo_retention') / 1048576) AS undo_mb_for_retention
  FROM v$undostat u;
PROMPT Size of the captured tables (rows from the optimizer statistics; segments include partitions
PROMPT and LOB data). Time a snapshot of this on a copy, or allow for about the time a full
PROMPT export of these tables takes, and keep UNDO_RETENTION above it.
WITH entries AS (
  SELECT TRIM(REGEXP_SUBSTR(q'~&&rtdp_tables~', '[^,]+', 1, LEVEL)) AS entry
    FROM dual
 CONNECT BY REGEXP_SUBSTR(q'~&&rtdp_tables~', '[^,]+', 1, LEVEL) IS NOT NULL
), split AS (
  SELECT CASE WHEN INSTR(entry, '.') > 0 THEN SUBSTR(entry, 1, INSTR(entry, '.') - 1)
              ELSE CASE WHEN REGEXP_LIKE(TRIM(q'~&&rtdp_schema~'), '[A-Z]', 'c') THEN TRIM(q'~&&rtdp_schema~')
                            ELSE UPPER(TRIM(q'~&&rtdp_schema~')) END END AS schema_pat,
         CASE WHEN INSTR(entry, '.') > 0 THEN SUBSTR(entry, INSTR(entry, '.') + 1)
              ELSE entry END AS table_pat
    FROM (SELECT CASE WHEN REGEXP_LIKE(entry, '[A-Z]', 'c') THEN entry ELSE UPPER(entry) END AS entry
           FROM entries)
   WHERE entry IS NOT NULL
), patterns AS (
  SELECT REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(schema_pat, '\', '\\'), '_', '\_'), '%', '\%'), '*', '%'), '?', '_') AS s,
         REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(table_pat, '\', '\\'), '_', '\_'), '%', '\%'), '*', '%'), '?', '_') AS t
    FROM split
), selected AS (
  SELECT tb.owner, tb.table_name, tb.num_rows
    FROM dba_tables tb
    JOIN dba_users u ON u.username = tb.owner
   WHERE u.oracle_maintained = 'N'
     AND tb.temporary = 'N'
     AND tb.nested = 'NO'
     AND tb.dropped = 'NO'
     AND tb.secondary = 'N'
     AND (tb.iot_type IS NULL OR tb.iot_type = 'IOT')
     AND EXISTS (SELECT 1 FROM patterns p
                  WHERE tb.owner LIKE p.s ESCAPE '\'
                    AND tb.table_name LIKE p.t ESCAPE '\')
)
SELECT COUNT(*) AS tables, SUM(num_rows) AS rows_estimated,
       ROUND((SELECT SUM(sg.bytes)
                FROM dba_segments sg
               WHERE (sg.owner, sg.segment_name) IN (SELECT owner, table_name FROM selected)
                  OR (sg.owner, sg.segment_name) IN (SELECT l.owner, l.segment_name
                                                       FROM dba_lobs l
                                                      WHERE (l.owner, l.table_name) IN (SELECT owner, table_name FROM selected)))
             / 1073741824, 2) AS size_gb
  FROM selected;
PROMPT To raise the retention (seconds; also make sure the undo tablespace can grow to UNDO_MB_FOR_RETENTION):
PROMPT   ALTER SYSTEM SET UNDO_RETENTION = 14400 SCOPE = BOTH;
PROMPT (with local undo it can be set in the PDB; shared undo: in the root.)

ALTER SESSION SET &&rtdp_into_root;
SET SERVEROUTPUT ON SIZE UNLIMITED FORMAT WRAPPED
SET FEEDBACK ON
PROMPT
PROMPT Done. Fix every MISSING line, then run this again.
