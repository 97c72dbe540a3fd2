//! Every metric of the worker, in one place: names as constants, registered once on the
//! core health server's registry. Documented in `docs/METRICS.md` (keep both in step).
//!
//! Names keep the old system's metric names with dots turned into underscores and an
//! `rtdp_` prefix (`records.in.rate` → `rate(rtdp_records_in_total[1m])`).

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

pub const RECORDS_IN: &str = "rtdp_records_in_total";
pub const BYTES_IN: &str = "rtdp_bytes_in_total";
pub const RECORDS_OUT: &str = "rtdp_records_out_total";
pub const BYTES_OUT: &str = "rtdp_bytes_out_total";
pub const LATENCY: &str = "rtdp_latency_ms";
pub const CHECKPOINT_DURATION: &str = "rtdp_checkpoint_duration_ms";
pub const CHECKPOINT_COUNT: &str = "rtdp_checkpoint_count_total";
pub const CHECKPOINT_FAILED: &str = "rtdp_checkpoint_failed_count_total";
pub const CONSUMER_LAG: &str = "rtdp_consumer_lag";
pub const OPEN_FILES: &str = "rtdp_open_files";
pub const DLQ_RECORDS: &str = "rtdp_dlq_records_count_total";
pub const FAILED_RECORDS: &str = "rtdp_failed_records_count_total";
pub const DUPLICATES_DROPPED: &str = "rtdp_duplicates_dropped_total";
pub const RECORDS_SKIPPED: &str = "rtdp_records_skipped_total";
pub const FILES_COMMITTED: &str = "rtdp_files_committed_total";
pub const ASSIGNED_PARTITIONS: &str = "rtdp_assigned_partitions";
pub const BACKPRESSURE: &str = "rtdp_backpressure_level";

/// Bucket bounds (ms) of the latency histograms: 1 ms … 1 h.
const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    120_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
];

/// Handles to every worker metric.
#[derive(Clone)]
pub struct Metrics {
    pub records_in: IntCounter,
    pub bytes_in: IntCounter,
    pub records_out: IntCounter,
    pub bytes_out: IntCounter,
    pub latency: Histogram,
    pub checkpoint_duration: HistogramVec,
    pub checkpoint_count: IntCounter,
    pub checkpoint_failed: IntCounter,
    pub consumer_lag: IntGaugeVec,
    pub open_files: IntGauge,
    pub dlq_records: IntCounter,
    pub failed_records: IntCounterVec,
    pub duplicates_dropped: IntCounter,
    pub records_skipped: IntCounterVec,
    pub files_committed: IntCounter,
    pub assigned_partitions: IntGauge,
    pub backpressure: Gauge,
}

