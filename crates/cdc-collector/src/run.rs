//! The collector's loop: connect to Kafka and the database, resume from the stored
//! position, then read a batch, publish it with its checkpoint, confirm it to the
//! database — until stopped.
//!
//! Failures of the database or Kafka end the session: readiness goes false, a warning
//! names what failed and the attempt number, and after a back-off (1 s doubling to 30 s,
//! with jitter) a new session starts from the position stored in Kafka, so nothing is
//! lost and nothing is published twice. Configuration problems and fencing stop the
//! process with the message (exit code 2 for set-up problems, 3 for fencing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtdp_core::health::Health;
use rtdp_core::model::JobState;
use rtdp_core::retry::RetryPolicy;
use rtdp_core::status::CollectorMetrics;

use crate::metrics::Metrics;
use crate::publish::{PublishError, PublishSettings, Publisher, StoredPosition};
use crate::source::{ChangeSource, Severity, SourceError};

/// Why the loop stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum StopReason {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Fenced(String),
}

enum SessionError {
    Database(SourceError),
    Kafka(PublishError),
}

/// Shared state behind `/status`.
pub type StatusCell = Arc<Mutex<CollectorMetrics>>;

/// The alert rules the collector evaluates (docs/METRICS.md#alerts): `latency` (its
/// source lag: database commit to Kafka), `checkpoint_failures` (a published batch
/// carries its position; a failed Kafka session is a failed one) and `load` (CPU). It
/// writes no files and keeps no queue, so no dead letters and no backpressure of its own:
/// a collector that cannot keep up shows as source lag.
pub const ALERTS: &[rtdp_core::alerts::Alert] = &[
    rtdp_core::alerts::Alert::Latency,
    rtdp_core::alerts::Alert::CheckpointFailures,
    rtdp_core::alerts::Alert::Load,
];

/// Starts the collector's alerts (`monitoring.alerts.*`) on `rt` (the HTTP runtime),
/// judging `metrics`.
pub fn start_alerts(
    rt: &tokio::runtime::Handle,
    health: &Health,
    cfg: &rtdp_core::config::PipelineConfig,
    metrics: Metrics,
) -> anyhow::Result<()> {
    let alerts = &cfg.monitoring.alerts;
    rtdp_core::alerts::spawn(rt, health, alerts, ALERTS, move || metrics.alert_snapshot())?;
    Ok(())
}

pub struct Runner<S: ChangeSource> {
    pub source: S,
    pub publish: PublishSettings,
    pub metrics: Metrics,
    pub health: Health,
    pub status: StatusCell,
    pub poll_interval: Duration,
    pub stop: Arc<AtomicBool>,
}

