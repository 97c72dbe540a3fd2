//! The pure heart of the Oracle source: rows of `V$LOGMNR_CONTENTS` in, change events
//! out, in publish order. The live source ([`super::session`]) and the operators'
//! `cdc-collector oracle replay` feed it the same way, so a recorded dump replays
//! exactly what the collector would have published.
//!
//! What it promises:
//! - A statement split over several rows (`CSF = 1`) is joined before it is read.
//! - Changes are buffered per transaction (not `COMMITTED_DATA_ONLY`) and emitted at
//!   commit, in commit order; transactions that commit at the same SCN in transaction-id
//!   order (docs/ORACLE.md). A rollback (operation 36) drops the buffer; a row with
//!   `ROLLBACK = 1` undoes the latest earlier change of the same `ROW_ID` in its
//!   transaction (a partial rollback to a savepoint). A commit of a transaction with no
//!   captured change emits nothing (but counts).
//! - A transaction's events are built when no later row can reorder it (the first row of
//!   a higher SCN, or the end of a window), so a DDL that follows it in the log does not
//!   change how it is read. A DDL on a captured table refreshes its columns (through the
//!   [`Catalog`]) and is reported.
//! - Positions: an event is at (commit SCN, transaction id, index). A [`Checkpoint`] holds
//!   the last position handed out and the SCN where mining must restart so that no open
//!   transaction loses its first rows (the oldest open transaction's start). Resuming from
//!   a checkpoint re-reads from there and skips every event at or before the position:
//!   nothing lost, nothing twice.
//! - More than `max_buffered` changes held for open transactions is an error naming the
//!   largest transaction — never a silent drop.
//! - A statement that cannot be read is an error naming the SCN, transaction and table
//!   (never the values); the caller decides (the live source stops before publishing).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rtdp_core::model::{Op, Row, Source};
use rtdp_core::types::{Column, ColumnType};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::lob;
use super::redo;
use super::types::{column_for, is_lob, text_to_json, OraColumn, OraKind};
use crate::event::{self, Origin, TableShape};
use crate::source::{OutEvent, SourceError};

/// `OPERATION_CODE` values the source reads.
pub mod op {
    pub const INSERT: u32 = 1;
    pub const DELETE: u32 = 2;
    pub const UPDATE: u32 = 3;
    pub const DDL: u32 = 5;
    pub const START: u32 = 6;
    pub const COMMIT: u32 = 7;
    pub const SELECT_LOB_LOCATOR: u32 = 9;
    pub const LOB_WRITE: u32 = 10;
    pub const LOB_TRIM: u32 = 11;
    /// Oracle's documentation says 28; LogMiner builds seen by other connectors write 29.
    pub const LOB_ERASE: u32 = 28;
    pub const LOB_ERASE_ALT: u32 = 29;
    pub const ROLLBACK: u32 = 36;
}

/// One row of `V$LOGMNR_CONTENTS` (JSON keys: the view's column names in lower case;
/// numbers may be JSON numbers or strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LmRow {
    #[serde(deserialize_with = "de::num")]
    pub scn: u64,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub start_scn: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub commit_scn: Option<u64>,
    /// `TIMESTAMP`: `YYYY-MM-DD HH24:MI:SS` (or with `T`), the database's clock.
    #[serde(default)]
    pub timestamp: Option<String>,
    pub xid: String,
    #[serde(deserialize_with = "de::num")]
    pub operation_code: u64,
    #[serde(default)]
    pub seg_owner: Option<String>,
    #[serde(default)]
    pub table_name: Option<String>,
    #[serde(default)]
    pub row_id: Option<String>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub rollback: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub csf: Option<u64>,
    #[serde(default)]
    pub sql_redo: Option<String>,
    #[serde(rename = "thread#", default, deserialize_with = "de::opt_num")]
    pub thread: Option<u64>,
    /// The PDB of the change (multitenant).
    #[serde(default)]
    pub src_con_name: Option<String>,
}

mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn to_u64(v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn num<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = Value::deserialize(d)?;
        to_u64(&v).ok_or_else(|| serde::de::Error::custom(format!("expected a number, got {v}")))
    }

    pub fn opt_num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        to_u64(&v)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a number, got {v}")))
    }
}

