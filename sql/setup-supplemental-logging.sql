-- setup-supplemental-logging.sql: the supplemental logging LogMiner-based capture needs.
--
-- Why, in two levels:
--   1. Minimal supplemental logging (database level). Without it LogMiner cannot build
--      complete SQL_REDO for chained or migrated rows, index-organized tables and some
--      updates, and table-level supplemental logging (level 2) has no effect at all.
--      The collector refuses to start while V$DATABASE.SUPPLEMENTAL_LOG_DATA_MIN is NO.
--   2. ALL-column logging on every captured table. By default the redo of an UPDATE
--      holds only the changed columns, and that of a DELETE only the row id, so the
--      collector could not fill "before" (nor the unchanged columns of "after"): the
--      output writes deletes from "before", and keys from the row. With
--      ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS every column of the old row is logged.
--      The collector refuses to start while a captured table lacks it (unless ALL is on
--      for the whole database, step 3).
--   Both only affect redo written from then on: enable them before the collector's first
--   start (its initial snapshot), never afterwards.
--
-- Who and where: a user with ALTER DATABASE and ALTER ANY TABLE (SYSDBA is simplest),
-- connected to CDB$ROOT in a CDB (minimal logging is a CDB-wide setting made in the
-- root; the script then switches to the PDB for the tables and back to the root), or to
-- the database itself in a non-CDB. Idempotent: run it again after adding tables.
--
--   sqlplus / as sysdba @sql/setup-supplemental-logging.sql
--
-- It asks for (or takes, when DEFINEd beforehand; see sql/README.md to run unattended):
--   rtdp_pdb     CDB: the PDB that holds the tables (DATABASE_PDB). Non-CDB: press Enter.
--   rtdp_schema  the schema of table names without a schema (DATABASE_SCHEMA), e.g. HR.
--   rtdp_tables  the tables, written as DATABASE_TABLES is: comma-separated, each "TABLE"
--                or "SCHEMA.TABLE", with * (any run of characters) and ? (one character);
--                a bare * is every table of rtdp_schema, *.* every table of every schema
--                that Oracle does not maintain. As the collector does, an entry without
--                capital letters is upper-cased (Oracle folds unquoted names) and one
--                with any is taken as written (a quoted mixed-case name).
--
-- Cost: ALL-column logging makes the redo of updates and deletes of those tables larger
-- (the whole old row is written). Each ALTER TABLE takes a short exclusive lock and waits
-- up to rtdp_ddl_wait seconds (60) for transactions open on that table; a table still
-- busy then fails the script with ORA-00054: run it again at a quieter moment.
--
-- Amazon RDS for Oracle (no SYSDBA): minimal logging with
--   EXEC rdsadmin.rdsadmin_util.alter_supplemental_logging(p_action => 'ADD');
-- then the per-table statements of step 4 as the master user or the table owner.
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
DEFINE rtdp_ddl_wait = 60

PROMPT
PROMPT rtdp_pdb: CDB - the PDB that holds the captured tables; non-CDB - press Enter
PROMPT rtdp_schema: the schema of table names given without one (DATABASE_SCHEMA)
PROMPT rtdp_tables: the captured tables as in DATABASE_TABLES (e.g. * or ORDERS,ORDER_ITEMS or HR.EMP*)
PROMPT
-- Ask every question now and show the answers: SQL*Plus asks for a substitution variable
-- the first time a line uses it, unless it is defined already (by DEFINE, or by an
-- earlier script of setup-oracle-cdc.sql).
PROMPT PDB: &&rtdp_pdb
PROMPT schema: &&rtdp_schema
PROMPT tables: &&rtdp_tables

