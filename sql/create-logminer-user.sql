-- create-logminer-user.sql: the database user cdc-collector logs in as, with exactly the
-- privileges LogMiner-based capture and the initial snapshot need. Oracle 12.2 or later
-- (19c recommended); for 11g see the note at the end.
--
-- Who and where: SYSDBA (or a user with CREATE USER and the right to grant all of the
-- below), connected to
--   - a CDB: CDB$ROOT. LogMiner runs in the root (the collector connects to the root
--     service), so the user is a COMMON user (name starting with C##, e.g. C##RTDP)
--     created in all containers, and every grant is made with CONTAINER = ALL;
--   - a non-CDB: the database itself. The user is an ordinary (local) user, e.g. RTDP,
--     and the grants have no CONTAINER clause.
-- The script finds out which kind of database it is on and does the right one.
-- Idempotent: an existing user keeps its objects and gets the new password and any
-- missing grant.
--
--   sqlplus / as sysdba @sql/create-logminer-user.sql
--
-- It asks for (or takes, when DEFINEd beforehand; sql/README.md shows how to run it
-- unattended):
--   rtdp_user       the user to create: C##RTDP in a CDB, RTDP in a non-CDB (DATABASE_USERNAME)
--   rtdp_any_table  YES: SELECT ANY TABLE and FLASHBACK ANY TABLE (every table, also
--                   tables created later). NO: SELECT and FLASHBACK on each table that
--                   rtdp_tables selects now (grant again for new tables).
--   rtdp_pdb, rtdp_schema, rtdp_tables: the captured tables, as for
--                   setup-supplemental-logging.sql (used when rtdp_any_table is NO)
--   the password, without echo (never stored, never printed). It must not contain a
--   double quote, and must satisfy the password profile of the database.
--
-- What the collector does with each privilege is written next to the grant. It checks
-- them all at start and names the missing ones with the GRANT to run.
--
-- Amazon RDS for Oracle: the master user cannot grant on SYS objects directly; use
--   EXEC rdsadmin.rdsadmin_util.grant_sys_object('V_$DATABASE', 'RTDP', 'SELECT');
-- for each V_$ view and DBMS_LOGMNR below, and ordinary GRANTs for the rest.
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

-- Stop at the first error with a non-zero exit status (FAILURE, not SQL.SQLCODE: an ORA-
-- number modulo 256 can be 0, which a calling shell would take for success).
WHENEVER SQLERROR EXIT FAILURE
WHENEVER OSERROR EXIT FAILURE
SET ECHO ON
SET VERIFY OFF
SET SERVEROUTPUT ON SIZE UNLIMITED
SET LINESIZE 200
SET PAGESIZE 100
SET SQLBLANKLINES ON

PROMPT
PROMPT rtdp_user: the CDC user - C##RTDP in a CDB (a common user), RTDP in a non-CDB
PROMPT rtdp_any_table: YES = SELECT ANY TABLE and FLASHBACK ANY TABLE; NO = grants on the selected tables only
PROMPT rtdp_pdb: CDB - the PDB that holds the captured tables; non-CDB - press Enter
PROMPT rtdp_schema: the schema of table names given without one (DATABASE_SCHEMA)
PROMPT rtdp_tables: the captured tables as in DATABASE_TABLES (e.g. * or ORDERS,ORDER_ITEMS or HR.EMP*)
PROMPT
-- Ask every question now, before anything is changed, and show the answers: SQL*Plus asks
-- for a substitution variable the first time a line uses it, unless it is defined
-- already (by DEFINE, or by an earlier script of setup-oracle-cdc.sql).
PROMPT CDC user: &&rtdp_user
PROMPT any table: &&rtdp_any_table
PROMPT PDB: &&rtdp_pdb
PROMPT schema: &&rtdp_schema
PROMPT tables: &&rtdp_tables
-- The password is asked every time, without echo.
ACCEPT rtdp_password CHAR PROMPT 'Password for the CDC user (not shown): ' HIDE

-- 1. Where are we, and are the answers usable? In a CDB the script must run in
--    CDB$ROOT; a common user's name must start with COMMON_USER_PREFIX (C## unless the
--    DBA changed it); rtdp_any_table must be YES or NO.
DECLARE
  v_cdb    VARCHAR2(3);
  v_prefix VARCHAR2(128);
  v_user   VARCHAR2(128) := UPPER(TRIM(q'~&&rtdp_user~'));