/// A captured table as the source reads it.
#[derive(Debug, Clone)]
pub struct OraTable {
    pub shape: TableShape,
    pub kinds: Vec<OraKind>,
    /// The dictionary's columns, index for index with `shape.columns` (what the
    /// snapshot selects).
    pub ora: Vec<OraColumn>,
    by_name: HashMap<String, usize>,
    /// LOB columns left out (no `oracle.lobEnabled`).
    skipped: Vec<String>,
    /// Columns not known are learnt from the statements as text (replay without a
    /// schema, or after a DDL replay cannot read the dictionary for).
    learn: bool,
}

impl OraTable {
    /// From the dictionary's columns and the primary-key column names.
    pub fn new(
        owner: &str,
        table: &str,
        cols: &[OraColumn],
        key: &[String],
        lob_enabled: bool,
    ) -> Self {
        let mut columns = Vec::new();
        let mut kinds = Vec::new();
        let mut ora = Vec::new();
        let mut skipped = Vec::new();
        for c in cols {
            if is_lob(&c.data_type) && !lob_enabled {
                skipped.push(c.name.clone());
                continue;
            }
            let (col, kind) = column_for(c, key.contains(&c.name));
            columns.push(col);
            kinds.push(kind);
            ora.push(c.clone());
        }
        let by_name: HashMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let key_idx = key.iter().filter_map(|k| by_name.get(k).copied()).collect();
        Self {
            shape: TableShape {
                schema: owner.to_owned(),
                table: table.to_owned(),
                columns: Arc::new(columns),
                key: key_idx,
                key_unknown: false,
            },
            kinds,
            ora,
            by_name,
            skipped,
            learn: false,
        }
    }

    /// A table nothing is known about: its columns are learnt from the statements as
    /// text, its key is unknown.
    pub fn inferred(owner: &str, table: &str) -> Self {
        let mut t = Self::new(owner, table, &[], &[], true);
        t.learn = true;
        t.shape.key_unknown = true;
        t
    }

    fn learn(&mut self, names: impl Iterator<Item = String>) {
        for n in names {
            if !self.by_name.contains_key(&n) {
                let mut cols = self.shape.columns.as_ref().clone();
                self.by_name.insert(n.clone(), cols.len());
                cols.push(Column::new(n.clone(), ColumnType::String));
                self.kinds.push(OraKind::Plain);
                self.ora.push(OraColumn {
                    name: n,
                    data_type: "VARCHAR2".into(),
                    precision: None,
                    scale: None,
                    nullable: true,
                });
                self.shape.columns = Arc::new(cols);
            }
        }
    }
}

/// Where table metadata comes from: the dictionary (live) or a schema file (replay).
///
/// A failure keeps its severity through the [`Miner`] to the source's caller: a
/// connection dropped during a lookup is transient (the collector reconnects and reads
/// the window again), a table the user may not read is fatal.
pub trait Catalog {
    /// The table, `None` when it is not captured.
    fn table(&mut self, owner: &str, table: &str) -> Result<Option<Arc<OraTable>>, SourceError>;
    /// A DDL changed the table: read its columns again.
    fn refresh(&mut self, owner: &str, table: &str) -> Result<(), SourceError>;
}

/// A fixed set of tables (replay's `--schema` file); tables not in it are inferred.
#[derive(Default)]
pub struct StaticCatalog {
    pub tables: HashMap<(String, String), Arc<OraTable>>,
    /// Infer tables that are not listed (else they are not captured).
    pub infer_unknown: bool,
}

impl Catalog for StaticCatalog {
    fn table(&mut self, owner: &str, table: &str) -> Result<Option<Arc<OraTable>>, SourceError> {
        let k = (owner.to_owned(), table.to_owned());
        if let Some(t) = self.tables.get(&k) {
            return Ok(Some(t.clone()));
        }
        if !self.infer_unknown {
            return Ok(None);
        }
        let t = Arc::new(OraTable::inferred(owner, table));
        self.tables.insert(k, t.clone());
        Ok(Some(t))
    }

    /// No dictionary to read: columns the DDL added are learnt from the statements that
    /// follow, as text.
    fn refresh(&mut self, owner: &str, table: &str) -> Result<(), SourceError> {
        let k = (owner.to_owned(), table.to_owned());
        if let Some(t) = self.tables.get_mut(&k) {
            if !t.learn {
                let mut learning = (**t).clone();
                learning.learn = true;
                *t = Arc::new(learning);
            }
        }
        Ok(())
    }
}

