//! The consumer-group member: librdkafka wiring, the poll loop, rebalances, checkpoints
//! and graceful shutdown.
//!
//! - Cooperative-sticky assignment, manual commits, `read_committed`.
//! - **Poll loop**: takes up to 512 already-fetched records per batch, decodes them (the
//!   pure, CPU-heavy part) on two threads, then applies them one by one in poll order on
//!   the poll thread — de-duplication, writes, dead letters and rolls are never
//!   reordered. Each record carries the rebalance generation it was polled in; one
//!   polled before its partition's current assignment is ignored (the new assignment
//!   re-fetches from its manifest), so a batch that straddles a rebalance is safe.
//! - **Assign** (inside the rebalance callback, which runs on the poll thread): for each
//!   new partition, [`Store::recover`] rolls pending renames forward and deletes
//!   leftovers, and the partition is assigned *at the manifest's offset* — the files are
//!   the source of truth; Kafka's committed offsets only serve lag monitoring. Recovery
//!   is a manifest read plus a few renames/unlinks: it does not block on anything slow.
//! - **Revoke**: the revoked partitions' open epochs are aborted (files deleted, nothing
//!   committed), so the next owner starts from the last commit point and no two workers
//!   ever write the same partition's manifest. Closing files here would block the
//!   rebalance for as long as a Parquet footer takes.
//! - **Checkpoint** of a partition when it rolls (size right after the write that crossed
//!   it; interval, checkpoint interval and inactivity on a 100 ms tick), then an async
//!   Kafka commit of the same offset.
//! - **Shutdown** (SIGTERM/SIGINT): checkpoint every partition until the deadline, abort
//!   what is left, leave the group.
//! - An I/O failure while writing or committing is fatal: the process exits non-zero and
//!   the next start recovers from the manifests (nothing lost, nothing doubled).

use crate::decode::{Decoded, Decoder, RecordRef};
use crate::manifest::Store;
use crate::metrics::Metrics;
use crate::partition::{Outcome, PartitionWriter};
use crate::roll::{RollPolicy, RollReason};
use crate::sink::{SinkError, SinkOptions};
use anyhow::{anyhow, Context as _};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rtdp_core::health::Health;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Everything the consumer needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub topic: String,
    pub group_id: String,
    /// bootstrap.servers, security and any extra librdkafka properties.
    pub client_properties: Vec<(String, String)>,
    pub session_timeout_ms: u64,
    pub sink: SinkOptions,
    pub roll: RollPolicy,
    pub max_record_bytes: usize,
    pub shutdown_timeout: Duration,
    /// `output.maxRetries`: retries of a checkpoint commit that failed with an I/O error.
    pub max_retries: u32,
    /// `checkpoint.timeoutMs`: a checkpoint slower than this is logged as a warning.
    pub checkpoint_timeout: Duration,
    /// Most in-progress files open at once (all partitions); reaching it commits every
    /// partition before another file opens. See [`open_files_budget`].
    pub max_open_files: usize,
}

/// How many in-progress files the process may keep open: the soft `RLIMIT_NOFILE`
/// (read from /proc/self/limits) less a reserve for sockets, manifests and librdkafka,
/// at least 16. 1000 when the limit cannot be read.
pub fn open_files_budget() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    match soft {
        Some(n) => n.saturating_sub(128).max(16),
        None => 1000,
    }
}

struct Shared {
    settings: WorkerSettings,
    store: Store,
    metrics: Metrics,
    health: Health,
    parts: Mutex<BTreeMap<i32, PartitionWriter>>,
    fatal: Mutex<Option<String>>,
    /// Bumped by every rebalance; tags polled records and new partition writers.
    generation: std::sync::atomic::AtomicU64,
    /// Where librdkafka stops pre-fetching: (`queued.min.messages`,
    /// `queued.max.messages.kbytes` in bytes), for `rtdp_backpressure_level`.
    fetch_queue_limits: (f64, f64),
}