BEGIN
  IF v_user IS NULL THEN
    RAISE_APPLICATION_ERROR(-20000, 'rtdp_user is empty: name the CDC user (C##RTDP in a CDB, RTDP in a non-CDB)');
  END IF;
  SELECT cdb INTO v_cdb FROM v$database;
  IF v_cdb = 'YES' AND SYS_CONTEXT('USERENV', 'CON_NAME') <> 'CDB$ROOT' THEN
    RAISE_APPLICATION_ERROR(-20001,
      'connected to the PDB ' || SYS_CONTEXT('USERENV', 'CON_NAME') ||
      '; connect to CDB$ROOT and run this again: the collector runs LogMiner in the root, so its user is a common user');
  END IF;
  IF v_cdb = 'YES' THEN
    -- Empty (NULL) means no prefix is required, as in some test images.
    BEGIN
      SELECT value INTO v_prefix FROM v$parameter WHERE name = 'common_user_prefix';
    EXCEPTION
      WHEN NO_DATA_FOUND THEN v_prefix := 'C##';
    END;
    IF v_prefix IS NOT NULL AND v_user NOT LIKE REPLACE(UPPER(v_prefix), '_', '\_') || '%' ESCAPE '\' THEN
      RAISE_APPLICATION_ERROR(-20002,
        'this is a CDB: the user must be a common user whose name starts with ' || v_prefix ||
        ' (e.g. ' || v_prefix || 'RTDP), not ' || v_user);
    END IF;
    IF TRIM(q'~&&rtdp_pdb~') IS NULL AND UPPER(TRIM(q'~&&rtdp_any_table~')) = 'NO' THEN
      RAISE_APPLICATION_ERROR(-20003, 'this is a CDB: rtdp_pdb must name the PDB that holds the tables');
    END IF;
  END IF;
  IF UPPER(TRIM(q'~&&rtdp_any_table~')) NOT IN ('YES', 'NO') THEN
    RAISE_APPLICATION_ERROR(-20004, 'rtdp_any_table must be YES or NO, not ' || q'~&&rtdp_any_table~');
  END IF;
  IF INSTR(q'~&&rtdp_password~', '"') > 0 OR q'~&&rtdp_password~' IS NULL THEN
    RAISE_APPLICATION_ERROR(-20005, 'the password must not be empty and must not contain a double quote');
  END IF;
END;
/

-- 2. The user and its privileges, in one block so that the CONTAINER = ALL clause is
--    added exactly when this is a CDB. Every statement is printed before it runs (the
--    password as ***). The collector creates no tables, so the user needs no quota and
--    keeps the default tablespace.
DECLARE
  v_cdb  BOOLEAN;
  v_flag VARCHAR2(3);
  v_n    PLS_INTEGER;
  v_stmt VARCHAR2(1000);
  v_user VARCHAR2(128) := DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_user~')));
  -- Run one statement; in a CDB with CONTAINER = ALL (the grant, or the user, then
  -- exists in the root and in every PDB, including PDBs created later).
  PROCEDURE run(p_stmt VARCHAR2, p_shown VARCHAR2 DEFAULT NULL) IS
    v_full VARCHAR2(4000) := p_stmt || CASE WHEN v_cdb THEN ' CONTAINER = ALL' END;
  BEGIN
    DBMS_OUTPUT.PUT_LINE(NVL(p_shown, p_stmt) || CASE WHEN v_cdb THEN ' CONTAINER = ALL' END || ';');
    EXECUTE IMMEDIATE v_full;
  END;
