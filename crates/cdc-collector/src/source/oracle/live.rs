//! [`OracleDb`] over the `oracle` crate: the only place that talks to a real Oracle (two
//! sessions — LogMiner in the CDB root, dictionary and snapshot reads in the PDB). Every
//! decision about what to read lives in [`super::session`]; this module only runs the
//! SQL and maps errors ([`classify`]). Not exercised without an Oracle server: the live
//! test (`tests/oracle_live.rs`) runs it when `ORACLE_TEST_URL` is set.

use super::logminer::LmRow;
use super::session::{
    classify, Facts, LogFile, OracleDb, OracleSettings, SnapshotRow, REQUIRED_OBJECTS,
    REQUIRED_PRIVILEGES, SYSTEM_SCHEMAS,
};
use super::types::{quote_ident, snapshot_expr, OraColumn};
use crate::source::tables::TableName;
use crate::source::SourceError;

/// Two sessions to one database.
pub struct LiveDb {
    /// LogMiner (CDB root for a multitenant database).
    mine: oracle::Connection,
    /// Dictionary and snapshot reads (in the PDB).
    query: oracle::Connection,
}

impl LiveDb {
    /// Opens both sessions, sets their formats, switches the second into the PDB.
    pub fn connect(s: &OracleSettings) -> Result<Box<dyn OracleDb>, SourceError> {
        let open = || -> Result<oracle::Connection, SourceError> {
            let c =
                oracle::Connector::new(s.user.as_str(), s.password.expose(), s.connect_string())
                    .connect()
                    .map_err(|e| {
                        classify(
                            &e,
                            &format!("connecting to Oracle at {}", s.connect_string()),
                        )
                    })?;
            for sql in [
                "ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'",
                "ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9'",
                "ALTER SESSION SET NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'",
                "ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'",
                "ALTER SESSION SET TIME_ZONE = '00:00'",
            ] {
                c.execute(sql, &[])
                    .map_err(|e| classify(&e, "setting the session's formats"))?;
            }
            Ok(c)
        };
        let mine = open()?;
        let query = open()?;
        if let Some(pdb) = &s.pdb {
            query
                .execute(
                    &format!("ALTER SESSION SET CONTAINER = {}", quote_ident(pdb)),
                    &[],
                )
                .map_err(|e| classify(&e, &format!("switching to PDB {pdb} (database.pdb)")))?;
        }
        Ok(Box::new(LiveDb { mine, query }))
    }
}

impl OracleDb for LiveDb {
    fn current_scn(&mut self) -> Result<u64, SourceError> {
        self.mine
            .query_row_as::<u64>("SELECT CURRENT_SCN FROM V$DATABASE", &[])
            .map_err(|e| classify(&e, "reading the current SCN"))
    }

    fn oldest_open_transaction(&mut self) -> Result<Option<u64>, SourceError> {
        // In the PDB's session: from the CDB root a common user sees only the root's
        // transactions in V$TRANSACTION.
        self.query
            .query_row_as::<Option<u64>>("SELECT MIN(START_SCN) FROM V$TRANSACTION", &[])
            .map_err(|e| classify(&e, "reading V$TRANSACTION"))
    }

    fn tz_offset_secs(&mut self) -> Result<i64, SourceError> {
        self.mine
            .query_row_as::<i64>(
                "SELECT ROUND((CAST(SYSTIMESTAMP AS DATE) - CAST(SYS_EXTRACT_UTC(SYSTIMESTAMP) AS DATE)) * 86400) FROM DUAL",
                &[],
            )
            .map_err(|e| classify(&e, "reading the database's time zone"))
    }

    fn visible_tables(&mut self) -> Result<Vec<TableName>, SourceError> {
        let rows = self
            .query
            .query_as::<(String, String)>(
                "SELECT OWNER, TABLE_NAME FROM ALL_TABLES WHERE NESTED = 'NO' AND SECONDARY = 'N' \
                 AND TEMPORARY = 'N' AND IOT_TYPE IS NULL",
                &[],
            )
            .map_err(|e| classify(&e, "listing tables (ALL_TABLES)"))?;
        let mut out = Vec::new();
        for r in rows {
            let (schema, table) = r.map_err(|e| classify(&e, "listing tables"))?;
            if !SYSTEM_SCHEMAS.contains(&schema.as_str()) {
                out.push(TableName { schema, table });
            }
        }
        Ok(out)
    }

