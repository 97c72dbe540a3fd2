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
use super::types::{quote_ident, strip_year_sign, text_to_json, OraColumn};
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

/// One snapshot row: its ROWID and the text of each selected column (BLOB as hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub rowid: String,
    pub values: Vec<Option<String>>,
}

/// What the source needs from an Oracle database; [`super::live::LiveDb`] runs it as
/// SQL. Everything that decides what to read stays in [`OracleSource`], so it is tested
/// against a simulated database (tests below).
pub trait OracleDb: Send {
    fn current_scn(&mut self) -> Result<u64, SourceError>;
    /// The start SCN of the oldest open transaction (in the captured PDB).
    fn oldest_open_transaction(&mut self) -> Result<Option<u64>, SourceError>;
    /// Seconds to add to the database's local clock (V$LOGMNR_CONTENTS.TIMESTAMP) for UTC.
    fn tz_offset_secs(&mut self) -> Result<i64, SourceError>;
    /// Tables the user can see, without Oracle's own schemas and IOTs.
    fn visible_tables(&mut self) -> Result<Vec<TableName>, SourceError>;
    fn facts(&mut self, tables: &[TableName], snapshot: bool) -> Result<Facts, SourceError>;
    fn columns(&mut self, owner: &str, table: &str) -> Result<Vec<OraColumn>, SourceError>;
    fn key_columns(&mut self, owner: &str, table: &str) -> Result<Vec<String>, SourceError>;
    /// Online and archived logs that may reach past `from`.
    fn log_files(&mut self, from: u64) -> Result<Vec<LogFile>, SourceError>;
    /// Ends the LogMiner session and adds these files.
    fn load_logs(&mut self, names: &[String]) -> Result<(), SourceError>;
    /// Starts LogMiner on `(from, to]` and reads `query`'s rows.
    fn mine(
        &mut self,
        query: &str,
        from: u64,
        to: u64,
        fetch: u32,
    ) -> Result<Vec<LmRow>, SourceError>;
    /// Up to `limit` rows of `t` `AS OF SCN scn` after `after_rowid`, in ROWID order.
    fn snapshot_rows(
        &mut self,
        t: &TableName,
        cols: &[OraColumn],
        scn: u64,
        after_rowid: Option<&str>,
        limit: u64,
        fetch: u32,
    ) -> Result<Vec<SnapshotRow>, SourceError>;
    fn estimate_rows(&mut self, tables: &[TableName]) -> Result<u64, SourceError>;
}

/// Opens a database session pair for the settings.
pub type Connect = Box<dyn Fn(&OracleSettings) -> Result<Box<dyn OracleDb>, SourceError> + Send>;

/// The Oracle source.
pub struct OracleSource {
    s: OracleSettings,
    connect: Connect,
    db: Option<Box<dyn OracleDb>>,
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
}

impl OracleSource {
    /// The source over a real database ([`super::live::LiveDb`]).
    pub fn new(s: OracleSettings) -> Self {
        Self::with_connect(s, Box::new(super::live::LiveDb::connect))
    }

    /// The source over whatever `connect` opens (tests: a simulated database).
    pub fn with_connect(s: OracleSettings, connect: Connect) -> Self {
        let window = s.window_scns;
        Self {
            s,
            connect,
            db: None,
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
        }
    }

    fn db(&mut self) -> Result<&mut dyn OracleDb, SourceError> {
        match self.db.as_mut() {
            Some(d) => Ok(d.as_mut()),
            None => Err(SourceError::transient("not connected to Oracle")),
        }
    }