BEGIN
  SELECT cdb INTO v_flag FROM v$database;
  v_cdb := v_flag = 'YES';

  SELECT COUNT(*) INTO v_n FROM dba_users WHERE username = v_user;
  IF v_n = 0 THEN
    run('CREATE USER ' || v_user || ' IDENTIFIED BY "' || q'~&&rtdp_password~' || '"',
        'CREATE USER ' || v_user || ' IDENTIFIED BY "***"');
  ELSE
    run('ALTER USER ' || v_user || ' IDENTIFIED BY "' || q'~&&rtdp_password~' || '" ACCOUNT UNLOCK',
        'ALTER USER ' || v_user || ' IDENTIFIED BY "***" ACCOUNT UNLOCK');
  END IF;

  -- Log in.
  run('GRANT CREATE SESSION TO ' || v_user);
  -- CDB: ALTER SESSION SET CONTAINER = <pdb> for the snapshot and for reading the PDB's
  -- table and column definitions; LogMiner itself runs in the root.
  IF v_cdb THEN
    run('GRANT SET CONTAINER TO ' || v_user);
  END IF;
  -- LogMiner: LOGMINING (12c and later) allows DBMS_LOGMNR.START_LOGMNR and reading
  -- V$LOGMNR_CONTENTS; EXECUTE on DBMS_LOGMNR allows ADD_LOGFILE / START_LOGMNR /
  -- END_LOGMNR; SELECT ANY TRANSACTION lets V$LOGMNR_CONTENTS show other users'
  -- transactions (required by the view's documentation before 12c, harmless after).
  run('GRANT LOGMINING TO ' || v_user);
  run('GRANT EXECUTE ON SYS.DBMS_LOGMNR TO ' || v_user);
  run('GRANT SELECT ANY TRANSACTION TO ' || v_user);
  -- The dictionary: the DBA_ and further V$ views that sql/check-cdc-prereqs.sql and
  -- sql/dump-logminer-contents.sql read as this user (the collector itself reads the
  -- ALL_ views and the V$ views granted below). EXECUTE_CATALOG_ROLE is what Oracle's
  -- DBMS_LOGMNR documentation lists for using the package.
  run('GRANT SELECT_CATALOG_ROLE TO ' || v_user);
  run('GRANT EXECUTE_CATALOG_ROLE TO ' || v_user);
  -- The dynamic performance views the collector reads, granted directly as well so that
  -- they do not depend on a role being enabled. Grants go to the SYS.V_$ views; the V$
  -- names are public synonyms of them.
  --   V_$DATABASE        log mode, supplemental logging, CURRENT_SCN (snapshot point, window end)
  --   V_$LOG, V_$LOGFILE the online redo logs and their files (added to LogMiner)
  --   V_$ARCHIVED_LOG    the archived logs covering a window (added to LogMiner)
  --   V_$LOGMNR_LOGS     which logs the LogMiner session holds
  --   V_$LOGMNR_CONTENTS the changes
  --   V_$TRANSACTION     the oldest open transaction when the snapshot starts (streaming
  --                      begins at its start, so a transaction that straddles the
  --                      snapshot keeps its first changes)
  --   V_$THREAD          the redo threads (RAC: one per instance; all are mined)
  --   V_$INSTANCE        version and instance, for the log and the checks
  FOR v IN (SELECT column_value AS view_name
              FROM TABLE(sys.odcivarchar2list('V_$DATABASE', 'V_$LOG', 'V_$LOGFILE',
                                              'V_$ARCHIVED_LOG', 'V_$LOGMNR_LOGS',
                                              'V_$LOGMNR_CONTENTS', 'V_$TRANSACTION',
                                              'V_$THREAD', 'V_$INSTANCE'))) LOOP
    run('GRANT SELECT ON SYS.' || v.view_name || ' TO ' || v_user);
  END LOOP;
  -- CDB: V$ views are "container data objects". Queried in the root, they show by
  -- default only the root's rows: V$TRANSACTION would not show the PDB's open
  -- transactions, and the snapshot could start streaming after the first changes of one
  -- of them. The CONTAINER_DATA attribute (set in the root, for the root only) lets the
  -- user see the PDB's rows too: the root and the PDB when rtdp_pdb is given, else all.
  IF v_cdb THEN
    v_stmt := 'ALTER USER ' || v_user || ' SET CONTAINER_DATA = ' ||
              CASE WHEN TRIM(q'~&&rtdp_pdb~') IS NOT NULL
                   THEN '(CDB$ROOT, ' || DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_pdb~'))) || ')'
                   ELSE 'ALL' END ||
              ' CONTAINER = CURRENT';
    DBMS_OUTPUT.PUT_LINE(v_stmt || ';');
    EXECUTE IMMEDIATE v_stmt;
  END IF;
  -- The initial snapshot reads each table AS OF an SCN (flashback query), which needs
  -- SELECT and FLASHBACK on the table. The table and column definitions come from
  -- ALL_TABLES, ALL_TAB_COLUMNS, ALL_CONSTRAINTS and ALL_CONS_COLUMNS, which show a
  -- table only to a user who may select from it.
  IF UPPER(TRIM(q'~&&rtdp_any_table~')) = 'YES' THEN
    run('GRANT SELECT ANY TABLE TO ' || v_user);
    run('GRANT FLASHBACK ANY TABLE TO ' || v_user);
  END IF;
END;
/