    fn facts(&mut self, tables: &[TableName], snapshot: bool) -> Result<Facts, SourceError> {
        let mut f = Facts::default();
        for (view, grant) in REQUIRED_OBJECTS {
            if let Err(e) = self
                .mine
                .query_row_as::<u64>(&format!("SELECT COUNT(*) FROM {view} WHERE 1 = 0"), &[])
            {
                match e.db_error().map(|d| d.code()) {
                    Some(942 | 1031) => f.missing_grants.push(grant.to_string()),
                    // ORA-01306 (V$LOGMNR_CONTENTS outside a LogMiner session) and the
                    // like: the view is there and may be read.
                    Some(_) => {}
                    None => return Err(classify(&e, &format!("reading {view}"))),
                }
            }
        }
        if !f.missing_grants.iter().any(|g| g.contains("V_$DATABASE")) {
            let (log_mode, min, all, cdb) = self
                .mine
                .query_row_as::<(String, String, String, String)>(
                    "SELECT LOG_MODE, SUPPLEMENTAL_LOG_DATA_MIN, SUPPLEMENTAL_LOG_DATA_ALL, CDB FROM V$DATABASE",
                    &[],
                )
                .map_err(|e| match e.db_error().map(|d| d.code()) {
                    Some(904) => SourceError::fatal(
                        "V$DATABASE has no CDB column: Oracle 12c or later is required (LogMiner's \
                         LOGMINING privilege and the online catalog as used here)",
                    ),
                    _ => classify(&e, "reading V$DATABASE"),
                })?;
            f.log_mode = log_mode;
            f.supplemental_min = min;
            f.supplemental_all = all;
            f.cdb = cdb == "YES";
        }
        let privs: Vec<String> = self
            .mine
            .query_as::<String>("SELECT PRIVILEGE FROM SESSION_PRIVS", &[])
            .map_err(|e| classify(&e, "reading SESSION_PRIVS"))?
            .filter_map(Result::ok)
            .collect();
        for p in REQUIRED_PRIVILEGES {
            if !privs.iter().any(|x| x == p) {
                f.missing_grants.push(p.to_string());
            }
        }
        if !privs.iter().any(|p| p == "FLASHBACK ANY TABLE") && snapshot {
            // A per-table FLASHBACK grant also works: probe each table.
            for t in tables {
                let sql = format!(
                    "SELECT COUNT(*) FROM {}.{} AS OF SCN (SELECT CURRENT_SCN FROM V$DATABASE) WHERE 1 = 0",
                    quote_ident(&t.schema),
                    quote_ident(&t.table)
                );
                if let Err(e) = self.query.query_row_as::<u64>(&sql, &[]) {
                    if matches!(e.db_error().map(|d| d.code()), Some(942 | 1031 | 1466)) {
                        f.missing_grants.push(format!(
                            "SELECT, FLASHBACK ON {}.{}",
                            quote_ident(&t.schema),
                            quote_ident(&t.table)
                        ));
                    }
                }
            }
        }
        let groups: Vec<(String, String)> = self
            .query
            .query_as::<(String, String)>(
                "SELECT OWNER, TABLE_NAME FROM ALL_LOG_GROUPS WHERE LOG_GROUP_TYPE = 'ALL COLUMN LOGGING'",
                &[],
            )
            .map_err(|e| classify(&e, "reading ALL_LOG_GROUPS"))?
            .filter_map(Result::ok)
            .collect();
        f.tables_without_all = tables
            .iter()
            .filter(|t| !groups.iter().any(|(o, n)| *o == t.schema && *n == t.table))
            .cloned()
            .collect();
        Ok(f)
    }

    fn columns(&mut self, owner: &str, table: &str) -> Result<Vec<OraColumn>, SourceError> {
        let rows = self
            .query
            .query_as::<(String, String, Option<i64>, Option<i64>, String)>(
                "SELECT COLUMN_NAME, DATA_TYPE, DATA_PRECISION, DATA_SCALE, NULLABLE FROM ALL_TAB_COLUMNS \
                 WHERE OWNER = :1 AND TABLE_NAME = :2 AND HIDDEN_COLUMN = 'NO' ORDER BY COLUMN_ID",
                &[&owner, &table],
            )
            .map_err(|e| classify(&e, &format!("reading the columns of {owner}.{table}")))?;
        let mut out = Vec::new();
        for r in rows {
            let (name, data_type, precision, scale, nullable) =
                r.map_err(|e| classify(&e, "reading ALL_TAB_COLUMNS"))?;
            out.push(OraColumn {
                name,
                data_type,
                precision,
                scale,
                nullable: nullable == "Y",
            });
        }
        Ok(out)
    }