    fn discover(&mut self) -> Result<(), SourceError> {
        let available = self.db()?.visible_tables()?;
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

    /// Makes sure LogMiner holds the logs covering `(from, to]`; a position older than
    /// every log is a fatal error saying how to recover.
    fn load_logs(&mut self, from: u64, to: u64) -> Result<(), SourceError> {
        let files = self.db()?.log_files(from)?;
        let chosen = select_logs(&files, from, to)
            .map_err(|g| SourceError::fatal(gap_message(&g, &self.s.collector)))?;
        let names: Vec<String> = chosen.iter().map(|f| f.name.clone()).collect();
        if names == self.logs_loaded {
            return Ok(());
        }
        self.db()?.load_logs(&names)?;
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
        let fetch = self.s.fetch_size;
        let rows = self.db()?.snapshot_rows(
            &t,
            &table.ora,
            st.scn,
            st.last_rowid.as_deref(),
            chunk,
            fetch,
        )?;
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
        let n = rows.len() as u64;
        let mut events = Vec::with_capacity(rows.len());
        for (i, r) in rows.into_iter().enumerate() {
            let index = st.rows + i as u64;
            let image = snapshot_image(&table, &r.values);
            let mut src = source.clone();
            src.schema = Some(t.schema.clone());
            src.table = t.table.clone();
            src.index = Some(index);
            events.push(OutEvent {
                key: table.shape.kafka_key(Some(&image)),
                event: ChangeEvent {
                    op: Op::Read,
                    before: None,
                    after: Some(image),
                    event_id: rtdp_core::ids::event_id(
                        &self.s.collector,
                        &format!("snapshot:{}", st.scn),
                        index,
                    ),
                    source: src,
                    ts_ms: now_ms(),
                    columns: table.shape.columns.as_ref().clone(),
                },
                payload: None,
            });
            st.last_rowid = Some(r.rowid);
        }
        st.rows += n;
        if n < chunk {
            st.table += 1;
            st.last_rowid = None;
        }
        self.snap = Some(st.clone());
        let mut cp = self
            .current
            .clone()
            .ok_or_else(|| SourceError::transient("source not started"))?;
        cp.snapshot = Some(st);
        self.current = Some(cp.clone());
        Ok(Batch {
            events,
            checkpoint: Some(serde_json::to_value(cp).unwrap_or_default()),
            last_commit_ts_ms: None,
            transactions: 0,
            snapshot: true,
            truncated: Vec::new(),
        })
    }

    fn table(&mut self, owner: &str, table: &str) -> Result<Arc<OraTable>, SourceError> {
        let k = (owner.to_owned(), table.to_owned());
        if let Some(t) = self.cache.get(&k) {
            return Ok(t.clone());
        }
        let cols = self.db()?.columns(owner, table)?;
        let key = self.db()?.key_columns(owner, table)?;
        let t = Arc::new(OraTable::new(owner, table, &cols, &key, self.s.lob_enabled));
        self.cache.insert(k, t.clone());
        Ok(t)
    }

    fn stream_window(&mut self) -> Result<Batch, SourceError> {
        let current = self.db()?.current_scn()?;
        if current <= self.mined {
            return Ok(Batch::default());
        }
        let to = current.min(self.mined + self.window);
        let from = self.mined;
        self.load_logs(from, to)?;
        let started = Instant::now();
        let (query, fetch) = (self.query_sql.clone(), self.s.fetch_size);
        let lm_rows = self.db()?.mine(&query, from, to, fetch)?;
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
        // A dictionary lookup that failed keeps its severity (a dropped connection is
        // transient); the miner's own errors (a full buffer, an unreadable TIMESTAMP) are
        // fatal.
        let cp = result?;
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
            truncated: Vec::new(),
        })
    }
}

/// A snapshot row's image (values in `table.ora` order), typed like the table; a value
/// that does not fit stays text.
fn snapshot_image(table: &OraTable, values: &[Option<String>]) -> rtdp_core::model::Row {
    let mut image = rtdp_core::model::Row::new();
    for ((col, kind), v) in table.shape.columns.iter().zip(&table.kinds).zip(values) {
        let j = match v {
            None => serde_json::Value::Null,
            Some(text) => {
                let text = strip_year_sign(text);
                text_to_json(col, *kind, &text).unwrap_or(serde_json::Value::String(text))
            }
        };
        image.insert(col.name.clone(), j);
    }
    image
}

