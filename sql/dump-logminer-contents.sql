-- dump-logminer-contents.sql: capture the LogMiner rows of an SCN range as JSON lines, the
-- input of `cdc-collector oracle replay FILE` (docs/ORACLE.md, "Support tools").
--
-- Why: when the collector's events look wrong, the rows it read are the evidence. This
-- script reads them the way the collector does (online catalog, the operations it reads,
-- the captured schema's rows plus every transaction start, commit and rollback) and
-- writes one JSON object per row, keys = the V$LOGMNR_CONTENTS columns in lower case.
-- Support replays the file offline; no database is needed for that.
--
-- Who and where: the CDC user (it has every privilege needed), connected like the
-- collector: to CDB$ROOT in a CDB (LogMiner runs only there; the script switches to the
-- PDB for the table definitions at the end), to the database in a non-CDB. Needs Oracle 19c or later (JSON_OBJECT ... RETURNING CLOB). It starts and
-- ends its own LogMiner session and changes nothing in the database.
--
--   sqlplus -s C##RTDP@//db-host:1521/ORCLCDB @sql/dump-logminer-contents.sql
--   sql -s C##RTDP@//db-host:1521/ORCLCDB @sql/dump-logminer-contents.sql     (SQLcl)
--
-- It asks for (or takes, when DEFINEd beforehand):
--   rtdp_start_scn  first SCN of the range (e.g. a few thousand below the SCN in the
--                   collector's error or the event's source.scn; include the START of the
--                   transactions of interest)
--   rtdp_end_scn    last SCN of the range (keep ranges small: every row is written)
--   rtdp_pdb        CDB: the PDB of the captured tables (rows of other PDBs are left out);
--                   non-CDB: press Enter
--   rtdp_schema     the owner of the captured tables (rows of other schemas are left out)
--   rtdp_out        the output file, e.g. /tmp/logminer-dump.jsonl; the tables' columns
--                   and keys go to the same name plus .schema.json (replay's --schema)
--
-- The file holds table data (SQL_REDO contains the column values): treat it like the
-- tables themselves when you send it to support.
--
-- Tested: written from Oracle's documentation; not run against a live Oracle by us.

WHENEVER SQLERROR EXIT FAILURE
WHENEVER OSERROR EXIT FAILURE
SET VERIFY OFF
SET FEEDBACK OFF
SET ECHO OFF
SET SERVEROUTPUT ON SIZE UNLIMITED

PROMPT rtdp_start_scn / rtdp_end_scn: the SCN range to dump
PROMPT rtdp_pdb: CDB - the PDB of the captured tables; non-CDB - press Enter
PROMPT rtdp_schema: the owner of the captured tables
PROMPT rtdp_out: the file to write (JSON lines)
PROMPT from SCN: &&rtdp_start_scn
PROMPT to SCN: &&rtdp_end_scn
PROMPT PDB: &&rtdp_pdb
PROMPT schema: &&rtdp_schema
PROMPT output: &&rtdp_out

-- 1. A LogMiner session over the logs that cover the range: the archived logs still on
--    disk (one copy per log, as there may be several archive destinations) and the online
--    logs not archived yet, from every redo thread (RAC). Then START_LOGMNR with the same
--    dictionary option as the collector: the online catalog.
DECLARE
  v_start NUMBER := TO_NUMBER(TRIM('&&rtdp_start_scn'));
  v_end   NUMBER := TO_NUMBER(TRIM('&&rtdp_end_scn'));
  v_opt   PLS_INTEGER := SYS.DBMS_LOGMNR.NEW;
  v_n     PLS_INTEGER := 0;
BEGIN
  IF v_end < v_start THEN
    RAISE_APPLICATION_ERROR(-20001, 'rtdp_end_scn is below rtdp_start_scn');
  END IF;
  FOR f IN (
    SELECT name, thread#, sequence#
      FROM (SELECT al.name, al.thread#, al.sequence#,
                   ROW_NUMBER() OVER (PARTITION BY al.thread#, al.sequence# ORDER BY al.dest_id) AS copy_no
              FROM v$archived_log al
             WHERE al.status = 'A'
               AND al.deleted = 'NO'
               AND al.standby_dest = 'NO'
               AND al.name IS NOT NULL
               AND al.resetlogs_change# = (SELECT resetlogs_change# FROM v$database)
               AND al.next_change# > v_start
               AND al.first_change# <= v_end)
     WHERE copy_no = 1
    UNION ALL
    SELECT member, thread#, sequence#
      FROM (SELECT lf.member, l.thread#, l.sequence#,
                   ROW_NUMBER() OVER (PARTITION BY l.group# ORDER BY lf.member) AS member_no
              FROM v$log l JOIN v$logfile lf ON lf.group# = l.group#
             WHERE l.status <> 'UNUSED'
               AND NVL(lf.status, 'VALID') NOT IN ('INVALID', 'STALE')
               AND l.next_change# > v_start
               AND l.first_change# <= v_end
               AND NOT EXISTS (SELECT 1 FROM v$archived_log al
                                WHERE al.thread# = l.thread# AND al.sequence# = l.sequence#
                                  AND al.status = 'A' AND al.deleted = 'NO' AND al.standby_dest = 'NO'
                                  AND al.name IS NOT NULL
                                  AND al.resetlogs_change# = (SELECT resetlogs_change# FROM v$database)))
     WHERE member_no = 1
     ORDER BY thread#, sequence#
  ) LOOP
    SYS.DBMS_LOGMNR.ADD_LOGFILE(LOGFILENAME => f.name, OPTIONS => v_opt);
    v_opt := SYS.DBMS_LOGMNR.ADDFILE;
    v_n := v_n + 1;
  END LOOP;
  IF v_n = 0 THEN
    RAISE_APPLICATION_ERROR(-20002, 'no redo or archived log on disk covers SCN ' || v_start || '..' || v_end);
  END IF;
  SYS.DBMS_LOGMNR.START_LOGMNR(STARTSCN => v_start, ENDSCN => v_end,
                               OPTIONS => SYS.DBMS_LOGMNR.DICT_FROM_ONLINE_CATALOG);
  DBMS_OUTPUT.PUT_LINE(v_n || ' log file(s) added; mining SCN ' || v_start || '..' || v_end);
END;
/

-- 2. The rows, one JSON object per line: the rows the collector reads (its query in
--    crates/cdc-collector/src/source/oracle/session.rs, contents_query), for the whole
--    schema rather than the captured tables only. Operations: 1 insert, 2 delete,
--    3 update, 5 DDL, 6 transaction start, 7 commit, 36 rollback, and the LOB operations
--    9, 10, 11, 28 and 29 (used by replay only with --lob). Start, commit and rollback rows
--    have no owner: all of them are kept. In a CDB only the PDB's rows of the other
--    operations are kept. XID is RAW(8),
--    written as 16 hex digits; TIMESTAMP as ISO-8601 text without time zone; numbers as
--    JSON numbers; NULL as null. No ORDER BY on purpose: V$LOGMNR_CONTENTS returns the
--    rows in redo order, the order the collector reads them in (and the order that joins
--    CSF = 1 continuation rows). The SQL*Plus settings keep each object on one line and
--    write nothing else into the file.
SET TERMOUT OFF
SET PAGESIZE 0
SET HEADING OFF
SET LINESIZE 32767
SET LONG 2000000000
SET LONGCHUNKSIZE 32767
SET TRIMSPOOL ON
SET TAB OFF
SET WRAP ON
SET ARRAYSIZE 500
SPOOL &&rtdp_out
SELECT JSON_OBJECT(
         'scn'            VALUE c.scn,
         'start_scn'      VALUE c.start_scn,
         'commit_scn'     VALUE c.commit_scn,
         'timestamp'      VALUE TO_CHAR(c.timestamp, 'YYYY-MM-DD"T"HH24:MI:SS'),
         'xid'            VALUE RAWTOHEX(c.xid),
         'operation_code' VALUE c.operation_code,
         'seg_owner'      VALUE c.seg_owner,
         'table_name'     VALUE c.table_name,
         'row_id'         VALUE c.row_id,
         'rollback'       VALUE c.rollback,
         'csf'            VALUE c.csf,
         'sql_redo'       VALUE c.sql_redo,
         'thread#'        VALUE c.thread#,
         'src_con_name'   VALUE c.src_con_name
         NULL ON NULL
         RETURNING CLOB)
  FROM v$logmnr_contents c
 WHERE c.operation_code IN (6, 7, 36)
    OR (c.operation_code IN (1, 2, 3, 5, 9, 10, 11, 28, 29)
        AND c.seg_owner = UPPER(TRIM('&&rtdp_schema'))
        AND (TRIM('&&rtdp_pdb') IS NULL OR c.src_con_name = UPPER(TRIM('&&rtdp_pdb'))));
SPOOL OFF
SET TERMOUT ON

-- 3. End the LogMiner session (it would also end with the connection).
EXECUTE SYS.DBMS_LOGMNR.END_LOGMNR

-- 4. The tables' columns and keys as replay's --schema file (FILE.schema.json): without
--    it replay reads every column as text. Read from ALL_TAB_COLUMNS and the primary
--    keys, in the PDB (CDB) or the database, for the tables of rtdp_schema; the same
--    shape the collector reads: {"OWNER.TABLE": {"columns": [{"name", "data_type",
--    "precision", "scale", "nullable"}], "key": ["ID"]}} (no "key" for a table
--    without a primary key). The session moves into the PDB with the computed ALTER
--    SESSION clause of the other scripts (a no-op clause in a non-CDB).
SET TERMOUT ON
COLUMN into_pdb NEW_VALUE rtdp_into_pdb NOPRINT
SELECT CASE WHEN cdb = 'YES' AND TRIM('&&rtdp_pdb') IS NOT NULL
            THEN 'CONTAINER = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(UPPER(TRIM('&&rtdp_pdb')))
            ELSE 'CURRENT_SCHEMA = ' || DBMS_ASSERT.SIMPLE_SQL_NAME(SYS_CONTEXT('USERENV', 'SESSION_USER'))
       END AS into_pdb
  FROM v$database;
ALTER SESSION SET &&rtdp_into_pdb;
SET TERMOUT OFF
SPOOL &&rtdp_out..schema.json
SELECT JSON_OBJECTAGG(
         KEY t.table_key
         VALUE JSON_OBJECT(
           'columns' VALUE (SELECT JSON_ARRAYAGG(
                                     JSON_OBJECT('name'      VALUE c.column_name,
                                                 'data_type' VALUE c.data_type,
                                                 'precision' VALUE c.data_precision,
                                                 'scale'     VALUE c.data_scale,
                                                 'nullable'  VALUE CASE c.nullable WHEN 'N' THEN 'false' ELSE 'true' END FORMAT JSON
                                                 NULL ON NULL)
                                     ORDER BY c.column_id RETURNING CLOB)
                              FROM all_tab_columns c
                             WHERE c.owner = t.owner AND c.table_name = t.table_name) FORMAT JSON,
           'key' VALUE (SELECT JSON_ARRAYAGG(cc.column_name ORDER BY cc.position RETURNING CLOB)
                          FROM all_constraints k
                          JOIN all_cons_columns cc
                            ON cc.owner = k.owner AND cc.constraint_name = k.constraint_name
                         WHERE k.owner = t.owner AND k.table_name = t.table_name
                           AND k.constraint_type = 'P') FORMAT JSON
           ABSENT ON NULL RETURNING CLOB)
         RETURNING CLOB)
  FROM (SELECT owner, table_name, owner || '.' || table_name AS table_key
          FROM all_tables
         WHERE owner = UPPER(TRIM('&&rtdp_schema'))
           AND temporary = 'N'
           AND nested = 'NO'
           AND secondary = 'N') t;
SPOOL OFF
SET TERMOUT ON
PROMPT Written: &&rtdp_out (the rows, one JSON object per line) and &&rtdp_out..schema.json (the tables)
PROMPT Check them with: cdc-collector oracle replay --schema &&rtdp_out..schema.json &&rtdp_out
