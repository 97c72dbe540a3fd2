//! The initial snapshot: reads the captured tables in chunks (one Kafka transaction each)
//! under the slot's exported snapshot — or, after a crash mid-snapshot, under a new
//! REPEATABLE READ snapshot whose transactions [`super::visibility`] then drops from the
//! stream. Promises: every row of every captured table exactly once as `op: r`, each with
//! a position below every streamed change (consistent point − 1, row counter); progress
//! in [`SnapshotProgress`]; finished tables are never re-read, the table being read when a
//! crash came is read again.

use std::collections::HashSet;
use std::time::Instant;

use postgres::Client;
use rtdp_core::model::{Op, Row, Source};
use rtdp_core::status::SnapshotProgress;

use super::visibility::SnapshotXids;
use super::{
    col, now_ms, parse_lsn, pg_err, q_ident, q_lit, rows, to_json_or_text, Filter, PostgresSource,
};
use crate::event::{build, Origin};
use crate::source::tables::TableName;
use crate::source::{Batch, SourceError};

/// The snapshot session and where it is.
pub(super) struct SnapReader {
    client: Client,
    snap_id: usize,
    remaining: Vec<TableName>,
    cursor: Option<String>,
    started: Instant,
    rows_this_run: u64,
    estimate: Option<u64>,
}

impl PostgresSource {
    fn open_snapshot(&mut self) -> Result<(), SourceError> {
        let mut client = self.connect()?;
        let cp = self
            .checkpoint
            .as_mut()
            .ok_or_else(|| SourceError::transient("no checkpoint"))?;
        let consistent = parse_lsn(&cp.lsn).unwrap_or(0);
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
        let until = match self.export.take() {
            Some((mut exporter, name)) => {
                // The slot's own snapshot: exactly what committed before its consistent
                // point, where the stream starts.
                client
                    .batch_execute(&format!("SET TRANSACTION SNAPSHOT {}", q_lit(&name)))
                    .map_err(|e| pg_err("importing the slot's exported snapshot", &e))?;
                exporter.terminate();
                consistent
            }
            None => {
                let until = rows(
                    client
                        .simple_query("SELECT pg_current_wal_insert_lsn()::text")
                        .map_err(|e| pg_err("reading the WAL position", &e))?,
                );
                until
                    .first()
                    .and_then(|r| parse_lsn(col(r, 0)))
                    .unwrap_or(u64::MAX)
            }
        };
        let snap_text = rows(
            client
                .simple_query("SELECT pg_current_snapshot()::text")
                .map_err(|e| pg_err("taking the snapshot", &e))?,
        );
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
            exported = snap_id == 0 && until == consistent,
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

    pub(super) fn snapshot_chunk(&mut self) -> Result<Batch, SourceError> {
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
        // One below the consistent point: a transaction whose commit record starts
        // exactly there is streamed and must sort after every snapshot row.
        let position = c_lsn.saturating_sub(1);
        let source = Source {
            connector: "postgresql".into(),
            name: collector.clone(),
            db: Some(dbname),
            ts_ms: now,
            snapshot: true,
            lsn: Some(c_lsn),
            commit_lsn: Some(position),
            ..Default::default()
        };
        let commit = position.to_string();
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
            snapshot: true,
            ..Batch::default()
        })
    }
}
