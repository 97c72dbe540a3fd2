//! Streaming: pgoutput messages → change events, and the reader thread that overlaps
//! decoding with the Kafka commit.
//!
//! [`Assembler`] owns the source's decisions and is pure: fed the decoded messages of
//! the replication stream (and a [`Catalog`] for what the protocol does not say: type
//! names, primary key, NOT NULL), it hands out [`Out`] items in stream order:
//! - a transaction's events in [`Chunk`]s of at most `chunk_events` events, the last
//!   chunk carrying the transaction's commit end LSN, so a transaction of any size
//!   passes within a bounded memory;
//! - an [`Out::Idle`] position when the server reported progress past everything of ours
//!   (keepalives while the captured tables are idle), so the slot can move on.
//!
//! What it drops: transactions whose commit is at or before `resume_after` (already in
//! Kafka), the events of a partly published transaction below the stored index, and the
//! changes the initial snapshot already holds ([`super::Filter`]). The same input always
//! gives the same events with the same indexes, which is what makes the skip exact.
//!
//! [`Reader`] runs an assembler on its own thread over a [`ReplConn`]: it reads, decodes
//! and builds while the collector's loop publishes the previous batch, and blocks when
//! `queue_events` events wait (the memory bound). Meanwhile it keeps the walsender
//! content: standby status updates every 10 s and whenever the server asks, with the
//! flush position set only by [`Reader::confirm`] — the commit end of the last
//! transaction whose Kafka transaction has committed, never anything merely received.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtdp_core::model::{Op, Row, Source};

use super::conn::{PgError, ReplConn};
use super::pgoutput::{self, CopyData, Datum, Message, OldKind, Relation};
use super::types::column_for;
use super::{to_json_or_text, Filter, TableMeta};
use crate::event::{build, Origin, TableShape};
use crate::source::{OutEvent, SourceError};

/// What the catalog says about a relation's columns, in the Relation message's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// `format_type(type oid, typmod)` of each column.
    pub types: Vec<String>,
    pub not_null: Vec<bool>,
    /// Indexes of the primary-key columns, in key order (empty: no primary key).
    pub key: Vec<usize>,
}

/// The catalog lookups the stream needs (a SQL session in production, a map in tests).
pub trait Catalog {
    fn describe(&mut self, rel: &Relation) -> Result<Described, PgError>;
}

/// Part of a transaction's events.
#[derive(Debug)]
pub struct Chunk {
    pub events: Vec<OutEvent>,
    /// The transaction's commit LSN (start of its commit record, from Begin).
    pub final_lsn: u64,
    /// End of the commit record: set on the transaction's last chunk.
    pub end_lsn: Option<u64>,
    /// The index the transaction's next event would get.
    pub next_index: u64,
    pub commit_ts_ms: i64,
    /// Tables truncated in this chunk (TRUNCATE is not carried as events).
    pub truncated: Vec<String>,
}

/// What the assembler hands out, in stream order.
#[derive(Debug)]
pub enum Out {
    Chunk(Chunk),
    /// Nothing of ours is before this position (a keepalive's WAL end while idle).
    Idle(u64),
}

/// Why the stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Decode(#[from] pgoutput::DecodeError),
    #[error("{what}: {source}")]
    Pg {
        what: String,
        #[source]
        source: PgError,
    },
    #[error("pgoutput sent a change of relation {0} before its Relation message")]
    UnknownRelation(u32),
    #[error("pgoutput sent {0} outside a transaction")]
    OutsideTransaction(&'static str),
}

/// A transaction being received.
struct OpenTx {
    final_lsn: u64,
    xid: u32,
    ts_ms: i64,
    /// Already in Kafka entirely.
    skip_all: bool,
    /// Events below this index are in Kafka (a partly published transaction).
    skip_below: u64,
    index: u64,
    source: Source,
    commit: String,
    /// Processing time of the transaction's events (`ts_ms`), read once per transaction.
    now_ms: i64,
    events: Vec<OutEvent>,
    truncated: Vec<String>,
}

/// A relation as the stream knows it.
struct Rel {
    name: String,
    meta: TableMeta,
    /// Which columns form the replica identity (a key-only old image has just these).
    ident: Vec<bool>,
}

