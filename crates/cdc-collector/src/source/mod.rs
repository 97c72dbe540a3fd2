//! The [`ChangeSource`] abstraction: what the collector's loop needs from a database,
//! whatever its change log looks like (PostgreSQL streams pgoutput over a replication
//! connection, Oracle LogMiner is read in SCN windows, MySQL's binlog streams).
//!
//! A source hands out [`Batch`]es: committed transactions in commit order (or a snapshot
//! chunk), each event already built with its Kafka key, plus an opaque checkpoint — the
//! position after the batch. A transaction bigger than a batch may be split across
//! batches; the checkpoint then records how far into it the batch goes, so a restart
//! resumes inside it. The loop publishes the events and the checkpoint in one Kafka
//! transaction and only then calls [`ChangeSource::confirm`], which lets the database
//! release its log up to there. On start the source gets the last checkpoint that
//! reached Kafka and resumes strictly after it.
//!
//! Each source module (`pg`, `oracle`) owns its settings struct, its position type, its
//! prerequisite checks and its error classification; the binary builds one from the
//! configuration with a single exhaustive match on `database.type`.

pub mod oracle;
pub mod pg;
pub mod tables;

use rtdp_core::model::ChangeEvent;
use rtdp_core::status::SnapshotProgress;

/// Hex text (either case) to bytes; `None` when it is not an even run of hex digits.
/// PostgreSQL's bytea output and Oracle's RAW / HEXTORAW text both come as hex.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let b = hex.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// One event ready to publish.
#[derive(Debug, Clone)]
pub struct OutEvent {
    /// Kafka key: table plus primary-key values (see [`crate::event::kafka_key`]).
    pub key: Vec<u8>,
    pub event: ChangeEvent,
    /// The event's JSON when the source encoded it already ([`OutEvent::encode`]); the
    /// publisher then sends these bytes as they are.
    pub payload: Option<Vec<u8>>,
}

impl OutEvent {
    /// Encodes the event now (on the source's own thread, so encoding overlaps the
    /// publisher's Kafka transaction) and frees what only the encoding needed: all of
    /// `event` but its op, time and `source.schema` / `source.table` (the loop's
    /// per-table counts).
    pub fn encode(&mut self) {
        if self.payload.is_some() {
            return;
        }
        // Serializing to a Vec cannot fail for these types (string keys, no NaN floats:
        // values are already JSON).
        if let Ok(bytes) = serde_json::to_vec(&self.event) {
            self.payload = Some(bytes);
            let source = std::mem::take(&mut self.event.source);
            self.event = ChangeEvent {
                op: self.event.op,
                before: None,
                after: None,
                source: rtdp_core::model::Source {
                    schema: source.schema,
                    table: source.table,
                    ..Default::default()
                },
                ts_ms: self.event.ts_ms,
                event_id: String::new(),
                columns: Vec::new(),
            };
        }
    }
}

/// What one call to [`ChangeSource::next_batch`] produced.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<OutEvent>,
    /// The position after this batch; `None` when nothing moved.
    pub checkpoint: Option<serde_json::Value>,
    /// Commit time (ms) of the newest transaction in the batch, for the lag metric.
    pub last_commit_ts_ms: Option<i64>,
    /// Source transactions in the batch (including those with no captured change).
    pub transactions: u64,
    /// A snapshot chunk rather than streamed changes.
    pub snapshot: bool,
    /// Tables truncated in the batch's transactions (TRUNCATE is not carried as
    /// events; the loop counts them in `rtdp_collector_truncates_total`).
    pub truncated: Vec<String>,
}

impl Batch {
    /// Nothing to publish and no position to move.
    pub fn is_idle(&self) -> bool {
        self.events.is_empty() && self.checkpoint.is_none()
    }
}