impl Metrics {
    /// Creates and registers every metric on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let c = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let m = IntCounter::new(name, help)?;
            registry.register(Box::new(m.clone()))?;
            Ok(m)
        };
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                LATENCY,
                "End-to-end latency: source commit time to file commit, ms",
            )
            .buckets(LATENCY_BUCKETS_MS.to_vec()),
        )?;
        registry.register(Box::new(latency.clone()))?;
        let checkpoint_duration = HistogramVec::new(
            HistogramOpts::new(
                CHECKPOINT_DURATION,
                "Duration of a partition checkpoint, ms",
            )
            .buckets(LATENCY_BUCKETS_MS.to_vec()),
            &["reason"],
        )?;
        registry.register(Box::new(checkpoint_duration.clone()))?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                CONSUMER_LAG,
                "High watermark minus the next offset to handle, per partition",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(consumer_lag.clone()))?;
        let open_files = IntGauge::new(OPEN_FILES, "In-progress files open")?;
        registry.register(Box::new(open_files.clone()))?;
        let assigned_partitions =
            IntGauge::new(ASSIGNED_PARTITIONS, "Partitions assigned to this worker")?;
        registry.register(Box::new(assigned_partitions.clone()))?;
        let failed_records = IntCounterVec::new(
            Opts::new(
                FAILED_RECORDS,
                "Records that failed to decode or convert, by stage",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(failed_records.clone()))?;
        let records_skipped = IntCounterVec::new(
            Opts::new(
                RECORDS_SKIPPED,
                "Records without a row (tombstone, truncate, message), by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(records_skipped.clone()))?;
        let backpressure = Gauge::new(
            BACKPRESSURE,
            "Fill of the consumer's fetch queue (records fetched, not yet polled), 0..1",
        )?;
        registry.register(Box::new(backpressure.clone()))?;
        Ok(Metrics {
            records_in: c(RECORDS_IN, "Kafka records received (not yet committed)")?,
            bytes_in: c(BYTES_IN, "Bytes of Kafka record values received")?,
            records_out: c(RECORDS_OUT, "Rows in committed files")?,
            bytes_out: c(BYTES_OUT, "Bytes of committed files")?,
            latency,
            checkpoint_duration,
            checkpoint_count: c(CHECKPOINT_COUNT, "Checkpoints that committed")?,
            checkpoint_failed: c(CHECKPOINT_FAILED, "Checkpoint attempts that failed")?,
            consumer_lag,
            open_files,
            dlq_records: c(DLQ_RECORDS, "Records committed to dead-letter files")?,
            failed_records,
            duplicates_dropped: c(
                DUPLICATES_DROPPED,
                "Events dropped by the positional de-duplication",
            )?,
            records_skipped,
            files_committed: c(FILES_COMMITTED, "Files committed (data and dead letters)")?,
            assigned_partitions,
            backpressure,
        })
    }

    /// The numbers the built-in alerts judge (`rtdp_core::alerts`): the latency histogram,
    /// checkpoints, CPU, backpressure (fetch queue fill, lag against records handled),
    /// dead letters.
    pub fn alert_snapshot(&self) -> rtdp_core::alerts::Snapshot {
        use prometheus::core::Collector;
        let latency_histogram = self.latency.collect().first().and_then(|mf| {
            let h = mf.get_metric().first()?.get_histogram();
            let mut buckets: Vec<(f64, u64)> = h
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
            buckets.push((f64::INFINITY, h.get_sample_count()));
            Some(buckets)
        });
        let lag: i64 = self
            .consumer_lag
            .collect()
            .iter()
            .flat_map(|mf| mf.get_metric().iter())
            .map(|m| m.get_gauge().get_value() as i64)
            .sum();
        rtdp_core::alerts::Snapshot {
            latency_ms: None,
            latency_histogram,
            checkpoints_ok: Some(self.checkpoint_count.get()),
            checkpoints_failed: Some(self.checkpoint_failed.get()),
            cpu_seconds: rtdp_core::health::process_cpu_seconds(),
            cpus: Some(rtdp_core::health::available_cpus()),
            queue_fill: Some(self.backpressure.get()),
            consumer_lag: Some(lag.max(0) as u64),
            records_handled: Some(self.records_in.get()),
            dead_letters: Some(self.dlq_records.get()),
        }
    }
}

/// Quantile `q` (0..1) of a histogram by linear interpolation inside its buckets, the
/// way Prometheus' `histogram_quantile` does. `None` when it holds no sample.
pub fn histogram_quantile(h: &Histogram, q: f64) -> Option<f64> {
    use prometheus::core::Collector;
    let mf = h.collect();
    let m = mf.first()?.get_metric().first()?;
    let hist = m.get_histogram();
    let total = hist.get_sample_count();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut prev_bound = 0.0;
    let mut prev_count = 0u64;
    for b in hist.get_bucket() {
        let count = b.cumulative_count();
        let bound = b.upper_bound();
        if count as f64 >= rank {
            let in_bucket = (count - prev_count) as f64;
            if in_bucket == 0.0 {
                return Some(bound);
            }
            return Some(
                prev_bound + (bound - prev_bound) * (rank - prev_count as f64) / in_bucket,
            );
        }
        prev_bound = bound;
        prev_count = count;
    }
    Some(prev_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_documented_in_docs_metrics_md() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/METRICS.md"
        ))
        .unwrap();
        let reg = Registry::new();
        Metrics::register(&reg).unwrap();
        // Every family, also those that have no sample yet (labelled ones).
        for name in [
            RECORDS_IN,
            BYTES_IN,
            RECORDS_OUT,
            BYTES_OUT,
            LATENCY,
            CHECKPOINT_DURATION,
            CHECKPOINT_COUNT,
            CHECKPOINT_FAILED,
            CONSUMER_LAG,
            OPEN_FILES,
            DLQ_RECORDS,
            FAILED_RECORDS,
            DUPLICATES_DROPPED,
            RECORDS_SKIPPED,
            FILES_COMMITTED,
            ASSIGNED_PARTITIONS,
            BACKPRESSURE,
        ] {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/METRICS.md"
            );
        }
        for family in reg.gather() {
            assert!(
                doc.contains(family.name()),
                "{} is not in docs/METRICS.md",
                family.name()
            );
        }
    }

    #[test]
    fn the_alert_snapshot_reads_every_number() {
        let reg = Registry::new();
        let m = Metrics::register(&reg).unwrap();
        m.latency.observe(7.0);
        m.latency.observe(70_000.0);
        m.checkpoint_count.inc_by(4);
        m.checkpoint_failed.inc();
        m.consumer_lag.with_label_values(&["t", "0"]).set(10);
        m.consumer_lag.with_label_values(&["t", "1"]).set(5);
        m.records_in.inc_by(100);
        m.dlq_records.inc_by(2);
        m.backpressure.set(0.25);
        let s = m.alert_snapshot();
        let h = s.latency_histogram.unwrap();
        assert_eq!(h.last(), Some(&(f64::INFINITY, 2)));
        assert_eq!(h.iter().find(|b| b.0 == 10.0).unwrap().1, 1);
        assert_eq!(s.checkpoints_ok, Some(4));
        assert_eq!(s.checkpoints_failed, Some(1));
        assert_eq!(s.consumer_lag, Some(15));
        assert_eq!(s.records_handled, Some(100));
        assert_eq!(s.dead_letters, Some(2));
        assert_eq!(s.queue_fill, Some(0.25));
        assert!(s.cpus.unwrap() >= 1.0);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let reg = Registry::new();
        let m = Metrics::register(&reg).unwrap();
        assert_eq!(histogram_quantile(&m.latency, 0.5), None);
        for _ in 0..100 {
            m.latency.observe(7.0);
        }
        let p50 = histogram_quantile(&m.latency, 0.5).unwrap();
        assert!((5.0..=10.0).contains(&p50), "{p50}");
        m.latency.observe(50_000.0);
        assert!(histogram_quantile(&m.latency, 0.999).unwrap() > 30_000.0);
    }
}