impl Shared {
    fn parts(&self) -> MutexGuard<'_, BTreeMap<i32, PartitionWriter>> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, msg: String) {
        tracing::error!(error = %msg, "fatal");
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(msg);
        }
    }

    fn update_gauges(&self, parts: &BTreeMap<i32, PartitionWriter>) {
        self.metrics.assigned_partitions.set(parts.len() as i64);
        self.metrics
            .open_files
            .set(parts.values().map(|p| p.open_files() as i64).sum());
        self.health
            .set_ready("partitions_assigned", !parts.is_empty());
    }
}

/// librdkafka callbacks: rebalances, logs and statistics (for per-partition lag).
pub struct WorkerContext {
    shared: Arc<Shared>,
}

impl ClientContext for WorkerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{msg}")
            }
        }
    }

    fn stats(&self, stats: Statistics) {
        let parts = self.shared.parts();
        let topic = &self.shared.settings.topic;
        let mut fill = 0.0_f64;
        if let Some(t) = stats.topics.get(topic) {
            for (p, writer) in parts.iter() {
                // librdkafka stops fetching a partition when its queue holds
                // queued.min.messages records or queued.max.messages.kbytes (the
                // partitions of a subscription share one queue, so take the fullest).
                if let Some(sp) = t.partitions.get(p) {
                    let (msgs, bytes) = self.shared.fetch_queue_limits;
                    fill = fill
                        .max(sp.fetchq_cnt.max(0) as f64 / msgs)
                        .max(sp.fetchq_size as f64 / bytes);
                }
                if let (Some(sp), Some(pos)) = (t.partitions.get(p), writer.position()) {
                    if sp.hi_offset >= 0 {
                        self.shared
                            .metrics
                            .consumer_lag
                            .with_label_values(&[topic, &p.to_string()])
                            .set((sp.hi_offset - pos).max(0));
                    }
                }
            }
        }
        self.shared.metrics.backpressure.set(fill.min(1.0));
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for WorkerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
                let mut parts = self.shared.parts();
                let s = &self.shared.settings;
                let assigned: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                for (topic, p) in assigned {
                    match self.shared.store.recover(&topic, p) {
                        Ok(rec) => {
                            tracing::info!(
                                topic = %topic,
                                partition = p,
                                next_offset = ?rec.next_offset,
                                rolled_forward = rec.rolled_forward,
                                deleted_leftovers = rec.deleted_leftovers,
                                "partition assigned"
                            );
                            let start = rec.next_offset;
                            parts.insert(
                                p,
                                PartitionWriter::new(
                                    &topic,
                                    p,
                                    self.shared.store.clone(),
                                    s.sink.clone(),
                                    s.roll,
                                    rec,
                                )
                                .with_generation(generation),
                            );
                            if let Some(n) = start {
                                if let Err(err) =
                                    tpl.set_partition_offset(&topic, p, Offset::Offset(n))
                                {
                                    self.shared.fail(format!(
                                        "partition {p}: cannot set start offset: {err}"
                                    ));
                                }
                            }
                        }
                        Err(err) => self
                            .shared
                            .fail(format!("partition {p}: recovery failed: {err}")),
                    }
                }
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(err) = r {
                    self.shared.fail(format!("assign failed: {err}"));
                }
                self.shared.update_gauges(&parts);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.shared.generation.fetch_add(1, Ordering::SeqCst);
                let mut parts = self.shared.parts();
                for e in tpl.elements() {
                    if let Some(mut w) = parts.remove(&e.partition()) {
                        if w.dirty() {
                            tracing::info!(
                                topic = e.topic(),
                                partition = e.partition(),
                                "partition revoked; uncommitted records will be re-consumed by its next owner"
                            );
                        } else {
                            tracing::info!(
                                topic = e.topic(),
                                partition = e.partition(),
                                "partition revoked"
                            );
                        }
                        w.abort();
                    }
                    let _ = self
                        .shared
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[e.topic(), &e.partition().to_string()]);
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(err) = r {
                    tracing::warn!(error = %err, "unassign failed");
                }
                self.shared.update_gauges(&parts);
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Harmless for correctness: the manifests are the source of truth.
            tracing::debug!(error = %e, "kafka offset commit failed");
        }
    }
}