/// The replay `--schema` file: `{"OWNER.TABLE": {"columns": [OraColumn…], "key": ["ID"]}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaEntry {
    pub columns: Vec<OraColumn>,
    #[serde(default)]
    pub key: Vec<String>,
}

/// A replay `--schema` file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// An entry's name has no `.` between owner and table.
    #[error("schema entry {entry:?}: expected OWNER.TABLE")]
    NotOwnerTable { entry: String },
}

impl StaticCatalog {
    pub fn from_schema(
        schema: &BTreeMap<String, SchemaEntry>,
        lob_enabled: bool,
    ) -> Result<Self, SchemaError> {
        let mut tables = HashMap::new();
        for (name, e) in schema {
            let (owner, table) =
                name.split_once('.')
                    .ok_or_else(|| SchemaError::NotOwnerTable {
                        entry: name.clone(),
                    })?;
            tables.insert(
                (owner.to_owned(), table.to_owned()),
                Arc::new(OraTable::new(owner, table, &e.columns, &e.key, lob_enabled)),
            );
        }
        Ok(Self {
            tables,
            infer_unknown: true,
        })
    }
}

/// Where the source stands (the collector's checkpoint, stored with the events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Mining restarts at this SCN (inclusive): the oldest open transaction's first SCN,
    /// or the SCN after the last mined one.
    pub restart_scn: u64,
    /// Commit SCN of the last transaction handed out.
    pub commit_scn: u64,
    /// Its transaction id; empty: every transaction that committed at `commit_scn`
    /// (after a snapshot read `AS OF SCN commit_scn`).
    pub tx_id: String,
    /// Events of that transaction handed out.
    pub index: u64,
    /// The log was mined through this SCN.
    pub mined_scn: u64,
}

impl Checkpoint {
    /// Whether the whole transaction (commit_scn, xid) comes before this position.
    pub fn tx_before(&self, commit_scn: u64, xid: &str) -> bool {
        commit_scn < self.commit_scn
            || (commit_scn == self.commit_scn
                && (self.tx_id.is_empty() || xid < self.tx_id.as_str()))
    }

    /// Whether the event at (commit_scn, xid, index) was handed out before.
    pub fn covers(&self, commit_scn: u64, xid: &str, index: u64) -> bool {
        self.tx_before(commit_scn, xid)
            || (commit_scn == self.commit_scn && xid == self.tx_id && index < self.index)
    }
}

#[derive(Debug, Clone)]
struct Change {
    scn: u64,
    owner: String,
    table: String,
    row_id: String,
    sql: String,
    /// A LOB operation's text (LOB columns with `lobEnabled`).
    lob: Option<u32>,
}

/// The events of the transaction being emitted, with the ROWID of their change (LOB
/// writes land on the latest event of their row).
struct TxOut {
    /// The commit position as text (part of the event ids).
    commit: String,
    now: i64,
    /// Next index in the transaction.
    index: u64,
    built: Vec<(String, OutEvent)>,
}

/// A LOB value being written (after its locator row).
struct OpenLob {
    locator: lob::Locator,
    value: lob::LobValue,
    change: Change,
}

#[derive(Debug, Default)]
struct Tx {
    first_scn: u64,
    changes: Vec<Change>,
}

#[derive(Debug)]
struct Committed {
    commit_scn: u64,
    xid: String,
    ts_ms: i64,
    changes: Vec<Change>,
}

/// Counters for metrics and the replay summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MinerStats {
    pub rows: u64,
    pub transactions: u64,
    pub rolled_back: u64,
    /// `ROLLBACK = 1` rows that matched no earlier change (it happened before mining began).
    pub unmatched_undo: u64,
    pub ddl: u64,
    pub skipped_resumed: u64,
}

/// Settings of a [`Miner`].
#[derive(Debug, Clone)]
pub struct MinerSettings {
    pub collector: String,
    /// `source.db` of the events (service name or PDB).
    pub db: Option<String>,
    pub max_buffered: usize,
    pub lob_enabled: bool,
    /// Seconds to add to `TIMESTAMP` (the database's local clock) to get UTC.
    pub tz_offset_secs: i64,
}

