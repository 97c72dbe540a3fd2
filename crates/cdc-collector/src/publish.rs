//! The Kafka side of the collector: topic creation, the producer (transactional or
//! idempotent) and the position store (compacted offsets topic or a file).
//!
//! Promises, in `transactional` mode: one Kafka transaction holds a batch's events and
//! the record of its checkpoint in the offsets topic (key = collector name), so a reader
//! with `read_committed` sees either both or neither; a second collector with the same
//! name fences this one ([`PublishError::Fenced`]). [`Publisher::load_position`] reads
//! the newest committed checkpoint after fencing, so whatever a fenced or crashed
//! predecessor left open is aborted first.
//!
//! With `offsetStore: file` in `transactional` mode, the position file is written right
//! after the commit (the topic then holds a batch twice if the process dies in between;
//! the worker drops the copy by position).
//!
//! In `idempotent` mode (DataHub, which has neither transactions nor compacted topics),
//! the batch is sent and flushed, every delivery checked, and only then the checkpoint
//! is written to the position file (atomically: temp file, fsync, rename, fsync dir). A
//! crash between the two re-sends the batch; the worker drops what it already has by
//! position.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::source::OutEvent;

/// What the publisher needs from the configuration.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub client_properties: Vec<(String, String)>,
    pub topic: String,
    pub offsets_topic: String,
    pub collector: String,
    pub transactional: bool,
    /// `None`: positions in the offsets topic; `Some(path)`: in this file.
    pub offset_file: Option<PathBuf>,
    pub partitions: u32,
    pub replication_factor: u32,
    pub transaction_timeout_ms: u64,
    /// Create missing topics (not possible on DataHub).
    pub create_topics: bool,
}

/// A publishing failure.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Another collector with the same name took over: stop, do not retry.
    #[error("fenced: another collector named {0:?} started and took over this one's transactional id; this one stops")]
    Fenced(String),
    /// Kafka unreachable, a transaction failed, a delivery failed: reconnect and resume
    /// from the stored position.
    #[error("{0}")]
    Transient(String),
    /// Configuration that Kafka refuses (authorization, a topic that cannot exist).
    #[error("{0}")]
    Fatal(String),
}

/// Waits (up to 30 s, in 1 s steps that look at `stop`) until a broker answers a
/// metadata request.
fn wait_for_broker(cfg: &ClientConfig, stop: &AtomicBool) -> Result<(), PublishError> {
    let probe: BaseProducer = cfg
        .create()
        .map_err(|e| PublishError::Fatal(format!("creating the Kafka client: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe.client().fetch_metadata(None, Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    return Err(PublishError::Transient(
                        "stopped while waiting for Kafka".into(),
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(kerr("reaching Kafka", &e));
                }
            }
        }
    }
}

/// The record in the offsets topic / position file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPosition {
    pub collector: String,
    pub connector: String,
    /// The source's checkpoint (opaque here).
    pub position: serde_json::Value,
    /// When it was written, ms since the epoch.
    pub ts_ms: i64,
}

/// Counts deliveries that failed (idempotent mode checks it after each flush).
#[derive(Debug, Default, Clone)]
pub struct DeliveryCounter {
    failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Owns the producer; see the module docs.
pub struct Publisher {
    s: PublishSettings,
    producer: ThreadedProducer<DeliveryCounter>,
    counter: DeliveryCounter,
}

/// The offsets reader's context: reaching the end of a partition is how it knows it
/// has read everything, not an error worth a log line.
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF));
        if !eof {
            tracing::error!(error = %error, reason, "Kafka client error (offsets reader)");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, PublishError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(|e| PublishError::Transient(format!("runtime: {e}")))
}

fn kerr(what: &str, e: &KafkaError) -> PublishError {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Fenced)
        | Some(RDKafkaErrorCode::ProducerFenced)
        | Some(RDKafkaErrorCode::InvalidProducerEpoch) => PublishError::Fenced(String::new()),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        | Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed)
        | Some(RDKafkaErrorCode::ClusterAuthorizationFailed) => PublishError::Fatal(format!(
            "{what}: {e} (grant the collector's Kafka user the rights)"
        )),
        _ => PublishError::Transient(format!("{what}: {e}")),
    }
}

impl Publisher {
    /// Connects, creates missing topics and (transactional mode) initialises
    /// transactions, which fences any earlier producer with the same name. Waits for a
    /// broker in short steps, giving up early (a transient error) when `stop` is set, so
    /// SIGTERM is not held up by an unreachable Kafka.
    pub fn connect(s: PublishSettings, stop: &AtomicBool) -> Result<Publisher, PublishError> {
        let mut cfg = ClientConfig::new();
        for (k, v) in &s.client_properties {
            cfg.set(k, v);
        }
        wait_for_broker(&cfg, stop)?;
        if s.create_topics {
            ensure_topics(&cfg, &s)?;
        }
        let mut pc = cfg.clone();
        pc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("message.timeout.ms", s.transaction_timeout_ms.to_string());
        if s.transactional {
            pc.set(
                "transactional.id",
                format!("rtdp-collector-{}", s.collector),
            )
            .set(
                "transaction.timeout.ms",
                s.transaction_timeout_ms.to_string(),
            );
        }
        let counter = DeliveryCounter::default();
        let producer: ThreadedProducer<DeliveryCounter> =
            pc.create_with_context(counter.clone())
                .map_err(|e| PublishError::Fatal(format!("creating the Kafka producer: {e}")))?;
        if s.transactional {
            producer
                .init_transactions(Duration::from_secs(30))
                .map_err(|e| match kerr("initialising Kafka transactions", &e) {
                    PublishError::Fenced(_) => PublishError::Fenced(s.collector.clone()),
                    other => other,
                })?;
        }
        Ok(Publisher {
            s,
            producer,
            counter,
        })
    }

