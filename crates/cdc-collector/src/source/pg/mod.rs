//! The PostgreSQL source: logical decoding through the wal2json output plugin, polled
//! over SQL (`pg_logical_slot_peek_changes`, then `pg_replication_slot_advance` once
//! Kafka has the batch).
//!
//! ## Why SQL polling of a wal2json slot, not pgoutput over the replication protocol
//! - The slot's confirmed position must move only after the Kafka commit. With peek +
//!   advance that is one explicit SQL call at exactly that point; nothing is consumed
//!   by reading. (Over the replication protocol the same needs careful standby-status
//!   feedback, and a crash between receiving and confirming is the subtle case.)
//! - The Rust PostgreSQL client (tokio-postgres) has no replication-protocol support
//!   (no `replication=database` connections, no CopyBoth); a hand-written protocol
//!   client would be a large surface to get right.
//! - wal2json ships with the cloud services (RDS, Aurora, Cloud SQL, Azure) and Debian
//!   (`postgresql-15-wal2json`); its output is JSON with column names and types.
//!
//! Costs, written down: each poll re-decodes from the slot's restart LSN, which
//! `pg_replication_slot_advance` moves only to the last `xl_running_xacts` record (every
//! 15 s, and at checkpoints) — so while a backlog drains, every poll decodes it from its
//! start again (skipping what was published), and a long-open transaction elsewhere holds
//! it back further. Big batches (`collector.maxBatchChanges`) keep the number of polls
//! small; docs/BENCHMARKS.md has the numbers. Latency is one poll interval when idle. Whole transactions are returned (wal2json
//! checks `upto_nchanges` only at commits), so a batch never splits a transaction.
//!
//! ## Snapshot without an exported snapshot
//! The slot is created first; a REPEATABLE READ transaction then reads the tables, and
//! [`visibility`] drops from the stream exactly the transactions that snapshot saw. See
//! that module. A crash during the snapshot re-reads the table that was being read
//! (its rows already published come again as `op: r`); finished tables are not re-read.
//!
//! ## Positions
//! An event's position is (commit LSN of its transaction, index in the transaction),
//! commit LSN being the end of the commit record — what the slot is advanced to. Snapshot
//! rows carry the slot's consistent point and a row counter; every streamed commit is
//! after it. The checkpoint (stored with every Kafka transaction) is [`Checkpoint`].

pub mod types;
pub mod verify;
pub mod visibility;
pub mod wal2json;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, SimpleQueryMessage};
use rtdp_core::model::{Op, Row, Source};
use rtdp_core::secret::Secret;
use rtdp_core::status::SnapshotProgress;
use serde::{Deserialize, Serialize};

use self::types::{column_for, text_to_json, PgKind};
use self::visibility::SnapshotXids;
use self::wal2json::{format_lsn, parse_lsn, timestamp_ms};
use super::tables::{self, TableName};
use super::{Batch, ChangeSource, OutEvent, Positions, SourceError};
use crate::event::{build, Origin, TableShape};

/// What the PostgreSQL source needs from the configuration.
#[derive(Debug, Clone)]
pub struct PgSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub dbname: String,
    /// `database.schema`: the schema of unqualified names and of a bare `*` (empty:
    /// `public` for names, every schema for `*`).
    pub default_schema: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub slot: String,
    pub collector: String,
    pub snapshot: bool,
    pub chunk_rows: u64,
    pub max_batch_changes: u64,
}

/// The position stored with every Kafka transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Commit LSN of the last transaction published (during a snapshot: the slot's
    /// consistent point). Streaming resumes strictly after it.
    pub lsn: String,
    /// Set while the initial snapshot runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapState>,
    /// Set after a snapshot until the stream has passed every commit it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// Progress of the initial snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapState {
    /// Tables read completely.
    pub done: Vec<String>,
    /// The next snapshot row's index: rows published so far, raised to `run << 40` when a
    /// snapshot resumes after a crash (run = how many snapshots were taken before).
    pub rows: u64,
    /// The snapshots taken (more than one after a restart during the snapshot).
    pub snapshots: Vec<SnapshotXids>,
    /// Which snapshot each table was read at.
    pub tables: BTreeMap<String, usize>,
}

/// Drops streamed changes the snapshot already holds (see [`visibility`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub snapshots: Vec<SnapshotXids>,
    pub tables: BTreeMap<String, usize>,
    pub until: u64,
}

impl Filter {
    fn drops(&self, table: &str, xid: u64, commit_lsn: u64) -> bool {
        commit_lsn <= self.until
            && self
                .tables
                .get(table)
                .and_then(|&i| self.snapshots.get(i))
                .is_some_and(|s| s.sees(xid))
    }
}

#[derive(Debug)]
struct TableMeta {
    shape: TableShape,
    kinds: Vec<PgKind>,
    types: Vec<String>,
    by_name: HashMap<String, usize>,
}

struct SnapReader {
    client: Client,
    snap_id: usize,
    remaining: Vec<TableName>,
    cursor: Option<String>,
    started: Instant,
    rows_this_run: u64,
    estimate: Option<u64>,
}

