//! The PostgreSQL source: logical replication with the built-in `pgoutput` plugin over
//! the streaming replication protocol, and an initial snapshot that meets the stream
//! exactly.
//!
//! The parts:
//! - [`conn`]: the replication connection (slot creation with an exported snapshot,
//!   `START_REPLICATION`, status updates) — and why it is a client of our own;
//! - [`pgoutput`]: the protocol's messages, decoded without a database;
//! - [`stream`]: messages → events ([`stream::Assembler`], pure, tested without a
//!   server) and the reader thread that decodes ahead while Kafka commits;
//! - [`types`]: PostgreSQL types and text values → our column types and JSON values;
//! - [`visibility`]: which transactions a resumed snapshot saw;
//! - this module: prerequisites (wal_level, rights, replica identity, the
//!   publication), the slot, the snapshot reader and the [`ChangeSource`] glue.
//!
//! ## Why pgoutput
//! It is built into every PostgreSQL since 10 and always allowed as an output plugin;
//! since 15.19 / 16.15 / 17.11 / 18.6 the server refuses plugins not listed in
//! `output_plugin_libraries`, and managed services rarely let users change that. Its
//! text form keeps every value PostgreSQL prints (`NaN`, `±Infinity`, arrays).
//!
//! ## Positions and confirmation
//! An event's position is (commit LSN of its transaction — the start of its commit
//! record, from Begin — and its index in the transaction). The checkpoint stored with
//! every Kafka transaction ([`Checkpoint`]) holds the commit *end* of the last whole
//! transaction in Kafka (`lsn`) and, when a big transaction was split across Kafka
//! transactions, how far into it Kafka has it (`partial`). The flush position reported
//! to the server is exactly `lsn` of the last checkpoint Kafka committed: never earlier
//! (the slot would hold WAL for nothing), never later (a crash would lose changes). A
//! restart streams from the slot's confirmed position and drops what is at or before
//! the stored one. While the captured tables are idle and the server writes other WAL,
//! the reader hands out the keepalive's WAL end as a position; it is stored in Kafka
//! like any checkpoint and then confirmed, so an idle source does not hold WAL for ever.
//!
//! ## Snapshot
//! On first start the slot is created on a replication connection with
//! `EXPORT_SNAPSHOT`; the snapshot session imports that snapshot
//! (`SET TRANSACTION SNAPSHOT`), so it sees exactly the transactions committed before
//! the slot's consistent point, and the stream starts at that point. Snapshot rows carry
//! the commit position *consistent point − 1* (a transaction whose commit record starts
//! exactly at the consistent point is streamed, and must sort after them). A crash during
//! the snapshot cannot reuse the exported snapshot: the table being read is read again
//! under a new REPEATABLE READ snapshot, and [`visibility`] drops from the stream exactly
//! the transactions that snapshot saw. Finished tables are not re-read.

pub mod conn;
pub mod pgoutput;
mod snapshot;
pub mod stream;
pub mod types;
pub mod verify;
pub mod visibility;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use postgres::{Client, NoTls, SimpleQueryMessage};
use rtdp_core::secret::Secret;
use rtdp_core::status::SnapshotProgress;
use serde::{Deserialize, Serialize};

use self::conn::{ConnParams, PgError, ReplConn};
use self::snapshot::SnapReader;
use self::stream::{
    Assembler, AssemblerSettings, Catalog, Described, Item, Out, Reader, ReaderSettings,
};
use self::types::{column_for, text_to_json, PgKind};
use self::visibility::SnapshotXids;
use super::tables::{self, TableName};
use super::{Batch, ChangeSource, Positions, SourceError};
use crate::event::TableShape;

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
    /// `collector.publicationName`: the publication the slot streams (created for the
    /// captured tables when missing).
    pub publication: String,
    pub collector: String,
    pub snapshot: bool,
    pub chunk_rows: u64,
    /// Changes per Kafka transaction at most; decoded changes waiting for the publisher
    /// are bounded by it too (and by 20,000).
    pub max_batch_changes: u64,
}

/// The position stored with every Kafka transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Commit end LSN of the last whole transaction published (during a snapshot: the
    /// slot's consistent point; when idle: a keepalive's WAL end). Streaming resumes
    /// strictly after it.
    pub lsn: String,
    /// A transaction split across Kafka transactions: how far Kafka has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
    /// Set while the initial snapshot runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapState>,
    /// Set after a snapshot until the stream has passed every commit it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// A transaction partly in Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Its commit LSN (start of the commit record).
    pub commit: String,
    /// The index of its first event not in Kafka.
    pub next_index: u64,
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