-- 1. Where are we? In a CDB the script must start in CDB$ROOT, and rtdp_pdb must name
--    the PDB.
BEGIN
  FOR d IN (SELECT cdb FROM v$database) LOOP
    IF d.cdb = 'YES' AND SYS_CONTEXT('USERENV', 'CON_NAME') <> 'CDB$ROOT' THEN
      RAISE_APPLICATION_ERROR(-20001,
        'connected to the PDB ' || SYS_CONTEXT('USERENV', 'CON_NAME') ||
        '; connect to CDB$ROOT and run this again (the script switches to the PDB itself)');
    END IF;
    IF d.cdb = 'YES' AND TRIM(q'~&&rtdp_pdb~') IS NULL THEN
      RAISE_APPLICATION_ERROR(-20002, 'this is a CDB: rtdp_pdb must name the PDB that holds the tables');
    END IF;
  END LOOP;
END;
/
--    The two substitution variables computed here hold the clause of an ALTER SESSION SET
--    statement that moves the session into the PDB (rtdp_into_pdb) or back to the root
--    (rtdp_into_root). In a non-CDB both hold a clause that changes nothing
--    (CURRENT_SCHEMA = the session user), so the same script runs on both kinds of
--    database. DBMS_ASSERT.SIMPLE_SQL_NAME rejects anything that is not a plain name.
COLUMN into_pdb NEW_VALUE rtdp_into_pdb NOPRINT
COLUMN into_root NEW_VALUE rtdp_into_root NOPRINT
SELECT CASE WHEN cdb = 'YES'
            THEN 'CONTAINER = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM(q'~&&rtdp_pdb~')))
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_pdb,
       CASE WHEN cdb = 'YES'
            THEN 'CONTAINER = CDB$ROOT'
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_root
  FROM v$database;

-- 2. Minimal supplemental logging for the database (in a CDB: for the whole CDB, set in
--    the root). Nothing happens when it is on already. It may wait for transactions that
--    are open at this moment to end. The check after it must say YES (or IMPLICIT, when a
--    database-wide level such as ALL implies it).
ALTER DATABASE ADD SUPPLEMENTAL LOG DATA;
SELECT supplemental_log_data_min AS min_logging,
       supplemental_log_data_pk  AS pk_logging,
       supplemental_log_data_ui  AS ui_logging,
       supplemental_log_data_all AS all_logging
  FROM v$database;

-- 3. Alternative to step 4: ALL-column logging for EVERY table of the database, in one
--    statement. Simplest when most tables are captured; more redo for all the others.
--    The collector accepts it in place of the per-table logging. Not done by default;
--    to use it, run it here by hand:
--      ALTER DATABASE ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;

-- 4. ALL-column logging for each captured table, in the PDB (CDB) or in the database.
--    Tables that have it already (a log group of type ALL COLUMN LOGGING) are left alone;
--    temporary, external, nested and IOT overflow tables and tables in the recycle bin
--    are skipped (LogMiner cannot capture them anyway). Each table is printed with what
--    was done.
ALTER SESSION SET &&rtdp_into_pdb;
-- A container switch starts a new DBMS_OUTPUT context: enable it again.
SET SERVEROUTPUT ON SIZE UNLIMITED
-- How long each ALTER TABLE waits for the table's open transactions (seconds).
ALTER SESSION SET DDL_LOCK_TIMEOUT = &&rtdp_ddl_wait;
DECLARE
  n_added   PLS_INTEGER := 0;
  n_present PLS_INTEGER := 0;