/// A source's positions, as text (for `/status`) and, where the source's positions are
/// numbers (PostgreSQL LSN, Oracle SCN), as a number (for the position metric).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    /// After the last batch handed out.
    pub current: String,
    /// What the database was told it may release.
    pub confirmed: String,
    pub current_value: Option<u64>,
    pub confirmed_value: Option<u64>,
}

/// How bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The connection or the server failed: reconnect with back-off and resume.
    Transient,
    /// Configuration or database setup is wrong: stop with the message (it says what to fix).
    Fatal,
}

/// A source failure. The message names what failed and never carries row values or
/// secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub severity: Severity,
    pub message: String,
}

impl SourceError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Transient,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Fatal,
            message: message.into(),
        }
    }
}

/// A database's change log, read as whole committed transactions in commit order.
pub trait ChangeSource: Send {
    /// `postgresql`, `oracle`, …
    fn connector(&self) -> &'static str;

    /// Connects, checks the database's prerequisites (each failure says how to fix it)
    /// and positions the reader strictly after `stored` (the last checkpoint that
    /// reached Kafka; `None` on first start, which may begin with a snapshot).
    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError>;

    /// The next batch; an idle batch when the log has nothing new (the caller waits).
    fn next_batch(&mut self) -> Result<Batch, SourceError>;

    /// `checkpoint` is durable in Kafka: the database may release its log up to it.
    fn confirm(&mut self, checkpoint: &serde_json::Value) -> Result<(), SourceError>;

    /// Snapshot progress while a snapshot runs.
    fn snapshot_progress(&self) -> Option<SnapshotProgress>;

    /// The position after the last batch handed out, and the confirmed one.
    fn positions(&self) -> Positions;
}

/// A boxed source is a source (the binary picks one by `database.type`).
impl<S: ChangeSource + ?Sized> ChangeSource for Box<S> {
    fn connector(&self) -> &'static str {
        (**self).connector()
    }

    fn start(&mut self, stored: Option<&serde_json::Value>) -> Result<(), SourceError> {
        (**self).start(stored)
    }

    fn next_batch(&mut self) -> Result<Batch, SourceError> {
        (**self).next_batch()
    }

    fn confirm(&mut self, checkpoint: &serde_json::Value) -> Result<(), SourceError> {
        (**self).confirm(checkpoint)
    }

    fn snapshot_progress(&self) -> Option<SnapshotProgress> {
        (**self).snapshot_progress()
    }

    fn positions(&self) -> Positions {
        (**self).positions()
    }
}

#[cfg(test)]
mod tests {
    use rtdp_core::model::{Op, Row, Source};
    use rtdp_core::types::{Column, ColumnType};

    #[test]
    fn an_encoded_event_sends_exactly_the_json_of_the_whole_event() {
        let shape = crate::event::TableShape {
            schema: "public".into(),
            table: "t".into(),
            columns: std::sync::Arc::new(vec![Column::new("id", ColumnType::Int32)]),
            key: vec![0],
            key_unknown: false,
        };
        let source = Source {
            connector: "postgresql".into(),
            name: "c".into(),
            commit_lsn: Some(7),
            ..Default::default()
        };
        let origin = crate::event::Origin {
            collector: "c",
            source: &source,
            commit: "7",
        };
        let row: Row = serde_json::from_str(r#"{"id": 1}"#).unwrap();
        let mut index = 0;
        let events =
            crate::event::build(&shape, &origin, Op::Create, None, Some(row), &mut index, 5);
        let whole = serde_json::to_vec(&events[0].event).unwrap();
        let mut e = events[0].clone();
        e.encode();
        assert_eq!(e.payload.as_deref(), Some(whole.as_slice()));
        assert!(e.event.after.is_none() && e.event.columns.is_empty());
        assert_eq!(e.event.source.table, "t", "the source stays for the counts");
        e.encode();
        assert_eq!(
            e.payload.as_deref(),
            Some(whole.as_slice()),
            "encoding twice changes nothing"
        );
    }
}