/// The worker: a consumer and the partitions it owns.
pub struct Worker {
    consumer: BaseConsumer<WorkerContext>,
    shared: Arc<Shared>,
    /// One decoder per decoding thread (their caches are not shared).
    decoders: [Decoder; 2],
    /// Where the poll thread spent its time (logged at shutdown, for tuning).
    busy: Busy,
}

#[derive(Default)]
struct Busy {
    poll: Duration,
    decode: Duration,
    apply: Duration,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Worker {
    pub fn new(
        settings: WorkerSettings,
        store: Store,
        metrics: Metrics,
        health: Health,
    ) -> anyhow::Result<Worker> {
        let mut cfg = ClientConfig::new();
        // Tunables: kafka.properties may override these.
        cfg.set(
            "session.timeout.ms",
            settings.session_timeout_ms.to_string(),
        )
        .set("statistics.interval.ms", "5000")
        .set("fetch.max.bytes", "52428800")
        .set("queued.max.messages.kbytes", "262144")
        // librdkafka pauses a partition's fetching for this long once its local queue
        // is full; the default (1 s) starves a consumer that drains the queue in well
        // under a second: 100k → 240k events/s in docs/BENCHMARKS.md.
        .set("fetch.queue.backoff.ms", "10")
        .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &settings.client_properties {
            cfg.set(k, v);
        }
        // What the exactly-once protocol depends on: not overridable.
        cfg.set("group.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.partition.eof", "false");
        let limit = |key: &str, default: f64, scale: f64| {
            cfg.get(key)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(default)
                * scale
        };
        let fetch_queue_limits = (
            limit("queued.min.messages", 100_000.0, 1.0),
            limit("queued.max.messages.kbytes", 65_536.0, 1024.0),
        );
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            store,
            metrics,
            health,
            parts: Mutex::new(BTreeMap::new()),
            fatal: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            fetch_queue_limits,
        });
        let consumer: BaseConsumer<WorkerContext> = cfg
            .create_with_context(WorkerContext {
                shared: shared.clone(),
            })
            .context("cannot create the Kafka consumer (check kafka.* settings)")?;
        consumer
            .subscribe(&[&settings.topic])
            .with_context(|| format!("cannot subscribe to topic {:?}", settings.topic))?;
        Ok(Worker {
            consumer,
            decoders: [
                Decoder::new(settings.max_record_bytes),
                Decoder::new(settings.max_record_bytes),
            ],
            busy: Busy::default(),
            shared,
        })
    }

    /// The `/status` details: partitions, offsets and open files.
    pub fn status_provider(&self) -> impl Fn() -> serde_json::Value + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || {
            let parts = shared.parts();
            let list: Vec<_> = parts
                .iter()
                .map(|(p, w)| {
                    serde_json::json!({"partition": p, "nextOffset": w.position(), "openFiles": w.open_files()})
                })
                .collect();
            let m = &shared.metrics;
            let q = |x| crate::metrics::histogram_quantile(&m.latency, x);
            serde_json::json!({
                "topic": shared.settings.topic,
                "groupId": shared.settings.group_id,
                "partitions": list,
                "latency": {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99)},
                "records": {"in": m.records_in.get(), "out": m.records_out.get(),
                            "deadLetters": m.dlq_records.get(), "duplicatesDropped": m.duplicates_dropped.get()},
                "checkpoints": {"count": m.checkpoint_count.get(), "failed": m.checkpoint_failed.get()},
            })
        }
    }

    /// Polls until `stop` is set (then drains within the deadline) or a fatal error.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
        let mut last_tick = Instant::now();
        let result = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            if let Some(f) = self
                .shared
                .fatal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                break Err(anyhow!(f));
            }
            let t0 = Instant::now();
            let batch = collect_batch(&self.consumer, &self.shared);
            let t1 = Instant::now();
            if !batch.is_empty() {
                let decoded = decode_batch(&mut self.decoders, &batch);
                let t2 = Instant::now();
                if let Err(e) = apply_batch(&self.shared, &self.consumer, &batch, decoded) {
                    break Err(e);
                }
                self.busy.decode += t2 - t1;
                self.busy.apply += t2.elapsed();
            }
            self.busy.poll += t1 - t0;
            if last_tick.elapsed() >= Duration::from_millis(100) {
                last_tick = Instant::now();
                if let Err(e) = self.tick(false) {
                    break Err(e);
                }
            }
        };
        match result {
            Ok(()) => {
                self.drain();
                Ok(())
            }
            Err(e) => {
                // Leave the committed state as it is; the next start recovers from it.
                let mut parts = self.shared.parts();
                for w in parts.values_mut() {
                    w.abort();
                }
                Err(e)
            }
        }
    }

    /// Rolls every partition that must roll now (or all of them, on shutdown).
    fn tick(&mut self, all: bool) -> anyhow::Result<()> {
        let now = now_ms();
        let mut parts = self.shared.parts();
        for w in parts.values_mut() {
            let reason = if all {
                w.dirty().then_some(RollReason::Shutdown)
            } else {
                w.should_roll(now)
            };
            if let Some(r) = reason {
                checkpoint(&self.shared, &self.consumer, w, r)?;
            }
        }
        self.shared.update_gauges(&parts);
        Ok(())
    }

    /// Graceful shutdown: commit what is open, within the deadline; then leave the group.
    fn drain(&mut self) {
        self.shared
            .health
            .set_state(rtdp_core::model::JobState::Draining);
        let deadline = Instant::now() + self.shared.settings.shutdown_timeout;
        tracing::info!(
            poll_s = self.busy.poll.as_secs_f64(),
            decode_s = self.busy.decode.as_secs_f64(),
            apply_s = self.busy.apply.as_secs_f64(),
            "shutting down: committing open files (time of the poll thread so far)"
        );
        {
            let mut parts = self.shared.parts();
            for w in parts.values_mut() {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        partition = w.partition,
                        "shutdown deadline passed; open epoch aborted (it will be re-consumed)"
                    );
                    w.abort();
                    continue;
                }
                if w.dirty() {
                    if let Err(e) =
                        checkpoint(&self.shared, &self.consumer, w, RollReason::Shutdown)
                    {
                        tracing::error!(partition = w.partition, error = %e, "checkpoint at shutdown failed; open epoch aborted");
                        w.abort();
                    }
                }
            }
        }
        // Make the Kafka commits synchronous before leaving, for accurate lag.
        if let Ok(tpl) = self.consumer.assignment() {
            let mut offsets = TopicPartitionList::new();
            let parts = self.shared.parts();
            for e in tpl.elements() {
                if let Some(pos) = parts.get(&e.partition()).and_then(|w| w.position()) {
                    let _ =
                        offsets.add_partition_offset(e.topic(), e.partition(), Offset::Offset(pos));
                }
            }
            drop(parts);
            if offsets.count() > 0 {
                let _ = self.consumer.commit(&offsets, CommitMode::Sync);
            }
        }
        self.consumer.unsubscribe();
        // Serve the revoke callback so the group rebalances at once.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until && !self.shared.parts().is_empty() {
            let _ = self.consumer.poll(Duration::from_millis(50));
        }
        tracing::info!("stopped");
    }
}