impl<S: ChangeSource> Runner<S> {
    /// Runs until `stop` is set (Ok) or a problem retrying cannot fix (Err).
    pub fn run(mut self) -> Result<(), StopReason> {
        let policy = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            ..RetryPolicy::forever()
        };
        let mut attempt: u32 = 0;
        let mut rng = rand::rng();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let started = Instant::now();
            let err = match self.session() {
                Ok(()) => return Ok(()),
                // Stopping: whatever failed on the way out is not worth a retry.
                Err(_) if self.stop.load(Ordering::SeqCst) => return Ok(()),
                Err(e) => e,
            };
            self.health.set_ready("database", false);
            self.health.set_ready("kafka", false);
            match &err {
                SessionError::Database(e) if e.severity == Severity::Fatal => {
                    return Err(StopReason::Setup(e.message.clone()))
                }
                SessionError::Kafka(PublishError::Fatal(m)) => {
                    return Err(StopReason::Setup(m.clone()))
                }
                SessionError::Kafka(e @ PublishError::Fenced(_)) => {
                    return Err(StopReason::Fenced(e.to_string()))
                }
                _ => {}
            }
            // A session that ran a while was healthy: start the back-off afresh.
            if started.elapsed() > Duration::from_secs(60) {
                attempt = 0;
            }
            attempt += 1;
            let (component, message) = match &err {
                SessionError::Database(e) => ("database", e.message.clone()),
                SessionError::Kafka(e) => ("kafka", e.to_string()),
            };
            self.metrics
                .reconnects
                .with_label_values(&[component])
                .inc();
            let delay = policy.delay(attempt.min(30), &mut rng);
            tracing::warn!(
                component,
                attempt,
                error = %message,
                retry_in_ms = delay.as_millis() as u64,
                "capture session failed; reconnecting"
            );
            self.wait(delay);
        }
    }

    /// Sleeps up to `d`, waking early when stopped.
    fn wait(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    fn session(&mut self) -> Result<(), SessionError> {
        let publisher =
            Publisher::connect(self.publish.clone(), &self.stop).map_err(SessionError::Kafka)?;
        let stored = publisher.load_position().map_err(SessionError::Kafka)?;
        self.health.set_ready("kafka", true);
        if let Some(p) = &stored {
            if p.connector != self.source.connector() {
                return Err(SessionError::Database(SourceError::fatal(format!(
                    "the stored position of collector {:?} is for {}, not {}; use another collector.name",
                    self.publish.collector,
                    p.connector,
                    self.source.connector()
                ))));
            }
        }
        self.source
            .start(stored.as_ref().map(|p| &p.position))
            .map_err(SessionError::Database)?;
        self.health.set_ready("database", true);
        self.health.set_state(JobState::Running);
        self.update_positions();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let batch = self.source.next_batch().map_err(SessionError::Database)?;
            self.metrics
                .snapshot_running
                .set(i64::from(batch.snapshot && !batch.events.is_empty()));
            if let Some(p) = self.source.snapshot_progress() {
                self.metrics
                    .snapshot_estimated
                    .set(p.rows_estimated.unwrap_or(0) as i64);
                self.status.lock().map(|mut s| s.snapshot = Some(p)).ok();
            } else {
                self.status.lock().map(|mut s| s.snapshot = None).ok();
            }
            if batch.is_idle() {
                self.metrics.lag.set(0.0);
                if let Ok(mut s) = self.status.lock() {
                    if s.lag_ms.is_some() {
                        s.lag_ms = Some(0);
                    }
                }
                self.wait(self.poll_interval);
                continue;
            }
            let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
            for e in &batch.events {
                let s = &e.event.source;
                *counts
                    .entry((s.schema.as_deref().unwrap_or(""), s.table.as_str()))
                    .or_default() += 1;
            }
            let per_table: Vec<(String, u64)> = counts
                .into_iter()
                .map(|((schema, table), n)| (format!("{schema}.{table}"), n))
                .collect();
            for (t, n) in &per_table {
                self.metrics.captured.with_label_values(&[t]).inc_by(*n);
            }
            let Some(cp) = batch.checkpoint.clone() else {
                // Events without a position to store cannot be published exactly once.
                return Err(SessionError::Database(SourceError::transient(
                    "a batch without a checkpoint",
                )));
            };
            let stored = StoredPosition {
                collector: self.publish.collector.clone(),
                connector: self.source.connector().to_owned(),
                position: cp.clone(),
                ts_ms: chrono::Utc::now().timestamp_millis(),
            };
            let t0 = Instant::now();
            publisher
                .publish(&batch.events, &stored)
                .map_err(SessionError::Kafka)?;
            self.metrics.kafka_txn.observe(t0.elapsed().as_secs_f64());
            self.metrics.batch_events.observe(batch.events.len() as f64);
            self.metrics.transactions.inc_by(batch.transactions);
            for (t, n) in &per_table {
                self.metrics.published.with_label_values(&[t]).inc_by(*n);
            }
            if batch.snapshot {
                self.metrics.snapshot_rows.inc_by(batch.events.len() as u64);
            }
            self.metrics.truncates.inc_by(batch.truncated.len() as u64);
            let now = chrono::Utc::now();
            if let Some(ts) = batch.last_commit_ts_ms {
                let lag_ms = (now.timestamp_millis() - ts).max(0);
                self.metrics.lag.set(lag_ms as f64 / 1000.0);
                if let Ok(mut s) = self.status.lock() {
                    s.lag_ms = Some(lag_ms as u64);
                    s.last_event_ts = chrono::DateTime::from_timestamp_millis(ts);
                }
            }
            if let Ok(mut s) = self.status.lock() {
                s.events_captured_total += batch.events.len() as u64;
                s.events_published_total += batch.events.len() as u64;
            }
            self.source.confirm(&cp).map_err(SessionError::Database)?;
            self.update_positions();
        }
    }

    fn update_positions(&self) {
        let p = self.source.positions();
        for (kind, value) in [
            ("current", p.current_value),
            ("confirmed", p.confirmed_value),
        ] {
            if let Some(n) = value {
                self.metrics
                    .position
                    .with_label_values(&[kind])
                    .set(n as f64);
            }
        }
        if let Ok(mut s) = self.status.lock() {
            s.source_position = p.current;
        }
    }
}