    fn key_columns(&mut self, owner: &str, table: &str) -> Result<Vec<String>, SourceError> {
        let rows = self
            .query
            .query_as::<String>(
                "SELECT cc.COLUMN_NAME FROM ALL_CONSTRAINTS c JOIN ALL_CONS_COLUMNS cc \
                 ON cc.OWNER = c.OWNER AND cc.CONSTRAINT_NAME = c.CONSTRAINT_NAME \
                 WHERE c.CONSTRAINT_TYPE = 'P' AND c.OWNER = :1 AND c.TABLE_NAME = :2 ORDER BY cc.POSITION",
                &[&owner, &table],
            )
            .map_err(|e| classify(&e, &format!("reading the primary key of {owner}.{table}")))?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    fn log_files(&mut self, from: u64) -> Result<Vec<LogFile>, SourceError> {
        let mut files = Vec::new();
        let online = self
            .mine
            .query_as::<(String, u32, u64, u64, Option<u64>, String)>(
                "SELECT f.MEMBER, l.THREAD#, l.SEQUENCE#, l.FIRST_CHANGE#, l.NEXT_CHANGE#, l.STATUS \
                 FROM V$LOG l JOIN V$LOGFILE f ON f.GROUP# = l.GROUP# \
                 WHERE f.STATUS IS NULL OR f.STATUS NOT IN ('INVALID', 'STALE')",
                &[],
            )
            .map_err(|e| classify(&e, "reading V$LOG / V$LOGFILE"))?;
        let mut seen_groups = std::collections::HashSet::new();
        for r in online {
            let (name, thread, sequence, first, next, status) =
                r.map_err(|e| classify(&e, "reading V$LOG"))?;
            if status == "UNUSED" || !seen_groups.insert((thread, sequence)) {
                continue; // one member per group is enough
            }
            files.push(LogFile {
                name,
                thread,
                sequence,
                first_scn: first,
                next_scn: next
                    .filter(|n| *n < u64::MAX / 2 && status != "CURRENT")
                    .unwrap_or(u64::MAX),
                online: true,
            });
        }
        let archived = self
            .mine
            .query_as::<(String, u32, u64, u64, u64)>(
                "SELECT NAME, THREAD#, SEQUENCE#, FIRST_CHANGE#, NEXT_CHANGE# FROM V$ARCHIVED_LOG \
                 WHERE NAME IS NOT NULL AND STATUS = 'A' AND DELETED = 'NO' AND STANDBY_DEST = 'NO' \
                 AND NEXT_CHANGE# > :1",
                &[&from],
            )
            .map_err(|e| classify(&e, "reading V$ARCHIVED_LOG"))?;
        for r in archived {
            let (name, thread, sequence, first, next) =
                r.map_err(|e| classify(&e, "reading V$ARCHIVED_LOG"))?;
            files.push(LogFile {
                name,
                thread,
                sequence,
                first_scn: first,
                next_scn: next,
                online: false,
            });
        }
        Ok(files)
    }

    fn load_logs(&mut self, names: &[String]) -> Result<(), SourceError> {
        let _ = self.mine.execute("BEGIN DBMS_LOGMNR.END_LOGMNR; END;", &[]);
        for (i, n) in names.iter().enumerate() {
            let opt = if i == 0 {
                "DBMS_LOGMNR.NEW"
            } else {
                "DBMS_LOGMNR.ADDFILE"
            };
            self.mine
                .execute(
                    &format!(
                        "BEGIN DBMS_LOGMNR.ADD_LOGFILE(LOGFILENAME => :1, OPTIONS => {opt}); END;"
                    ),
                    &[n],
                )
                .map_err(|e| classify(&e, "adding a log file to LogMiner"))?;
        }
        Ok(())
    }

    fn mine(
        &mut self,
        query: &str,
        from: u64,
        to: u64,
        fetch: u32,
    ) -> Result<Vec<LmRow>, SourceError> {
        self.mine
            .execute(
                "BEGIN DBMS_LOGMNR.START_LOGMNR(STARTSCN => :1, ENDSCN => :2, OPTIONS => \
                 DBMS_LOGMNR.DICT_FROM_ONLINE_CATALOG); END;",
                &[&(from + 1), &to],
            )
            .map_err(|e| {
                classify(
                    &e,
                    &format!("starting LogMiner for SCNs {}..={to}", from + 1),
                )
            })?;
        let mut stmt = self
            .mine
            .statement(query)
            .fetch_array_size(fetch)
            .build()
            .map_err(|e| classify(&e, "preparing the V$LOGMNR_CONTENTS query"))?;
        let rows = stmt
            .query(&[&from, &to])
            .map_err(|e| classify(&e, "reading V$LOGMNR_CONTENTS"))?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(|e| classify(&e, "reading V$LOGMNR_CONTENTS"))?;
            let g = |e: oracle::Error| classify(&e, "reading a V$LOGMNR_CONTENTS row");
            out.push(LmRow {
                scn: r.get(0).map_err(g)?,
                start_scn: r.get(1).map_err(g)?,
                commit_scn: r.get(2).map_err(g)?,
                timestamp: r.get(3).map_err(g)?,
                xid: r
                    .get::<_, Option<String>>(4)
                    .map_err(g)?
                    .unwrap_or_default(),
                operation_code: r.get(5).map_err(g)?,
                seg_owner: r.get(6).map_err(g)?,
                table_name: r.get(7).map_err(g)?,
                row_id: r.get(8).map_err(g)?,
                rollback: r.get(9).map_err(g)?,
                csf: r.get(10).map_err(g)?,
                sql_redo: r.get(11).map_err(g)?,
                thread: r.get(12).map_err(g)?,
                src_con_name: r.get(13).map_err(g)?,
            });
        }
        Ok(out)
    }