/// The dictionary through the source's database.
struct LiveCatalog<'a> {
    src: &'a mut OracleSource,
}

/// Its errors are the database's, severity and all: a connection dropped during a lookup
/// or a DDL refresh is transient, so the collector reconnects and reads the window again.
impl Catalog for LiveCatalog<'_> {
    fn table(&mut self, owner: &str, table: &str) -> Result<Option<Arc<OraTable>>, SourceError> {
        let captured = self
            .src
            .tables
            .iter()
            .any(|t| t.schema == owner && t.table == table);
        if !captured {
            return Ok(None);
        }
        self.src.table(owner, table).map(Some)
    }

    fn refresh(&mut self, owner: &str, table: &str) -> Result<(), SourceError> {
        self.src.cache.remove(&(owner.to_owned(), table.to_owned()));
        self.src.table(owner, table).map(|_| ())
    }
}

impl ChangeSource for OracleSource {
    fn connector(&self) -> &'static str {
        "oracle"
    }

    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError> {
        self.db = None;
        self.miner = None;
        self.logs_loaded.clear();
        self.cache.clear();
        self.db = Some((self.connect)(&self.s)?);
        self.discover()?;
        let (tables, snapshot) = (self.tables.clone(), self.s.snapshot);
        let facts = self.db()?.facts(&tables, snapshot)?;
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
        let tz_offset_secs = self.db()?.tz_offset_secs()?;
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
                let scn = self.db()?.current_scn()?;
                let oldest = self.db()?.oldest_open_transaction()?;
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
        self.window = self.s.window_scns;
        self.miner = Some(Miner::new(
            MinerSettings {
                collector: self.s.collector.clone(),
                db: Some(self.s.pdb.clone().unwrap_or_else(|| self.s.service.clone())),
                max_buffered: self.s.max_buffered,
                lob_enabled: self.s.lob_enabled,
                tz_offset_secs,
            },
            Some(cp.stream.clone()),
        ));
        self.snap = cp.snapshot.clone();
        if self.snap.is_some() && self.snap_started.is_none() {
            self.snap_started = Some(Instant::now());
            self.rows_estimated = self.db()?.estimate_rows(&tables).ok();
        }
        // Fail now, not later, when the position is older than the logs.
        if self.snap.is_none() {
            let to = self.db()?.current_scn()?.max(self.mined + 1);
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
    // ---- the source over a simulated database ---------------------------------------

    use crate::source::Batch;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Sim {
        current_scn: u64,
        oldest_open: Option<u64>,
        /// The redo, in SCN order.
        redo: Vec<LmRow>,
        /// SHOP.ORDERS as of any SCN: (ROWID, ID, NOTE).
        rows: Vec<(String, i64, String)>,
        logs: Vec<LogFile>,
        loads: usize,
        facts: Facts,
        /// The dictionary's answer to a column lookup while set (a dropped connection, a
        /// missing grant).
        columns_error: Option<SourceError>,
    }

    struct SimDb(Arc<Mutex<Sim>>);

    impl OracleDb for SimDb {
        fn current_scn(&mut self) -> Result<u64, SourceError> {
            Ok(self.0.lock().unwrap().current_scn)
        }
        fn oldest_open_transaction(&mut self) -> Result<Option<u64>, SourceError> {
            Ok(self.0.lock().unwrap().oldest_open)
        }
        fn tz_offset_secs(&mut self) -> Result<i64, SourceError> {
            Ok(0)
        }
        fn visible_tables(&mut self) -> Result<Vec<TableName>, SourceError> {
            Ok(vec![tn("SHOP", "ORDERS"), tn("SHOP", "OTHER")])
        }
        fn facts(&mut self, _: &[TableName], _: bool) -> Result<Facts, SourceError> {
            Ok(self.0.lock().unwrap().facts.clone())
        }
        fn columns(&mut self, _: &str, _: &str) -> Result<Vec<OraColumn>, SourceError> {
            if let Some(e) = self.0.lock().unwrap().columns_error.clone() {
                return Err(e);
            }
            Ok(vec![
                OraColumn {
                    name: "ID".into(),
                    data_type: "NUMBER".into(),
                    precision: Some(10),
                    scale: Some(0),
                    nullable: false,
                },
                OraColumn {
                    name: "NOTE".into(),
                    data_type: "VARCHAR2".into(),
                    precision: None,
                    scale: None,
                    nullable: true,
                },
            ])
        }
        fn key_columns(&mut self, _: &str, _: &str) -> Result<Vec<String>, SourceError> {
            Ok(vec!["ID".into()])
        }
        fn log_files(&mut self, _: u64) -> Result<Vec<LogFile>, SourceError> {
            Ok(self.0.lock().unwrap().logs.clone())
        }
        fn load_logs(&mut self, _: &[String]) -> Result<(), SourceError> {
            self.0.lock().unwrap().loads += 1;
            Ok(())
        }
        fn mine(&mut self, _: &str, from: u64, to: u64, _: u32) -> Result<Vec<LmRow>, SourceError> {
            let s = self.0.lock().unwrap();
            Ok(s.redo
                .iter()
                .filter(|r| r.scn > from && r.scn <= to)
                .cloned()
                .collect())
        }
        fn snapshot_rows(
            &mut self,
            _: &TableName,
            cols: &[OraColumn],
            _: u64,
            after: Option<&str>,
            limit: u64,
            _: u32,
        ) -> Result<Vec<SnapshotRow>, SourceError> {
            assert_eq!(cols.len(), 2);
            let s = self.0.lock().unwrap();
            Ok(s.rows
                .iter()
                .filter(|(rid, _, _)| after.is_none_or(|a| rid.as_str() > a))
                .take(limit as usize)
                .map(|(rid, id, note)| SnapshotRow {
                    rowid: rid.clone(),
                    values: vec![Some(id.to_string()), Some(note.clone())],
                })
                .collect())
        }
        fn estimate_rows(&mut self, _: &[TableName]) -> Result<u64, SourceError> {
            Ok(self.0.lock().unwrap().rows.len() as u64)
        }
    }

    fn lm(scn: u64, xid: &str, code: u64, sql: Option<String>) -> LmRow {
        LmRow {
            scn,
            xid: xid.into(),
            operation_code: code,
            seg_owner: sql.as_ref().map(|_| "SHOP".into()),
            table_name: sql.as_ref().map(|_| "ORDERS".into()),
            row_id: Some(format!("AAA{scn}")),
            sql_redo: sql,
            timestamp: Some("2026-11-24 10:00:00".into()),
            ..Default::default()
        }
    }

    fn ins(id: i64) -> Option<String> {
        Some(format!(
            r#"insert into "SHOP"."ORDERS"("ID","NOTE") values ('{id}','n{id}');"#
        ))
    }

    /// Snapshot at SCN 100 of rows 1..=5; around it: A (start 95, insert 10 at 96, commit
    /// 105) straddles the snapshot; B (commits at 99) is inside it; C updates row 1 at
    /// 111; D rolls back; E commits at 140 after a log switch at 130.
    fn sim() -> Arc<Mutex<Sim>> {
        let redo = vec![
            lm(95, "0A", 6, None),
            lm(96, "0A", 1, ins(10)),
            lm(97, "0B", 6, None),
            lm(98, "0B", 1, ins(11)),
            lm(99, "0B", 7, None),
            lm(105, "0A", 7, None),
            lm(110, "0C", 6, None),
            lm(
                111,
                "0C",
                3,
                Some(r#"update "SHOP"."ORDERS" set "NOTE" = 'x' where "ID" = '1' and "NOTE" = 'n1';"#.into()),
            ),
            lm(112, "0C", 7, None),
            lm(113, "0D", 6, None),
            lm(114, "0D", 1, ins(12)),
            lm(115, "0D", 36, None),
            lm(135, "0E", 6, None),
            lm(136, "0E", 2, Some(r#"delete from "SHOP"."ORDERS" where "ID" = '2' and "NOTE" = 'n2';"#.into())),
            lm(140, "0E", 7, None),
        ];
        Arc::new(Mutex::new(Sim {
            current_scn: 100,
            oldest_open: Some(95),
            redo,
            rows: (1..=5)
                .map(|i| (format!("R{i}"), i, format!("n{i}")))
                .collect(),
            logs: vec![LogFile {
                name: "redo1".into(),
                thread: 1,
                sequence: 1,
                first_scn: 1,
                next_scn: u64::MAX,
                online: true,
            }],
            facts: Facts {
                log_mode: "ARCHIVELOG".into(),
                supplemental_min: "YES".into(),
                supplemental_all: "YES".into(),
                ..Default::default()
            },
            ..Default::default()
        }))
    }

    fn source(sim: &Arc<Mutex<Sim>>) -> OracleSource {
        let sim = sim.clone();
        OracleSource::with_connect(
            OracleSettings {
                host: "sim".into(),
                port: 1521,
                service: "SIM".into(),
                user: "rtdp".into(),
                password: Secret::new("pw"),
                pdb: None,
                default_schema: "SHOP".into(),
                include: vec!["orders".into()],
                exclude: vec![],
                collector: "sim".into(),
                snapshot: true,
                chunk_rows: 2,
                window_scns: 4,
                fetch_size: 100,
                max_buffered: 1000,
                lob_enabled: false,
            },
            Box::new(move |_| Ok(Box::new(SimDb(sim.clone())) as Box<dyn OracleDb>)),
        )
    }

    /// Runs batches until idle, confirming each checkpoint; returns (event, checkpoint
    /// after its batch) pairs and the checkpoints.
    fn drain(src: &mut OracleSource, sim: &Arc<Mutex<Sim>>) -> (Vec<Value>, Vec<(usize, Value)>) {
        let mut events = Vec::new();
        let mut cps = Vec::new();
        for _ in 0..1000 {
            // After the snapshot the database moves on.
            if src.snap.is_none() {
                sim.lock().unwrap().current_scn = 150;
            }
            let b: Batch = src.next_batch().unwrap();
            if b.is_idle() {
                return (events, cps);
            }
            events.extend(
                b.events
                    .iter()
                    .map(|e| serde_json::to_value(&e.event).unwrap()),
            );
            if let Some(cp) = b.checkpoint {
                src.confirm(&cp).unwrap();
                cps.push((events.len(), cp));
            }
        }
        panic!("never idle");
    }

    fn brief(ev: &[Value]) -> Vec<String> {
        ev.iter()
            .map(|e| {
                let img = if e["op"] == "d" {
                    &e["before"]
                } else {
                    &e["after"]
                };
                format!("{}{}", e["op"].as_str().unwrap(), img["ID"])
            })
            .collect()
    }

    use rtdp_core::secret::Secret;
    use serde_json::Value;

    #[test]
    fn snapshot_then_stream_keeps_a_straddling_transaction_whole_and_drops_what_the_snapshot_holds()
    {
        let sim = sim();
        let mut src = source(&sim);
        src.start(None).unwrap();
        let (ev, cps) = drain(&mut src, &sim);
        // Snapshot rows 1..=5 in chunks of 2; then A's insert (its row at SCN 96 is before
        // the snapshot SCN, its commit after), C's update, E's delete; B is in the
        // snapshot, D rolled back.
        assert_eq!(
            brief(&ev),
            ["r1", "r2", "r3", "r4", "r5", "c10", "u1", "d2"]
        );
        assert!(ev[..5].iter().all(|e| e["source"]["snapshot"] == true));
        assert_eq!(ev[0]["source"]["commit_scn"], "100");
        assert_eq!(ev[5]["source"]["commit_scn"], "105");
        assert_eq!(ev[5]["source"]["scn"], "96");
        // Checkpoints: 3 snapshot chunks + "done" + one per window.
        assert!(cps.len() > 6, "{cps:?}");
        let last: OracleCheckpoint = serde_json::from_value(cps.last().unwrap().1.clone()).unwrap();
        assert_eq!(last.stream.mined_scn, 150);
        assert_eq!(last.stream.restart_scn, 151);
        assert_eq!(
            (last.stream.commit_scn, last.stream.tx_id.as_str()),
            (140, "0E")
        );
        assert_eq!(src.positions().current_value, Some(150));
    }

    #[test]
    fn a_restart_from_every_checkpoint_loses_and_repeats_nothing() {
        let sim0 = sim();
        let mut src = source(&sim0);
        src.start(None).unwrap();
        let (full, cps) = drain(&mut src, &sim0);
        let ids = |v: &[Value]| v.iter().map(|e| e["eventId"].clone()).collect::<Vec<_>>();
        for (handed_out, cp) in &cps {
            let sim = sim();
            sim.lock().unwrap().current_scn = 150;
            let mut again = source(&sim);
            again.start(Some(cp)).unwrap();
            let (rest, _) = drain(&mut again, &sim);
            let mut joined = full[..*handed_out].to_vec();
            joined.extend(rest);
            assert_eq!(ids(&joined), ids(&full), "restart from {cp}");
        }
    }

    #[test]
    fn a_position_older_than_the_logs_is_a_definite_error_and_a_log_switch_reloads() {
        let sim = sim();
        let mut src = source(&sim);
        src.start(None).unwrap();
        drain(&mut src, &sim);
        let loads = sim.lock().unwrap().loads;
        assert_eq!(loads, 1);
        // A log switch: the current log is archived, a new one is current.
        {
            let mut s = sim.lock().unwrap();
            s.logs = vec![
                LogFile {
                    name: "arch1".into(),
                    thread: 1,
                    sequence: 1,
                    first_scn: 1,
                    next_scn: 160,
                    online: false,
                },
                LogFile {
                    name: "redo2".into(),
                    thread: 1,
                    sequence: 2,
                    first_scn: 160,
                    next_scn: u64::MAX,
                    online: true,
                },
            ];
            s.current_scn = 170;
        }
        while !src.next_batch().unwrap().is_idle() {}
        assert!(sim.lock().unwrap().loads > loads);
        // Archived logs removed before the stored position was read.
        let cp = serde_json::json!({"stream": {"restart_scn": 120, "commit_scn": 112,
            "tx_id": "0C", "index": 1, "mined_scn": 119}});
        sim.lock().unwrap().logs.remove(0);
        let mut late = source(&sim);
        let err = late.start(Some(&cp)).unwrap_err();
        assert_eq!(err.severity, crate::source::Severity::Fatal);
        assert!(
            err.message.contains("SCN 120") && err.message.contains("new snapshot"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_prerequisites_stop_the_start_with_every_fix() {
        let sim = sim();
        sim.lock().unwrap().facts = Facts {
            log_mode: "NOARCHIVELOG".into(),
            supplemental_min: "NO".into(),
            supplemental_all: "NO".into(),
            tables_without_all: vec![tn("SHOP", "ORDERS")],
            ..Default::default()
        };
        let err = source(&sim).start(None).unwrap_err();
        assert_eq!(err.severity, crate::source::Severity::Fatal);
        assert!(err.message.contains("3 problem(s)"), "{}", err.message);
        assert!(err.message.contains("ALTER DATABASE ARCHIVELOG"));
        assert!(err
            .message
            .contains(r#"ALTER TABLE "SHOP"."ORDERS" ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS;"#));
        // A stored position of another database kind is refused.
        let sim = self::sim();
        let err = source(&sim)
            .start(Some(&serde_json::json!({"lsn": 5})))
            .unwrap_err();
        assert!(
            err.message.contains("not an Oracle position"),
            "{}",
            err.message
        );
    }

    /// Runs batches until one fails; the error.
    fn first_error(src: &mut OracleSource) -> SourceError {
        for _ in 0..100 {
            match src.next_batch() {
                Ok(b) if b.is_idle() => panic!("the source went idle without an error"),
                Ok(b) => {
                    if let Some(cp) = b.checkpoint {
                        src.confirm(&cp).unwrap();
                    }
                }
                Err(e) => return e,
            }
        }
        panic!("no error");
    }

    /// Streaming from a stored position (no snapshot): the first table lookup happens when
    /// C's update (SCN 111, commit 112) is emitted.
    fn streaming_without_a_cached_table(sim: &Arc<Mutex<Sim>>) -> OracleSource {
        sim.lock().unwrap().current_scn = 150;
        let mut src = source(sim);
        let cp = serde_json::json!({"stream": {"restart_scn": 101, "commit_scn": 100,
            "tx_id": "", "index": 0, "mined_scn": 100}});
        src.start(Some(&cp)).unwrap();
        src
    }

    const DROPPED: &str = "reading the columns: ORA-03113: end-of-file on communication channel";

    #[test]
    fn a_dropped_connection_during_a_table_lookup_is_transient_not_fatal() {
        let sim = sim();
        let mut src = streaming_without_a_cached_table(&sim);
        sim.lock().unwrap().columns_error = Some(SourceError::transient(DROPPED));
        let err = first_error(&mut src);
        assert_eq!(
            err.severity,
            crate::source::Severity::Transient,
            "{}",
            err.message
        );
        assert!(err.message.contains("ORA-03113"), "{}", err.message);
        // Reconnected: the window is read again and nothing is lost.
        sim.lock().unwrap().columns_error = None;
        let cp = serde_json::json!({"stream": {"restart_scn": 101, "commit_scn": 100,
            "tx_id": "", "index": 0, "mined_scn": 100}});
        src.start(Some(&cp)).unwrap();
        let (ev, _) = drain(&mut src, &sim);
        assert_eq!(brief(&ev), ["u1", "d2"]);
    }

    #[test]
    fn a_dropped_connection_during_a_ddl_refresh_is_transient_not_fatal() {
        let sim = sim();
        let mut src = source(&sim);
        src.start(None).unwrap();
        // The snapshot and the stream through SCN 150 read SHOP.ORDERS's columns.
        drain(&mut src, &sim);
        {
            let mut s = sim.lock().unwrap();
            s.redo.push(lm(
                155,
                "0F",
                5,
                Some(r#"alter table "SHOP"."ORDERS" add ("EXTRA" number);"#.into()),
            ));
            s.current_scn = 160;
            s.columns_error = Some(SourceError::transient(DROPPED));
        }
        let err = first_error(&mut src);
        assert_eq!(
            err.severity,
            crate::source::Severity::Transient,
            "{}",
            err.message
        );
        assert!(err.message.contains("ORA-03113"), "{}", err.message);
    }

    #[test]
    fn a_table_that_cannot_be_read_for_lack_of_a_grant_stays_fatal() {
        let sim = sim();
        let mut src = streaming_without_a_cached_table(&sim);
        sim.lock().unwrap().columns_error = Some(SourceError::fatal(
            "reading the columns: ORA-00942: table or view does not exist (a grant is missing: \
             sql/create-logminer-user.sql)",
        ));
        let err = first_error(&mut src);
        assert_eq!(err.severity, crate::source::Severity::Fatal);
        assert!(err.message.contains("ORA-00942"), "{}", err.message);
    }
}
