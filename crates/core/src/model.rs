//! The change-event envelope (the Kafka value every rtdp collector writes) and the
//! processed event the worker writes to files.
//!
//! The envelope is shaped like Debezium's payload (docs/OUTPUT.md): `op`, `before`,
//! `after`, `source`, `ts_ms`, plus our `eventId` and `columns` (the column types, so
//! files are typed). Some value encodings differ from Debezium's (dates and timestamps
//! are ISO text here), so a consumer written for Debezium does not read every event
//! unchanged yet.
//!
//! ## Positions
//! [`Position`] is the totally ordered place of a change in its source's emission
//! order: commit position first (Oracle commit SCN, PostgreSQL commit LSN, MySQL binlog
//! file+offset of the commit), then the transaction id (transactions committed at the
//! same SCN are emitted in transaction-id order), then the index of the change in its
//! transaction (for a snapshot: the row number). A change's own SCN/LSN is *not* such a
//! position — with interleaved transactions a later commit can hold lower LSNs.

pub use crate::status::{CollectorMetrics, JobState, JobStatus};
use crate::types::{Column, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Column name → JSON value, in source column order.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "c")]
    Create,
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "d")]
    Delete,
    #[serde(rename = "r")]
    Read,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }

    pub fn from_code(s: &str) -> Option<Op> {
        Some(match s {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            _ => return None,
        })
    }
}

/// Where the change came from. Position fields are those of the source's database;
/// the others are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Source {
    /// oracle | postgresql | mysql | oceanbase
    pub connector: String,
    /// Collector name (unique per source; keys the offsets topic).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub table: String,
    /// Commit time in the database, ms since the epoch.
    pub ts_ms: i64,
    /// True for initial-snapshot reads.
    #[serde(default)]
    pub snapshot: bool,
    // Oracle / OceanBase
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_scn: Option<String>,
    #[serde(rename = "txId", default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<String>,
    // PostgreSQL
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_lsn: Option<u64>,
    // MySQL
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// Index of this change in its transaction (snapshot: row number in the snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl Source {
    /// The emission-order position of this change, when the source fields carry one.
    ///
    /// Oracle/OceanBase: (commit_scn, txId, index); PostgreSQL: (commit_lsn, "", index);
    /// MySQL: (binlog file number << 64 | pos, "", index).
    pub fn position(&self) -> Option<Position> {
        let index = self.index?;
        match self.connector.as_str() {
            "oracle" | "oceanbase" => Some(Position {
                commit: self.commit_scn.as_deref()?.parse().ok()?,
                tx: self.tx_id.clone().unwrap_or_default(),
                index: index as u128,
            }),
            "postgresql" => Some(Position {
                commit: self.commit_lsn? as u128,
                tx: String::new(),
                index: index as u128,
            }),
            "mysql" => {
                let file = self.file.as_deref()?;
                let seq: u128 = file.rsplit('.').next()?.parse().ok()?;
                Some(Position {
                    commit: (seq << 64) | self.pos? as u128,
                    tx: String::new(),
                    index: index as u128,
                })
            }
            _ => None,
        }
    }

    /// Identity of the position sequence this change belongs to (positions are only
    /// comparable within one key).
    pub fn source_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.connector,
            self.name,
            self.db.as_deref().unwrap_or("")
        )
    }
}

/// A totally ordered position in a source's emission order (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub commit: u128,
    pub tx: String,
    pub index: u128,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.commit, self.tx, self.index)
    }
}

/// One row change as published to Kafka by a collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: Source,
    /// When the collector made the event, ms since the epoch.
    pub ts_ms: i64,
    /// Deterministic id: [`crate::ids::event_id`] of (collector, position, index).
    #[serde(rename = "eventId")]
    pub event_id: String,
    /// The table's columns with their types, in source order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
}

/// A table's columns as one shared, comparable value. Two events with equal schemas
/// write to the same file; a change of columns rolls to a new file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    fingerprint: u64,
}

impl TableSchema {
    pub fn new(columns: Vec<Column>) -> Arc<TableSchema> {
        let fingerprint = Self::compute_fingerprint(&columns);
        Arc::new(TableSchema {
            columns,
            fingerprint,
        })
    }

    /// A short stable fingerprint of names and types (FNV-1a 64), computed once.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn compute_fingerprint(columns: &[Column]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        for c in columns {
            eat(c.name.as_bytes());
            eat(c.ty.as_str().as_bytes());
            eat(&[c.precision.unwrap_or(0), c.scale.unwrap_or(0) as u8]);
        }
        h
    }
}

/// A change event after transform: what one output row holds.
///
/// `values` line up with `schema.columns`: the row after the change for c/u/r, the row
/// before it for d.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedEvent {
    pub event_id: String,
    pub op: Op,
    /// Schema (or database) of the table; `None` when the source has no schema level.
    pub schema_name: Option<String>,
    pub table: String,
    pub schema: Arc<TableSchema>,
    pub values: Vec<Value>,
    /// Source position as text (e.g. `"<commit>:<tx>:<index>"`, or the source's own
    /// position fields for foreign events).
    pub source_position: String,
    /// Commit time in the database, ms since the epoch.
    pub source_ts_ms: i64,
    /// When the worker transformed it, ms since the epoch.
    pub processed_at_ms: i64,
}

impl ProcessedEvent {
    /// `<schema>.<table>` (or just the table), the output folder name.
    pub fn qualified_table(&self) -> String {
        match &self.schema_name {
            Some(s) if !s.is_empty() => format!("{s}.{}", self.table),
            _ => self.table.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_round_trips_and_reads_debezium_shaped_json() {
        let j = json!({
            "op": "u",
            "before": {"ID": 1, "NAME": "a"},
            "after": {"ID": 1, "NAME": "b"},
            "source": {"connector": "oracle", "name": "ora1", "db": "ORCL", "schema": "APP",
                       "table": "T", "ts_ms": 1_700_000_000_000i64, "snapshot": false,
                       "scn": "100", "commit_scn": "105", "txId": "0a.1b.2c", "index": 3},
            "ts_ms": 1_700_000_000_100i64,
            "eventId": "x",
            "columns": [{"name": "ID", "type": "int64", "key": true, "optional": false},
                        {"name": "NAME", "type": "string"}]
        });
        let ev: ChangeEvent = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(ev.op, Op::Update);
        assert_eq!(
            ev.source.position(),
            Some(Position {
                commit: 105,
                tx: "0a.1b.2c".into(),
                index: 3
            })
        );
        assert_eq!(serde_json::to_value(&ev).unwrap(), j);
    }

    #[test]
    fn positions_order_by_commit_then_tx_then_index() {
        let p = |c, t: &str, i| Position {
            commit: c,
            tx: t.into(),
            index: i,
        };
        assert!(p(10, "b", 0) > p(9, "z", 99));
        assert!(p(10, "b", 0) > p(10, "a", 7));
        assert!(p(10, "a", 8) > p(10, "a", 7));
    }
}