/// Most records taken from the consumer per batch.
const BATCH: usize = 512;
/// Below this many records a batch is decoded on the poll thread alone.
const PARALLEL_MIN: usize = 64;

/// A polled record and the rebalance generation it was polled in.
struct Polled<'c> {
    msg: BorrowedMessage<'c>,
    generation: u64,
}

/// Waits up to 100 ms for a record, then takes what is already fetched, up to [`BATCH`].
/// Stops early at a rebalance, so a batch never spans two assignments of a partition
/// without [`apply_batch`] noticing (see `PartitionWriter::assigned_generation`).
fn collect_batch<'c>(
    consumer: &'c BaseConsumer<WorkerContext>,
    shared: &Shared,
) -> Vec<Polled<'c>> {
    let mut batch = Vec::new();
    let mut timeout = Duration::from_millis(100);
    while batch.len() < BATCH {
        let before = shared.generation.load(Ordering::SeqCst);
        match consumer.poll(timeout) {
            Some(Ok(msg)) => {
                let generation = shared.generation.load(Ordering::SeqCst);
                batch.push(Polled { msg, generation });
                if generation != before {
                    break;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "kafka consumer error");
                break;
            }
            None => break,
        }
        timeout = Duration::ZERO;
    }
    batch
}

type DecodeResult = Result<Decoded, crate::decode::DecodeError>;

