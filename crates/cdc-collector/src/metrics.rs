//! Every metric of the collector, in one place, registered on the core health server's
//! registry. Documented in `docs/METRICS.md` (a test keeps both in step).

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

pub const EVENTS_CAPTURED: &str = "rtdp_collector_events_captured_total";
pub const EVENTS_PUBLISHED: &str = "rtdp_collector_events_published_total";
pub const TRANSACTIONS: &str = "rtdp_collector_source_transactions_total";
pub const SOURCE_LAG: &str = "rtdp_collector_source_lag_seconds";
pub const POSITION: &str = "rtdp_collector_position";
pub const SNAPSHOT_ROWS: &str = "rtdp_collector_snapshot_rows_total";
pub const SNAPSHOT_ESTIMATED: &str = "rtdp_collector_snapshot_rows_estimated";
pub const SNAPSHOT_RUNNING: &str = "rtdp_collector_snapshot_running";
pub const RECONNECTS: &str = "rtdp_collector_reconnects_total";
pub const KAFKA_TXN: &str = "rtdp_collector_kafka_transaction_seconds";
pub const BATCH_EVENTS: &str = "rtdp_collector_batch_events";
pub const TRUNCATES: &str = "rtdp_collector_truncates_total";

/// Every metric name, for the documentation test.
pub const ALL: &[&str] = &[
    EVENTS_CAPTURED,
    EVENTS_PUBLISHED,
    TRANSACTIONS,
    SOURCE_LAG,
    POSITION,
    SNAPSHOT_ROWS,
    SNAPSHOT_ESTIMATED,
    SNAPSHOT_RUNNING,
    RECONNECTS,
    KAFKA_TXN,
    BATCH_EVENTS,
    TRUNCATES,
];

/// Handles to every collector metric.
#[derive(Clone)]
pub struct Metrics {
    pub captured: IntCounterVec,
    pub published: IntCounterVec,
    pub transactions: IntCounter,
    pub lag: Gauge,
    pub position: GaugeVec,
    pub snapshot_rows: IntCounter,
    pub snapshot_estimated: IntGauge,
    pub snapshot_running: IntGauge,
    pub reconnects: IntCounterVec,
    pub kafka_txn: Histogram,
    pub batch_events: Histogram,
    pub truncates: IntCounter,
}

impl Metrics {
    pub fn register(r: &Registry) -> prometheus::Result<Metrics> {
        let m = Metrics {
            captured: IntCounterVec::new(
                Opts::new(EVENTS_CAPTURED, "Change events read from the source, per table"),
                &["table"],
            )?,
            published: IntCounterVec::new(
                Opts::new(EVENTS_PUBLISHED, "Change events committed to Kafka, per table"),
                &["table"],
            )?,
            transactions: IntCounter::new(
                TRANSACTIONS,
                "Source transactions passed (including those without captured changes)",
            )?,
            lag: Gauge::new(
                SOURCE_LAG,
                "Seconds between the commit in the database and its publication, for the newest published transaction; 0 when caught up",
            )?,
            position: GaugeVec::new(
                Opts::new(
                    POSITION,
                    "Source position as a number (PostgreSQL LSN): kind=current is the last published, kind=confirmed the one the database may release up to",
                ),
                &["kind"],
            )?,
            snapshot_rows: IntCounter::new(SNAPSHOT_ROWS, "Rows published by the initial snapshot")?,
            snapshot_estimated: IntGauge::new(
                SNAPSHOT_ESTIMATED,
                "Rows the running snapshot expects in total (table statistics)",
            )?,
            snapshot_running: IntGauge::new(SNAPSHOT_RUNNING, "1 while the initial snapshot runs")?,
            reconnects: IntCounterVec::new(
                Opts::new(
                    RECONNECTS,
                    "Restarts of the capture session after a failure, by what failed (database, kafka)",
                ),
                &["component"],
            )?,
            kafka_txn: Histogram::with_opts(
                HistogramOpts::new(KAFKA_TXN, "Duration of publishing one batch (Kafka transaction: begin to commit)")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            )?,
            batch_events: Histogram::with_opts(
                HistogramOpts::new(BATCH_EVENTS, "Events per published batch")
                    .buckets(vec![1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0]),
            )?,
            truncates: IntCounter::new(
                TRUNCATES,
                "TRUNCATEs of captured tables seen in the change log (not carried as events; the log names the table)",
            )?,
        };
        r.register(Box::new(m.captured.clone()))?;
        r.register(Box::new(m.published.clone()))?;
        r.register(Box::new(m.transactions.clone()))?;
        r.register(Box::new(m.lag.clone()))?;
        r.register(Box::new(m.position.clone()))?;
        r.register(Box::new(m.snapshot_rows.clone()))?;
        r.register(Box::new(m.snapshot_estimated.clone()))?;
        r.register(Box::new(m.snapshot_running.clone()))?;
        r.register(Box::new(m.reconnects.clone()))?;
        r.register(Box::new(m.kafka_txn.clone()))?;
        r.register(Box::new(m.batch_events.clone()))?;
        r.register(Box::new(m.truncates.clone()))?;
        Ok(m)
    }

    /// The numbers the collector's alerts judge (`rtdp_core::alerts`): the source lag as
    /// the latency; checkpoints = published batches (each commits its position with it in
    /// one Kafka transaction) against Kafka sessions that failed; CPU.
    pub fn alert_snapshot(&self) -> rtdp_core::alerts::Snapshot {
        rtdp_core::alerts::Snapshot {
            latency_ms: Some(self.lag.get() * 1000.0),
            checkpoints_ok: Some(self.kafka_txn.get_sample_count()),
            checkpoints_failed: Some(self.reconnects.with_label_values(&["kafka"]).get()),
            cpu_seconds: rtdp_core::health::process_cpu_seconds(),
            cpus: Some(rtdp_core::health::available_cpus()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_alert_snapshot_reads_lag_batches_and_kafka_failures() {
        let r = prometheus::Registry::new();
        let m = super::Metrics::register(&r).unwrap();
        m.lag.set(2.5);
        m.kafka_txn.observe(0.1);
        m.kafka_txn.observe(0.2);
        m.reconnects.with_label_values(&["kafka"]).inc();
        m.reconnects.with_label_values(&["database"]).inc_by(5);
        let s = m.alert_snapshot();
        assert_eq!(s.latency_ms, Some(2500.0));
        assert_eq!(s.checkpoints_ok, Some(2));
        assert_eq!(
            s.checkpoints_failed,
            Some(1),
            "database failures are not checkpoints"
        );
        assert_eq!(s.dead_letters, None);
        assert_eq!(s.queue_fill, None);
    }

    #[test]
    fn every_metric_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/METRICS.md"
        ))
        .expect("docs/METRICS.md");
        for name in super::ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} missing from docs/METRICS.md"
            );
        }
    }
}