/// A captured table's columns and how their text is read.
#[derive(Debug, Clone)]
pub struct TableMeta {
    pub shape: TableShape,
    pub kinds: Vec<PgKind>,
}

/// PostgreSQL through pgoutput; see the module docs.
pub struct PostgresSource {
    s: PgSettings,
    client: Option<Client>,
    snap: Option<SnapReader>,
    /// The connection that created the slot, kept idle until the snapshot session has
    /// imported its exported snapshot (named here).
    export: Option<(ReplConn, String)>,
    reader: Option<Reader>,
    tables: HashMap<String, TableMeta>,
    captured: Vec<TableName>,
    checkpoint: Option<Checkpoint>,
    resume_after: u64,
    confirmed: u64,
    warned: HashSet<String>,
    progress: Option<SnapshotProgress>,
}

/// Parses `X/Y` (hex) into a 64-bit LSN.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some(hi << 32 | lo)
}

/// Formats an LSN as PostgreSQL does (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

fn q_lit(s: &str) -> String {
    conn::quote_literal(s)
}

fn q_ident(s: &str) -> String {
    conn::quote_ident(s)
}

/// Classifies a server error: bad credentials, a missing database or object and missing
/// rights are fatal (retrying cannot fix them); everything else is retried.
fn classify(what: &str, code: Option<&str>, msg: String) -> SourceError {
    let Some(code) = code else {
        return SourceError::transient(format!("{what}: {msg}"));
    };
    let msg = format!("{what}: {msg}");
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
    if code == "42704" && msg.contains("publication") {
        return SourceError::fatal(format!(
            "{msg}. The publication the slot streams is gone, or did not exist yet when the \
             changes being decoded were written (pgoutput reads it as of each change). Fix: \
             create it again (see docs/POSTGRESQL.md, \"Publication\"); if the slot's changes \
             predate it, start over with a new snapshot by giving the collector a new \
             collector.name (COLLECTOR_NAME)"
        ));
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
    if code == "55006" {
        // The slot is active for another process (a collector that has not noticed it
        // died yet, or another reader): it frees up, so retry.
        return SourceError::transient(msg);
    }
    if code == "53400" || (code == "53000" && msg.contains("replication slot")) {
        return SourceError::fatal(format!(
            "{msg}. Fix: raise max_replication_slots (and max_wal_senders) and restart \
             PostgreSQL, or drop unused slots"
        ));
    }
    SourceError::transient(msg)
}

fn pg_err(what: &str, e: &postgres::Error) -> SourceError {
    match e.as_db_error() {
        Some(db) => classify(
            what,
            Some(db.code().code()),
            format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        ),
        None => SourceError::transient(format!("{what}: {e}")),
    }
}

/// A replication-connection error, classified like [`pg_err`].
fn repl_err(what: &str, e: PgError) -> SourceError {
    let code = e.code().map(str::to_owned);
    classify(what, code.as_deref(), e.to_string())
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
            export: None,
            reader: None,
            tables: HashMap::new(),
            captured: Vec::new(),
            checkpoint: None,
            resume_after: 0,
            confirmed: 0,
            warned: HashSet::new(),
            progress: None,
        }
    }

    fn application_name(&self) -> String {
        format!("rtdp-collector:{}", self.s.collector)
    }

    fn where_(&self) -> String {
        format!(
            "PostgreSQL at {}:{} (database {:?}, user {:?})",
            self.s.host, self.s.port, self.s.dbname, self.s.user
        )
    }

    fn connect(&self) -> Result<Client, SourceError> {
        let mut c = postgres::Config::new();
        c.host(&self.s.host)
            .port(self.s.port)
            .user(&self.s.user)
            .password(self.s.password.expose())
            .dbname(&self.s.dbname)
            .application_name(&self.application_name())
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let mut client = c
            .connect(NoTls)
            .map_err(|e| pg_err(&format!("connecting to {}", self.where_()), &e))?;
        let settings: Vec<String> = conn::SESSION_SETTINGS
            .iter()
            .map(|(k, v)| format!("SET {k} = {}", q_lit(v)))
            .collect();
        client
            .batch_execute(&settings.join("; "))
            .map_err(|e| pg_err("setting up the session", &e))?;
        Ok(client)
    }

    /// A replication connection (`replication=database`).
    fn connect_replication(&self) -> Result<ReplConn, SourceError> {
        let app = self.application_name();
        ReplConn::connect(
            &ConnParams {
                host: &self.s.host,
                port: self.s.port,
                user: &self.s.user,
                password: self.s.password.expose(),
                dbname: &self.s.dbname,
                application_name: &app,
            },
            Duration::from_secs(10),
        )
        .map_err(|e| {
            repl_err(
                &format!("opening a replication connection to {}", self.where_()),
                e,
            )
        })
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
                 in postgresql.conf), make sure max_replication_slots >= 1 and max_wal_senders >= 1, \
                 then restart PostgreSQL"
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
                    // In a publication that publishes updates, such a table refuses
                    // UPDATE and DELETE on the database itself ("does not have a replica
                    // identity"): never put one there.
                    keyless.push(fix);
                } else {
                    tracing::warn!(table = %t, fix = %fix, "captured table lacks REPLICA IDENTITY FULL: updates and deletes carry only the key columns as `before`, and a large (TOASTed) value an update leaves unchanged is not sent, so that column is missing from the update's `after` and the output row has null there (docs/POSTGRESQL.md, \"TOAST\")");
                }
            }
            self.tables.insert(t.to_string(), meta);
        }
        if !keyless.is_empty() {
            return Err(SourceError::fatal(format!(
                "{} captured table(s) have neither a primary key nor REPLICA IDENTITY FULL, so \
                 their updates and deletes cannot be captured (and, once they are in a publication, \
                 PostgreSQL refuses UPDATE and DELETE on them). Fix: {} — or leave those tables \
                 out with DATABASE_EXCLUDE_TABLES",
                keyless.len(),
                keyless.join(" ")
            )));
        }
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
            columns.push(c);
            kinds.push(k);
        }
        keys.sort();
        Ok(TableMeta {
            shape: TableShape {
                schema: t.schema.clone(),
                table: t.table.clone(),
                columns: Arc::new(columns),
                key: keys.into_iter().map(|(_, i)| i).collect(),
                key_unknown: false,
            },
            kinds,
        })
    }

    /// The publication the slot streams: created for the captured tables when missing;
    /// an existing one must publish inserts, updates and deletes of every captured
    /// table (missing tables are added when the user may).
    fn ensure_publication(&mut self) -> Result<(), SourceError> {
        let name = self.s.publication.clone();
        let tables: Vec<String> = self
            .captured
            .iter()
            .map(|t| format!("{}.{}", q_ident(&t.schema), q_ident(&t.table)))
            .collect();
        let r = self.query(
            "reading the publication",
            &format!(
                "SELECT pubinsert AND pubupdate AND pubdelete, puballtables FROM pg_publication \
                 WHERE pubname = {}",
                q_lit(&name)
            ),
        )?;
        let Some(row) = r.first() else {
            let create = format!(
                "CREATE PUBLICATION {} FOR TABLE {} WITH (publish = 'insert, update, delete, truncate');",
                q_ident(&name),
                tables.join(", ")
            );
            return match self.main()?.batch_execute(&create) {
                Ok(()) => {
                    tracing::info!(publication = %name, tables = tables.len(), "publication created for the captured tables");
                    Ok(())
                }
                Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42501") => {
                    Err(SourceError::fatal(format!(
                        "publication {name:?} does not exist and user {:?} may not create it ({}). \
                         Fix: as the tables' owner or a superuser run `{create}` (docs/POSTGRESQL.md, \
                         \"Publication\"), or name an existing publication in collector.publicationName \
                         (COLLECTOR_PUBLICATION_NAME)",
                        self.s.user,
                        e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default()
                    )))
                }
                Err(e) => Err(pg_err("creating the publication", &e)),
            };
        };
        if col(row, 0) != "t" {
            return Err(SourceError::fatal(format!(
                "publication {name:?} does not publish inserts, updates and deletes. Fix: \
                 `ALTER PUBLICATION {} SET (publish = 'insert, update, delete, truncate');`",
                q_ident(&name)
            )));
        }
        if col(row, 1) == "t" {
            return Ok(());
        }
        let r = self.query(
            "reading the publication's tables",
            &format!(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = {}",
                q_lit(&name)
            ),
        )?;
        let have: HashSet<(String, String)> = r
            .iter()
            .map(|r| (col(r, 0).to_owned(), col(r, 1).to_owned()))
            .collect();
        let missing: Vec<String> = self
            .captured
            .iter()
            .filter(|t| !have.contains(&(t.schema.clone(), t.table.clone())))
            .map(|t| format!("{}.{}", q_ident(&t.schema), q_ident(&t.table)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let alter = format!(
            "ALTER PUBLICATION {} ADD TABLE {};",
            q_ident(&name),
            missing.join(", ")
        );
        match self.main()?.batch_execute(&alter) {
            Ok(()) => {
                tracing::warn!(publication = %name, added = missing.len(), "captured tables were missing from the publication and were added; their changes from before this are not streamed");
                Ok(())
            }
            Err(e) => Err(SourceError::fatal(format!(
                "publication {name:?} lacks {} captured table(s) and adding them failed ({}). Fix: as \
                 the tables' owner or a superuser run `{alter}`",
                missing.len(),
                e.as_db_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or_else(|| e.to_string())
            ))),
        }
    }

    fn slot_state(&mut self) -> Result<Option<u64>, SourceError> {
        let slot = q_lit(&self.s.slot);
        let r = self.query(
            "reading the replication slot",
            &format!(
                "SELECT plugin, coalesce(confirmed_flush_lsn::text, '0/0'), database, slot_type \
                 FROM pg_replication_slots WHERE slot_name = {slot}"
            ),
        )?;
        let Some(row) = r.first() else {
            return Ok(None);
        };
        if col(row, 3) != "logical" || col(row, 2) != self.s.dbname {
            return Err(SourceError::fatal(format!(
                "replication slot {:?} is a {} slot of database {:?}, not a logical slot of {:?}: set \
                 collector.slotName (COLLECTOR_SLOT_NAME) to a slot of this database, or another \
                 collector.name",
                self.s.slot,
                col(row, 3),
                col(row, 2),
                self.s.dbname
            )));
        }
        if col(row, 0) != "pgoutput" {
            return Err(SourceError::fatal(format!(
                "replication slot {:?} uses the output plugin {:?}; rtdp reads pgoutput. A slot made \
                 by an earlier rtdp (wal2json) cannot be read on: give the collector a new \
                 collector.name (COLLECTOR_NAME) to start over with a new slot and snapshot, then \
                 drop the old slot: SELECT pg_drop_replication_slot({});",
                self.s.slot,
                col(row, 0),
                q_lit(&self.s.slot)
            )));
        }
        Ok(Some(parse_lsn(col(row, 1)).unwrap_or(0)))
    }

    /// Creates the slot; with `export`, keeps the creating connection and its exported
    /// snapshot for the initial snapshot.
    fn create_slot(&mut self, export: bool) -> Result<u64, SourceError> {
        let mut conn = self.connect_replication()?;
        let (lsn, snapshot) = conn.create_slot(&self.s.slot).map_err(|e| {
            let what = format!("creating replication slot {:?}", self.s.slot);
            repl_err(&what, e)
        })?;
        tracing::info!(slot = %self.s.slot, lsn = %format_lsn(lsn), "replication slot created");
        if export {
            self.export = Some((conn, snapshot));
        } else {
            conn.terminate();
        }
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

    // ----------------------------------------------------------------------------------
    // Streaming
    // ----------------------------------------------------------------------------------

    /// Opens the replication stream from the stored position and starts the reader.
    fn start_stream(&mut self) -> Result<(), SourceError> {
        let mut conn = self.connect_replication()?;
        conn.start_replication(&self.s.slot, self.resume_after, &self.s.publication)
            .map_err(|e| {
                let what = format!(
                    "starting replication from slot {:?} (publication {:?})",
                    self.s.slot, self.s.publication
                );
                repl_err(&what, e)
            })?;
        let catalog = LiveCatalog {
            client: self.connect()?,
        };
        let cp = self.checkpoint.clone();
        let partial = cp
            .as_ref()
            .and_then(|c| c.partial.as_ref())
            .and_then(|p| Some((parse_lsn(&p.commit)?, p.next_index)));
        let batch = usize::try_from(self.s.max_batch_changes)
            .unwrap_or(usize::MAX)
            .max(1);
        let asm = Assembler::new(AssemblerSettings {
            collector: self.s.collector.clone(),
            dbname: self.s.dbname.clone(),
            captured: self.captured.iter().map(|t| t.to_string()).collect(),
            resume_after: self.resume_after,
            partial,
            filter: cp.and_then(|c| c.filter),
            chunk_events: batch.min(5_000),
            encode: true,
        });
        // What the stored position says is in Kafka may be confirmed at once.
        let flush = self.confirmed.max(self.resume_after);
        self.confirmed = flush;
        tracing::info!(lsn = %format_lsn(self.resume_after), slot = %self.s.slot, "streaming");
        self.reader = Some(Reader::spawn(
            conn,
            Box::new(catalog),
            asm,
            flush,
            ReaderSettings {
                // Enough to decode the next transactions while a batch commits, bounded
                // apart from the batch size so memory stays near one batch.
                queue_events: batch.min(20_000),
                idle_interval: Duration::from_secs(10),
                status_interval: Duration::from_secs(10),
            },
            repl_err,
        ));
        Ok(())
    }

    /// Whatever the reader has decoded, up to `max_batch_changes` events.
    fn stream_batch(&mut self) -> Result<Batch, SourceError> {
        if self.reader.is_none() {
            self.start_stream()?;
        }
        let Some(reader) = self.reader.as_ref() else {
            return Ok(Batch::default());
        };
        let max = usize::try_from(self.s.max_batch_changes).unwrap_or(usize::MAX);
        let mut batch = Batch::default();
        let mut last_end = None;
        let mut partial = None;
        let mut idle = None;
        let mut next = reader.next(Duration::from_millis(100));
        while let Some(item) = next {
            match item {
                Item::Failed(e) => {
                    self.reader = None;
                    return Err(e);
                }
                Item::Out(Out::Idle(lsn)) => idle = Some(lsn),
                Item::Out(Out::Chunk(c)) => {
                    batch.events.extend(c.events);
                    batch.truncated.extend(c.truncated);
                    batch.last_commit_ts_ms = Some(c.commit_ts_ms);
                    match c.end_lsn {
                        Some(end) => {
                            batch.transactions += 1;
                            last_end = Some(end);
                            partial = None;
                        }
                        None => partial = Some((c.final_lsn, c.next_index)),
                    }
                }
            }
            if batch.events.len() >= max {
                break;
            }
            next = reader.try_next();
        }
        let Some(cp) = self.checkpoint.as_mut() else {
            return Err(SourceError::transient("no checkpoint"));
        };
        let before = cp.clone();
        if let Some(end) = last_end {
            self.resume_after = self.resume_after.max(end);
        }
        if let Some(w) = idle {
            self.resume_after = self.resume_after.max(w);
        }
        cp.lsn = format_lsn(self.resume_after);
        cp.partial = partial.map(|(commit, next_index)| Partial {
            commit: format_lsn(commit),
            next_index,
        });
        if cp
            .filter
            .as_ref()
            .is_some_and(|f| self.resume_after > f.until)
        {
            tracing::info!("stream passed the snapshot's last commit; no more filtering");
            cp.filter = None;
        }
        if batch.events.is_empty() && *cp == before {
            return Ok(batch);
        }
        batch.checkpoint = Some(serde_json::to_value(&*cp).unwrap_or_default());
        Ok(batch)
    }
}

/// The catalog through a SQL session of its own (the reader thread's).
struct LiveCatalog {
    client: Client,
}

impl Catalog for LiveCatalog {
    fn describe(&mut self, rel: &pgoutput::Relation) -> Result<Described, PgError> {
        let oids: Vec<String> = rel.columns.iter().map(|c| c.type_oid.to_string()).collect();
        let mods: Vec<String> = rel.columns.iter().map(|c| c.typmod.to_string()).collect();
        let q = |e: postgres::Error| match e.as_db_error() {
            Some(d) => PgError::Server {
                code: d.code().code().to_owned(),
                message: d.message().to_owned(),
                detail: d.detail().map(str::to_owned),
                hint: d.hint().map(str::to_owned),
            },
            None => PgError::Io(std::io::Error::other(e.to_string())),
        };
        let types = rows(
            self.client
                .simple_query(&format!(
                    "SELECT format_type(x.o, x.m) FROM unnest('{{{}}}'::oid[], '{{{}}}'::int4[]) \
                     WITH ORDINALITY AS x(o, m, i) ORDER BY x.i",
                    oids.join(","),
                    mods.join(",")
                ))
                .map_err(q)?,
        );
        let types: Vec<String> = types.iter().map(|r| col(r, 0).to_owned()).collect();
        let attrs = rows(
            self.client
                .simple_query(&format!(
                    "SELECT a.attname, a.attnotnull, array_position(i.indkey::int2[], a.attnum) \
                     FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
                     WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped",
                    rel.oid
                ))
                .map_err(q)?,
        );
        let by_name: HashMap<&str, (bool, Option<u32>)> = attrs
            .iter()
            .map(|r| {
                (
                    col(r, 0),
                    (col(r, 1) == "t", r.get(2).and_then(|k| k.parse().ok())),
                )
            })
            .collect();
        let mut key: Vec<(u32, usize)> = Vec::new();
        let mut not_null = Vec::with_capacity(rel.columns.len());
        for (i, c) in rel.columns.iter().enumerate() {
            let (nn, k) = by_name
                .get(c.name.as_str())
                .copied()
                .unwrap_or((false, None));
            not_null.push(nn);
            if let Some(k) = k {
                key.push((k, i));
            }
        }
        key.sort();
        Ok(Described {
            types,
            not_null,
            key: key.into_iter().map(|(_, i)| i).collect(),
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A value's envelope JSON; a value that does not fit its type is kept as its text (the
/// worker dead-letters that record) and warned about once per column, without the value.
pub(crate) fn to_json_or_text(
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
                tracing::warn!(table = %table, column = %c.name, r#type = %c.ty, "a value does not fit its column type (NaN or infinity in numeric(p,s), infinity in a timestamp, a BC date, …); it is sent as text and the worker will dead-letter that record");
            }
            serde_json::Value::String(text.to_owned())
        }
    }
}

impl ChangeSource for PostgresSource {
    fn connector(&self) -> &'static str {
        "postgresql"
    }

    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError> {
        self.reader = None;
        self.export = None;
        self.snap = None;
        self.progress = None;
        self.client = Some(self.connect()?);
        self.check_server()?;
        self.load_tables()?;
        self.ensure_publication()?;
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
                let c = if self.s.snapshot {
                    if slot.is_some() {
                        tracing::warn!(slot = %self.s.slot, "no stored position but the slot exists: dropping it to take a consistent snapshot");
                        self.drop_slot()?;
                    }
                    self.create_slot(true)?
                } else {
                    match slot {
                        Some(lsn) => lsn,
                        None => self.create_slot(false)?,
                    }
                };
                self.confirmed = c;
                self.resume_after = c;
                self.checkpoint = Some(Checkpoint {
                    lsn: format_lsn(c),
                    partial: None,
                    snapshot: self.s.snapshot.then(|| SnapState {
                        done: Vec::new(),
                        rows: 0,
                        snapshots: Vec::new(),
                        tables: BTreeMap::new(),
                    }),
                    filter: None,
                });
            }
            Some(cp) => {
                let lsn = parse_lsn(&cp.lsn).ok_or_else(|| {
                    SourceError::fatal(format!("stored position has a bad LSN {:?}", cp.lsn))
                })?;
                let Some(confirmed) = slot else {
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
                if cp.snapshot.is_some() {
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
            self.stream_batch()
        }
    }

    fn confirm(&mut self, checkpoint: &serde_json::Value) -> Result<(), SourceError> {
        let cp: Checkpoint = serde_json::from_value(checkpoint.clone())
            .map_err(|e| SourceError::transient(format!("bad checkpoint: {e}")))?;
        if cp.snapshot.is_some() {
            return Ok(()); // the slot stays at the consistent point during the snapshot
        }
        if let Some(lsn) = parse_lsn(&cp.lsn) {
            self.confirmed = self.confirmed.max(lsn);
            if let Some(r) = &self.reader {
                r.confirm(lsn);
            }
        }
        Ok(())
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
    fn lsns_round_trip() {
        assert_eq!(parse_lsn("0/15302D8"), Some(0x15302D8));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(parse_lsn("1/"), None);
    }

    #[test]
    fn a_checkpoint_without_partial_reads_as_before() {
        let cp: Checkpoint = serde_json::from_str(r#"{"lsn":"0/10"}"#).unwrap();
        assert_eq!(cp.partial, None);
        let with = Checkpoint {
            partial: Some(Partial {
                commit: "0/20".into(),
                next_index: 5000,
            }),
            ..cp
        };
        let back: Checkpoint =
            serde_json::from_value(serde_json::to_value(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn escaping() {
        assert_eq!(q_lit("a'b"), "'a''b'");
        assert_eq!(q_ident("a\"b"), "\"a\"\"b\"");
    }
}