/// Decodes a batch — the pure, CPU-heavy part — on two threads; results keep the order.
fn decode_batch(decoders: &mut [Decoder; 2], batch: &[Polled<'_>]) -> Vec<DecodeResult> {
    struct Rec<'a> {
        payload: Option<&'a [u8]>,
        topic: &'a str,
        partition: i32,
        offset: i64,
    }
    let recs: Vec<Rec<'_>> = batch
        .iter()
        .map(|p| Rec {
            payload: p.msg.payload(),
            topic: p.msg.topic(),
            partition: p.msg.partition(),
            offset: p.msg.offset(),
        })
        .collect();
    let now = now_ms();
    let run = |d: &mut Decoder, recs: &[Rec<'_>]| -> Vec<DecodeResult> {
        recs.iter()
            .map(|r| {
                d.decode(
                    r.payload,
                    RecordRef {
                        topic: r.topic,
                        partition: r.partition,
                        offset: r.offset,
                    },
                    now,
                )
            })
            .collect()
    };
    let [first, second] = decoders;
    if recs.len() < PARALLEL_MIN {
        return run(first, &recs);
    }
    let (head, tail) = recs.split_at(recs.len() / 2);
    std::thread::scope(|s| {
        let h = s.spawn(|| run(second, tail));
        let mut out = run(first, head);
        match h.join() {
            Ok(rest) => out.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    })
}

/// Applies decoded records in poll order: de-duplicate, write or dead-letter; roll at
/// once on size.
fn apply_batch(
    shared: &Shared,
    consumer: &BaseConsumer<WorkerContext>,
    batch: &[Polled<'_>],
    decoded: Vec<DecodeResult>,
) -> anyhow::Result<()> {
    let now = now_ms();
    let metrics = &shared.metrics;
    let mut parts = shared.parts();
    for (p, decoded) in batch.iter().zip(decoded) {
        let m = &p.msg;
        metrics.records_in.inc();
        metrics.bytes_in.inc_by(m.payload_len() as u64);
        let Some(w) = parts.get_mut(&m.partition()) else {
            continue;
        };
        // Polled before the partition was (re)assigned here: it belongs to an earlier
        // assignment; the new one re-fetches from its manifest.
        if p.generation < w.assigned_generation() {
            continue;
        }
        let offset = m.offset();
        if !w.accepts(offset) {
            continue;
        }
        if let Some(gap) = w.resume_gap(offset) {
            // Offsets between the commit point and the first record fetched are gone from
            // Kafka (retention) or were control records/compacted: say so loudly.
            tracing::warn!(
                partition = m.partition(),
                expected = offset - gap,
                got = offset,
                "first record after resume is past the committed offset: {gap} offset(s) not in Kafka any more (retention, compaction or transaction markers)"
            );
        }
        if let Ok(Decoded::Event(ev)) = &decoded {
            if w.needs_new_file(ev) {
                let open: usize = parts.values().map(PartitionWriter::open_files).sum();
                if open + 1 >= shared.settings.max_open_files {
                    tracing::info!(
                        open,
                        limit = shared.settings.max_open_files,
                        "open-file limit reached; committing every partition"
                    );
                    for w in parts.values_mut() {
                        checkpoint(shared, consumer, w, RollReason::OpenFiles)?;
                    }
                    shared.update_gauges(&parts);
                }
            }
        }
        let w = parts.get_mut(&m.partition()).expect("looked up above");
        let failure = match decoded {
            Ok(Decoded::Event(ev)) => match w.write(offset, *ev, now) {
                Ok(Outcome::Written) => None,
                Ok(Outcome::Duplicate) => {
                    metrics.duplicates_dropped.inc();
                    None
                }
                Err(SinkError::ValueMismatch { column, expected }) => Some(
                    crate::decode::DecodeError::Value(rtdp_core::types::ValueError {
                        column,
                        expected,
                        found: "another type".into(),
                    }),
                ),
                Err(e @ SinkError::Schema(_)) => {
                    Some(crate::decode::DecodeError::Envelope(e.to_string()))
                }
                Err(e) => return Err(anyhow!("partition {}: write failed: {e}", m.partition())),
            },
            Ok(Decoded::Skip(reason)) => {
                metrics.records_skipped.with_label_values(&[reason]).inc();
                w.skip(offset, now);
                None
            }
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            metrics
                .failed_records
                .with_label_values(&[e.stage().as_str()])
                .inc();
            tracing::debug!(partition = m.partition(), offset, stage = e.stage().as_str(), error = %e, "record to dead letters");
            w.dead_letter(
                offset,
                m.key(),
                m.payload(),
                m.timestamp().to_millis(),
                &e,
                now,
            )
            .map_err(|e| anyhow!("partition {}: dead-letter write failed: {e}", m.partition()))?;
        }
        if w.should_roll(now) == Some(RollReason::Size) {
            checkpoint(shared, consumer, w, RollReason::Size)?;
            shared.update_gauges(&parts);
        }
    }
    Ok(())
}

fn checkpoint(
    shared: &Shared,
    consumer: &BaseConsumer<WorkerContext>,
    w: &mut PartitionWriter,
    reason: RollReason,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let m = &shared.metrics;
    let policy = rtdp_core::retry::RetryPolicy {
        max_attempts: shared.settings.max_retries + 1,
        initial: Duration::from_millis(200),
        max: Duration::from_secs(5),
        ..Default::default()
    };
    let mut attempt = 1;
    let stats = loop {
        match w.checkpoint(now_ms()) {
            Ok(Some(s)) => break s,
            Ok(None) => return Ok(()),
            Err(e) => {
                m.checkpoint_failed.inc();
                if !w.retry_safe() || attempt > shared.settings.max_retries {
                    return Err(anyhow!(
                        "partition {}: checkpoint failed after {attempt} attempt(s): {e}",
                        w.partition
                    ));
                }
                let delay = policy.delay(attempt, &mut rand::rng());
                tracing::warn!(partition = w.partition, attempt, error = %e, delay_ms = delay.as_millis() as u64, "checkpoint commit failed; retrying");
                // Back-off between attempts at a failing disk, not a wait for a race.
                std::thread::sleep(delay);
                attempt += 1;
            }
        }
    };
    let took = started.elapsed();
    if took > shared.settings.checkpoint_timeout {
        tracing::warn!(
            partition = w.partition,
            ms = took.as_millis() as u64,
            "checkpoint took longer than checkpoint.timeoutMs"
        );
    }
    m.checkpoint_count.inc();
    m.checkpoint_duration
        .with_label_values(&[reason.as_str()])
        .observe(took.as_secs_f64() * 1000.0);
    m.records_out.inc_by(stats.rows);
    m.bytes_out.inc_by(stats.bytes);
    m.dlq_records.inc_by(stats.dead_letters);
    m.files_committed.inc_by(stats.files as u64);
    let commit_ms = now_ms();
    for ts in &stats.source_ts_ms {
        if *ts > 0 {
            m.latency.observe((commit_ms - ts).max(0) as f64);
        }
    }
    tracing::info!(
        partition = w.partition,
        reason = reason.as_str(),
        next_offset = stats.next_offset,
        files = stats.files,
        rows = stats.rows,
        dead_letters = stats.dead_letters,
        bytes = stats.bytes,
        ms = took.as_millis() as u64,
        "checkpoint committed"
    );
    crate::manifest::crash_point("before_kafka_commit");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&w.topic, w.partition, Offset::Offset(stats.next_offset))
        .map_err(|e| anyhow!("offset list: {e}"))?;
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::debug!(error = %e, "kafka offset commit not sent");
    }
    Ok(())
}