/// PostgreSQL through wal2json; see the module docs.
pub struct PostgresSource {
    s: PgSettings,
    client: Option<Client>,
    snap: Option<SnapReader>,
    tables: HashMap<String, TableMeta>,
    captured: Vec<TableName>,
    checkpoint: Option<Checkpoint>,
    resume_after: u64,
    confirmed: u64,
    add_tables: String,
    warned: HashSet<String>,
    progress: Option<SnapshotProgress>,
    /// Whether wal2json knows `numeric-data-types-as-string` (2.6+); found out on the
    /// first poll.
    numbers_as_string: bool,
}

fn q_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn q_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.table` escaped for wal2json's `add-tables`.
fn w2j_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '.' | '*' | ' ' | '\'' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Classifies a client error: bad credentials, a missing database and missing rights
/// are fatal (retrying cannot fix them); everything else is retried.
fn pg_err(what: &str, e: &postgres::Error) -> SourceError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let msg = format!("{what}: {} (SQLSTATE {code})", db.message());
        if code.starts_with("28") {
            return SourceError::fatal(format!(
                "{msg}. Check DATABASE_USERNAME / DATABASE_PASSWORD and pg_hba.conf"
            ));
        }
        if code == "3D000" {
            return SourceError::fatal(format!("{msg}. Check DATABASE_NAME"));
        }
        if code == "42501" {
            return SourceError::fatal(msg);
        }
        if code == "55000" {
            // Object not in prerequisite state: an invalidated ("lost") slot, wal_level
            // lowered, a physical slot of that name. Retrying cannot fix these.
            return SourceError::fatal(format!(
                "{msg}. If the replication slot was invalidated (pg_replication_slots.wal_status = \
                 'lost', e.g. by max_slot_wal_keep_size), the changes it held are gone: start over \
                 with a new snapshot by giving the collector a new collector.name (COLLECTOR_NAME)"
            ));
        }
        return SourceError::transient(msg);
    }
    SourceError::transient(format!("{what}: {e}"))
}

fn rows(msgs: Vec<SimpleQueryMessage>) -> Vec<postgres::SimpleQueryRow> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn col(r: &postgres::SimpleQueryRow, i: usize) -> &str {
    r.get(i).unwrap_or("")
}

impl PostgresSource {
    pub fn new(s: PgSettings) -> Self {
        PostgresSource {
            s,
            client: None,
            snap: None,
            tables: HashMap::new(),
            captured: Vec::new(),
            checkpoint: None,
            resume_after: 0,
            confirmed: 0,
            add_tables: String::new(),
            warned: HashSet::new(),
            progress: None,
            numbers_as_string: true,
        }
    }

    fn connect(&self) -> Result<Client, SourceError> {
        let mut c = postgres::Config::new();
        c.host(&self.s.host)
            .port(self.s.port)
            .user(&self.s.user)
            .password(self.s.password.expose())
            .dbname(&self.s.dbname)
            .application_name(&format!("rtdp-collector:{}", self.s.collector))
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let mut client = c.connect(NoTls).map_err(|e| {
            pg_err(
                &format!(
                    "connecting to PostgreSQL at {}:{} (database {:?}, user {:?})",
                    self.s.host, self.s.port, self.s.dbname, self.s.user
                ),
                &e,
            )
        })?;
        client
            .batch_execute(
                "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; \
                 SET bytea_output = 'hex'; SET IntervalStyle = 'iso_8601'",
            )
            .map_err(|e| pg_err("setting up the session", &e))?;
        // Every peek and advance makes the server log "starting logical decoding for
        // slot …" at LOG level (three lines per poll). A superuser, or a role granted
        // `GRANT SET ON PARAMETER log_min_messages` (PostgreSQL 15+), can keep this
        // session's LOG lines out of the server log; for others this fails harmlessly.
        let _ = client.batch_execute("SET log_min_messages = warning");
        Ok(client)
    }

    fn main(&mut self) -> Result<&mut Client, SourceError> {
        self.client
            .as_mut()
            .ok_or_else(|| SourceError::transient("not connected to PostgreSQL"))
    }

    fn query(
        &mut self,
        what: &str,
        sql: &str,
    ) -> Result<Vec<postgres::SimpleQueryRow>, SourceError> {
        let c = self.main()?;
        c.simple_query(sql).map(rows).map_err(|e| pg_err(what, &e))
    }

    /// wal_level, the role's rights: each failure says how to fix it.
    fn check_server(&mut self) -> Result<(), SourceError> {
        let r = self.query("reading wal_level", "SHOW wal_level")?;
        let level = r.first().map(|r| col(r, 0).to_owned()).unwrap_or_default();
        if level != "logical" {
            return Err(SourceError::fatal(format!(
                "PostgreSQL has wal_level = {level}; change capture needs logical. Fix: run \
                 `ALTER SYSTEM SET wal_level = logical;` as a superuser (or set wal_level = logical \
                 in postgresql.conf), make sure max_replication_slots >= 1, then restart PostgreSQL"
            )));
        }
        let r = self.query(
            "reading the role's rights",
            "SELECT rolreplication OR rolsuper OR EXISTS (SELECT 1 FROM pg_roles r \
             WHERE r.rolname IN ('rds_replication', 'rds_superuser', 'azure_pg_admin', \
             'cloudsqlsuperuser', 'alloydbsuperuser') AND pg_has_role(current_user, r.oid, 'member')) \
             FROM pg_roles WHERE rolname = current_user",
        )?;
        if r.first().map(|r| col(r, 0)) != Some("t") {
            let user = self.s.user.clone();
            return Err(SourceError::fatal(format!(
                "user {user:?} may not use logical replication. Fix: `ALTER ROLE {} WITH REPLICATION;` \
                 (on Amazon RDS/Aurora: `GRANT rds_replication TO {};`)",
                q_ident(&user),
                q_ident(&user)
            )));
        }
        Ok(())
    }

    fn load_tables(&mut self) -> Result<(), SourceError> {
        let r = self.query(
            "listing tables",
            "SELECT n.nspname, c.relname, c.relreplident, has_table_privilege(c.oid, 'SELECT') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
        )?;
        let mut avail = Vec::new();
        let mut ident = HashMap::new();
        let mut can_read = HashMap::new();
        for row in &r {
            let t = TableName {
                schema: col(row, 0).to_owned(),
                table: col(row, 1).to_owned(),
            };
            ident.insert(t.clone(), col(row, 2).to_owned());
            can_read.insert(t.clone(), col(row, 3) == "t");
            avail.push(t);
        }
        let include: Vec<&str> = self.s.include.iter().map(String::as_str).collect();
        let exclude: Vec<&str> = self.s.exclude.iter().map(String::as_str).collect();
        let captured =
            tables::select(&include, &exclude, &self.s.default_schema, &avail).map_err(|p| {
                SourceError::fatal(format!("{} (database {:?})", p.join("; "), self.s.dbname))
            })?;
        let no_read: Vec<String> = captured
            .iter()
            .filter(|t| !can_read[*t])
            .map(|t| {
                format!(
                    "GRANT SELECT ON {}.{} TO {};",
                    q_ident(&t.schema),
                    q_ident(&t.table),
                    q_ident(&self.s.user)
                )
            })
            .collect();
        if !no_read.is_empty() {
            return Err(SourceError::fatal(format!(
                "user {:?} cannot read {} captured table(s). Fix: {}",
                self.s.user,
                no_read.len(),
                no_read.join(" ")
            )));
        }
        self.tables.clear();
        let mut keyless = Vec::new();
        for t in &captured {
            let meta = self.table_meta(t)?;
            let full = ident.get(t).map(String::as_str) == Some("f");
            if !full {
                let fix = format!(
                    "ALTER TABLE {}.{} REPLICA IDENTITY FULL;",
                    q_ident(&t.schema),
                    q_ident(&t.table)
                );
                if meta.shape.key.is_empty() {
                    // wal2json drops their updates and deletes altogether ("no tuple
                    // identifier"): capturing them would silently diverge.
                    keyless.push(fix);
                } else {
                    tracing::warn!(table = %t, fix = %fix, "captured table lacks REPLICA IDENTITY FULL: updates and deletes carry only the key columns as `before`, and unchanged large (TOASTed) values are missing from `after`");
                }
            }
            self.tables.insert(t.to_string(), meta);
        }
        if !keyless.is_empty() {
            return Err(SourceError::fatal(format!(
                "{} captured table(s) have neither a primary key nor REPLICA IDENTITY FULL, so \
                 their updates and deletes cannot be captured (wal2json drops them). Fix: {} \
                 — or leave those tables out with DATABASE_EXCLUDE_TABLES",
                keyless.len(),
                keyless.join(" ")
            )));
        }
        self.add_tables = captured
            .iter()
            .map(|t| format!("{}.{}", w2j_escape(&t.schema), w2j_escape(&t.table)))
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(tables = captured.len(), "captured tables resolved");
        self.captured = captured;
        Ok(())
    }

    fn table_meta(&mut self, t: &TableName) -> Result<TableMeta, SourceError> {
        let reg = q_lit(&format!("{}.{}", q_ident(&t.schema), q_ident(&t.table)));
        let r = self.query(
            "reading column metadata",
            &format!(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                 array_position(i.indkey::int2[], a.attnum) \
                 FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
                 WHERE a.attrelid = {reg}::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum"
            ),
        )?;
        let mut columns = Vec::new();
        let mut kinds = Vec::new();
        let mut types = Vec::new();
        let mut keys: Vec<(u32, usize)> = Vec::new();
        for (i, row) in r.iter().enumerate() {
            let key_pos = row.get(3).and_then(|k| k.parse::<u32>().ok());
            let (c, k) = column_for(
                col(row, 0),
                col(row, 1),
                col(row, 2) == "t",
                key_pos.is_some(),
            );
            if let Some(p) = key_pos {
                keys.push((p, i));
            }
            types.push(col(row, 1).to_owned());
            columns.push(c);
            kinds.push(k);
        }
        keys.sort();
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Ok(TableMeta {
            shape: TableShape {
                schema: t.schema.clone(),
                table: t.table.clone(),
                columns: Arc::new(columns),
                key: keys.into_iter().map(|(_, i)| i).collect(),
                key_unknown: false,
            },
            kinds,
            types,
            by_name,
        })
    }

    fn slot_state(&mut self) -> Result<Option<(String, u64)>, SourceError> {
        let slot = q_lit(&self.s.slot);
        let r = self.query(
            "reading the replication slot",
            &format!(
                "SELECT plugin, coalesce(confirmed_flush_lsn::text, '0/0'), database \
                 FROM pg_replication_slots WHERE slot_name = {slot}"
            ),
        )?;
        let Some(row) = r.first() else {
            return Ok(None);
        };
        if col(row, 2) != self.s.dbname {
            return Err(SourceError::fatal(format!(
                "replication slot {:?} belongs to database {:?}, not {:?}: set collector.slotName \
                 (COLLECTOR_SLOT_NAME) to a slot of this database, or another collector.name",
                self.s.slot,
                col(row, 2),
                self.s.dbname
            )));
        }
        if col(row, 0) != "wal2json" {
            return Err(SourceError::fatal(format!(
                "replication slot {:?} uses the output plugin {:?}; rtdp reads wal2json. Use another \
                 collector.slotName, or drop the slot if nothing else uses it: SELECT pg_drop_replication_slot({});",
                self.s.slot,
                col(row, 0),
                q_lit(&self.s.slot)
            )));
        }
        Ok(Some((
            col(row, 0).to_owned(),
            parse_lsn(col(row, 1)).unwrap_or(0),
        )))
    }

    fn create_slot(&mut self) -> Result<u64, SourceError> {
        let slot = q_lit(&self.s.slot);
        let r = self
            .main()?
            .simple_query(&format!(
                "SELECT lsn::text FROM pg_create_logical_replication_slot({slot}, 'wal2json')"
            ))
            .map_err(|e| {
                let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
                if text.contains("wal2json") {
                    SourceError::fatal(format!(
                        "creating replication slot: {text}. Fix: install the wal2json output plugin \
                         on the database server (Debian/Ubuntu: apt install postgresql-15-wal2json; \
                         RDS/Aurora/Cloud SQL/Azure have it built in)"
                    ))
                } else if text.contains("max_replication_slots") || text.contains("all replication slots are in use") {
                    SourceError::fatal(format!("creating replication slot: {text}. Fix: raise max_replication_slots and restart PostgreSQL, or drop unused slots"))
                } else {
                    pg_err("creating the replication slot", &e)
                }
            })?;
        let lsn = rows(r)
            .first()
            .and_then(|r| parse_lsn(col(r, 0)))
            .ok_or_else(|| {
                SourceError::transient("creating the replication slot returned no LSN")
            })?;
        tracing::info!(slot = %self.s.slot, lsn = %format_lsn(lsn), "replication slot created");
        Ok(lsn)
    }

    fn drop_slot(&mut self) -> Result<(), SourceError> {
        let slot = q_lit(&self.s.slot);
        self.query(
            "dropping the stale replication slot",
            &format!("SELECT pg_drop_replication_slot({slot})"),
        )?;
        Ok(())
    }

    fn advance(&mut self, lsn: u64) -> Result<(), SourceError> {
        if lsn <= self.confirmed {
            return Ok(());
        }
        let slot = q_lit(&self.s.slot);
        let target = q_lit(&format_lsn(lsn));
        self.query(
            "advancing the replication slot",
            &format!("SELECT pg_replication_slot_advance({slot}, {target}::pg_lsn)"),
        )?;
        self.confirmed = lsn;
        Ok(())
    }

    // ----------------------------------------------------------------------------------
    // Snapshot
    // ----------------------------------------------------------------------------------

    fn open_snapshot(&mut self) -> Result<(), SourceError> {
        let mut client = self.connect()?;
        let cp = self
            .checkpoint
            .as_mut()
            .ok_or_else(|| SourceError::transient("no checkpoint"))?;
        let st = cp
            .snapshot
            .as_mut()
            .ok_or_else(|| SourceError::transient("no snapshot state"))?;
        let done: HashSet<String> = st.done.iter().cloned().collect();
        let remaining: Vec<TableName> = self
            .captured
            .iter()
            .filter(|t| !done.contains(&t.to_string()))
            .cloned()
            .collect();
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(|e| pg_err("starting the snapshot transaction", &e))?;
        let snap_text = rows(
            client
                .simple_query("SELECT pg_current_snapshot()::text")
                .map_err(|e| pg_err("taking the snapshot", &e))?,
        );
        let until = rows(
            client
                .simple_query("SELECT pg_current_wal_insert_lsn()::text")
                .map_err(|e| pg_err("reading the WAL position", &e))?,
        );
        let until = until
            .first()
            .and_then(|r| parse_lsn(col(r, 0)))
            .unwrap_or(u64::MAX);
        let xids = snap_text
            .first()
            .and_then(|r| SnapshotXids::parse(col(r, 0), until))
            .ok_or_else(|| SourceError::transient("could not read pg_current_snapshot()"))?;
        st.snapshots.push(xids);
        let snap_id = st.snapshots.len() - 1;
        if snap_id > 0 {
            // A snapshot resumed after a crash: its rows must sort after everything the
            // interrupted run may have published, even a chunk whose position was never
            // stored (idempotent mode), or the worker would drop them as re-sent.
            st.rows = st.rows.max((snap_id as u64) << 40);
        }
        let mut estimate = 0u64;
        let mut known = true;
        for t in &remaining {
            let reg = q_lit(&format!("{}.{}", q_ident(&t.schema), q_ident(&t.table)));
            let r = rows(
                client
                    .simple_query(&format!(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = {reg}::regclass"
                    ))
                    .map_err(|e| pg_err("estimating table sizes", &e))?,
            );
            match r.first().and_then(|r| col(r, 0).parse::<i64>().ok()) {
                Some(n) if n >= 0 => estimate += n as u64,
                _ => known = false,
            }
        }
        tracing::info!(
            tables = remaining.len(),
            estimated_rows = estimate,
            snapshot = snap_id,
            "initial snapshot starting"
        );
        self.snap = Some(SnapReader {
            client,
            snap_id,
            remaining,
            cursor: None,
            started: Instant::now(),
            rows_this_run: 0,
            estimate: known.then_some(estimate),
        });
        Ok(())
    }

    fn snapshot_chunk(&mut self) -> Result<Batch, SourceError> {
        if self.snap.is_none() {
            self.open_snapshot()?;
        }
        let chunk = self.s.chunk_rows;
        let collector = self.s.collector.clone();
        let dbname = self.s.dbname.clone();
        let Some(snap) = self.snap.as_mut() else {
            return Err(SourceError::transient("snapshot reader missing"));
        };
        let Some(cp) = self.checkpoint.as_mut() else {
            return Err(SourceError::transient("no checkpoint"));
        };
        let c_lsn = parse_lsn(&cp.lsn).unwrap_or(0);
        let Some(st) = cp.snapshot.as_mut() else {
            return Err(SourceError::transient("no snapshot state"));
        };
        if snap.cursor.is_none() {
            let Some(next) = snap.remaining.first().cloned() else {
                // Every table read: close the snapshot, stream from its consistent point
                // while dropping what it saw.
                snap.client
                    .batch_execute("COMMIT")
                    .map_err(|e| pg_err("ending the snapshot transaction", &e))?;
                let until = st.snapshots.iter().map(|s| s.until).max().unwrap_or(0);
                let filter = Filter {
                    snapshots: st.snapshots.clone(),
                    tables: st.tables.clone(),
                    until,
                };
                tracing::info!(
                    rows = st.rows,
                    seconds = snap.started.elapsed().as_secs_f64(),
                    "initial snapshot finished; streaming"
                );
                cp.snapshot = None;
                cp.filter = Some(filter);
                self.snap = None;
                self.progress = None;
                return Ok(Batch {
                    checkpoint: Some(serde_json::to_value(&*cp).unwrap_or_default()),
                    snapshot: true,
                    ..Batch::default()
                });
            };
            snap.client
                .batch_execute(&format!(
                    "DECLARE rtdp_snap NO SCROLL CURSOR FOR SELECT * FROM ONLY {}.{}",
                    q_ident(&next.schema),
                    q_ident(&next.table)
                ))
                .map_err(|e| pg_err(&format!("reading table {next}"), &e))?;
            st.tables.insert(next.to_string(), snap.snap_id);
            snap.cursor = Some(next.to_string());
            tracing::info!(table = %next, "snapshot of table starting");
        }
        let table = snap.cursor.clone().unwrap_or_default();
        let fetched = rows(
            snap.client
                .simple_query(&format!("FETCH FORWARD {chunk} FROM rtdp_snap"))
                .map_err(|e| pg_err(&format!("reading table {table}"), &e))?,
        );
        let meta = self
            .tables
            .get(&table)
            .ok_or_else(|| SourceError::transient(format!("no metadata for {table}")))?;
        let now = now_ms();
        let source = Source {
            connector: "postgresql".into(),
            name: collector.clone(),
            db: Some(dbname),
            ts_ms: now,
            snapshot: true,
            lsn: Some(c_lsn),
            commit_lsn: Some(c_lsn),
            ..Default::default()
        };
        let commit = c_lsn.to_string();
        let origin = Origin {
            collector: &collector,
            source: &source,
            commit: &commit,
        };
        let mut events = Vec::with_capacity(fetched.len());
        let mut index = st.rows;
        for r in &fetched {
            let mut row = Row::with_capacity(meta.shape.columns.len());
            for (i, c) in meta.shape.columns.iter().enumerate() {
                let v = match r.get(i) {
                    None => serde_json::Value::Null,
                    Some(text) => to_json_or_text(c, meta.kinds[i], text, &table, &mut self.warned),
                };
                row.insert(c.name.clone(), v);
            }
            events.extend(build(
                &meta.shape,
                &origin,
                Op::Read,
                None,
                Some(row),
                &mut index,
                now,
            ));
        }
        let n = fetched.len() as u64;
        st.rows = index;
        snap.rows_this_run += n;
        if n < chunk {
            snap.client
                .batch_execute("CLOSE rtdp_snap")
                .map_err(|e| pg_err(&format!("reading table {table}"), &e))?;
            st.done.push(table.clone());
            snap.remaining.remove(0);
            snap.cursor = None;
            tracing::info!(table = %table, rows_total = st.rows, "snapshot of table finished");
        }
        let p = SnapshotProgress::new(snap.rows_this_run, snap.estimate, snap.started.elapsed());
        if snap.rows_this_run % (chunk * 10).max(100_000) < n || n < chunk {
            tracing::info!(
                rows_done = p.rows_done,
                rows_estimated = p.rows_estimated,
                rate_per_s = p.rate_per_s.round(),
                eta_s = p.eta_s,
                "snapshot progress"
            );
        }
        self.progress = Some(p);
        Ok(Batch {
            events,
            checkpoint: Some(serde_json::to_value(&*cp).unwrap_or_default()),
            last_commit_ts_ms: None,
            transactions: 0,
            snapshot: true,
        })
    }

    // ----------------------------------------------------------------------------------
    // Streaming
    // ----------------------------------------------------------------------------------

    fn peek(&mut self) -> Result<Vec<postgres::SimpleQueryRow>, SourceError> {
        let sql = format!(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_changes({}, NULL, {}, \
             'format-version', '2', 'include-xids', '1', 'include-timestamp', '1', \
             'include-typmod', '1', 'include-lsn', '1', 'include-pk', '0', {}'add-tables', {})",
            q_lit(&self.s.slot),
            self.s.max_batch_changes,
            if self.numbers_as_string {
                "'numeric-data-types-as-string', '1', "
            } else {
                ""
            },
            q_lit(&self.add_tables)
        );
        let c = self.main()?;
        match c.simple_query(&sql) {
            Ok(m) => Ok(rows(m)),
            Err(e)
                if self.numbers_as_string
                    && e.as_db_error()
                        .is_some_and(|d| d.message().contains("numeric-data-types-as-string")) =>
            {
                tracing::warn!("this wal2json (before 2.6) has no numeric-data-types-as-string: NaN and \
                    ±Infinity in float and numeric columns arrive as null; upgrade wal2json to keep them");
                self.numbers_as_string = false;
                self.peek()
            }
            Err(e) => Err(pg_err("reading changes from the replication slot", &e)),
        }
    }

    fn poll(&mut self) -> Result<Batch, SourceError> {
        let fetched = self.peek()?;
        let mut batch = Batch::default();
        let mut tx_start = 0usize;
        let mut last_commit = None;
        for i in 0..fetched.len() {
            let data = col(&fetched[i], 1);
            // Cheap look at the action before parsing the row.
            let action = data
                .find("\"action\":\"")
                .and_then(|p| data.as_bytes().get(p + 10))
                .copied();
            match action {
                Some(b'B') => tx_start = i,
                Some(b'C') => {
                    let commit_lsn = parse_lsn(col(&fetched[i], 0)).ok_or_else(|| {
                        SourceError::transient("wal2json commit row without an LSN")
                    })?;
                    batch.transactions += 1;
                    last_commit = Some(commit_lsn);
                    if commit_lsn <= self.resume_after {
                        continue; // already in Kafka
                    }
                    let head: wal2json::Row<'_> = serde_json::from_str(data).map_err(|e| {
                        SourceError::transient(format!("wal2json commit row unreadable: {e}"))
                    })?;
                    let ts = head
                        .timestamp
                        .as_deref()
                        .and_then(timestamp_ms)
                        .unwrap_or(0);
                    let xid = head.xid.unwrap_or(0);
                    self.build_tx(
                        &fetched[tx_start + 1..i],
                        commit_lsn,
                        xid,
                        ts,
                        &mut batch.events,
                    )?;
                    batch.last_commit_ts_ms = Some(ts);
                }
                _ => {}
            }
        }
        if let Some(lsn) = last_commit {
            if lsn > self.resume_after {
                self.resume_after = lsn;
                let cp = self.checkpoint.get_or_insert_with(|| Checkpoint {
                    lsn: String::new(),
                    snapshot: None,
                    filter: None,
                });
                cp.lsn = format_lsn(lsn);
                if cp.filter.as_ref().is_some_and(|f| lsn > f.until) {
                    tracing::info!("stream passed the snapshot's last commit; no more filtering");
                    cp.filter = None;
                }
                batch.checkpoint = Some(serde_json::to_value(&*cp).unwrap_or_default());
            }
        }
        Ok(batch)
    }

    fn build_tx(
        &mut self,
        changes: &[postgres::SimpleQueryRow],
        commit_lsn: u64,
        xid: u64,
        ts: i64,
        out: &mut Vec<OutEvent>,
    ) -> Result<(), SourceError> {
        let now = now_ms();
        let commit = commit_lsn.to_string();
        let mut index = 0u64;
        let filter = self.checkpoint.as_ref().and_then(|c| c.filter.clone());
        // One source block per transaction; only the change's own LSN differs.
        let mut source = Source {
            connector: "postgresql".into(),
            name: self.s.collector.clone(),
            db: Some(self.s.dbname.clone()),
            ts_ms: ts,
            snapshot: false,
            commit_lsn: Some(commit_lsn),
            tx_id: Some(xid.to_string()),
            ..Default::default()
        };
        for r in changes {
            let lsn = parse_lsn(col(r, 0)).unwrap_or(0);
            let row: wal2json::Row<'_> = serde_json::from_str(col(r, 1)).map_err(|e| {
                SourceError::transient(format!("wal2json row at LSN {} unreadable: {e}", col(r, 0)))
            })?;
            let name = format!(
                "{}.{}",
                row.schema.as_deref().unwrap_or(""),
                row.table.as_deref().unwrap_or("")
            );
            let op = match row.action.as_ref() {
                "I" => Op::Create,
                "U" => Op::Update,
                "D" => Op::Delete,
                "T" => {
                    tracing::warn!(
                        table = %name,
                        "TRUNCATE is not carried as events; the table's rows stay in the output"
                    );
                    continue;
                }
                _ => continue,
            };
            if filter
                .as_ref()
                .is_some_and(|f| f.drops(&name, xid, commit_lsn))
            {
                continue;
            }
            if !self.tables.contains_key(&name) {
                continue;
            }
            if self.shape_changed(&name, &row) {
                let t = TableName {
                    schema: row.schema.as_deref().unwrap_or("").to_owned(),
                    table: row.table.as_deref().unwrap_or("").to_owned(),
                };
                let mut meta = self.table_meta(&t)?;
                if shape_differs(&meta, &row) && !row.columns.is_empty() {
                    // The catalog has moved on (the collector is behind a later DDL): take
                    // the columns from the change itself, keys from the catalog by name,
                    // so rows of the old shape do not query the catalog one by one.
                    meta = meta_from_row(&t, &meta, &row);
                }
                tracing::info!(table = %name, columns = meta.shape.columns.len(), "table columns changed; metadata refreshed");
                self.tables.insert(name.clone(), meta);
            }
            let Some(meta) = self.tables.get(&name) else {
                continue;
            };
            let before = if row.identity.is_empty() {
                None
            } else {
                Some(image(meta, &row.identity, None, &name, &mut self.warned)?)
            };
            let after = if op == Op::Delete {
                None
            } else {
                Some(image(
                    meta,
                    &row.columns,
                    before.as_ref(),
                    &name,
                    &mut self.warned,
                )?)
            };
            source.lsn = Some(lsn);
            let origin = Origin {
                collector: &self.s.collector,
                source: &source,
                commit: &commit,
            };
            out.extend(build(
                &meta.shape,
                &origin,
                op,
                before,
                after,
                &mut index,
                now,
            ));
        }
        Ok(())
    }

    /// Whether a row names a column the metadata does not have, or with another type.
    fn shape_changed(&self, name: &str, row: &wal2json::Row<'_>) -> bool {
        self.tables
            .get(name)
            .is_some_and(|meta| shape_differs(meta, row))
    }
}

/// Whether a row names a column `meta` does not have, or with another type, or is an
/// insert with another number of columns (a dropped column; updates may leave out
/// unchanged TOASTed values, so only inserts tell).
fn shape_differs(meta: &TableMeta, row: &wal2json::Row<'_>) -> bool {
    (row.action == "I" && row.columns.len() != meta.shape.columns.len())
        || row.columns.iter().chain(row.identity.iter()).any(|c| {
            match meta.by_name.get(c.name.as_ref()) {
                Some(&i) => meta.types[i] != c.ty,
                None => true,
            }
        })
}

/// Metadata from a change's own columns (names and types as wal2json gives them); key
/// columns and nullability from `catalog` where the names match.
fn meta_from_row(t: &TableName, catalog: &TableMeta, row: &wal2json::Row<'_>) -> TableMeta {
    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    let mut types = Vec::new();
    for c in &row.columns {
        let known = catalog
            .by_name
            .get(c.name.as_ref())
            .map(|&j| &catalog.shape.columns[j]);
        let (col, kind) = column_for(
            &c.name,
            &c.ty,
            known.is_some_and(|k| !k.optional),
            known.is_some_and(|k| k.key),
        );
        columns.push(col);
        kinds.push(kind);
        types.push(c.ty.to_string());
    }
    let by_name: HashMap<String, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    // Key columns in the catalog's key order (the Kafka key must not change with it).
    let key = catalog
        .shape
        .key
        .iter()
        .filter_map(|&j| by_name.get(&catalog.shape.columns[j].name).copied())
        .collect();
    TableMeta {
        shape: TableShape {
            schema: t.schema.clone(),
            table: t.table.clone(),
            columns: Arc::new(columns),
            key,
            key_unknown: false,
        },
        kinds,
        types,
        by_name,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A value's envelope JSON; a value that does not fit its type is kept as its text (the
/// worker dead-letters that record) and warned about once per column, without the value.
fn to_json_or_text(
    c: &rtdp_core::types::Column,
    kind: PgKind,
    text: &str,
    table: &str,
    warned: &mut HashSet<String>,
) -> serde_json::Value {
    match text_to_json(c, kind, text) {
        Ok(v) => v,
        Err(_) => {
            let key = format!("{table}.{}", c.name);
            if warned.insert(key) {
                tracing::warn!(table = %table, column = %c.name, r#type = %c.ty, "a value does not fit its column type (NaN, infinity, a BC date, …); it is sent as text and the worker will dead-letter that record");
            }
            serde_json::Value::String(text.to_owned())
        }
    }
}

/// A row image in column order; columns wal2json left out (unchanged TOASTed values)
/// come from `fill` (the old row under REPLICA IDENTITY FULL) when it has them.
fn image(
    meta: &TableMeta,
    cols: &[wal2json::Col<'_>],
    fill: Option<&Row>,
    table: &str,
    warned: &mut HashSet<String>,
) -> Result<Row, SourceError> {
    let mut vals: Vec<Option<serde_json::Value>> = vec![None; meta.shape.columns.len()];
    for c in cols {
        let Some(&i) = meta.by_name.get(c.name.as_ref()) else {
            continue;
        };
        let text = c
            .text()
            .map_err(|e| SourceError::transient(format!("{table}: {e}")))?;
        vals[i] = Some(match text {
            None => serde_json::Value::Null,
            Some(t) => to_json_or_text(&meta.shape.columns[i], meta.kinds[i], &t, table, warned),
        });
    }
    let mut row = Row::with_capacity(vals.len());
    for (i, v) in vals.into_iter().enumerate() {
        let name = &meta.shape.columns[i].name;
        match v {
            Some(v) => {
                row.insert(name.clone(), v);
            }
            None => {
                if let Some(old) = fill.and_then(|f| f.get(name)) {
                    row.insert(name.clone(), old.clone());
                }
            }
        }
    }
    Ok(row)
}

impl ChangeSource for PostgresSource {
    fn connector(&self) -> &'static str {
        "postgresql"
    }

    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError> {
        self.snap = None;
        self.progress = None;
        self.client = Some(self.connect()?);
        self.check_server()?;
        self.load_tables()?;
        let stored: Option<Checkpoint> = match stored {
            None => None,
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| {
                SourceError::fatal(format!(
                    "the stored position of collector {:?} is not a PostgreSQL position ({e}); \
                     was collector.name used for another database?",
                    self.s.collector
                ))
            })?),
        };
        let slot = self.slot_state()?;
        match stored {
            None => {
                if self.s.snapshot {
                    if slot.is_some() {
                        tracing::warn!(slot = %self.s.slot, "no stored position but the slot exists: dropping it to take a consistent snapshot");
                        self.drop_slot()?;
                    }
                    let c = self.create_slot()?;
                    self.confirmed = c;
                    self.resume_after = c;
                    self.checkpoint = Some(Checkpoint {
                        lsn: format_lsn(c),
                        snapshot: Some(SnapState {
                            done: Vec::new(),
                            rows: 0,
                            snapshots: Vec::new(),
                            tables: BTreeMap::new(),
                        }),
                        filter: None,
                    });
                } else {
                    let c = match slot {
                        Some((_, lsn)) => lsn,
                        None => self.create_slot()?,
                    };
                    self.confirmed = c;
                    self.resume_after = c;
                    self.checkpoint = Some(Checkpoint {
                        lsn: format_lsn(c),
                        snapshot: None,
                        filter: None,
                    });
                }
            }
            Some(cp) => {
                let lsn = parse_lsn(&cp.lsn).ok_or_else(|| {
                    SourceError::fatal(format!("stored position has a bad LSN {:?}", cp.lsn))
                })?;
                let Some((_, confirmed)) = slot else {
                    return Err(SourceError::fatal(format!(
                        "replication slot {:?} does not exist, but collector {:?} has a stored position \
                         (LSN {}): the changes since then are gone from PostgreSQL. To start over with a \
                         new snapshot, give the collector a new collector.name (COLLECTOR_NAME)",
                        self.s.slot, self.s.collector, cp.lsn
                    )));
                };
                if confirmed > lsn {
                    return Err(SourceError::fatal(format!(
                        "replication slot {:?} is at {} but the stored position is {}: something else \
                         consumed changes from this slot. Use a slot only rtdp reads; to start over, \
                         give the collector a new collector.name",
                        self.s.slot,
                        format_lsn(confirmed),
                        cp.lsn
                    )));
                }
                self.confirmed = confirmed;
                self.resume_after = lsn;
                if cp.snapshot.is_none() {
                    self.advance(lsn)?;
                } else {
                    tracing::info!(
                        "resuming the initial snapshot (the table being read is read again)"
                    );
                }
                tracing::info!(lsn = %cp.lsn, "resuming strictly after the stored position");
                self.checkpoint = Some(cp);
            }
        }
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Batch, SourceError> {
        if self
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.snapshot.is_some())
        {
            self.snapshot_chunk()
        } else {
            self.poll()
        }
    }

    fn confirm(&mut self, checkpoint: &serde_json::Value) -> Result<(), SourceError> {
        let cp: Checkpoint = serde_json::from_value(checkpoint.clone())
            .map_err(|e| SourceError::transient(format!("bad checkpoint: {e}")))?;
        if cp.snapshot.is_some() {
            return Ok(()); // the slot stays at the consistent point during the snapshot
        }
        match parse_lsn(&cp.lsn) {
            Some(lsn) => self.advance(lsn),
            None => Ok(()),
        }
    }

    fn snapshot_progress(&self) -> Option<SnapshotProgress> {
        self.progress.clone()
    }

    fn positions(&self) -> Positions {
        let current = self
            .checkpoint
            .as_ref()
            .map(|c| c.lsn.clone())
            .unwrap_or_default();
        Positions {
            current_value: parse_lsn(&current),
            current,
            confirmed: format_lsn(self.confirmed),
            confirmed_value: Some(self.confirmed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_drops_only_what_the_snapshot_saw_before_until() {
        let f = Filter {
            snapshots: vec![SnapshotXids::parse("100:105:102", 1000).unwrap()],
            tables: [("public.a".to_string(), 0)].into_iter().collect(),
            until: 1000,
        };
        assert!(f.drops("public.a", 101, 900));
        assert!(
            !f.drops("public.a", 102, 900),
            "in progress at the snapshot"
        );
        assert!(!f.drops("public.a", 105, 900), "started after the snapshot");
        assert!(!f.drops("public.a", 101, 1001), "past until");
        assert!(!f.drops("public.b", 101, 900), "table not in the snapshot");
    }

    #[test]
    fn escaping() {
        assert_eq!(q_lit("a'b"), "'a''b'");
        assert_eq!(q_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(w2j_escape("my.t,x*"), "my\\.t\\,x\\*");
    }
}
