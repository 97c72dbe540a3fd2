//! One assigned Kafka partition: its open files, its dead letters, its dedup positions,
//! and its checkpoint.
//!
//! Promises, for records of this partition:
//! - a record below the recovered `next_offset`, or at or below the last offset already
//!   handled in this epoch, is ignored (it is committed, or it is a re-delivery);
//! - an event that [`crate::dedup`] finds written already (a lower position of its
//!   source, or the same change at the highest position) is dropped and counted, never
//!   written; another change at the highest position (the second half of a key change)
//!   is written;
//! - every other record ends in exactly one place: a data file, a dead-letter file, or
//!   a counted skip (tombstone / truncate);
//! - [`PartitionWriter::checkpoint`] makes all of that durable at once through the
//!   manifest (see [`crate::manifest`]); [`PartitionWriter::abort`] throws the open
//!   epoch away (it is re-consumed by whoever owns the partition next).

use crate::decode::{DecodeError, DecodedEvent};
use crate::dedup::{self, DedupState};
use crate::layout;
use crate::manifest::{Manifest, Recovered, Rename, Store};
use crate::roll::{should_roll, PartitionClock, RollPolicy, RollReason};
use crate::sink::{self, FileSink, LineSink, SinkError, SinkOptions};
use base64::Engine;
use rtdp_core::model::TableSchema;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Which open file an event goes to: table, day of its source commit time, and schema
/// version. Hashed without allocating (the hot path); [`OpenFile::holds`] settles the
/// rare hash collision.
fn file_key(schema_name: Option<&str>, table: &str, day: i64, fingerprint: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ fingerprint;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(schema_name.unwrap_or("").as_bytes());
    eat(table.as_bytes());
    eat(&day.to_le_bytes());
    h
}

struct OpenFile {
    schema_name: Option<String>,
    table: String,
    day: i64,
    sink: Box<dyn FileSink>,
    tmp_rel: PathBuf,
    final_dir: PathBuf,
    first_offset: i64,
    last_offset: i64,
    schema: Arc<TableSchema>,
}

impl OpenFile {
    fn holds(&self, e: &rtdp_core::model::ProcessedEvent, day: i64) -> bool {
        self.day == day
            && self.table == e.table
            && self.schema_name == e.schema_name
            && (Arc::ptr_eq(&self.schema, &e.schema) || self.schema == e.schema)
    }
}

struct OpenDlq {
    sink: LineSink,
    ext: &'static str,
    lines: u64,
    tmp_rel: PathBuf,
    final_dir: PathBuf,
    first_offset: i64,
    last_offset: i64,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Dropped by the positional de-duplication.
    Duplicate,
}

/// Numbers of one checkpoint, for metrics and logs.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub next_offset: i64,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub dead_letters: u64,
    /// Source commit times (ms) of the rows committed, for the end-to-end latency.
    pub source_ts_ms: Vec<i64>,
}

pub struct PartitionWriter {
    pub topic: String,
    pub partition: i32,
    store: Store,
    opts: SinkOptions,
    policy: RollPolicy,
    committed_next: Option<i64>,
    last_offset: Option<i64>,
    dedup: DedupState,
    files: HashMap<u64, OpenFile>,
    dlq: Option<OpenDlq>,
    clock: PartitionClock,
    files_committed: u64,
    source_ts: Vec<i64>,
    seq: u64,
    /// A checkpoint whose files are finished but whose commit has not succeeded yet.
    finishing: Option<(Manifest, CheckpointStats, BTreeMap<String, dedup::Highest>)>,
    /// Rebalance generation in which the partition was assigned to this writer.
    assigned_generation: u64,
}

impl PartitionWriter {
    pub fn new(
        topic: &str,
        partition: i32,
        store: Store,
        opts: SinkOptions,
        policy: RollPolicy,
        recovered: Recovered,
    ) -> Self {
        PartitionWriter {
            topic: topic.to_string(),
            partition,
            store,
            opts,
            policy,
            committed_next: recovered.next_offset,
            last_offset: None,
            dedup: DedupState::new(recovered.positions),
            files: HashMap::new(),
            dlq: None,
            clock: PartitionClock::default(),
            files_committed: recovered.files_committed,
            source_ts: Vec::new(),
            seq: 0,
            finishing: None,
            assigned_generation: 0,
        }
    }