/// Settings of an [`Assembler`].
#[derive(Debug, Clone)]
pub struct AssemblerSettings {
    pub collector: String,
    pub dbname: String,
    /// `schema.table` of each captured table.
    pub captured: HashSet<String>,
    /// Commit end of the last transaction in Kafka: what is at or before it is dropped.
    pub resume_after: u64,
    /// A transaction partly in Kafka: its commit LSN and the index of its first event
    /// not yet published.
    pub partial: Option<(u64, u64)>,
    pub filter: Option<Filter>,
    pub chunk_events: usize,
    /// Encode each event as it is built ([`OutEvent::encode`]): on the reader thread,
    /// so encoding overlaps the Kafka transaction.
    pub encode: bool,
}

/// pgoutput messages → events; see the module docs.
pub struct Assembler {
    s: AssemblerSettings,
    rels: HashMap<u32, Option<Rel>>,
    tx: Option<OpenTx>,
    /// Commit end of the last transaction seen (kept or dropped).
    last_end: u64,
    warned: HashSet<String>,
}

impl Assembler {
    pub fn new(s: AssemblerSettings) -> Assembler {
        let last_end = s.resume_after;
        Assembler {
            s,
            rels: HashMap::new(),
            tx: None,
            last_end,
            warned: HashSet::new(),
        }
    }

    /// Whether a transaction is being received.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Commit end of the last transaction seen.
    pub fn last_end(&self) -> u64 {
        self.last_end
    }

    /// The server's WAL end reported while nothing of ours is open: an [`Out::Idle`]
    /// when it is past everything handed out.
    pub fn keepalive(&mut self, wal_end: u64, out: &mut Vec<Out>) {
        if self.tx.is_none() && wal_end > self.last_end {
            self.last_end = wal_end;
            out.push(Out::Idle(wal_end));
        }
    }

    /// Feeds one message; `lsn` is its XLogData start (a change's own LSN).
    pub fn feed(
        &mut self,
        msg: Message<'_>,
        lsn: u64,
        catalog: &mut dyn Catalog,
        out: &mut Vec<Out>,
    ) -> Result<(), StreamError> {
        match msg {
            Message::Begin {
                final_lsn,
                commit_ts,
                xid,
            } => {
                let skip_all = final_lsn < self.s.resume_after;
                let skip_below = match self.s.partial {
                    Some((f, next)) if f == final_lsn => next,
                    _ => 0,
                };
                let ts_ms = pgoutput::pg_ts_to_unix_ms(commit_ts);
                self.tx = Some(OpenTx {
                    final_lsn,
                    xid,
                    ts_ms,
                    skip_all,
                    skip_below,
                    index: 0,
                    source: Source {
                        connector: "postgresql".into(),
                        name: self.s.collector.clone(),
                        db: Some(self.s.dbname.clone()),
                        ts_ms,
                        snapshot: false,
                        commit_lsn: Some(final_lsn),
                        tx_id: Some(xid.to_string()),
                        ..Default::default()
                    },
                    commit: final_lsn.to_string(),
                    now_ms: chrono::Utc::now().timestamp_millis(),
                    events: Vec::new(),
                    truncated: Vec::new(),
                });
            }
            Message::Commit { end_lsn, .. } => {
                let tx = self
                    .tx
                    .take()
                    .ok_or(StreamError::OutsideTransaction("Commit"))?;
                self.last_end = self.last_end.max(end_lsn);
                if tx.skip_all {
                    return Ok(());
                }
                if self
                    .s
                    .filter
                    .as_ref()
                    .is_some_and(|f| tx.final_lsn > f.until)
                {
                    self.s.filter = None;
                }
                if self.s.partial.is_some_and(|(f, _)| f <= tx.final_lsn) {
                    self.s.partial = None;
                }
                out.push(Out::Chunk(Chunk {
                    events: tx.events,
                    final_lsn: tx.final_lsn,
                    end_lsn: Some(end_lsn),
                    next_index: tx.index,
                    commit_ts_ms: tx.ts_ms,
                    truncated: tx.truncated,
                }));
            }
            Message::Relation(rel) => {
                let name = format!("{}.{}", rel_namespace(&rel), rel.name);
                if !self.s.captured.contains(&name) {
                    self.rels.insert(rel.oid, None);
                    return Ok(());
                }
                let d = catalog.describe(&rel).map_err(|source| StreamError::Pg {
                    what: format!("reading the columns of {name}"),
                    source,
                })?;
                let meta = meta_for(&rel, &d);
                let changed = match self.rels.get(&rel.oid) {
                    Some(Some(old)) => old.meta.shape.columns != meta.shape.columns,
                    _ => false,
                };
                if changed {
                    tracing::info!(table = %name, columns = meta.shape.columns.len(), "table columns changed; applied from the next change on");
                }
                let ident = rel.columns.iter().map(|c| c.key).collect();
                self.rels.insert(rel.oid, Some(Rel { name, meta, ident }));
            }
            Message::Insert { rel, new } => {
                self.change(rel, lsn, Op::Create, None, Some(&new), out)?;
            }
            Message::Update { rel, old, new } => {
                let old = old.as_ref().map(|(k, d)| (*k, d.as_slice()));
                self.change(rel, lsn, Op::Update, old, Some(&new), out)?;
            }
            Message::Delete { rel, old } => {
                self.change(rel, lsn, Op::Delete, Some((old.0, &old.1)), None, out)?;
            }
            Message::Truncate { rels, .. } => {
                let tx = self
                    .tx
                    .as_mut()
                    .ok_or(StreamError::OutsideTransaction("Truncate"))?;
                if tx.skip_all {
                    return Ok(());
                }
                for oid in rels {
                    if let Some(Some(r)) = self.rels.get(&oid) {
                        tracing::warn!(table = %r.name, "TRUNCATE is not carried as events; the table's rows stay in the output (counted in rtdp_collector_truncates_total)");
                        tx.truncated.push(r.name.clone());
                    }
                }
            }
            Message::Origin { .. } | Message::Type { .. } | Message::LogicalMessage { .. } => {}
        }
        Ok(())
    }