    /// The newest stored position of this collector, if any.
    pub fn load_position(&self) -> Result<Option<StoredPosition>, PublishError> {
        match &self.s.offset_file {
            Some(path) => read_position_file(path),
            None => self.read_offsets_topic(),
        }
    }

    fn read_offsets_topic(&self) -> Result<Option<StoredPosition>, PublishError> {
        let mut cfg = ClientConfig::new();
        for (k, v) in &self.s.client_properties {
            cfg.set(k, v);
        }
        cfg.set(
            "group.id",
            format!("rtdp-collector-{}-offsets-reader", self.s.collector),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
        let consumer: BaseConsumer<QuietEof> = cfg
            .create_with_context(QuietEof)
            .map_err(|e| PublishError::Fatal(format!("creating the offsets reader: {e}")))?;
        let md = consumer
            .fetch_metadata(Some(&self.s.offsets_topic), Duration::from_secs(15))
            .map_err(|e| kerr("reading offsets topic metadata", &e))?;
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == self.s.offsets_topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if parts.is_empty() {
            return Err(PublishError::Transient(format!(
                "offsets topic {:?} has no partitions (yet)",
                self.s.offsets_topic
            )));
        }
        let mut tpl = TopicPartitionList::new();
        let mut pending = Vec::new();
        for p in &parts {
            let (lo, hi) = consumer
                .fetch_watermarks(&self.s.offsets_topic, *p, Duration::from_secs(15))
                .map_err(|e| kerr("reading offsets topic watermarks", &e))?;
            if hi > lo {
                tpl.add_partition_offset(&self.s.offsets_topic, *p, rdkafka::Offset::Beginning)
                    .map_err(|e| PublishError::Transient(format!("offsets reader: {e}")))?;
                pending.push(*p);
            }
        }
        if pending.is_empty() {
            return Ok(None);
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kerr("assigning the offsets topic", &e))?;
        let mut newest: Option<StoredPosition> = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pending.is_empty() {
            if Instant::now() > deadline {
                return Err(PublishError::Transient(
                    "reading the offsets topic did not reach its end within 60 s".into(),
                ));
            }
            match consumer.poll(Duration::from_millis(500)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => pending.retain(|x| *x != p),
                Some(Err(e)) => return Err(kerr("reading the offsets topic", &e)),
                Some(Ok(m)) => {
                    if m.key() != Some(self.s.collector.as_bytes()) {
                        continue;
                    }
                    match m.payload() {
                        None => newest = None, // tombstone: position deleted
                        Some(bytes) => {
                            let p: StoredPosition = serde_json::from_slice(bytes).map_err(|e| {
                                PublishError::Fatal(format!(
                                    "offsets topic {:?} partition {} offset {}: unreadable position: {e}",
                                    self.s.offsets_topic,
                                    m.partition(),
                                    m.offset()
                                ))
                            })?;
                            newest = Some(p);
                        }
                    }
                }
            }
        }
        Ok(newest)
    }

    /// Publishes a batch and its checkpoint (see the module docs); returns when both are
    /// durable.
    pub fn publish(
        &self,
        events: &[OutEvent],
        checkpoint: &StoredPosition,
    ) -> Result<(), PublishError> {
        let fenced = |e: PublishError| match e {
            PublishError::Fenced(_) => PublishError::Fenced(self.s.collector.clone()),
            other => other,
        };
        if self.s.transactional {
            self.producer
                .begin_transaction()
                .map_err(|e| fenced(kerr("beginning a Kafka transaction", &e)))?;
            let r = self
                .send_all(events)
                .and_then(|()| match &self.s.offset_file {
                    // The position goes into the same transaction as the events.
                    None => self.send_position(checkpoint),
                    Some(_) => Ok(()),
                })
                .and_then(|()| {
                    self.producer
                        .commit_transaction(Duration::from_millis(self.s.transaction_timeout_ms))
                        .map_err(|e| kerr("committing the Kafka transaction", &e))
                });
            if let Err(e) = r {
                let _ = self.producer.abort_transaction(Duration::from_secs(10));
                // A fenced producer can surface as a delivery or "fatal error" first; the
                // producer's fatal error says what it really was. Retrying it would
                // fence the newer collector in turn.
                if let Some((code, _)) = self.producer.client().fatal_error() {
                    if matches!(
                        code,
                        RDKafkaErrorCode::Fenced
                            | RDKafkaErrorCode::ProducerFenced
                            | RDKafkaErrorCode::InvalidProducerEpoch
                    ) {
                        return Err(PublishError::Fenced(self.s.collector.clone()));
                    }
                }
                return Err(fenced(e));
            }
            // With a position file, the file follows the commit: a crash in between
            // publishes the batch again (the worker drops it by position).
            match &self.s.offset_file {
                Some(path) => write_position_file(path, checkpoint),
                None => Ok(()),
            }
        } else {
            let before = self.counter.failed.load(Ordering::Relaxed);
            self.send_all(events)?;
            self.producer
                .flush(Duration::from_millis(self.s.transaction_timeout_ms))
                .map_err(|e| kerr("flushing the batch", &e))?;
            let failed = self.counter.failed.load(Ordering::Relaxed) - before;
            if failed > 0 {
                return Err(PublishError::Transient(format!(
                    "{failed} record(s) of the batch were not delivered"
                )));
            }
            match &self.s.offset_file {
                Some(path) => write_position_file(path, checkpoint),
                None => {
                    self.send_position(checkpoint)?;
                    self.producer
                        .flush(Duration::from_secs(30))
                        .map_err(|e| kerr("flushing the position", &e))
                }
            }
        }
    }

    fn send_all(&self, events: &[OutEvent]) -> Result<(), PublishError> {
        let mut buf = Vec::with_capacity(2048);
        for e in events {
            if let Some(p) = &e.payload {
                self.send(&self.s.topic, &e.key, p)?;
                continue;
            }
            buf.clear();
            serde_json::to_writer(&mut buf, &e.event)
                .map_err(|err| PublishError::Transient(format!("encoding an event: {err}")))?;
            self.send(&self.s.topic, &e.key, &buf)?;
        }
        Ok(())
    }

    fn send_position(&self, p: &StoredPosition) -> Result<(), PublishError> {
        let bytes = serde_json::to_vec(p)
            .map_err(|e| PublishError::Transient(format!("encoding the position: {e}")))?;
        self.send(&self.s.offsets_topic, self.s.collector.as_bytes(), &bytes)
    }

    fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), PublishError> {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // The producer's own thread drains the queue; wait for room.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(kerr(&format!("sending to {topic}"), &e)),
            }
        }
    }
}