    /// Tags the writer with the rebalance generation that assigned the partition:
    /// records polled in an earlier generation are not for it.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.assigned_generation = generation;
        self
    }

    pub fn assigned_generation(&self) -> u64 {
        self.assigned_generation
    }

    /// Whether a record at `offset` is new to this partition's committed and open state.
    pub fn accepts(&self, offset: i64) -> bool {
        self.committed_next.is_none_or(|n| offset >= n)
            && self.last_offset.is_none_or(|l| offset > l)
    }

    /// On the first record after a resume from a manifest: how many offsets lie between
    /// the commit point and this record (None: no gap, or not the first record).
    pub fn resume_gap(&self, offset: i64) -> Option<i64> {
        match (self.last_offset, self.committed_next) {
            (None, Some(n)) if offset > n => Some(offset - n),
            _ => None,
        }
    }

    /// The offset the next checkpoint would commit (None: nothing handled yet).
    pub fn pending_next_offset(&self) -> Option<i64> {
        self.last_offset.map(|l| l + 1)
    }

    /// Last offset handled (written, dropped, skipped or dead-lettered) in this epoch or
    /// committed before.
    pub fn position(&self) -> Option<i64> {
        self.last_offset.map(|l| l + 1).or(self.committed_next)
    }

    pub fn open_files(&self) -> usize {
        self.files.len() + usize::from(self.dlq.is_some())
    }

    fn touch(&mut self, offset: i64, now_ms: i64) {
        self.last_offset = Some(offset);
        self.clock.last_write_ms = now_ms;
        if self.clock.opened_at_ms.is_none() {
            self.clock.opened_at_ms = Some(now_ms);
        }
    }

    fn next_tmp(&mut self, ext: &str) -> std::io::Result<PathBuf> {
        self.store.tmp_dir(&self.topic, self.partition)?;
        self.seq += 1;
        Ok(layout::tmp_dir(&self.topic, self.partition).join(format!(
            "{}-{}-{}.{ext}.inprogress",
            std::process::id(),
            self.seq,
            self.last_offset.map_or(0, |o| o + 1)
        )))
    }

    /// The open-file slot an event goes to, and its day number.
    fn slot(&self, e: &rtdp_core::model::ProcessedEvent) -> (u64, i64) {
        let day_ts = if e.source_ts_ms > 0 {
            e.source_ts_ms
        } else {
            e.processed_at_ms
        };
        let day = day_ts.div_euclid(86_400_000);
        let mut key = file_key(
            e.schema_name.as_deref(),
            &e.table,
            day,
            e.schema.fingerprint(),
        );
        while let Some(f) = self.files.get(&key) {
            if f.holds(e, day) {
                break;
            }
            key = key.wrapping_add(1);
        }
        (key, day)
    }

    /// Whether writing `ev` would open another file (a new table, day or schema).
    pub fn needs_new_file(&self, ev: &DecodedEvent) -> bool {
        !self.files.contains_key(&self.slot(&ev.event).0)
    }

    /// A record that carries no row (tombstone, truncate): handled, nothing written.
    pub fn skip(&mut self, offset: i64, now_ms: i64) {
        self.touch(offset, now_ms);
    }

    /// Writes an event, unless its dedup position shows it was already written.
    pub fn write(
        &mut self,
        offset: i64,
        ev: DecodedEvent,
        now_ms: i64,
    ) -> Result<Outcome, SinkError> {
        if ev
            .dedup
            .as_ref()
            .is_some_and(|d| self.dedup.is_duplicate(d))
        {
            self.touch(offset, now_ms);
            return Ok(Outcome::Duplicate);
        }
        let e = &ev.event;
        let day_ts = if e.source_ts_ms > 0 {
            e.source_ts_ms
        } else {
            e.processed_at_ms
        };
        let (key, day) = self.slot(e);
        if !self.files.contains_key(&key) {
            let ext = sink::extension(&self.opts);
            let tmp_rel = self.next_tmp(ext)?;
            let s = sink::open(
                &self.store.root().join(&tmp_rel),
                e.schema.clone(),
                &self.opts,
            )?;
            self.files.insert(
                key,
                OpenFile {
                    schema_name: e.schema_name.clone(),
                    table: e.table.clone(),
                    day,
                    sink: s,
                    tmp_rel,
                    final_dir: layout::table_day_dir(&e.qualified_table(), day_ts),
                    first_offset: offset,
                    last_offset: offset,
                    schema: e.schema.clone(),
                },
            );
        }
        let f = self.files.get_mut(&key).expect("inserted above");
        f.sink.write(e)?;
        f.last_offset = offset;
        let size = f.sink.size_estimate();
        self.clock.largest_file_bytes = self.clock.largest_file_bytes.max(size);
        self.source_ts.push(e.source_ts_ms);
        if let Some(d) = ev.dedup {
            self.dedup.record(d);
        }
        self.touch(offset, now_ms);
        Ok(Outcome::Written)
    }

    /// Sends a record that failed to the dead letters, with its original bytes.
    pub fn dead_letter(
        &mut self,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        kafka_ts_ms: Option<i64>,
        err: &DecodeError,
        now_ms: i64,
    ) -> Result<(), SinkError> {
        if self.dlq.is_none() {
            // Dead letters are JSON lines, compressed like the data where a stream
            // codec applies (snappy is Parquet-internal only).
            let (comp, ext) = match self.opts.compression {
                sink::Compression::Gzip => (sink::Compression::Gzip, "jsonl.gz"),
                sink::Compression::Zstd => (sink::Compression::Zstd, "jsonl.zst"),
                _ => (sink::Compression::None, "jsonl"),
            };
            let tmp_rel = self.next_tmp(ext)?;
            let s = LineSink::create(&self.store.root().join(&tmp_rel), comp)?;
            self.dlq = Some(OpenDlq {
                sink: s,
                ext,
                lines: 0,
                tmp_rel,
                final_dir: layout::dlq_day_dir(now_ms),
                first_offset: offset,
                last_offset: offset,
            });
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let line = serde_json::json!({
            "stage": err.stage().as_str(),
            "error": err.to_string(),
            "topic": self.topic,
            "partition": self.partition,
            "offset": offset,
            "kafkaTimestampMs": kafka_ts_ms,
            "failedAtMs": now_ms,
            "key": key.map(b64),
            "value": value.map(b64),
        });
        let d = self.dlq.as_mut().expect("opened above");
        d.sink.write_line(line.to_string().as_bytes())?;
        d.lines += 1;
        d.last_offset = offset;
        let size = d.sink.size_estimate();
        self.clock.largest_file_bytes = self.clock.largest_file_bytes.max(size);
        self.touch(offset, now_ms);
        Ok(())
    }

    pub fn should_roll(&self, now_ms: i64) -> Option<RollReason> {
        should_roll(&self.policy, &self.clock, now_ms)
    }

    /// Whether anything was handled since the last commit.
    pub fn dirty(&self) -> bool {
        self.finishing.is_some()
            || self
                .last_offset
                .is_some_and(|l| self.committed_next.is_none_or(|n| l + 1 > n))
    }

    /// Finishes every open file, commits them and the new offset through the manifest.
    /// On error the epoch is left as is; the caller retries or aborts.
    pub fn checkpoint(&mut self, now_ms: i64) -> Result<Option<CheckpointStats>, SinkError> {
        if self.finishing.is_none() {
            let Some(next) = self.pending_next_offset() else {
                return Ok(None);
            };
            if !self.dirty() {
                return Ok(None);
            }
            let mut stats = CheckpointStats {
                next_offset: next,
                ..Default::default()
            };
            let mut pending = Vec::new();
            for (_, f) in self.files.drain() {
                stats.rows += f.sink.rows();
                let size = f.sink.finish()?;
                stats.bytes += size;
                let ext = sink::extension(&self.opts);
                let name = layout::final_name(
                    &self.topic,
                    self.partition,
                    f.first_offset,
                    f.last_offset,
                    ext,
                );
                pending.push(Rename {
                    from: f.tmp_rel,
                    to: f.final_dir.join(name),
                });
            }
            if let Some(d) = self.dlq.take() {
                stats.dead_letters = d.lines;
                stats.bytes += d.sink.finish()?;
                let name = layout::final_name(
                    &self.topic,
                    self.partition,
                    d.first_offset,
                    d.last_offset,
                    d.ext,
                );
                pending.push(Rename {
                    from: d.tmp_rel,
                    to: d.final_dir.join(name),
                });
            }
            stats.files = pending.len();
            let dedup_state = self.dedup.to_commit();
            let (positions, changes_at_position) = dedup::to_manifest(&dedup_state);
            let m = Manifest {
                version: 1,
                topic: self.topic.clone(),
                partition: self.partition,
                next_offset: next,
                positions,
                changes_at_position,
                pending,
                files_committed: self.files_committed + stats.files as u64,
                updated_at_ms: now_ms,
            };
            self.finishing = Some((m, stats, dedup_state));
        }
        // From here on the files are finished and fsynced; the commit is idempotent, so
        // a failed attempt can be retried (see `retry_safe`).
        let (m, _, _) = self.finishing.as_ref().expect("set above");
        self.store.commit(m)?;
        let (m, mut stats, dedup_state) = self.finishing.take().expect("set above");
        self.dedup.committed(dedup_state);
        self.files_committed = m.files_committed;
        self.committed_next = Some(m.next_offset);
        self.clock = PartitionClock::default();
        stats.source_ts_ms = std::mem::take(&mut self.source_ts);
        Ok(Some(stats))
    }

    /// Whether a failed [`checkpoint`](Self::checkpoint) may simply be called again: its
    /// files are finished and only the manifest commit (idempotent) is left to do.
    pub fn retry_safe(&self) -> bool {
        self.finishing.is_some()
    }

    /// Drops the open epoch: open files are deleted, state returns to the last commit.
    /// Files of a checkpoint whose commit failed are left in place: the manifest may
    /// already promise them, and recovery rolls them forward or deletes them.
    pub fn abort(&mut self) {
        self.finishing = None;
        let root = self.store.root().to_path_buf();
        for (_, f) in self.files.drain() {
            drop(f.sink);
            let _ = std::fs::remove_file(root.join(&f.tmp_rel));
        }
        if let Some(d) = self.dlq.take() {
            drop(d.sink);
            let _ = std::fs::remove_file(root.join(&d.tmp_rel));
        }
        self.dedup.abort();
        self.last_offset = None;
        self.clock = PartitionClock::default();
        self.source_ts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodedEvent;
    use crate::dedup::{change_digest, Dedup};
    use crate::sink::{Compression, Format};
    use rtdp_core::model::Position;
    use rtdp_core::model::{Op, ProcessedEvent};
    use rtdp_core::types::{Column, ColumnType, Value};

    const POLICY: RollPolicy = RollPolicy {
        size_bytes: 1 << 30,
        interval_ms: 1 << 30,
        inactivity_ms: 1 << 30,
        checkpoint_interval_ms: 1 << 30,
    };

    fn writer(root: &std::path::Path) -> PartitionWriter {
        let opts = SinkOptions {
            format: Format::Json,
            compression: Compression::None,
            parquet_row_group_bytes: 1 << 20,
        };
        PartitionWriter::new("t", 0, Store::new(root), opts, POLICY, Recovered::default())
    }

    fn event(schema: &Arc<TableSchema>, i: u64) -> DecodedEvent {
        DecodedEvent {
            event: ProcessedEvent {
                event_id: format!("e{i}"),
                op: Op::Create,
                schema_name: Some("s".into()),
                table: "x".into(),
                schema: schema.clone(),
                values: vec![Value::Int(i as i64)],
                source_position: i.to_string(),
                source_ts_ms: 1_795_478_400_000,
                processed_at_ms: 1_795_478_400_000,
            },
            dedup: Some(Dedup {
                source: "src".into(),
                position: Position {
                    commit: i as u128,
                    tx: String::new(),
                    index: 0,
                },
                change: change_digest(
                    Op::Create,
                    Some("s"),
                    "x",
                    format!("{{\"id\":{i}}}").as_bytes(),
                ),
            }),
        }
    }

    fn committed_lines(root: &std::path::Path) -> usize {
        let dir = root.join("s.x/dt=2026-11-24");
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
                    .sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_failed_commit_is_retried_without_losing_finished_files() {
        let dir = tempfile::tempdir().unwrap();
        let schema = TableSchema::new(vec![Column::new("id", ColumnType::Int64)]);
        let mut w = writer(dir.path());
        for i in 0..3 {
            assert_eq!(
                w.write(i as i64, event(&schema, i), 0).unwrap(),
                Outcome::Written
            );
        }
        // A file where the manifest folder must go: the commit fails with an I/O error.
        std::fs::create_dir_all(dir.path().join("_state")).unwrap();
        std::fs::write(dir.path().join("_state/t"), b"in the way").unwrap();
        assert!(w.checkpoint(0).is_err());
        assert!(w.retry_safe() && w.dirty());
        std::fs::remove_file(dir.path().join("_state/t")).unwrap();
        let stats = w.checkpoint(0).unwrap().unwrap();
        assert_eq!((stats.rows, stats.next_offset, stats.files), (3, 3, 1));
        assert_eq!(committed_lines(dir.path()), 3);
        assert!(!w.dirty());
    }

    #[test]
    fn duplicates_by_position_are_dropped_within_and_across_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let schema = TableSchema::new(vec![Column::new("id", ColumnType::Int64)]);
        let mut w = writer(dir.path());
        assert_eq!(w.write(0, event(&schema, 5), 0).unwrap(), Outcome::Written);
        assert_eq!(
            w.write(1, event(&schema, 5), 0).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(
            w.write(2, event(&schema, 4), 0).unwrap(),
            Outcome::Duplicate
        );
        w.checkpoint(0).unwrap();
        assert_eq!(
            w.write(3, event(&schema, 5), 0).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(w.write(4, event(&schema, 6), 0).unwrap(), Outcome::Written);
        w.checkpoint(0).unwrap();
        assert_eq!(committed_lines(dir.path()), 2);
        // A restart recovers the committed positions from the manifest.
        let rec = Store::new(dir.path()).recover("t", 0).unwrap();
        assert_eq!(rec.next_offset, Some(5));
        let opts = SinkOptions {
            format: Format::Json,
            compression: Compression::None,
            parquet_row_group_bytes: 1 << 20,
        };
        let mut again = PartitionWriter::new("t", 0, Store::new(dir.path()), opts, POLICY, rec);
        assert!(!again.accepts(4) && again.accepts(5));
        assert_eq!(
            again.write(5, event(&schema, 6), 0).unwrap(),
            Outcome::Duplicate
        );
    }

    #[test]
    fn abort_deletes_the_open_epoch_only() {
        let dir = tempfile::tempdir().unwrap();
        let schema = TableSchema::new(vec![Column::new("id", ColumnType::Int64)]);
        let mut w = writer(dir.path());
        w.write(0, event(&schema, 1), 0).unwrap();
        w.checkpoint(0).unwrap();
        w.write(1, event(&schema, 2), 0).unwrap();
        w.abort();
        let mut tmp = Vec::new();
        for e in std::fs::read_dir(dir.path().join("_tmp/t+0"))
            .unwrap()
            .flatten()
        {
            tmp.push(e.path());
        }
        assert!(tmp.is_empty(), "{tmp:?}");
        assert_eq!(committed_lines(dir.path()), 1);
        assert!(w.accepts(1), "the aborted record is taken again");
    }

    /// The two halves of a primary-key change as Debezium PostgreSQL sends them: a delete
    /// of the old key and a create of the new one, at one position.
    fn key_change_half(schema: &Arc<TableSchema>, op: Op, id: i64) -> DecodedEvent {
        let mut e = event(schema, 7);
        e.event.op = op;
        e.event.values = vec![Value::Int(id)];
        let d = e.dedup.as_mut().unwrap();
        d.change = change_digest(op, Some("s"), "x", format!("{{\"id\":{id}}}").as_bytes());
        e
    }

    #[test]
    fn a_key_change_at_one_position_keeps_both_halves() {
        let dir = tempfile::tempdir().unwrap();
        let schema = TableSchema::new(vec![Column::new("id", ColumnType::Int64)]);
        let mut w = writer(dir.path());
        let delete = key_change_half(&schema, Op::Delete, 2);
        let create = key_change_half(&schema, Op::Create, 102);
        assert_eq!(w.write(0, delete, 0).unwrap(), Outcome::Written);
        assert_eq!(w.write(1, create, 0).unwrap(), Outcome::Written);
        w.checkpoint(0).unwrap();
        assert_eq!(committed_lines(dir.path()), 2);
    }

    #[test]
    fn the_second_half_of_a_key_change_survives_a_checkpoint_and_a_restart_between_the_halves() {
        let dir = tempfile::tempdir().unwrap();
        let schema = TableSchema::new(vec![Column::new("id", ColumnType::Int64)]);
        let opts = || SinkOptions {
            format: Format::Json,
            compression: Compression::None,
            parquet_row_group_bytes: 1 << 20,
        };
        let restart = || {
            let rec = Store::new(dir.path()).recover("t", 0).unwrap();
            PartitionWriter::new("t", 0, Store::new(dir.path()), opts(), POLICY, rec)
        };
        let delete = || key_change_half(&schema, Op::Delete, 2);
        let create = || key_change_half(&schema, Op::Create, 102);
        let mut w = writer(dir.path());
        assert_eq!(w.write(0, delete(), 0).unwrap(), Outcome::Written);
        w.checkpoint(0).unwrap();
        // Killed right after the first half was committed.
        drop(w);
        let mut w = restart();
        assert_eq!(w.write(1, create(), 0).unwrap(), Outcome::Written);
        // The source sends both halves again (a connector restart): both are duplicates.
        assert_eq!(w.write(2, delete(), 0).unwrap(), Outcome::Duplicate);
        assert_eq!(w.write(3, create(), 0).unwrap(), Outcome::Duplicate);
        w.checkpoint(0).unwrap();
        drop(w);
        let mut w = restart();
        assert_eq!(w.write(4, create(), 0).unwrap(), Outcome::Duplicate);
        assert_eq!(w.write(5, delete(), 0).unwrap(), Outcome::Duplicate);
        w.checkpoint(0).unwrap();
        assert_eq!(committed_lines(dir.path()), 2);
    }
}