/// LogMiner rows → events in publish order.
pub struct Miner {
    settings: MinerSettings,
    open: HashMap<String, Tx>,
    buffered: usize,
    /// A statement continued on the next row (`CSF = 1`), per transaction.
    partial: HashMap<String, (LmRow, String)>,
    pending: Vec<Committed>,
    ready: Vec<OutEvent>,
    /// Handed out so far (resume filter first, then what this miner emitted).
    position: Checkpoint,
    resume: Option<Checkpoint>,
    last_commit_ts_ms: Option<i64>,
    transactions_in_ready: u64,
    pub stats: MinerStats,
    /// DDL reports (table and SCN, no statement text).
    pub ddl_reports: Vec<String>,
    /// Changes that could not be read (skipped here; the live source stops on them before
    /// publishing, `replay` prints them). Never hold values.
    pub problems: Vec<String>,
}

impl Miner {
    /// A miner; `resume` is the last checkpoint that reached Kafka (mining must start
    /// at its `restart_scn`).
    pub fn new(settings: MinerSettings, resume: Option<Checkpoint>) -> Self {
        let position = resume.clone().unwrap_or(Checkpoint {
            restart_scn: 0,
            commit_scn: 0,
            tx_id: String::new(),
            index: 0,
            mined_scn: 0,
        });
        Self {
            settings,
            open: HashMap::new(),
            buffered: 0,
            partial: HashMap::new(),
            pending: Vec::new(),
            ready: Vec::new(),
            position,
            resume,
            last_commit_ts_ms: None,
            transactions_in_ready: 0,
            stats: MinerStats::default(),
            ddl_reports: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    /// Reads one row (rows come in SCN order).
    pub fn push(&mut self, row: LmRow, catalog: &mut dyn Catalog) -> Result<(), SourceError> {
        self.stats.rows += 1;
        if row.scn > 0 {
            self.flush_through(row.scn - 1, catalog)?;
        }
        let code = row.operation_code as u32;
        match code {
            op::START => {
                self.open.entry(row.xid.clone()).or_insert_with(|| Tx {
                    first_scn: row.start_scn.filter(|s| *s > 0).unwrap_or(row.scn),
                    changes: Vec::new(),
                });
            }
            op::COMMIT => {
                let tx = self.open.remove(&row.xid).unwrap_or_default();
                self.partial.remove(&row.xid);
                self.buffered -= tx.changes.len();
                self.pending.push(Committed {
                    commit_scn: row.commit_scn.filter(|s| *s > 0).unwrap_or(row.scn),
                    xid: row.xid,
                    ts_ms: self.ts_ms(row.timestamp.as_deref())?,
                    changes: tx.changes,
                });
            }
            op::ROLLBACK => {
                if let Some(tx) = self.open.remove(&row.xid) {
                    self.buffered -= tx.changes.len();
                }
                self.partial.remove(&row.xid);
                self.stats.rolled_back += 1;
            }
            op::DDL => {
                let (owner, table) = (
                    row.seg_owner.clone().unwrap_or_default(),
                    row.table_name.clone().unwrap_or_default(),
                );
                if !table.is_empty() && catalog.table(&owner, &table)?.is_some() {
                    catalog.refresh(&owner, &table)?;
                    self.stats.ddl += 1;
                    self.ddl_reports.push(format!(
                        "DDL on captured table {owner}.{table} at SCN {}: columns read again",
                        row.scn
                    ));
                }
            }
            op::INSERT | op::DELETE | op::UPDATE => self.dml(row, None)?,
            op::SELECT_LOB_LOCATOR
            | op::LOB_WRITE
            | op::LOB_TRIM
            | op::LOB_ERASE
            | op::LOB_ERASE_ALT
                if self.settings.lob_enabled =>
            {
                self.dml(row, Some(code))?
            }
            _ => {}
        }
        Ok(())
    }

    fn dml(&mut self, row: LmRow, lob: Option<u32>) -> Result<(), SourceError> {
        // Join a statement split over rows.
        let mut row = row;
        let piece = row.sql_redo.take().unwrap_or_default();
        let sql = match self.partial.remove(&row.xid) {
            Some((first, mut acc)) => {
                acc.push_str(&piece);
                if row.csf == Some(1) {
                    self.partial.insert(row.xid.clone(), (first, acc));
                    return Ok(());
                }
                row = LmRow {
                    sql_redo: None,
                    ..first
                };
                acc
            }
            None if row.csf == Some(1) => {
                self.partial.insert(row.xid.clone(), (row, piece));
                return Ok(());
            }
            None => piece,
        };
        let tx = self.open.entry(row.xid.clone()).or_insert_with(|| Tx {
            first_scn: row.start_scn.filter(|s| *s > 0).unwrap_or(row.scn),
            changes: Vec::new(),
        });
        let row_id = row.row_id.clone().unwrap_or_default();
        if row.rollback == Some(1) {
            // Undo the latest earlier change of this row.
            match tx
                .changes
                .iter()
                .rposition(|c| c.row_id == row_id && !row_id.is_empty())
            {
                Some(i) => {
                    tx.changes.remove(i);
                    self.buffered -= 1;
                }
                None => self.stats.unmatched_undo += 1,
            }
            return Ok(());
        }
        tx.changes.push(Change {
            scn: row.scn,
            owner: row.seg_owner.unwrap_or_default(),
            table: row.table_name.unwrap_or_default(),
            row_id,
            sql,
            lob,
        });
        self.buffered += 1;
        if self.buffered > self.settings.max_buffered {
            let (xid, tx) = self
                .open
                .iter()
                .max_by_key(|(_, t)| t.changes.len())
                .expect("a transaction holds the change just buffered");
            return Err(SourceError::fatal(format!(
                "{} changes are buffered for open transactions, more than oracle.maxBufferedChanges ({}); \
                 the largest is transaction {xid} (started at SCN {}, {} changes). Raise \
                 oracle.maxBufferedChanges (and the collector's memory) and restart: nothing was published past \
                 the last checkpoint",
                self.buffered,
                self.settings.max_buffered,
                tx.first_scn,
                tx.changes.len()
            )));
        }
        Ok(())
    }

    fn ts_ms(&self, ts: Option<&str>) -> Result<i64, SourceError> {
        let Some(ts) = ts.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(0);
        };
        let t = ts.replacen(' ', "T", 1);
        let n =
            chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
                SourceError::fatal(format!("TIMESTAMP {ts:?} is not YYYY-MM-DD HH24:MI:SS"))
            })?;
        Ok(
            (n.and_utc().timestamp() - self.settings.tz_offset_secs) * 1000
                + i64::from(n.and_utc().timestamp_subsec_millis()),
        )
    }

    /// Emits every transaction that committed at or before `scn` (no later row can come
    /// before them), in (commit SCN, transaction id) order.
    pub fn flush_through(
        &mut self,
        scn: u64,
        catalog: &mut dyn Catalog,
    ) -> Result<(), SourceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (mut done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.commit_scn <= scn);
        self.pending = rest;
        done.sort_by(|a, b| (a.commit_scn, &a.xid).cmp(&(b.commit_scn, &b.xid)));
        for c in done {
            self.emit(c, catalog)?;
        }
        Ok(())
    }

    fn emit(&mut self, c: Committed, catalog: &mut dyn Catalog) -> Result<(), SourceError> {
        self.stats.transactions += 1;
        self.transactions_in_ready += 1;
        let mut out = TxOut {
            commit: format!("{}:{}", c.commit_scn, c.xid),
            now: now_ms(),
            index: 0,
            built: Vec::new(),
        };
        let mut lob: Option<OpenLob> = None;
        for ch in &c.changes {
            match ch.lob {
                Some(op::SELECT_LOB_LOCATOR) => {
                    self.finish_lob(lob.take(), &c, &mut out, catalog)?;
                    match lob::parse_locator(&ch.sql) {
                        Ok(l) => {
                            lob = Some(OpenLob {
                                value: lob::LobValue::new(l.binary),
                                locator: l,
                                change: ch.clone(),
                            })
                        }
                        Err(e) => self.problem(format!(
                            "cannot read a LOB locator of {}.{} at SCN {} (transaction {}): {e}",
                            ch.owner, ch.table, ch.scn, c.xid
                        )),
                    }
                    continue;
                }
                Some(_) => {
                    let applied = match lob.as_mut() {
                        Some(l) => lob::parse_op(&ch.sql).and_then(|o| l.value.apply(&o)),
                        None => Err(lob::LobError::NoLocator),
                    };
                    if let Err(e) = applied {
                        self.problem(format!(
                            "cannot apply a LOB operation of {}.{} at SCN {} (transaction {}): {e}",
                            ch.owner, ch.table, ch.scn, c.xid
                        ));
                    }
                    continue;
                }
                None => self.finish_lob(lob.take(), &c, &mut out, catalog)?,
            }
            let Some(table) = catalog.table(&ch.owner, &ch.table)? else {
                continue;
            };
            let r = match redo::parse(&ch.sql) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(format!(
                        "cannot read SQL_REDO of {}.{} at SCN {} (transaction {}): {e}",
                        ch.owner, ch.table, ch.scn, c.xid
                    ));
                    continue;
                }
            };
            let table = if table.learn {
                let mut t = (*table).clone();
                let names = r
                    .before
                    .iter()
                    .chain(r.after.iter())
                    .flat_map(|m| m.keys().cloned())
                    .collect::<Vec<_>>();
                t.learn(names.into_iter());
                Arc::new(t)
            } else {
                table
            };
            let images = r
                .before
                .map(|m| image(&table, m, ch, &c.xid))
                .transpose()
                .and_then(|b| {
                    Ok((
                        b,
                        r.after.map(|m| image(&table, m, ch, &c.xid)).transpose()?,
                    ))
                });
            let (before, after) = match images {
                Ok(x) => x,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            let op = match r.op {
                "c" => Op::Create,
                "u" => Op::Update,
                _ => Op::Delete,
            };
            self.build(&table, &c, ch, op, (before, after), &mut out);
        }
        self.finish_lob(lob.take(), &c, &mut out, catalog)?;
        let index = out.index;
        for (_, e) in out.built {
            let i = e.event.source.index.unwrap_or(0);
            match &self.resume {
                Some(r) if r.covers(c.commit_scn, &c.xid, i) => {
                    self.stats.skipped_resumed += 1;
                }
                _ => self.ready.push(e),
            }
        }
        if self
            .resume
            .as_ref()
            .is_none_or(|r| !r.tx_before(c.commit_scn, &c.xid))
        {
            self.position.commit_scn = c.commit_scn;
            self.position.tx_id = c.xid.clone();
            self.position.index = index;
        }
        if c.ts_ms > 0 {
            self.last_commit_ts_ms = Some(c.ts_ms);
        }
        Ok(())
    }

    /// Builds the events of one change into `out` (tagged with the change's ROWID).
    fn build(
        &self,
        table: &OraTable,
        c: &Committed,
        ch: &Change,
        op: Op,
        (before, after): (Option<Row>, Option<Row>),
        out: &mut TxOut,
    ) {
        let source = Source {
            connector: "oracle".into(),
            name: self.settings.collector.clone(),
            db: self.settings.db.clone(),
            ts_ms: c.ts_ms,
            scn: Some(ch.scn.to_string()),
            commit_scn: Some(c.commit_scn.to_string()),
            tx_id: Some(c.xid.clone()),
            ..Default::default()
        };
        let origin = Origin {
            collector: &self.settings.collector,
            source: &source,
            commit: &out.commit,
        };
        for e in event::build(
            &table.shape,
            &origin,
            op,
            before,
            after,
            &mut out.index,
            out.now,
        ) {
            out.built.push((ch.row_id.clone(), e));
        }
    }

    /// Puts a finished LOB value into the latest insert/update of its row in the
    /// transaction, or (a LOB-only update) into an update of its own.
    fn finish_lob(
        &mut self,
        lob: Option<OpenLob>,
        c: &Committed,
        out: &mut TxOut,
        catalog: &mut dyn Catalog,
    ) -> Result<(), SourceError> {
        let Some(l) = lob else { return Ok(()) };
        let ch = &l.change;
        let Some(table) = catalog.table(&l.locator.schema, &l.locator.table)? else {
            return Ok(());
        };
        let Some(&i) = table.by_name.get(&l.locator.column) else {
            self.problem(format!(
                "LOB column {:?} of {}.{} at SCN {} (transaction {}) is not in the table's columns",
                l.locator.column, ch.owner, ch.table, ch.scn, c.xid
            ));
            return Ok(());
        };
        let col = &table.shape.columns[i];
        let raw = l.value.to_redo_value();
        let value = match &raw {
            Json::String(t) => text_to_json(col, table.kinds[i], t).unwrap_or(raw.clone()),
            _ => raw.clone(),
        };
        let target = out.built.iter_mut().rev().find(|(rid, e)| {
            *rid == ch.row_id
                && !ch.row_id.is_empty()
                && matches!(e.event.op, Op::Create | Op::Update | Op::Read)
        });
        if let Some((_, e)) = target {
            if let Some(after) = e.event.after.as_mut() {
                after.insert(l.locator.column.clone(), value);
            }
            return Ok(());
        }
        // A LOB-only change: an update of the row the locator names.
        let before = match image(&table, l.locator.row.clone(), ch, &c.xid) {
            Ok(b) => b,
            Err(e) => {
                self.problem(e.to_string());
                return Ok(());
            }
        };
        let mut after = before.clone();
        after.insert(l.locator.column.clone(), value);
        self.build(&table, c, ch, Op::Update, (Some(before), Some(after)), out);
        Ok(())
    }

    /// Events ready to publish, the number of transactions they close, and the newest
    /// commit time among them.
    pub fn take_ready(&mut self) -> (Vec<OutEvent>, u64, Option<i64>) {
        (
            std::mem::take(&mut self.ready),
            std::mem::take(&mut self.transactions_in_ready),
            self.last_commit_ts_ms.take(),
        )
    }

    /// The window through `scn` is read: emit what committed in it and say where a
    /// restart would begin.
    pub fn end_window(
        &mut self,
        scn: u64,
        catalog: &mut dyn Catalog,
    ) -> Result<Checkpoint, SourceError> {
        self.flush_through(scn, catalog)?;
        let oldest_open = self
            .open
            .values()
            .map(|t| t.first_scn)
            .chain(self.partial.values().map(|(r, _)| r.scn))
            .min();
        self.position.mined_scn = scn;
        self.position.restart_scn = oldest_open.unwrap_or(scn + 1);
        Ok(self.position.clone())
    }

    /// Changes held for open transactions.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Open transactions.
    pub fn open_transactions(&self) -> usize {
        self.open.len()
    }
}

