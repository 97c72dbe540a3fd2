//! The live Oracle source: a [`ChangeSource`] over the `oracle` crate (ODPI-C; Oracle
//! Instant Client loaded at run time).
//!
//! How it reads (docs/ORACLE.md has the DBA's side):
//! - Start-up checks, each failing with the exact SQL that fixes it ([`prereq_problems`]):
//!   ARCHIVELOG mode, minimal supplemental logging, ALL-column supplemental logging on
//!   every captured table (unless database-wide), the grants the session needs.
//! - First start: snapshot every captured table `AS OF SCN` the current SCN, in chunks of
//!   `snapshotChunkRows` ordered by ROWID (each chunk its own Kafka transaction, a crash
//!   resumes after the last chunk that reached Kafka), events `op: r`; then streaming
//!   from that SCN, mining from the oldest transaction open at that moment so that
//!   transactions straddling the snapshot lose no rows.
//! - Streaming: LogMiner with the online catalog, windows of SCNs up to the current SCN
//!   (`oracle.windowScns`, doubled up to 10× while behind). The redo and archived logs
//!   that cover the window, for every redo thread (RAC), come from V$LOG / V$LOGFILE /
//!   V$ARCHIVED_LOG ([`select_logs`]) and are added again when the set changes (a log
//!   switch). V$LOGMNR_CONTENTS is read with `oracle.fetchSize` rows per round trip for
//!   the operations that matter ([`contents_query`]) and fed to the [`Miner`].
//! - A stored position older than every available log is a definite error saying how to
//!   recover (a new snapshot).
//! - A multitenant database: the collector connects to the CDB root service (LogMiner runs
//!   there) and reads `database.pdb`'s tables (rows filtered by `SRC_CON_NAME`; the
//!   dictionary and the snapshot through a second session switched to the PDB).
//! - Oracle keeps no per-client retention pointer (no slot): `confirm` only records the
//!   position; how long redo stays is the archive log retention (docs/ORACLE.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtdp_core::model::{ChangeEvent, Op, Source};
use rtdp_core::secret::Secret;
use rtdp_core::status::SnapshotProgress;
use serde::{Deserialize, Serialize};

use super::logminer::{Catalog, Checkpoint, LmRow, Miner, MinerSettings, OraTable};
use super::types::{quote_ident, snapshot_expr, strip_year_sign, text_to_json, OraColumn};
use crate::event::TableShape;
use crate::source::tables::{self, TableName};
use crate::source::{Batch, ChangeSource, OutEvent, Positions, SourceError};

/// What the Oracle source needs from the configuration.
#[derive(Debug, Clone)]
pub struct OracleSettings {
    pub host: String,
    pub port: u16,
    /// Service name (`database.name`); the CDB root service for a multitenant database.
    pub service: String,
    pub user: String,
    pub password: Secret,
    /// `database.pdb`: the PDB whose tables are captured; `None` for a non-CDB.
    pub pdb: Option<String>,
    pub default_schema: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub collector: String,
    pub snapshot: bool,
    pub chunk_rows: u64,
    pub window_scns: u64,
    pub fetch_size: u32,
    pub max_buffered: usize,
    pub lob_enabled: bool,
}

impl OracleSettings {
    /// `//host:port/service` (easy connect).
    pub fn connect_string(&self) -> String {
        format!("//{}:{}/{}", self.host, self.port, self.service)
    }
}

// ---------------------------------------------------------------------------------------
// Pure parts: prerequisites, log selection, the contents query.

/// What the start-up checks found in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `V$DATABASE.LOG_MODE`.
    pub log_mode: String,
    /// `V$DATABASE.SUPPLEMENTAL_LOG_DATA_MIN` (YES | IMPLICIT | NO).
    pub supplemental_min: String,
    /// `V$DATABASE.SUPPLEMENTAL_LOG_DATA_ALL`.
    pub supplemental_all: String,
    /// Captured tables without an ALL-column log group.
    pub tables_without_all: Vec<TableName>,
    /// Objects or privileges the session lacks (as the GRANT names them).
    pub missing_grants: Vec<String>,
    /// The database is a CDB.
    pub cdb: bool,
}

/// Every problem found, each with the SQL that fixes it (run as SYSDBA).
pub fn prereq_problems(f: &Facts, user: &str, pdb: Option<&str>) -> Vec<String> {
    let mut p = Vec::new();
    if f.log_mode != "ARCHIVELOG" {
        p.push(format!(
            "the database is in {} mode; LogMiner needs ARCHIVELOG. Fix (SYSDBA, needs a restart): \
             SHUTDOWN IMMEDIATE; STARTUP MOUNT; ALTER DATABASE ARCHIVELOG; ALTER DATABASE OPEN; \
             (sql/enable-archivelog.sql)",
            if f.log_mode.is_empty() { "an unknown" } else { &f.log_mode }
        ));
    }
    if f.supplemental_min != "YES" && f.supplemental_min != "IMPLICIT" {
        p.push(
            "minimal supplemental logging is off, so LogMiner cannot tie changes to rows. Fix: \
             ALTER DATABASE ADD SUPPLEMENTAL LOG DATA; (sql/setup-supplemental-logging.sql)"
                .to_owned(),
        );
    }
    if f.supplemental_all != "YES" {
        for t in &f.tables_without_all {
            p.push(format!(
                "table {t} has no ALL-column supplemental logging, so updates would carry only \
                 the changed columns. Fix: ALTER TABLE {}.{} ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;",
                quote_ident(&t.schema),
                quote_ident(&t.table)
            ));
        }
    }
    if f.cdb && pdb.is_none() {
        p.push(
            "the database is a CDB: set database.pdb (DATABASE_PDB) to the PDB whose tables \
             are captured, and database.name to the CDB root's service"
                .to_owned(),
        );
    }
    for g in &f.missing_grants {
        let container = if f.cdb { " CONTAINER=ALL" } else { "" };
        p.push(format!(
            "the user lacks {g}. Fix: GRANT {g} TO {user}{container}; (sql/create-logminer-user.sql)"
        ));
    }
    p
}