-- 3. rtdp_any_table = NO: SELECT and FLASHBACK on each selected table, granted in the PDB
--    (CDB) or the database. Nothing happens when rtdp_any_table is YES. The session moves
--    into the PDB with the same computed ALTER SESSION clause as in
--    setup-supplemental-logging.sql (a no-op clause in a non-CDB), and back at the end.
COLUMN into_pdb NEW_VALUE rtdp_into_pdb NOPRINT
COLUMN into_root NEW_VALUE rtdp_into_root NOPRINT
SELECT CASE WHEN cdb = 'YES' AND TRIM(q'~&&rtdp_pdb~') IS NOT NULL
            THEN 'CONTAINER = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_pdb~')))
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_pdb,
       CASE WHEN cdb = 'YES'
            THEN 'CONTAINER = CDB$ROOT'
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_root
  FROM v$database;
ALTER SESSION SET &&rtdp_into_pdb;
-- A container switch starts a new DBMS_OUTPUT context: enable it again.
SET SERVEROUTPUT ON SIZE UNLIMITED
DECLARE
  v_user VARCHAR2(128) := DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_user~')));
  v_n    PLS_INTEGER := 0;
  v_stmt VARCHAR2(1000);
BEGIN
  IF UPPER(TRIM(q'~&&rtdp_any_table~')) = 'NO' THEN
    FOR t IN (
      -- The selection, as in setup-supplemental-logging.sql: entries of rtdp_tables
      -- turned into LIKE patterns (literal _ and % escaped, * to %, ? to _).
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
      )
      SELECT tb.owner, tb.table_name
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
       ORDER BY tb.owner, tb.table_name
    ) LOOP
      v_stmt := 'GRANT SELECT, FLASHBACK ON ' || DBMS_ASSERT.ENQUOTE_NAME(t.owner, FALSE) || '.' ||
                DBMS_ASSERT.ENQUOTE_NAME(t.table_name, FALSE) || ' TO ' || v_user;
      DBMS_OUTPUT.PUT_LINE(v_stmt || ';');
      EXECUTE IMMEDIATE v_stmt;
      v_n := v_n + 1;
    END LOOP;
    IF v_n = 0 THEN
      RAISE_APPLICATION_ERROR(-20006,
        'rtdp_tables selects no table in schema ' || q'~&&rtdp_schema~' ||
        ' (an entry without capital letters is upper-cased, as Oracle folds unquoted names; check the spelling and the PDB)');
    END IF;
    DBMS_OUTPUT.PUT_LINE(v_n || ' table(s) granted');
  END IF;
END;
/
ALTER SESSION SET &&rtdp_into_root;
SET SERVEROUTPUT ON SIZE UNLIMITED

-- 4. What the user has now (in a CDB, as seen in the root; COMMON = YES for the
--    CONTAINER = ALL grants). The per-table grants of step 3 live in the PDB:
--    sql/check-cdc-prereqs.sql lists them there.
COLUMN username FORMAT A30
COLUMN account_status FORMAT A20
COLUMN privilege FORMAT A30
COLUMN granted_role FORMAT A30
COLUMN table_name FORMAT A30
SELECT username, account_status, default_tablespace, created
  FROM dba_users WHERE username = UPPER(TRIM(q'~&&rtdp_user~'));
SELECT privilege, common FROM dba_sys_privs WHERE grantee = UPPER(TRIM(q'~&&rtdp_user~')) ORDER BY privilege;
SELECT granted_role, common FROM dba_role_privs WHERE grantee = UPPER(TRIM(q'~&&rtdp_user~')) ORDER BY granted_role;
SELECT owner, table_name, privilege, common FROM dba_tab_privs
 WHERE grantee = UPPER(TRIM(q'~&&rtdp_user~')) ORDER BY owner, table_name, privilege;
COLUMN container_name FORMAT A30
SELECT default_attr, all_containers, container_name FROM dba_container_data
 WHERE username = UPPER(TRIM(q'~&&rtdp_user~'));

-- The password leaves SQL*Plus' memory; the other answers stay defined for the scripts
-- that setup-oracle-cdc.sql runs next.
UNDEFINE rtdp_password

-- Oracle 11g (not supported by this script): there is no LOGMINING privilege, no
-- CONTAINER clause and no ORACLE_MAINTAINED column. Grant by hand CREATE SESSION,
-- EXECUTE_CATALOG_ROLE, SELECT_CATALOG_ROLE, SELECT ANY TRANSACTION, EXECUTE ON
-- SYS.DBMS_LOGMNR, SELECT on the V_$ views above, and SELECT + FLASHBACK on the tables.
