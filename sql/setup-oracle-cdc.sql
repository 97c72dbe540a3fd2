-- setup-oracle-cdc.sql — the Oracle user the cdc-collector logs in as, with the
-- privileges LogMiner-based CDC needs. Run after enable-archivelog.sql and
-- configure-oracle-for-cdc.sql.
--
--   sqlplus / as sysdba @sql/setup-oracle-cdc.sql
--
-- Written for a container database (CDB, 12c+, the default since 19c): a common user
-- C##RTDP in CDB$ROOT, granted in all containers, because LogMiner runs in the root.
-- Non-CDB (11g, or 12c+ created without containers): set cdc_user to RTDP and remove
-- every "CONTAINER = ALL" clause (and the SET CONTAINER grant).
-- Oracle 11g has no LOGMINING privilege: grant EXECUTE_CATALOG_ROLE (below) instead.
-- Amazon RDS: run the grants on V_$ views with rdsadmin.rdsadmin_util.grant_sys_object.
--
-- The password is asked for, never stored here. Then set DATABASE_TYPE=oracle,
-- DATABASE_HOST, DATABASE_PORT=1521, DATABASE_NAME=<service name of the PDB>,
-- DATABASE_USERNAME=C##RTDP, DATABASE_PASSWORD, DATABASE_SCHEMA, DATABASE_TABLES.

WHENEVER SQLERROR EXIT SQL.SQLCODE
SET ECHO ON
SET VERIFY OFF

DEFINE cdc_user = C##RTDP
DEFINE cdc_tablespace = USERS
ACCEPT cdc_password CHAR PROMPT 'Password for &&cdc_user: ' HIDE

-- 1. The user. Its default tablespace must exist in every container (USERS does in the
--    seed databases); the collector itself creates no tables.
CREATE USER &&cdc_user IDENTIFIED BY "&&cdc_password"
  DEFAULT TABLESPACE &&cdc_tablespace
  QUOTA UNLIMITED ON &&cdc_tablespace
  CONTAINER = ALL;

-- 2. Log in, and switch to the PDB that holds the tables.
GRANT CREATE SESSION TO &&cdc_user CONTAINER = ALL;
GRANT SET CONTAINER TO &&cdc_user CONTAINER = ALL;

-- 3. LogMiner.
GRANT LOGMINING TO &&cdc_user CONTAINER = ALL;                 -- 12c+: DBMS_LOGMNR and V$LOGMNR_* use
GRANT EXECUTE ON SYS.DBMS_LOGMNR TO &&cdc_user CONTAINER = ALL;
GRANT EXECUTE ON SYS.DBMS_LOGMNR_D TO &&cdc_user CONTAINER = ALL;
GRANT EXECUTE_CATALOG_ROLE TO &&cdc_user CONTAINER = ALL;      -- 11g: instead of LOGMINING
GRANT SELECT_CATALOG_ROLE TO &&cdc_user CONTAINER = ALL;       -- dictionary views (columns, types)
GRANT SELECT ANY TRANSACTION TO &&cdc_user CONTAINER = ALL;    -- V$LOGMNR_CONTENTS of other users' transactions

-- 4. The dynamic performance views the collector reads (SCNs, log files, transactions).
--    Grants go to the V_$ views owned by SYS (V$ names are synonyms for them).
GRANT SELECT ON SYS.V_$DATABASE TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOG TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOGFILE TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOG_HISTORY TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$ARCHIVED_LOG TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$ARCHIVE_DEST_STATUS TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOGMNR_LOGS TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOGMNR_CONTENTS TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$LOGMNR_PARAMETERS TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$TRANSACTION TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$THREAD TO &&cdc_user CONTAINER = ALL;
GRANT SELECT ON SYS.V_$CONTAINERS TO &&cdc_user CONTAINER = ALL;

-- 5. The initial snapshot: consistent reads of the captured tables AS OF an SCN.
--    Broad form (simplest):
GRANT SELECT ANY TABLE TO &&cdc_user CONTAINER = ALL;
GRANT FLASHBACK ANY TABLE TO &&cdc_user CONTAINER = ALL;
--    Narrow form instead, per table, in the PDB (then revoke the two ANY privileges):
--      ALTER SESSION SET CONTAINER = ORCLPDB1;
--      GRANT SELECT, FLASHBACK ON HR.EMPLOYEES TO C##RTDP;

-- 6. Check.
SELECT username, common, account_status, default_tablespace
  FROM dba_users WHERE username = UPPER('&&cdc_user');
SELECT privilege FROM dba_sys_privs WHERE grantee = UPPER('&&cdc_user') ORDER BY privilege;
SELECT granted_role FROM dba_role_privs WHERE grantee = UPPER('&&cdc_user') ORDER BY granted_role;
SELECT table_name, privilege FROM dba_tab_privs WHERE grantee = UPPER('&&cdc_user') ORDER BY table_name;

UNDEFINE cdc_password