    fn change(
        &mut self,
        rel: u32,
        lsn: u64,
        op: Op,
        old: Option<(OldKind, &[Datum<'_>])>,
        new: Option<&[Datum<'_>]>,
        out: &mut Vec<Out>,
    ) -> Result<(), StreamError> {
        let what = match op {
            Op::Create => "Insert",
            Op::Delete => "Delete",
            _ => "Update",
        };
        let tx = self
            .tx
            .as_mut()
            .ok_or(StreamError::OutsideTransaction(what))?;
        if tx.skip_all {
            return Ok(());
        }
        let r = match self.rels.get(&rel) {
            Some(Some(r)) => r,
            Some(None) => return Ok(()),
            None => return Err(StreamError::UnknownRelation(rel)),
        };
        if self
            .s
            .filter
            .as_ref()
            .is_some_and(|f| f.drops(&r.name, u64::from(tx.xid), tx.final_lsn))
        {
            return Ok(());
        }
        let before = old.map(|(kind, d)| {
            let only = (kind == OldKind::Key).then_some(r.ident.as_slice());
            image(&r.meta, d, None, only, &r.name, &mut self.warned)
        });
        let after =
            new.map(|d| image(&r.meta, d, before.as_ref(), None, &r.name, &mut self.warned));
        tx.source.lsn = Some(lsn);
        let origin = Origin {
            collector: &self.s.collector,
            source: &tx.source,
            commit: &tx.commit,
        };
        let first = tx.index;
        let events = build(
            &r.meta.shape,
            &origin,
            op,
            before,
            after,
            &mut tx.index,
            tx.now_ms,
        );
        if tx.index <= tx.skip_below {
            return Ok(());
        }
        let skip = tx.skip_below.saturating_sub(first) as usize;
        for mut e in events.into_iter().skip(skip) {
            if self.s.encode {
                e.encode();
            }
            tx.events.push(e);
        }
        if tx.events.len() >= self.s.chunk_events {
            out.push(Out::Chunk(Chunk {
                events: std::mem::take(&mut tx.events),
                final_lsn: tx.final_lsn,
                end_lsn: None,
                next_index: tx.index,
                commit_ts_ms: tx.ts_ms,
                truncated: std::mem::take(&mut tx.truncated),
            }));
        }
        Ok(())
    }
}

/// pgoutput names pg_catalog with an empty namespace.
fn rel_namespace(rel: &Relation) -> &str {
    if rel.namespace.is_empty() {
        "pg_catalog"
    } else {
        &rel.namespace
    }
}

/// A table's metadata from its Relation message and the catalog's answer.
pub fn meta_for(rel: &Relation, d: &Described) -> TableMeta {
    let mut columns = Vec::with_capacity(rel.columns.len());
    let mut kinds = Vec::with_capacity(rel.columns.len());
    for (i, c) in rel.columns.iter().enumerate() {
        let ty = d.types.get(i).map(String::as_str).unwrap_or("text");
        let (col, kind) = column_for(
            &c.name,
            ty,
            d.not_null.get(i).copied().unwrap_or(false),
            d.key.contains(&i),
        );
        columns.push(col);
        kinds.push(kind);
    }
    TableMeta {
        shape: TableShape {
            schema: rel_namespace(rel).to_owned(),
            table: rel.name.clone(),
            columns: Arc::new(columns),
            key: d.key.clone(),
            key_unknown: false,
        },
        kinds,
    }
}

/// A row image in column order. A TOASTed value left unchanged (`u`) comes from `fill`
/// (the old row, complete under REPLICA IDENTITY FULL); without it the column is left
/// out of the image. `only`: a key-only old image, whose other columns (sent as nulls)
/// are left out.
fn image(
    meta: &TableMeta,
    data: &[Datum<'_>],
    fill: Option<&Row>,
    only: Option<&[bool]>,
    table: &str,
    warned: &mut HashSet<String>,
) -> Row {
    let mut row = Row::with_capacity(meta.shape.columns.len());
    for (i, c) in meta.shape.columns.iter().enumerate() {
        if only.is_some_and(|k| !k.get(i).copied().unwrap_or(false)) {
            continue;
        }
        match data.get(i) {
            Some(Datum::Null) => {
                row.insert(c.name.clone(), serde_json::Value::Null);
            }
            Some(Datum::Text(t)) => {
                row.insert(
                    c.name.clone(),
                    to_json_or_text(c, meta.kinds[i], t, table, warned),
                );
            }
            Some(Datum::Binary(_)) | Some(Datum::Unchanged) | None => {
                if let Some(v) = fill.and_then(|f| f.get(&c.name)) {
                    row.insert(c.name.clone(), v.clone());
                }
            }
        }
    }
    row
}

// ---------------------------------------------------------------------------------------
// The reader thread
// ---------------------------------------------------------------------------------------

/// An item of the reader's queue.
#[derive(Debug)]
pub enum Item {
    Out(Out),
    Failed(SourceError),
}

impl Item {
    fn cost(&self) -> usize {
        match self {
            Item::Out(Out::Chunk(c)) => c.events.len().max(1),
            _ => 1,
        }
    }
}

/// A bounded queue: the producer waits while `bound` events are queued. Closing it
/// (the consumer went away) wakes and refuses every waiting producer.
struct Queue {
    items: Mutex<QueueState>,
    cond: Condvar,
    bound: usize,
}

struct QueueState {
    items: VecDeque<Item>,
    cost: usize,
    closed: bool,
}

impl Queue {
    fn new(bound: usize) -> Queue {
        Queue {
            items: Mutex::new(QueueState {
                items: VecDeque::new(),
                cost: 0,
                closed: false,
            }),
            cond: Condvar::new(),
            bound: bound.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        &self,
        g: std::sync::MutexGuard<'a, QueueState>,
        d: Duration,
    ) -> std::sync::MutexGuard<'a, QueueState> {
        self.cond
            .wait_timeout(g, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    /// Pushes unless the queue is still full after `wait` or closed; gives the item
    /// back then.
    fn push(&self, item: Item, wait: Duration) -> Result<(), Item> {
        let cost = item.cost();
        let mut g = self.lock();
        let deadline = Instant::now() + wait;
        // An item larger than the bound still passes once the queue is empty.
        while !g.closed && g.cost > 0 && g.cost + cost > self.bound {
            let now = Instant::now();
            if now >= deadline {
                return Err(item);
            }
            g = self.wait(g, deadline - now);
        }
        if g.closed {
            return Err(item);
        }
        g.cost += cost;
        g.items.push_back(item);
        self.cond.notify_all();
        Ok(())
    }

    fn pop(&self, wait: Duration) -> Option<Item> {
        let mut g = self.lock();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(item) = g.items.pop_front() {
                g.cost -= item.cost();
                self.cond.notify_all();
                return Some(item);
            }
            let now = Instant::now();
            if g.closed || now >= deadline {
                return None;
            }
            g = self.wait(g, deadline - now);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }
}

/// Settings of a [`Reader`].
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// Events decoded ahead of the publisher at most (the memory bound).
    pub queue_events: usize,
    /// How often an idle position is handed out at most.
    pub idle_interval: Duration,
    /// How often a status update is sent at the latest.
    pub status_interval: Duration,
}

/// The reader thread; see the module docs. Dropping it stops the thread.
pub struct Reader {
    queue: Arc<Queue>,
    stop: Arc<AtomicBool>,
    flush: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Starts the thread on a connection that is already streaming. `confirmed` is the
    /// slot's flush position to report until [`confirm`](Self::confirm) moves it.
    pub fn spawn(
        conn: ReplConn,
        catalog: Box<dyn Catalog + Send>,
        asm: Assembler,
        confirmed: u64,
        s: ReaderSettings,
        classify: fn(&str, PgError) -> SourceError,
    ) -> Reader {
        let queue = Arc::new(Queue::new(s.queue_events));
        let stop = Arc::new(AtomicBool::new(false));
        let flush = Arc::new(AtomicU64::new(confirmed));
        let mut t = Thread {
            conn,
            catalog,
            asm,
            queue: queue.clone(),
            stop: stop.clone(),
            flush: flush.clone(),
            s,
            received: confirmed,
            sent_flush: confirmed,
            last_status: Instant::now(),
            last_idle: Instant::now(),
            classify,
        };
        let handle = std::thread::Builder::new()
            .name("pg-stream".into())
            .spawn(move || t.run())
            .ok();
        Reader {
            queue,
            stop,
            flush,
            handle,
        }
    }

    /// The next item, waiting up to `wait`.
    pub fn next(&self, wait: Duration) -> Option<Item> {
        if self.handle.is_none() {
            return Some(Item::Failed(SourceError::transient(
                "could not start the replication reader thread",
            )));
        }
        self.queue.pop(wait)
    }

    /// The next item if one is queued.
    pub fn try_next(&self) -> Option<Item> {
        self.queue.pop(Duration::ZERO)
    }

    /// The slot may release everything up to `lsn` (a commit end now in Kafka).
    pub fn confirm(&self, lsn: u64) {
        self.flush.fetch_max(lsn, Ordering::SeqCst);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.queue.close();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Thread {
    conn: ReplConn,
    catalog: Box<dyn Catalog + Send>,
    asm: Assembler,
    queue: Arc<Queue>,
    stop: Arc<AtomicBool>,
    flush: Arc<AtomicU64>,
    s: ReaderSettings,
    /// The highest WAL position the server reported.
    received: u64,
    sent_flush: u64,
    last_status: Instant,
    last_idle: Instant,
    classify: fn(&str, PgError) -> SourceError,
}

impl Thread {
    fn run(&mut self) {
        if let Err(e) = self.stream() {
            if !self.stop.load(Ordering::SeqCst) {
                // Waits while the queue is full, until the consumer takes or closes it.
                let _ = self
                    .queue
                    .push(Item::Failed(e), Duration::from_secs(86_400));
            }
        }
    }

    fn stream(&mut self) -> Result<(), SourceError> {
        let mut out = Vec::new();
        let mut messages: u32 = 0;
        while !self.stop.load(Ordering::SeqCst) {
            // The clock is read every 1,024 messages, not for each one.
            messages = messages.wrapping_add(1);
            self.status(false, messages.is_multiple_of(1024))?;
            let Some(buf) = self
                .conn
                .recv(Duration::from_millis(200))
                .map_err(|e| (self.classify)("reading the replication stream", e))?
            else {
                self.status(false, true)?;
                continue;
            };
            match pgoutput::decode_copy_data(&buf).map_err(protocol)? {
                CopyData::XLogData {
                    wal_start,
                    wal_end,
                    data,
                    ..
                } => {
                    self.received = self.received.max(wal_end);
                    let msg = pgoutput::decode(data).map_err(protocol)?;
                    self.asm
                        .feed(msg, wal_start, self.catalog.as_mut(), &mut out)
                        .map_err(|e| stream_error(self.classify, e))?;
                }
                CopyData::Keepalive {
                    wal_end,
                    reply_requested,
                    ..
                } => {
                    self.received = self.received.max(wal_end);
                    if reply_requested {
                        self.status(true, false)?;
                    }
                    if self.last_idle.elapsed() >= self.s.idle_interval {
                        self.asm.keepalive(wal_end, &mut out);
                        if !out.is_empty() {
                            self.last_idle = Instant::now();
                        }
                    }
                }
            }
            for o in out.drain(..) {
                let mut item = Item::Out(o);
                loop {
                    match self.queue.push(item, Duration::from_millis(500)) {
                        Ok(()) => break,
                        Err(back) => {
                            if self.stop.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            item = back;
                            // Full: the publisher is behind. Keep the walsender content.
                            self.status(false, true)?;
                        }
                    }
                }
            }
        }
        self.conn.terminate();
        Ok(())
    }

    /// Sends a status update when the flush position moved, when `now`, or (looked at
    /// only with `check_clock`) when the interval passed.
    fn status(&mut self, now: bool, check_clock: bool) -> Result<(), SourceError> {
        let flush = self.flush.load(Ordering::SeqCst);
        if now
            || flush > self.sent_flush
            || (check_clock && self.last_status.elapsed() >= self.s.status_interval)
        {
            self.conn
                .send_status(self.received.max(flush), flush, false)
                .map_err(|e| (self.classify)("sending a status update", e))?;
            self.sent_flush = flush;
            self.last_status = Instant::now();
        }
        Ok(())
    }
}

fn protocol(e: pgoutput::DecodeError) -> SourceError {
    SourceError::transient(format!("replication stream unreadable: {e}"))
}

fn stream_error(classify: fn(&str, PgError) -> SourceError, e: StreamError) -> SourceError {
    match e {
        StreamError::Pg { what, source } => classify(&what, source),
        other => SourceError::transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pg::pgoutput::RelColumn;
    use rtdp_core::model::ChangeEvent;

    /// A catalog that knows every column as `text` or `integer` by its type oid, with
    /// `id` as the primary key.
    struct FakeCatalog {
        lookups: usize,
    }

    impl Catalog for FakeCatalog {
        fn describe(&mut self, rel: &Relation) -> Result<Described, PgError> {
            self.lookups += 1;
            Ok(Described {
                types: rel
                    .columns
                    .iter()
                    .map(|c| if c.type_oid == 23 { "integer" } else { "text" }.to_string())
                    .collect(),
                not_null: rel.columns.iter().map(|c| c.name == "id").collect(),
                key: rel
                    .columns
                    .iter()
                    .position(|c| c.name == "id")
                    .into_iter()
                    .collect(),
            })
        }
    }

    fn rel(oid: u32, cols: &[(&str, u32)]) -> Message<'static> {
        Message::Relation(Relation {
            oid,
            namespace: "public".into(),
            name: format!("t{oid}"),
            replica_identity: b'f',
            columns: cols
                .iter()
                .map(|(n, t)| RelColumn {
                    key: true,
                    name: n.to_string(),
                    type_oid: *t,
                    typmod: -1,
                })
                .collect(),
        })
    }

    fn settings(resume_after: u64) -> AssemblerSettings {
        AssemblerSettings {
            collector: "c".into(),
            dbname: "db".into(),
            captured: ["public.t1".to_string(), "public.t2".to_string()]
                .into_iter()
                .collect(),
            resume_after,
            partial: None,
            filter: None,
            chunk_events: 1000,
            encode: false,
        }
    }

    struct Run {
        asm: Assembler,
        cat: FakeCatalog,
        out: Vec<Out>,
    }

    impl Run {
        fn new(s: AssemblerSettings) -> Run {
            Run {
                asm: Assembler::new(s),
                cat: FakeCatalog { lookups: 0 },
                out: Vec::new(),
            }
        }

        fn feed(&mut self, m: Message<'_>, lsn: u64) {
            self.asm.feed(m, lsn, &mut self.cat, &mut self.out).unwrap();
        }

        fn begin(&mut self, final_lsn: u64) {
            self.feed(
                Message::Begin {
                    final_lsn,
                    commit_ts: 0,
                    xid: 7,
                },
                final_lsn - 10,
            );
        }

        fn commit(&mut self, final_lsn: u64) {
            self.feed(
                Message::Commit {
                    flags: 0,
                    commit_lsn: final_lsn,
                    end_lsn: final_lsn + 8,
                    commit_ts: 0,
                },
                final_lsn,
            );
        }

        fn insert(&mut self, rel: u32, id: &str, v: &str) {
            let new = vec![Datum::Text(id), Datum::Text(v)];
            self.feed(Message::Insert { rel, new }, 1);
        }

        fn chunks(&mut self) -> Vec<Chunk> {
            self.out
                .drain(..)
                .filter_map(|o| match o {
                    Out::Chunk(c) => Some(c),
                    Out::Idle(_) => None,
                })
                .collect()
        }
    }

    fn positions(events: &[OutEvent]) -> Vec<(u64, u64)> {
        events
            .iter()
            .map(|e| {
                (
                    e.event.source.commit_lsn.unwrap(),
                    e.event.source.index.unwrap(),
                )
            })
            .collect()
    }

    fn after(e: &ChangeEvent) -> serde_json::Value {
        serde_json::Value::Object(e.after.clone().unwrap_or_default())
    }

    #[test]
    fn a_transaction_comes_out_whole_at_its_commit_with_its_end_lsn() {
        let mut r = Run::new(settings(0));
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(100);
        r.insert(1, "1", "a");
        r.insert(1, "2", "b");
        assert!(r.out.is_empty(), "nothing before the commit");
        r.commit(100);
        let c = r.chunks();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].end_lsn, Some(108));
        assert_eq!(positions(&c[0].events), vec![(100, 0), (100, 1)]);
        assert_eq!(
            after(&c[0].events[1].event),
            serde_json::json!({"id": 2, "v": "b"})
        );
        assert_eq!(r.asm.last_end(), 108);
    }

    #[test]
    fn transactions_at_or_before_the_stored_position_are_dropped() {
        // Stored: the commit end of the transaction at 100 (108).
        let mut r = Run::new(settings(108));
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(100);
        r.insert(1, "1", "a");
        r.commit(100);
        assert!(r.chunks().is_empty(), "already in Kafka");
        r.begin(108);
        r.insert(1, "2", "b");
        r.commit(108);
        let c = r.chunks();
        assert_eq!(
            c.len(),
            1,
            "a commit starting exactly at the stored end is new"
        );
        assert_eq!(positions(&c[0].events), vec![(108, 0)]);
    }

    #[test]
    fn a_big_transaction_comes_in_chunks_and_a_resume_skips_exactly_what_kafka_has() {
        let mut s = settings(0);
        s.chunk_events = 3;
        let mut r = Run::new(s.clone());
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(500);
        for i in 0..8 {
            r.insert(1, &i.to_string(), "x");
        }
        r.commit(500);
        let c = r.chunks();
        assert_eq!(
            c.iter()
                .map(|c| (c.events.len(), c.end_lsn))
                .collect::<Vec<_>>(),
            vec![(3, None), (3, None), (2, Some(508))]
        );
        assert_eq!(c[1].next_index, 6);
        // Kafka has the first two chunks: the transaction is streamed again from its
        // start and only indexes 6 and 7 come out.
        s.partial = Some((500, 6));
        let mut r = Run::new(s);
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(500);
        for i in 0..8 {
            r.insert(1, &i.to_string(), "x");
        }
        r.commit(500);
        let c = r.chunks();
        let all: Vec<_> = c.iter().flat_map(|c| positions(&c.events)).collect();
        assert_eq!(all, vec![(500, 6), (500, 7)]);
        assert_eq!(c.last().unwrap().end_lsn, Some(508));
    }

    #[test]
    fn an_unchanged_toasted_value_is_taken_from_the_full_old_row_else_left_out() {
        let mut r = Run::new(settings(0));
        r.feed(rel(1, &[("id", 23), ("big", 25)]), 1);
        r.begin(100);
        r.feed(
            Message::Update {
                rel: 1,
                old: Some((OldKind::Full, vec![Datum::Text("1"), Datum::Text("long")])),
                new: vec![Datum::Text("1"), Datum::Unchanged],
            },
            2,
        );
        r.feed(
            Message::Update {
                rel: 1,
                old: None,
                new: vec![Datum::Text("1"), Datum::Unchanged],
            },
            3,
        );
        r.commit(100);
        let c = r.chunks();
        assert_eq!(
            after(&c[0].events[0].event),
            serde_json::json!({"id": 1, "big": "long"})
        );
        assert_eq!(after(&c[0].events[1].event), serde_json::json!({"id": 1}));
    }

    #[test]
    fn a_key_only_old_image_carries_just_the_identity_columns() {
        let mut r = Run::new(settings(0));
        let mut m = rel(1, &[("id", 23), ("v", 25)]);
        if let Message::Relation(rel) = &mut m {
            rel.replica_identity = b'd';
            rel.columns[1].key = false;
        }
        r.feed(m, 1);
        r.begin(100);
        r.feed(
            Message::Delete {
                rel: 1,
                old: (OldKind::Key, vec![Datum::Text("4"), Datum::Null]),
            },
            2,
        );
        r.commit(100);
        let c = r.chunks();
        let before = c[0].events[0].event.before.clone().unwrap();
        assert_eq!(
            serde_json::Value::Object(before),
            serde_json::json!({"id": 4}),
            "a non-key column is unknown, not null"
        );
    }

    #[test]
    fn a_changed_relation_applies_from_the_next_change_and_uncaptured_tables_are_skipped() {
        let mut r = Run::new(settings(0));
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.feed(rel(9, &[("id", 23)]), 1); // public.t9: not captured
        r.begin(100);
        r.insert(1, "1", "a");
        r.feed(
            Message::Insert {
                rel: 9,
                new: vec![Datum::Text("5")],
            },
            2,
        );
        r.feed(rel(1, &[("id", 23), ("v", 25), ("w", 23)]), 3);
        r.feed(
            Message::Insert {
                rel: 1,
                new: vec![Datum::Text("2"), Datum::Null, Datum::Text("3")],
            },
            4,
        );
        r.commit(100);
        let c = r.chunks();
        assert_eq!(c[0].events.len(), 2);
        assert_eq!(c[0].events[0].event.columns.len(), 2);
        assert_eq!(c[0].events[1].event.columns.len(), 3);
        assert_eq!(
            after(&c[0].events[1].event),
            serde_json::json!({"id": 2, "v": null, "w": 3})
        );
        assert_eq!(r.cat.lookups, 2, "the uncaptured table is never looked up");
    }

    #[test]
    fn truncate_is_reported_not_carried_and_a_change_without_relation_is_an_error() {
        let mut r = Run::new(settings(0));
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(100);
        r.feed(
            Message::Truncate {
                options: 0,
                rels: vec![1],
            },
            2,
        );
        r.commit(100);
        let c = r.chunks();
        assert!(c[0].events.is_empty());
        assert_eq!(c[0].truncated, vec!["public.t1".to_string()]);
        r.begin(200);
        let e = r
            .asm
            .feed(
                Message::Insert {
                    rel: 2,
                    new: vec![],
                },
                3,
                &mut r.cat,
                &mut r.out,
            )
            .unwrap_err();
        assert!(matches!(e, StreamError::UnknownRelation(2)), "{e}");
    }

    #[test]
    fn keepalives_move_the_position_only_outside_a_transaction_and_forward() {
        let mut r = Run::new(settings(1000));
        let mut out = Vec::new();
        r.asm.keepalive(900, &mut out);
        assert!(out.is_empty(), "not past the stored position");
        r.asm.keepalive(2000, &mut out);
        assert!(matches!(out.as_slice(), [Out::Idle(2000)]));
        out.clear();
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(3000);
        r.asm.keepalive(5000, &mut out);
        assert!(out.is_empty(), "a transaction is open");
    }

    fn idle(lsn: u64) -> Item {
        Item::Out(Out::Idle(lsn))
    }

    #[test]
    fn the_queue_holds_the_bound_and_closing_it_releases_a_waiting_producer() {
        let q = Arc::new(Queue::new(2));
        assert!(q.push(idle(1), Duration::ZERO).is_ok());
        assert!(q.push(idle(2), Duration::ZERO).is_ok());
        assert!(q.push(idle(3), Duration::ZERO).is_err(), "full");
        let p = q.clone();
        let waiting = std::thread::spawn(move || p.push(idle(4), Duration::from_secs(3600)));
        // The producer waits for space; closing the queue must end that wait at once.
        q.close();
        assert!(waiting.join().unwrap().is_err());
        assert!(matches!(
            q.pop(Duration::ZERO),
            Some(Item::Out(Out::Idle(1)))
        ));
        assert!(matches!(
            q.pop(Duration::ZERO),
            Some(Item::Out(Out::Idle(2)))
        ));
        assert!(
            q.pop(Duration::from_secs(3600)).is_none(),
            "closed and empty"
        );
    }

    #[test]
    fn the_snapshot_filter_drops_what_the_snapshot_saw() {
        let mut s = settings(0);
        s.filter = Some(Filter {
            snapshots: vec![super::super::visibility::SnapshotXids::parse("5:10:", 150).unwrap()],
            tables: [("public.t1".to_string(), 0)].into_iter().collect(),
            until: 150,
        });
        let mut r = Run::new(s);
        r.feed(rel(1, &[("id", 23), ("v", 25)]), 1);
        r.begin(100); // xid 7: visible in the snapshot, commit before until
        r.insert(1, "1", "a");
        r.commit(100);
        assert!(r.chunks()[0].events.is_empty());
        r.begin(200); // past until: kept, and the filter is gone
        r.insert(1, "2", "b");
        r.commit(200);
        assert_eq!(r.chunks()[0].events.len(), 1);
        assert!(r.asm.s.filter.is_none());
    }
}