/// The objects the session reads and the grant that gives each.
pub const REQUIRED_OBJECTS: &[(&str, &str)] = &[
    ("V$DATABASE", "SELECT ON V_$DATABASE"),
    ("V$LOG", "SELECT ON V_$LOG"),
    ("V$LOGFILE", "SELECT ON V_$LOGFILE"),
    ("V$ARCHIVED_LOG", "SELECT ON V_$ARCHIVED_LOG"),
    ("V$LOGMNR_CONTENTS", "SELECT ON V_$LOGMNR_CONTENTS"),
    ("V$LOGMNR_LOGS", "SELECT ON V_$LOGMNR_LOGS"),
    ("V$TRANSACTION", "SELECT ON V_$TRANSACTION"),
    ("V$THREAD", "SELECT ON V_$THREAD"),
];

/// The privileges checked in `SESSION_PRIVS` (LOGMINING exists from 12c).
pub const REQUIRED_PRIVILEGES: &[&str] = &["CREATE SESSION", "LOGMINING", "SELECT ANY TRANSACTION"];

/// A redo log file LogMiner could read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub name: String,
    pub thread: u32,
    pub sequence: u64,
    pub first_scn: u64,
    /// `NEXT_CHANGE#`; `u64::MAX` for the current online log.
    pub next_scn: u64,
    pub online: bool,
}

/// Why no log set covers the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGap {
    pub thread: u32,
    pub needed_scn: u64,
    /// The oldest SCN the thread's logs still cover.
    pub oldest_scn: Option<u64>,
}