    fn snapshot_rows(
        &mut self,
        t: &TableName,
        cols: &[OraColumn],
        scn: u64,
        after_rowid: Option<&str>,
        limit: u64,
        fetch: u32,
    ) -> Result<Vec<SnapshotRow>, SourceError> {
        let select: Vec<String> = cols.iter().map(snapshot_expr).collect();
        let sql =
            format!(
            "SELECT ROWIDTOCHAR(ROWID), {} FROM {}.{} AS OF SCN :1 WHERE ROWID > CHARTOROWID(:2) \
             ORDER BY ROWID FETCH FIRST {limit} ROWS ONLY",
            if select.is_empty() { "NULL".to_owned() } else { select.join(", ") },
            quote_ident(&t.schema),
            quote_ident(&t.table)
        );
        let last = after_rowid.unwrap_or("AAAAAAAAAAAAAAAAAA");
        let what = format!("reading {t} AS OF SCN {scn}");
        let mut stmt = self
            .query
            .statement(&sql)
            .fetch_array_size(fetch)
            .build()
            .map_err(|e| classify(&e, &what))?;
        let rows = stmt
            .query(&[&scn, &last])
            .map_err(|e| classify(&e, &what))?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(|e| classify(&e, &what))?;
            let rowid: String = r.get(0).map_err(|e| classify(&e, "reading ROWID"))?;
            let mut values = Vec::with_capacity(cols.len());
            for (i, c) in cols.iter().enumerate() {
                let v: Option<String> = if c.data_type == "BLOB" {
                    r.get::<_, Option<Vec<u8>>>(i + 1)
                        .map(|b| b.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()))
                } else {
                    r.get::<_, Option<String>>(i + 1)
                }
                .map_err(|e| classify(&e, &format!("reading column {} of {t}", c.name)))?;
                values.push(v);
            }
            out.push(SnapshotRow { rowid, values });
        }
        Ok(out)
    }

    fn estimate_rows(&mut self, tables: &[TableName]) -> Result<u64, SourceError> {
        let mut total = 0;
        for t in tables {
            let n: Option<u64> = self
                .query
                .query_row_as::<Option<u64>>(
                    "SELECT NUM_ROWS FROM ALL_TABLES WHERE OWNER = :1 AND TABLE_NAME = :2",
                    &[&t.schema, &t.table],
                )
                .map_err(|e| classify(&e, "reading table statistics"))?;
            total += n.unwrap_or(0);
        }
        Ok(total)
    }
}