fn ensure_topics(cfg: &ClientConfig, s: &PublishSettings) -> Result<(), PublishError> {
    let admin: AdminClient<DefaultClientContext> = cfg
        .create()
        .map_err(|e| PublishError::Fatal(format!("creating the Kafka admin client: {e}")))?;
    let rf = || TopicReplication::Fixed(s.replication_factor as i32);
    let events = NewTopic::new(&s.topic, s.partitions as i32, rf());
    let mut topics = vec![events];
    if s.offset_file.is_none() {
        topics.push(
            NewTopic::new(&s.offsets_topic, 1, rf())
                .set("cleanup.policy", "compact")
                .set("min.compaction.lag.ms", "60000"),
        );
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics(topics.iter(), &opts))?
        .map_err(|e| kerr("creating topics", &e))?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((
                t,
                code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::PolicyViolation),
            )) => {
                return Err(PublishError::Fatal(format!(
                    "creating topic {t}: {code} (check collector.topicPartitions, \
                     collector.topicReplicationFactor and the Kafka user's rights, or create the \
                     topic beforehand)"
                )))
            }
            Err((t, code)) => {
                return Err(PublishError::Transient(format!(
                    "creating topic {t}: {code}"
                )))
            }
        }
    }
    Ok(())
}

fn read_position_file(path: &Path) -> Result<Option<StoredPosition>, PublishError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            PublishError::Fatal(format!(
                "position file {} is unreadable ({e}); restore it from a backup, or delete it to \
                 start over with a new snapshot",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PublishError::Fatal(format!(
            "reading position file {}: {e}",
            path.display()
        ))),
    }
}

/// Replaces the position file atomically: temp file, fsync, rename, fsync directory.
pub fn write_position_file(path: &Path, p: &StoredPosition) -> Result<(), PublishError> {
    use std::io::Write;
    let io = |e: std::io::Error| {
        PublishError::Fatal(format!("writing position file {}: {e}", path.display()))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec(p).map_err(|e| io(std::io::Error::other(e)))?)
            .map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_file_round_trips_and_reports_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pos.json");
        assert_eq!(read_position_file(&path).unwrap(), None);
        let p = StoredPosition {
            collector: "c".into(),
            connector: "postgresql".into(),
            position: serde_json::json!({"lsn": "0/10"}),
            ts_ms: 5,
        };
        write_position_file(&path, &p).unwrap();
        assert_eq!(read_position_file(&path).unwrap(), Some(p));
        std::fs::write(&path, b"{broken").unwrap();
        let e = read_position_file(&path).unwrap_err().to_string();
        assert!(e.contains("pos.json") && e.contains("unreadable"), "{e}");
    }
}
