//! What a service reports about itself: the JSON models behind `/status` and the
//! collector's progress.
//!
//! These types are plain serializable data (camelCase JSON) with no behaviour beyond
//! small pure helpers, so dashboards, tests and both services agree on one shape. They
//! carry positions and counts only: never row values, never secrets.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Life cycle of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    /// Loading config, connecting, recovering positions.
    Starting,
    /// Doing its work.
    Running,
    /// Shutting down: finishing and committing what is in flight.
    Draining,
    /// Stopped cleanly.
    Stopped,
    /// Stopped by an error it cannot recover from.
    Failed,
}

impl JobState {
    /// The serialized name (`"running"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Draining => "draining",
            JobState::Stopped => "stopped",
            JobState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Service name, e.g. `stream-worker` or the collector's name.
    pub service: String,
    /// Where in its life cycle the service is.
    pub state: JobState,
    /// When the service started (UTC).
    pub started_at: DateTime<Utc>,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Whether every readiness check passes.
    pub ready: bool,
    /// Service-specific details (collector metrics, assigned partitions, …).
    pub details: serde_json::Value,
}

/// Progress of an initial snapshot (the `r` events before streaming starts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotProgress {
    /// Rows read so far.
    pub rows_done: u64,
    /// Rows expected in total (from table statistics), if known.
    pub rows_estimated: Option<u64>,
    /// Rows per second since the snapshot started.
    pub rate_per_s: f64,
    /// Seconds left at the current rate, if the estimate and the rate allow a guess.
    pub eta_s: Option<u64>,
}

impl SnapshotProgress {
    /// Progress after `elapsed` with `rows_done` rows read of about `rows_estimated`.
    pub fn new(rows_done: u64, rows_estimated: Option<u64>, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        let rate_per_s = if secs > 0.0 {
            rows_done as f64 / secs
        } else {
            0.0
        };
        let eta_s = match rows_estimated {
            Some(total) if rate_per_s > 0.0 => {
                let left = total.saturating_sub(rows_done) as f64 / rate_per_s;
                // `as` saturates for floats; `left` is finite and non-negative here.
                Some(left.ceil() as u64)
            }
            _ => None,
        };
        Self {
            rows_done,
            rows_estimated,
            rate_per_s,
            eta_s,
        }
    }
}

/// What a collector reports in `/status` details and uses for its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectorMetrics {
    /// The collector's name (also its position key).
    pub collector: String,
    /// The last source position published (SCN, LSN, binlog file:pos or GTID), as text.
    pub source_position: String,
    /// Changes read from the source since start.
    pub events_captured_total: u64,
    /// Changes acknowledged by Kafka since start.
    pub events_published_total: u64,
    /// Commit time in the database of the last published change.
    pub last_event_ts: Option<DateTime<Utc>>,
    /// Milliseconds between that commit time and its publication; `None` before the first.
    pub lag_ms: Option<u64>,
    /// Snapshot progress while a snapshot runs.
    pub snapshot: Option<SnapshotProgress>,
}

impl CollectorMetrics {
    /// Metrics of a collector that has not read anything yet.
    pub fn new(collector: impl Into<String>) -> Self {
        Self {
            collector: collector.into(),
            source_position: String::new(),
            events_captured_total: 0,
            events_published_total: 0,
            last_event_ts: None,
            lag_ms: None,
            snapshot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn job_status_json_shape() {
        let status = JobStatus {
            service: "stream-worker".into(),
            state: JobState::Running,
            started_at: Utc
                .with_ymd_and_hms(2026, 11, 24, 2, 0, 0)
                .single()
                .expect("valid date"),
            uptime_s: 5,
            ready: true,
            details: serde_json::json!({"partitions": [0, 1]}),
        };
        let json = serde_json::to_string(&status).expect("serialize");
        assert_eq!(
            json,
            r#"{"service":"stream-worker","state":"running","startedAt":"2026-11-24T02:00:00Z","uptimeS":5,"ready":true,"details":{"partitions":[0,1]}}"#
        );
        let back: JobStatus = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, status);
    }

    #[test]
    fn collector_metrics_json_shape() {
        let mut m = CollectorMetrics::new("pg-main");
        m.snapshot = Some(SnapshotProgress::new(
            50,
            Some(150),
            Duration::from_secs(10),
        ));
        let v = serde_json::to_value(&m).expect("serialize");
        assert_eq!(v["collector"], "pg-main");
        assert_eq!(v["eventsCapturedTotal"], 0);
        assert_eq!(v["lagMs"], serde_json::Value::Null);
        assert_eq!(v["snapshot"]["rowsDone"], 50);
        assert_eq!(v["snapshot"]["ratePerS"], 5.0);
        assert_eq!(v["snapshot"]["etaS"], 20);
    }

    #[test]
    fn snapshot_progress_edge_cases() {
        let p = SnapshotProgress::new(0, Some(10), Duration::ZERO);
        assert_eq!(p.rate_per_s, 0.0);
        assert_eq!(p.eta_s, None);
        let p = SnapshotProgress::new(20, Some(10), Duration::from_secs(1));
        assert_eq!(p.eta_s, Some(0), "more rows than estimated: nothing left");
        let p = SnapshotProgress::new(20, None, Duration::from_secs(1));
        assert_eq!(p.eta_s, None);
    }
}