/// Why a statement's row image cannot be typed (names the column, never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "column {column:?} of {owner}.{table} at SCN {scn} (transaction {xid}) is not in the \
         table's columns: the dictionary changed under the log being read (a DDL the \
         collector did not see); restart the collector to read the columns again"
    )]
    UnknownColumn {
        column: String,
        owner: String,
        table: String,
        scn: u64,
        xid: String,
    },
}

/// A row image of the statement, typed by the table's columns. A value that does not
/// fit is kept as its text (the worker dead-letters it) — reported by the caller's log
/// without the value.
fn image(
    table: &OraTable,
    m: serde_json::Map<String, Json>,
    ch: &Change,
    xid: &str,
) -> Result<Row, ImageError> {
    let mut row = Row::new();
    for (name, v) in m {
        let Some(&i) = table.by_name.get(&name) else {
            if table.skipped.contains(&name) {
                continue;
            }
            return Err(ImageError::UnknownColumn {
                column: name,
                owner: ch.owner.clone(),
                table: ch.table.clone(),
                scn: ch.scn,
                xid: xid.to_owned(),
            });
        };
        let col = &table.shape.columns[i];
        let out = match &v {
            Json::String(text) => match text_to_json(col, table.kinds[i], text) {
                Ok(j) => j,
                Err(why) => {
                    tracing::warn!(
                        table = %format!("{}.{}", ch.owner, ch.table),
                        column = %name,
                        scn = ch.scn,
                        reason = why.0,
                        "a value does not fit its column's type; kept as text (the worker will dead-letter the event)"
                    );
                    v
                }
            },
            _ => v,
        };
        row.insert(name, out);
    }
    Ok(row)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_image_errors_keep_their_messages() {
        let schema: BTreeMap<String, SchemaEntry> =
            serde_json::from_str(r#"{"NODOT": {"columns": []}}"#).unwrap();
        let Err(e) = StaticCatalog::from_schema(&schema, false) else {
            panic!("an entry without OWNER.TABLE was accepted");
        };
        assert_eq!(
            e,
            SchemaError::NotOwnerTable {
                entry: "NODOT".into()
            }
        );
        assert_eq!(
            e.to_string(),
            r#"schema entry "NODOT": expected OWNER.TABLE"#
        );
        let e = ImageError::UnknownColumn {
            column: "X".into(),
            owner: "S".into(),
            table: "T".into(),
            scn: 42,
            xid: "01.02.03".into(),
        };
        assert_eq!(
            e.to_string(),
            "column \"X\" of S.T at SCN 42 (transaction 01.02.03) is not in the table's columns: \
             the dictionary changed under the log being read (a DDL the collector did not see); \
             restart the collector to read the columns again"
        );
    }
}