/// The logs to add for mining `(from, to]`: for every thread, the files overlapping it
/// (one per sequence: the online one while it exists, else the archived copy). A thread
/// whose oldest file starts after `from + 1` has lost logs: [`LogGap`].
pub fn select_logs(files: &[LogFile], from: u64, to: u64) -> Result<Vec<LogFile>, LogGap> {
    let mut by_thread: HashMap<u32, HashMap<u64, &LogFile>> = HashMap::new();
    for f in files {
        let seqs = by_thread.entry(f.thread).or_default();
        match seqs.get(&f.sequence) {
            Some(prev) if prev.online || !f.online => {}
            _ => {
                seqs.insert(f.sequence, f);
            }
        }
    }
    let mut threads: Vec<_> = by_thread.into_iter().collect();
    threads.sort_by_key(|(t, _)| *t);
    let mut out = Vec::new();
    for (thread, seqs) in threads {
        let mut files: Vec<&LogFile> = seqs.into_values().collect();
        files.sort_by_key(|f| f.sequence);
        let oldest = files.first().map(|f| f.first_scn);
        if oldest.is_none_or(|o| o > from + 1) {
            return Err(LogGap {
                thread,
                needed_scn: from + 1,
                oldest_scn: oldest,
            });
        }
        // Consecutive sequences from the one holding from+1 on.
        let mut prev: Option<u64> = None;
        for f in files {
            if f.next_scn <= from + 1 || f.first_scn > to {
                continue;
            }
            if let Some(p) = prev {
                if f.sequence != p + 1 {
                    return Err(LogGap {
                        thread,
                        needed_scn: f.first_scn,
                        oldest_scn: oldest,
                    });
                }
            }
            prev = Some(f.sequence);
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// The message for a [`LogGap`].
pub fn gap_message(g: &LogGap, collector: &str) -> String {
    format!(
        "the collector must resume at SCN {} but redo thread {} has no log reaching back that far \
         (oldest available: {}): archived logs were removed before they were read. Nothing more \
         can be read from this position. Recover with a new snapshot: stop the collector, delete \
         its stored position (the record keyed \"{collector}\" in collector.offsetsTopic, or \
         collector.offsetFile) and start it again; then keep archived logs longer (RMAN \
         retention, docs/ORACLE.md)",
        g.needed_scn,
        g.thread,
        g.oldest_scn
            .map_or_else(|| "none".to_owned(), |s| format!("SCN {s}"))
    )
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The V$LOGMNR_CONTENTS query for the captured tables: transaction control rows of
/// every transaction, row changes and DDL of the captured tables (LOB operations with
/// `lob`), in the window bound as `:1` (exclusive) and `:2` (inclusive).
pub fn contents_query(tables: &[TableName], pdb: Option<&str>, lob: bool) -> String {
    let mut by_owner: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for t in tables {
        by_owner.entry(&t.schema).or_default().push(&t.table);
    }
    let filter = if by_owner.is_empty() {
        "1 = 0".to_owned()
    } else {
        by_owner
            .iter()
            .map(|(o, ts)| {
                // IN lists hold at most 1000 entries.
                let lists: Vec<String> = ts
                    .chunks(1000)
                    .map(|c| {
                        format!(
                            "TABLE_NAME IN ({})",
                            c.iter().map(|t| sql_str(t)).collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect();
                format!("(SEG_OWNER = {} AND ({}))", sql_str(o), lists.join(" OR "))
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let ops = if lob {
        "1, 2, 3, 5, 9, 10, 11, 28, 29"
    } else {
        "1, 2, 3, 5"
    };
    let con = pdb.map_or(String::new(), |p| {
        format!(" AND SRC_CON_NAME = {}", sql_str(p))
    });
    format!(
        "SELECT SCN, START_SCN, COMMIT_SCN, TO_CHAR(TIMESTAMP, 'YYYY-MM-DD HH24:MI:SS'), \
         RAWTOHEX(XID), OPERATION_CODE, SEG_OWNER, TABLE_NAME, ROW_ID, ROLLBACK, CSF, SQL_REDO, \
         THREAD#, SRC_CON_NAME FROM V$LOGMNR_CONTENTS WHERE SCN > :1 AND SCN <= :2 AND \
         (OPERATION_CODE IN (6, 7, 36) OR (OPERATION_CODE IN ({ops}){con} AND ({filter})))"
    )
}

/// Schemas Oracle itself owns (never captured by `*`).
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "SYS",
    "SYSTEM",
    "OUTLN",
    "DBSNMP",
    "APPQOSSYS",
    "AUDSYS",
    "CTXSYS",
    "DVSYS",
    "GSMADMIN_INTERNAL",
    "LBACSYS",
    "MDSYS",
    "OJVMSYS",
    "OLAPSYS",
    "ORDDATA",
    "ORDSYS",
    "WMSYS",
    "XDB",
    "GSMCATUSER",
    "DBSFWUSER",
    "REMOTE_SCHEDULER_AGENT",
    "SYSBACKUP",
    "SYSDG",
    "SYSKM",
    "SYSRAC",
    "SYS$UMF",
    "ANONYMOUS",
    "DIP",
    "GGSYS",
    "MDDATA",
    "ORACLE_OCM",
    "SI_INFORMTN_SCHEMA",
    "XS$NULL",
    "DGPDB_INT",
    "GSMUSER",
    "PDBADMIN",
];

/// Oracle folds unquoted names to upper case: an entry written without upper-case letters
/// is upper-cased; one with any is kept as written (a quoted mixed-case name).
pub fn fold_entry(e: &str) -> String {
    if e.chars().any(|c| c.is_ascii_uppercase()) {
        e.to_owned()
    } else {
        e.to_ascii_uppercase()
    }
}

/// How a connection failure is treated.
pub fn classify(e: &oracle::Error, what: &str) -> SourceError {
    let code = e.db_error().map(|d| d.code());
    let text = e.to_string();
    if text.contains("DPI-1047") {
        return SourceError::fatal(format!(
            "{what}: the Oracle client library (libclntsh) cannot be loaded. Install Oracle \
             Instant Client (basic or basic-lite) and put it on LD_LIBRARY_PATH (docs/ORACLE.md): {text}"
        ));
    }
    match code {
        // invalid credentials, no CREATE SESSION, locked/expired account, unknown PDB
        Some(1017 | 1045 | 28000 | 28001 | 65011) => {
            SourceError::fatal(format!("{what}: {}", redact(&text)))
        }
        // PL/SQL: DBMS_LOGMNR not visible (PLS-00201 inside ORA-06550)
        Some(6550) => SourceError::fatal(format!(
            "{what}: {} (EXECUTE ON DBMS_LOGMNR is missing: GRANT EXECUTE ON DBMS_LOGMNR TO <user>; \
             sql/create-logminer-user.sql)",
            redact(&text)
        )),
        // table or view does not exist / insufficient privileges
        Some(942 | 1031) => SourceError::fatal(format!(
            "{what}: {} (a grant is missing: sql/create-logminer-user.sql)",
            redact(&text)
        )),
        _ => SourceError::transient(format!("{what}: {}", redact(&text))),
    }
}

/// Oracle messages never carry the password, but can quote a statement: keep the first
/// line only.
fn redact(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------
// The checkpoint and the live source.

/// Where a snapshot stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// The snapshot reads `AS OF SCN` this.
    pub scn: u64,
    /// Index into the captured tables (sorted) of the table being read.
    pub table: usize,
    /// The last ROWID read of that table.
    pub last_rowid: Option<String>,
    /// Rows read so far (all tables).
    pub rows: u64,
}

/// The Oracle source's checkpoint (stored with the events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleCheckpoint {
    pub stream: Checkpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
}

struct Conns {
    /// LogMiner (CDB root for a multitenant database).
    mine: oracle::Connection,
    /// Dictionary and snapshot reads (in the PDB).
    query: oracle::Connection,
}

/// The live source.
pub struct OracleSource {
    s: OracleSettings,
    conns: Option<Conns>,
    tables: Vec<TableName>,
    cache: HashMap<(String, String), Arc<OraTable>>,
    miner: Option<Miner>,
    /// Mined through this SCN.
    mined: u64,
    window: u64,
    logs_loaded: Vec<String>,
    snap: Option<SnapshotState>,
    snap_started: Option<Instant>,
    rows_estimated: Option<u64>,
    query_sql: String,
    current: Option<OracleCheckpoint>,
    confirmed: Option<OracleCheckpoint>,
    tz_offset_secs: i64,
}

impl OracleSource {
    pub fn new(s: OracleSettings) -> Self {
        let window = s.window_scns;
        Self {
            s,
            conns: None,
            tables: Vec::new(),
            cache: HashMap::new(),
            miner: None,
            mined: 0,
            window,
            logs_loaded: Vec::new(),
            snap: None,
            snap_started: None,
            rows_estimated: None,
            query_sql: String::new(),
            current: None,
            confirmed: None,
            tz_offset_secs: 0,
        }
    }

    fn connect(&self) -> Result<Conns, SourceError> {
        let open = || -> Result<oracle::Connection, SourceError> {
            let c = oracle::Connector::new(
                self.s.user.as_str(),
                self.s.password.expose(),
                self.s.connect_string(),
            )
            .connect()
            .map_err(|e| {
                classify(
                    &e,
                    &format!("connecting to Oracle at {}", self.s.connect_string()),
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
        if let Some(pdb) = &self.s.pdb {
            query
                .execute(
                    &format!("ALTER SESSION SET CONTAINER = {}", quote_ident(pdb)),
                    &[],
                )
                .map_err(|e| classify(&e, &format!("switching to PDB {pdb} (database.pdb)")))?;
        }
        Ok(Conns { mine, query })
    }

    fn conns(&self) -> Result<&Conns, SourceError> {
        self.conns
            .as_ref()
            .ok_or_else(|| SourceError::transient("not connected to Oracle"))
    }

    fn current_scn(&self) -> Result<u64, SourceError> {
        let c = self.conns()?;
        c.mine
            .query_row_as::<u64>("SELECT CURRENT_SCN FROM V$DATABASE", &[])
            .map_err(|e| classify(&e, "reading the current SCN"))
    }

    fn discover(&mut self) -> Result<(), SourceError> {
        let c = self.conns()?;
        let rows = c
            .query
            .query_as::<(String, String)>(
                "SELECT OWNER, TABLE_NAME FROM ALL_TABLES WHERE NESTED = 'NO' AND SECONDARY = 'N' \
                 AND TEMPORARY = 'N' AND IOT_TYPE IS NULL",
                &[],
            )
            .map_err(|e| classify(&e, "listing tables (ALL_TABLES)"))?;
        let mut available = Vec::new();
        for r in rows {
            let (schema, table) = r.map_err(|e| classify(&e, "listing tables"))?;
            if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
                continue;
            }
            available.push(TableName { schema, table });
        }
        let default_schema = if self.s.default_schema.is_empty() {
            self.s.user.to_ascii_uppercase()
        } else {
            fold_entry(&self.s.default_schema)
        };
        let inc: Vec<String> = self.s.include.iter().map(|e| fold_entry(e)).collect();
        let exc: Vec<String> = self.s.exclude.iter().map(|e| fold_entry(e)).collect();
        let inc: Vec<&str> = inc.iter().map(String::as_str).collect();
        let exc: Vec<&str> = exc.iter().map(String::as_str).collect();
        let mut selected = tables::select(&inc, &exc, &default_schema, &available)
            .map_err(|p| SourceError::fatal(p.join("; ")))?;
        selected.sort();
        if selected.is_empty() {
            return Err(SourceError::fatal(
                "no table matches database.tables (minus database.excludeTables) among the \
                 tables this user can see",
            ));
        }
        self.tables = selected;
        self.query_sql = contents_query(&self.tables, self.s.pdb.as_deref(), self.s.lob_enabled);
        Ok(())
    }

    fn facts(&self) -> Result<Facts, SourceError> {
        let c = self.conns()?;
        let mut f = Facts::default();
        for (view, grant) in REQUIRED_OBJECTS {
            if let Err(e) = c
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
            let (log_mode, min, all, cdb) = c
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
        let privs: Vec<String> = c
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
        if !privs.iter().any(|p| p == "FLASHBACK ANY TABLE") && self.s.snapshot {
            // A per-table FLASHBACK grant also works: probe each table.
            for t in &self.tables {
                let sql = format!(
                    "SELECT COUNT(*) FROM {}.{} AS OF SCN (SELECT CURRENT_SCN FROM V$DATABASE) WHERE 1 = 0",
                    quote_ident(&t.schema),
                    quote_ident(&t.table)
                );
                if let Err(e) = c.query.query_row_as::<u64>(&sql, &[]) {
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
        let groups: Vec<(String, String)> = c
            .query
            .query_as::<(String, String)>(
                "SELECT OWNER, TABLE_NAME FROM ALL_LOG_GROUPS WHERE LOG_GROUP_TYPE = 'ALL COLUMN LOGGING'",
                &[],
            )
            .map_err(|e| classify(&e, "reading ALL_LOG_GROUPS"))?
            .filter_map(Result::ok)
            .collect();
        f.tables_without_all = self
            .tables
            .iter()
            .filter(|t| !groups.iter().any(|(o, n)| *o == t.schema && *n == t.table))
            .cloned()
            .collect();
        Ok(f)
    }

    fn load_logs(&mut self, from: u64, to: u64) -> Result<(), SourceError> {
        let c = self.conns()?;
        let mut files = Vec::new();
        let online = c
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
        let archived = c
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
        let chosen = select_logs(&files, from, to)
            .map_err(|g| SourceError::fatal(gap_message(&g, &self.s.collector)))?;
        let names: Vec<String> = chosen.iter().map(|f| f.name.clone()).collect();
        if names == self.logs_loaded {
            return Ok(());
        }
        let _ = c.mine.execute("BEGIN DBMS_LOGMNR.END_LOGMNR; END;", &[]);
        for (i, n) in names.iter().enumerate() {
            let opt = if i == 0 {
                "DBMS_LOGMNR.NEW"
            } else {
                "DBMS_LOGMNR.ADDFILE"
            };
            c.mine
                .execute(
                    &format!(
                        "BEGIN DBMS_LOGMNR.ADD_LOGFILE(LOGFILENAME => :1, OPTIONS => {opt}); END;"
                    ),
                    &[n],
                )
                .map_err(|e| classify(&e, "adding a log file to LogMiner"))?;
        }
        tracing::info!(
            files = names.len(),
            from_scn = from + 1,
            "LogMiner log files (re)loaded"
        );
        self.logs_loaded = names;
        Ok(())
    }

    fn snapshot_chunk(&mut self, mut st: SnapshotState) -> Result<Batch, SourceError> {
        let chunk = self.s.chunk_rows.max(1);
        let Some(t) = self.tables.get(st.table).cloned() else {
            // Done: streaming from the snapshot SCN.
            self.snap = None;
            let cp = self.current.clone().map(|mut c| {
                c.snapshot = None;
                c
            });
            self.current = cp.clone();
            tracing::info!(rows = st.rows, scn = st.scn, "snapshot done; streaming");
            return Ok(Batch {
                checkpoint: cp.map(|c| serde_json::to_value(c).unwrap_or_default()),
                snapshot: true,
                ..Default::default()
            });
        };
        let table = self.table(&t.schema, &t.table)?;
        let cols: Vec<OraColumn> = self.ora_columns(&t.schema, &t.table)?;
        let cols: Vec<&OraColumn> = cols
            .iter()
            .filter(|c| table.shape.columns.iter().any(|x| x.name == c.name))
            .collect();
        let select: Vec<String> = cols.iter().map(|c| snapshot_expr(c)).collect();
        let sql =
            format!(
            "SELECT ROWIDTOCHAR(ROWID), {} FROM {}.{} AS OF SCN :1 WHERE ROWID > CHARTOROWID(:2) \
             ORDER BY ROWID FETCH FIRST {chunk} ROWS ONLY",
            if select.is_empty() { "NULL".to_owned() } else { select.join(", ") },
            quote_ident(&t.schema),
            quote_ident(&t.table)
        );
        let last = st
            .last_rowid
            .clone()
            .unwrap_or_else(|| "AAAAAAAAAAAAAAAAAA".to_owned());
        let c = self.conns()?;
        let mut stmt = c
            .query
            .statement(&sql)
            .fetch_array_size(self.s.fetch_size)
            .build()
            .map_err(|e| classify(&e, &format!("reading {t} AS OF SCN {}", st.scn)))?;
        let rows = stmt
            .query(&[&st.scn, &last])
            .map_err(|e| classify(&e, &format!("reading {t} AS OF SCN {}", st.scn)))?;
        let source = Source {
            connector: "oracle".into(),
            name: self.s.collector.clone(),
            db: Some(self.s.pdb.clone().unwrap_or_else(|| self.s.service.clone())),
            ts_ms: now_ms(),
            snapshot: true,
            scn: Some(st.scn.to_string()),
            commit_scn: Some(st.scn.to_string()),
            tx_id: Some(String::new()),
            ..Default::default()
        };
        let mut events = Vec::new();
        let mut n = 0u64;
        for r in rows {
            let r = r.map_err(|e| classify(&e, &format!("reading {t}")))?;
            let rowid: String = r.get(0).map_err(|e| classify(&e, "reading ROWID"))?;
            let mut image = rtdp_core::model::Row::new();
            for (i, c) in cols.iter().enumerate() {
                let idx = table
                    .shape
                    .columns
                    .iter()
                    .position(|x| x.name == c.name)
                    .unwrap_or(0);
                let col = &table.shape.columns[idx];
                let v: Option<String> = if c.data_type == "BLOB" {
                    r.get::<_, Option<Vec<u8>>>(i + 1)
                        .map(|b| b.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()))
                } else {
                    r.get::<_, Option<String>>(i + 1)
                }
                .map_err(|e| classify(&e, &format!("reading column {} of {t}", c.name)))?;
                let j = match v {
                    None => serde_json::Value::Null,
                    Some(text) => {
                        let text = strip_year_sign(&text);
                        let kind = super::types::column_for(c, false).1;
                        text_to_json(col, kind, &text).unwrap_or(serde_json::Value::String(text))
                    }
                };
                image.insert(c.name.clone(), j);
            }
            let mut src = source.clone();
            src.schema = Some(t.schema.clone());
            src.table = t.table.clone();
            src.index = Some(st.rows + n);
            let key = table.shape.kafka_key(Some(&image));
            events.push(OutEvent {
                key,
                event: ChangeEvent {
                    op: Op::Read,
                    before: None,
                    after: Some(image),
                    event_id: rtdp_core::ids::event_id(
                        &self.s.collector,
                        &format!("snapshot:{}", st.scn),
                        st.rows + n,
                    ),
                    source: src,
                    ts_ms: now_ms(),
                    columns: table.shape.columns.as_ref().clone(),
                },
            });
            st.last_rowid = Some(rowid);
            n += 1;
        }
        st.rows += n;
        if n < chunk {
            st.table += 1;
            st.last_rowid = None;
        }
        self.snap = Some(st.clone());
        let mut cp = self.current.clone().unwrap_or_else(|| OracleCheckpoint {
            stream: Checkpoint {
                restart_scn: st.scn + 1,
                commit_scn: st.scn,
                tx_id: String::new(),
                index: 0,
                mined_scn: st.scn,
            },
            snapshot: None,
        });
        cp.snapshot = Some(st);
        self.current = Some(cp.clone());
        Ok(Batch {
            events,
            checkpoint: Some(serde_json::to_value(cp).unwrap_or_default()),
            last_commit_ts_ms: None,
            transactions: 0,
            snapshot: true,
        })
    }

    fn ora_columns(&self, owner: &str, table: &str) -> Result<Vec<OraColumn>, SourceError> {
        let c = self.conns()?;
        let rows = c
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

    fn key_columns(&self, owner: &str, table: &str) -> Result<Vec<String>, SourceError> {
        let c = self.conns()?;
        let rows = c
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

    fn table(&mut self, owner: &str, table: &str) -> Result<Arc<OraTable>, SourceError> {
        let k = (owner.to_owned(), table.to_owned());
        if let Some(t) = self.cache.get(&k) {
            return Ok(t.clone());
        }
        let cols = self.ora_columns(owner, table)?;
        let key = self.key_columns(owner, table)?;
        let t = Arc::new(OraTable::new(owner, table, &cols, &key, self.s.lob_enabled));
        self.cache.insert(k, t.clone());
        Ok(t)
    }

    /// Starts LogMiner on `(from, to]` and reads the rows of the captured tables.
    fn read_window(&self, from: u64, to: u64) -> Result<Vec<LmRow>, SourceError> {
        let c = self.conns()?;
        c.mine
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
        let mut stmt = c
            .mine
            .statement(&self.query_sql)
            .fetch_array_size(self.s.fetch_size)
            .build()
            .map_err(|e| classify(&e, "preparing the V$LOGMNR_CONTENTS query"))?;
        let rows = stmt
            .query(&[&from, &to])
            .map_err(|e| classify(&e, "reading V$LOGMNR_CONTENTS"))?;
        let mut lm_rows = Vec::new();
        for r in rows {
            let r = r.map_err(|e| classify(&e, "reading V$LOGMNR_CONTENTS"))?;
            let g = |e: oracle::Error| classify(&e, "reading a V$LOGMNR_CONTENTS row");
            lm_rows.push(LmRow {
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
        Ok(lm_rows)
    }

    fn stream_window(&mut self) -> Result<Batch, SourceError> {
        let current = self.current_scn()?;
        if current <= self.mined {
            return Ok(Batch::default());
        }
        let to = current.min(self.mined + self.window);
        let from = self.mined;
        self.load_logs(from, to)?;
        let started = Instant::now();
        let lm_rows = self.read_window(from, to)?;
        let mut miner = self
            .miner
            .take()
            .ok_or_else(|| SourceError::transient("source not started"))?;
        let result = (|| {
            let mut cat = LiveCatalog { src: self };
            for row in lm_rows {
                miner.push(row, &mut cat)?;
            }
            miner.end_window(to, &mut cat)
        })();
        let problems: Vec<String> = miner.problems.drain(..).collect();
        for r in miner.ddl_reports.drain(..) {
            tracing::warn!(report = %r, "DDL on a captured table");
        }
        let (events, transactions, last_ts) = miner.take_ready();
        self.miner = Some(miner);
        let cp = result.map_err(SourceError::fatal)?;
        if !problems.is_empty() {
            // Nothing of this window is published; the next start reads it again.
            return Err(SourceError::fatal(format!(
                "{} change(s) could not be read; first: {}. Nothing of SCNs {}..={to} was \
                 published. Capture the window with docs/ORACLE.md \"Support tools\" and report it",
                problems.len(),
                problems[0],
                from + 1
            )));
        }
        self.mined = to;
        // Behind: take bigger windows (up to 10×) while a window reads quickly.
        self.window = if current > to && started.elapsed() < Duration::from_secs(5) {
            (self.window * 2).min(self.s.window_scns * 10)
        } else {
            self.s.window_scns
        };
        let cp = OracleCheckpoint {
            stream: cp,
            snapshot: None,
        };
        self.current = Some(cp.clone());
        Ok(Batch {
            events,
            checkpoint: Some(serde_json::to_value(cp).unwrap_or_default()),
            last_commit_ts_ms: last_ts,
            transactions,
            snapshot: false,
        })
    }
}

/// The dictionary through the source's query session.
struct LiveCatalog<'a> {
    src: &'a mut OracleSource,
}

impl Catalog for LiveCatalog<'_> {
    fn table(&mut self, owner: &str, table: &str) -> Result<Option<Arc<OraTable>>, String> {
        let captured = self
            .src
            .tables
            .iter()
            .any(|t| t.schema == owner && t.table == table);
        if !captured {
            return Ok(None);
        }
        self.src
            .table(owner, table)
            .map(Some)
            .map_err(|e| e.message)
    }

    fn refresh(&mut self, owner: &str, table: &str) -> Result<(), String> {
        self.src.cache.remove(&(owner.to_owned(), table.to_owned()));
        self.src
            .table(owner, table)
            .map(|_| ())
            .map_err(|e| e.message)
    }
}

impl ChangeSource for OracleSource {
    fn connector(&self) -> &'static str {
        "oracle"
    }

    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError> {
        self.conns = None;
        self.miner = None;
        self.logs_loaded.clear();
        self.cache.clear();
        self.conns = Some(self.connect()?);
        self.discover()?;
        let facts = self.facts()?;
        let problems = prereq_problems(
            &facts,
            &self.s.user.to_ascii_uppercase(),
            self.s.pdb.as_deref(),
        );
        if !problems.is_empty() {
            return Err(SourceError::fatal(format!(
                "Oracle is not ready for capture ({} problem(s)): {}",
                problems.len(),
                problems.join(" | ")
            )));
        }
        self.tz_offset_secs = self
            .conns()?
            .mine
            .query_row_as::<i64>(
                "SELECT ROUND((CAST(SYSTIMESTAMP AS DATE) - CAST(SYS_EXTRACT_UTC(SYSTIMESTAMP) AS DATE)) * 86400) FROM DUAL",
                &[],
            )
            .map_err(|e| classify(&e, "reading the database's time zone"))?;
        let stored: Option<OracleCheckpoint> = match stored {
            None => None,
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| {
                SourceError::fatal(format!(
                    "the stored position is not an Oracle position ({e}); a collector name reused \
                     across databases? Use a new collector.name or delete the stored position"
                ))
            })?),
        };
        let cp = match stored {
            Some(cp) => cp,
            None => {
                // Where streaming will begin: the current SCN, mining from the oldest open
                // transaction so a transaction straddling it keeps its first rows.
                let scn = self.current_scn()?;
                // In the PDB's session: from the CDB root a common user sees only the
                // root's transactions in V$TRANSACTION.
                let oldest: Option<u64> = self
                    .conns()?
                    .query
                    .query_row_as::<Option<u64>>("SELECT MIN(START_SCN) FROM V$TRANSACTION", &[])
                    .map_err(|e| classify(&e, "reading V$TRANSACTION"))?;
                let stream = Checkpoint {
                    restart_scn: oldest.map_or(scn + 1, |o| o.min(scn + 1)),
                    commit_scn: scn,
                    tx_id: String::new(),
                    index: 0,
                    mined_scn: scn,
                };
                let snapshot = self.s.snapshot.then_some(SnapshotState {
                    scn,
                    table: 0,
                    last_rowid: None,
                    rows: 0,
                });
                if snapshot.is_some() {
                    tracing::info!(
                        scn,
                        tables = self.tables.len(),
                        "initial snapshot AS OF SCN"
                    );
                }
                OracleCheckpoint { stream, snapshot }
            }
        };
        self.mined = cp.stream.restart_scn.saturating_sub(1);
        self.miner = Some(Miner::new(
            MinerSettings {
                collector: self.s.collector.clone(),
                db: Some(self.s.pdb.clone().unwrap_or_else(|| self.s.service.clone())),
                max_buffered: self.s.max_buffered,
                lob_enabled: self.s.lob_enabled,
                tz_offset_secs: self.tz_offset_secs,
            },
            Some(cp.stream.clone()),
        ));
        self.snap = cp.snapshot.clone();
        if self.snap.is_some() && self.snap_started.is_none() {
            self.snap_started = Some(Instant::now());
            self.rows_estimated = self.estimate_rows().ok();
        }
        // Fail now, not later, when the position is older than the logs.
        if self.snap.is_none() {
            let to = self.current_scn()?.max(self.mined + 1);
            self.load_logs(self.mined, to.min(self.mined + self.window))?;
        }
        self.current = Some(cp.clone());
        self.confirmed = Some(cp);
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Batch, SourceError> {
        if let Some(st) = self.snap.clone() {
            return self.snapshot_chunk(st);
        }
        self.stream_window()
    }

    fn confirm(&mut self, checkpoint: &serde_json::Value) -> Result<(), SourceError> {
        let cp: OracleCheckpoint = serde_json::from_value(checkpoint.clone())
            .map_err(|e| SourceError::transient(format!("bad checkpoint: {e}")))?;
        self.confirmed = Some(cp);
        Ok(())
    }

    fn snapshot_progress(&self) -> Option<SnapshotProgress> {
        let st = self.snap.as_ref()?;
        Some(SnapshotProgress::new(
            st.rows,
            self.rows_estimated,
            self.snap_started.map_or(Duration::ZERO, |s| s.elapsed()),
        ))
    }

    fn positions(&self) -> Positions {
        let text = |c: &Option<OracleCheckpoint>| {
            c.as_ref().map_or_else(String::new, |c| {
                format!(
                    "scn {} (commit {} {})",
                    c.stream.mined_scn, c.stream.commit_scn, c.stream.tx_id
                )
            })
        };
        Positions {
            current: text(&self.current),
            confirmed: text(&self.confirmed),
            current_value: self.current.as_ref().map(|c| c.stream.mined_scn),
            confirmed_value: self.confirmed.as_ref().map(|c| c.stream.mined_scn),
        }
    }
}

impl OracleSource {
    fn estimate_rows(&self) -> Result<u64, SourceError> {
        let c = self.conns()?;
        let mut total = 0;
        for t in &self.tables {
            let n: Option<u64> = c
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

    /// The shape of a captured table (for tests and verify).
    pub fn shape(&mut self, owner: &str, table: &str) -> Result<TableShape, SourceError> {
        Ok(self.table(owner, table)?.shape.clone())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tn(s: &str, t: &str) -> TableName {
        TableName {
            schema: s.into(),
            table: t.into(),
        }
    }

    #[test]
    fn every_missing_prerequisite_is_named_with_its_fix() {
        let ok = Facts {
            log_mode: "ARCHIVELOG".into(),
            supplemental_min: "YES".into(),
            supplemental_all: "NO".into(),
            ..Default::default()
        };
        assert!(prereq_problems(&ok, "RTDP", None).is_empty());
        let bad = Facts {
            log_mode: "NOARCHIVELOG".into(),
            supplemental_min: "NO".into(),
            supplemental_all: "NO".into(),
            tables_without_all: vec![tn("SHOP", "Order Items")],
            missing_grants: vec!["LOGMINING".into(), "SELECT ON V_$LOGMNR_CONTENTS".into()],
            cdb: true,
        };
        let p = prereq_problems(&bad, "C##RTDP", None);
        assert_eq!(p.len(), 6, "{p:#?}");
        assert!(p[0].contains("NOARCHIVELOG") && p[0].contains("ALTER DATABASE ARCHIVELOG"));
        assert!(p[1].contains("ALTER DATABASE ADD SUPPLEMENTAL LOG DATA;"));
        assert!(p[2].contains(
            r#"ALTER TABLE "SHOP"."Order Items" ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;"#
        ));
        assert!(p[3].contains("database.pdb"));
        assert!(p[4].contains("GRANT LOGMINING TO C##RTDP CONTAINER=ALL;"));
        // Database-wide ALL-column logging covers every table.
        let all = Facts {
            supplemental_all: "YES".into(),
            ..bad.clone()
        };
        assert!(!prereq_problems(&all, "U", Some("PDB1"))
            .iter()
            .any(|m| m.contains("Order Items")));
        assert!(!prereq_problems(&all, "U", Some("PDB1"))
            .iter()
            .any(|m| m.contains("database.pdb")));
    }

    fn lf(thread: u32, seq: u64, first: u64, next: u64, online: bool) -> LogFile {
        LogFile {
            name: format!("{}_{thread}_{seq}", if online { "redo" } else { "arch" }),
            thread,
            sequence: seq,
            first_scn: first,
            next_scn: next,
            online,
        }
    }

    #[test]
    fn logs_cover_the_window_per_thread_preferring_online_copies() {
        let files = vec![
            lf(1, 10, 100, 200, false),
            lf(1, 11, 200, 300, false),
            lf(1, 11, 200, 300, true),
            lf(1, 12, 300, u64::MAX, true),
            lf(2, 5, 90, 250, false),
            lf(2, 6, 250, u64::MAX, true),
        ];
        let names = |v: Vec<LogFile>| v.into_iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(
            names(select_logs(&files, 150, 260).unwrap()),
            vec!["arch_1_10", "redo_1_11", "arch_2_5", "redo_2_6"]
        );
        assert_eq!(
            names(select_logs(&files, 310, 400).unwrap()),
            vec!["redo_1_12", "redo_2_6"]
        );
        // SCN 50 is older than every log of thread 1: a gap, with the way out.
        let g = select_logs(&files, 49, 120).unwrap_err();
        assert_eq!(
            g,
            LogGap {
                thread: 1,
                needed_scn: 50,
                oldest_scn: Some(100)
            }
        );
        let m = gap_message(&g, "ora1");
        assert!(m.contains("SCN 50") && m.contains("new snapshot") && m.contains("\"ora1\""));
        // A missing sequence in the middle is a gap too.
        let holed = vec![lf(1, 10, 100, 200, false), lf(1, 12, 300, u64::MAX, true)];
        assert!(select_logs(&holed, 150, 350).is_err());
    }

    #[test]
    fn the_contents_query_filters_captured_tables_and_keeps_transaction_rows() {
        let q = contents_query(
            &[tn("SHOP", "ORDERS"), tn("SHOP", "IT'S"), tn("HR", "EMP")],
            Some("PDB1"),
            false,
        );
        assert!(q.contains("OPERATION_CODE IN (6, 7, 36)"));
        assert!(q.contains("OPERATION_CODE IN (1, 2, 3, 5) AND SRC_CON_NAME = 'PDB1'"));
        assert!(q.contains("(SEG_OWNER = 'HR' AND (TABLE_NAME IN ('EMP')))"));
        assert!(q.contains("TABLE_NAME IN ('ORDERS', 'IT''S')"));
        assert!(q.contains("SCN > :1 AND SCN <= :2"));
        let q = contents_query(&[tn("S", "T")], None, true);
        assert!(q.contains("1, 2, 3, 5, 9, 10, 11, 28, 29") && !q.contains("SRC_CON_NAME ="));
        let many: Vec<TableName> = (0..1500).map(|i| tn("S", &format!("T{i}"))).collect();
        assert_eq!(
            contents_query(&many, None, false)
                .matches("TABLE_NAME IN (")
                .count(),
            2
        );
    }

    #[test]
    fn unquoted_lower_case_names_fold_to_upper_case() {
        assert_eq!(fold_entry("shop.orders"), "SHOP.ORDERS");
        assert_eq!(fold_entry("shop.*"), "SHOP.*");
        assert_eq!(fold_entry("SHOP.MixedCase"), "SHOP.MixedCase");
    }
}