BEGIN
  FOR t IN (
    -- The selection: entries of rtdp_tables turned into LIKE patterns. A literal _ or %
    -- in a name is escaped with \ first, then * becomes % and ? becomes _.
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
    SELECT tb.owner, tb.table_name,
           (SELECT COUNT(*)
              FROM dba_log_groups g
             WHERE g.owner = tb.owner
               AND g.table_name = tb.table_name
               AND g.log_group_type = 'ALL COLUMN LOGGING') AS has_all
      FROM dba_tables tb
      JOIN dba_users u ON u.username = tb.owner
     WHERE u.oracle_maintained = 'N'
       AND tb.temporary = 'N'
       AND tb.nested = 'NO'
       AND tb.dropped = 'NO'
       AND tb.secondary = 'N'
       AND (tb.iot_type IS NULL OR tb.iot_type = 'IOT')
       AND NOT EXISTS (SELECT 1 FROM dba_external_tables x
                        WHERE x.owner = tb.owner AND x.table_name = tb.table_name)
       AND EXISTS (SELECT 1 FROM patterns p
                    WHERE tb.owner LIKE p.s ESCAPE '\'
                      AND tb.table_name LIKE p.t ESCAPE '\')
     ORDER BY tb.owner, tb.table_name
  ) LOOP
    IF t.has_all > 0 THEN
      n_present := n_present + 1;
      DBMS_OUTPUT.PUT_LINE('present  ' || t.owner || '.' || t.table_name);
    ELSE
      EXECUTE IMMEDIATE 'ALTER TABLE ' || DBMS_ASSERT.ENQUOTE_NAME(t.owner, FALSE) || '.' ||
                        DBMS_ASSERT.ENQUOTE_NAME(t.table_name, FALSE) ||
                        ' ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS';
      n_added := n_added + 1;
      DBMS_OUTPUT.PUT_LINE('added    ' || t.owner || '.' || t.table_name);
    END IF;
  END LOOP;
  DBMS_OUTPUT.PUT_LINE(n_added || ' table(s) given ALL-column logging, ' ||
                       n_present || ' had it already');
  IF n_added + n_present = 0 THEN
    RAISE_APPLICATION_ERROR(-20003,
      'rtdp_tables selects no table in schema ' || q'~&&rtdp_schema~' ||
      ' (an entry without capital letters is upper-cased, as Oracle folds unquoted names; check the spelling and the PDB)');
  END IF;
END;
/

-- 5. Tables LogMiner cannot capture although they are selected: names longer than 30
--    bytes (LogMiner does not mine them), tables with a BFILE, collection (VARRAY, nested
--    table) or REF column (LogMiner ignores such a table entirely), and NOLOGGING tables, whose direct-path loads
--    write no redo at all (so those rows never reach the collector; ALTER TABLE ...
--    LOGGING, or ALTER DATABASE FORCE LOGGING in the root, avoids that). No rows = fine.
--    Same selection as step 4 (repeated: SQL*Plus has no functions to share it).
COLUMN owner FORMAT A30
COLUMN table_name FORMAT A40
COLUMN problem FORMAT A70
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
  SELECT tb.owner, tb.table_name, tb.logging
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
SELECT owner, table_name, 'name longer than 30 bytes: LogMiner does not capture it' AS problem
  FROM selected WHERE LENGTHB(table_name) > 30
UNION ALL
SELECT c.owner, c.table_name, 'column ' || c.column_name || ' has a name longer than 30 bytes'
  FROM selected s JOIN dba_tab_columns c ON c.owner = s.owner AND c.table_name = s.table_name
 WHERE LENGTHB(c.column_name) > 30
UNION ALL
SELECT c.owner, c.table_name, 'column ' || c.column_name || ' (' || c.data_type || '): LogMiner ignores the whole table'
  FROM selected s JOIN dba_tab_columns c ON c.owner = s.owner AND c.table_name = s.table_name
 WHERE c.data_type = 'BFILE'
    OR c.data_type_mod = 'REF'
    OR EXISTS (SELECT 1 FROM dba_coll_types ct WHERE ct.owner = c.data_type_owner AND ct.type_name = c.data_type)
UNION ALL
SELECT owner, table_name, 'NOLOGGING: direct-path loads into it are not in the redo'
  FROM selected WHERE logging = 'NO'
 ORDER BY 1, 2;

-- 6. Back to the root (CDB), where the next script of setup-oracle-cdc.sql expects to be.
ALTER SESSION SET &&rtdp_into_root;
SET SERVEROUTPUT ON SIZE UNLIMITED
