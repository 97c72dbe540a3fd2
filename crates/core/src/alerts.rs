//! Alerts built into the services (`monitoring.alerts.*`): the rule table of the
//! Flink-based system, evaluated by each process on its own numbers.
//!
//! | alert                 | holds when                                                           | severity |
//! |-----------------------|----------------------------------------------------------------------|----------|
//! | `latency`             | end-to-end latency > `latencyThresholdMs`                            | high     |
//! | `checkpoint_failures` | failed / attempted checkpoints in the window > `checkpointFailureRate` | high   |
//! | `load`                | process CPU / CPUs available, over the window > `loadThreshold`      | medium   |
//! | `backpressure`        | max(internal queue fill, share of arriving records that piled up as lag) > `loadThreshold` | medium |
//! | `dead_letters`        | dead letters grew in the window                                      | low      |
//!
//! This module is pure: [`Evaluator::evaluate`] takes a [`Snapshot`] of a service's
//! cumulative numbers and the time, keeps a short history to measure over
//! `monitoring.alerts.windowMs`, and returns the [`Notification`]s due — an alert
//! **fires** once when its rule starts to hold, **repeats** every `repeatIntervalMs` while
//! it holds, and **resolves** once the rule has been clear for `keepFiringForMs` (a rule
//! that clears and holds again within that time neither resolves nor fires again, so a
//! flapping value does not flood the webhook). No clock, no I/O, no threads here: the
//! service task ([`spawn`]) samples, evaluates, logs and hands notifications to the
//! webhook [`notify::Notifier`].
//!
//! Promises: a rule holds only when its value is strictly above its threshold (a value
//! at the threshold does not alert); a rule without data (no rows committed, no
//! checkpoint attempted in the window) does not hold; notification texts carry numbers
//! and configuration key names only — never row values, never secrets.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::AlertsConfig;

pub mod notify;
mod task;

pub use task::{
    instance_name, spawn, AlertMetrics, ALERTS_FIRING, ALERT_NOTIFICATIONS, ALL_METRICS,
    NOTIFICATION_RESULTS,
};

/// One rule of the alert table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alert {
    /// End-to-end latency over `latencyThresholdMs`.
    Latency,
    /// Checkpoint failure rate over `checkpointFailureRate`.
    CheckpointFailures,
    /// Process CPU over `loadThreshold`.
    Load,
    /// Backpressure level over `loadThreshold`.
    Backpressure,
    /// Dead letters growing.
    DeadLetters,
}

impl Alert {
    /// Every rule, in table order.
    pub const ALL: [Alert; 5] = [
        Alert::Latency,
        Alert::CheckpointFailures,
        Alert::Load,
        Alert::Backpressure,
        Alert::DeadLetters,
    ];

    /// The name in JSON, logs and the `alert` label (`"latency"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::Latency => "latency",
            Alert::CheckpointFailures => "checkpoint_failures",
            Alert::Load => "load",
            Alert::Backpressure => "backpressure",
            Alert::DeadLetters => "dead_letters",
        }
    }

    /// The severity of the old alert table.
    pub fn severity(self) -> Severity {
        match self {
            Alert::Latency | Alert::CheckpointFailures => Severity::High,
            Alert::Load | Alert::Backpressure => Severity::Medium,
            Alert::DeadLetters => Severity::Low,
        }
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    /// `"high"`, `"medium"`, `"low"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// Thresholds and timing of the rules (from `monitoring.alerts.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// `enabled`: when false nothing is evaluated and nothing fires.
    pub enabled: bool,
    /// `latencyThresholdMs`.
    pub latency_threshold_ms: f64,
    /// `checkpointFailureRate` (0..=1).
    pub checkpoint_failure_rate: f64,
    /// `loadThreshold` (0..=1), for `load` and `backpressure`.
    pub load_threshold: f64,
    /// `windowMs`: rates and growth are measured over this much time.
    pub window: Duration,
    /// `repeatIntervalMs`: a firing alert is sent again this often.
    pub repeat_interval: Duration,
    /// `keepFiringForMs`: a rule must stay clear this long before its alert resolves.
    pub keep_firing_for: Duration,
}

impl Rules {
    /// The rules of a validated configuration.
    pub fn from_config(c: &AlertsConfig) -> Rules {
        Rules {
            enabled: c.enabled,
            latency_threshold_ms: c.latency_threshold_ms as f64,
            checkpoint_failure_rate: c.checkpoint_failure_rate,
            load_threshold: c.load_threshold,
            window: Duration::from_millis(c.window_ms),
            repeat_interval: Duration::from_millis(c.repeat_interval_ms),
            keep_firing_for: Duration::from_millis(c.keep_firing_for_ms),
        }
    }

    /// The threshold `alert` compares with (dead letters: 0, i.e. any growth).
    pub fn threshold(&self, alert: Alert) -> f64 {
        match alert {
            Alert::Latency => self.latency_threshold_ms,
            Alert::CheckpointFailures => self.checkpoint_failure_rate,
            Alert::Load | Alert::Backpressure => self.load_threshold,
            Alert::DeadLetters => 0.0,
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::from_config(&AlertsConfig::default())
    }
}

/// A service's numbers at one instant. Counters are cumulative since the process
/// started; `None` = the service does not have this number (its rules do not hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Latency of the newest data now, ms (a gauge; the collector's source lag). Used when
    /// `latency_histogram` is `None`.
    pub latency_ms: Option<f64>,
    /// Cumulative histogram of end-to-end latencies, ms: `(upper bound, samples <= bound)`
    /// ascending, the last bound `f64::INFINITY` holding the total. The rule takes the p99
    /// of the samples added within the window.
    pub latency_histogram: Option<Vec<(f64, u64)>>,
    /// Checkpoints committed so far.
    pub checkpoints_ok: Option<u64>,
    /// Checkpoint attempts that failed so far.
    pub checkpoints_failed: Option<u64>,
    /// CPU time the process used so far (user + system), seconds.
    pub cpu_seconds: Option<f64>,
    /// CPUs available to the process (cgroup quota or CPU count).
    pub cpus: Option<f64>,
    /// How full the internal queues are now, 0..=1.
    pub queue_fill: Option<f64>,
    /// Records waiting in Kafka for this consumer now.
    pub consumer_lag: Option<u64>,
    /// Records handled so far (the counter the lag is worked off by).
    pub records_handled: Option<u64>,
    /// Records sent to the dead letters so far.
    pub dead_letters: Option<u64>,
}

/// One rule measured at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub alert: Alert,
    /// The measured value; `None` when there is nothing to measure (the rule does not hold).
    pub value: Option<f64>,
    pub threshold: f64,
    /// For people: what was measured, the value and the threshold. Numbers only.
    pub summary: String,
}

impl Measure {
    /// Whether the rule holds: the value is strictly above the threshold.
    pub fn holds(&self) -> bool {
        self.value.is_some_and(|v| v > self.threshold)
    }
}

/// `5m`, `1h30m`, `10s`, `1.5s`, `250ms`: a duration for messages.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if d.subsec_millis() != 0 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Quantile `q` (0..=1) of a cumulative histogram `(upper bound, count <= bound)`, linear
/// inside the bucket as Prometheus' `histogram_quantile` does; a quantile in the last,
/// infinite bucket is that bucket's lower bound. `None` without samples.
pub fn histogram_quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let (mut prev_bound, mut prev_count) = (0.0_f64, 0_u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank && count > prev_count {
            if !bound.is_finite() {
                return Some(prev_bound);
            }
            let in_bucket = (count - prev_count) as f64;
            return Some(
                prev_bound + (bound - prev_bound) * (rank - prev_count as f64) / in_bucket,
            );
        }
        if bound.is_finite() {
            prev_bound = bound;
        }
        prev_count = count;
    }
    Some(prev_bound)
}

/// `now - base` bucket by bucket, when both have the same bounds.
fn histogram_delta(base: Option<&Vec<(f64, u64)>>, now: &[(f64, u64)]) -> Vec<(f64, u64)> {
    match base {
        Some(b)
            if b.len() == now.len()
                && b.iter()
                    .zip(now)
                    .all(|(x, y)| x.0.to_bits() == y.0.to_bits()) =>
        {
            b.iter()
                .zip(now)
                .map(|(x, y)| (y.0, y.1.saturating_sub(x.1)))
                .collect()
        }
        _ => now.to_vec(),
    }
}

fn delta(base: Option<u64>, now: Option<u64>) -> Option<u64> {
    Some(now?.saturating_sub(base.unwrap_or(0)))
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// Measures `alerts` between two samples (`base` the oldest in the window, `now` the
/// newest). The window label in the texts is `rules.window`.
pub fn measure(
    rules: &Rules,
    alerts: &[Alert],
    base: (DateTime<Utc>, &Snapshot),
    now: (DateTime<Utc>, &Snapshot),
) -> Vec<Measure> {
    let w = human(rules.window);
    let span_s = (now.0 - base.0).num_milliseconds().max(0) as f64 / 1000.0;
    let (b, n) = (base.1, now.1);
    alerts
        .iter()
        .map(|&alert| {
            let threshold = rules.threshold(alert);
            let (value, summary) = match alert {
                Alert::Latency => {
                    if let Some(h) = &n.latency_histogram {
                        let d = histogram_delta(b.latency_histogram.as_ref(), h);
                        match histogram_quantile(0.99, &d) {
                            Some(v) => (Some(v), format!(
                                "p99 end-to-end latency of the rows committed in the last {w} is {v:.0} ms; monitoring.alerts.latencyThresholdMs is {threshold:.0} ms"
                            )),
                            None => (None, format!("no rows committed in the last {w}")),
                        }
                    } else {
                        match n.latency_ms {
                            Some(v) => (Some(v), format!(
                                "latency of the newest change (database commit to Kafka) is {v:.0} ms; monitoring.alerts.latencyThresholdMs is {threshold:.0} ms"
                            )),
                            None => (None, "no change published yet".to_owned()),
                        }
                    }
                }
                Alert::CheckpointFailures => {
                    let ok = delta(b.checkpoints_ok, n.checkpoints_ok).unwrap_or(0);
                    let failed = delta(b.checkpoints_failed, n.checkpoints_failed).unwrap_or(0);
                    let total = ok + failed;
                    if total == 0 {
                        (None, format!("no checkpoint attempted in the last {w}"))
                    } else {
                        let rate = failed as f64 / total as f64;
                        (Some(rate), format!(
                            "{failed} of {total} checkpoint attempts failed in the last {w} ({}); monitoring.alerts.checkpointFailureRate is {}",
                            pct(rate), pct(threshold)
                        ))
                    }
                }
                Alert::Load => match (b.cpu_seconds, n.cpu_seconds, n.cpus) {
                    (Some(c0), Some(c1), Some(cpus)) if span_s > 0.0 && cpus > 0.0 => {
                        let load = (c1 - c0).max(0.0) / span_s / cpus;
                        (Some(load), format!(
                            "process CPU over the last {w} is {} of {cpus:.0} CPU(s); monitoring.alerts.loadThreshold is {}",
                            pct(load), pct(threshold)
                        ))
                    }
                    _ => (None, "CPU not measured yet".to_owned()),
                },
                Alert::Backpressure => {
                    let queue = n.queue_fill.map(|q| q.clamp(0.0, 1.0));
                    let lag = match (b.consumer_lag, n.consumer_lag, delta(b.records_handled, n.records_handled)) {
                        (Some(l0), Some(l1), Some(handled)) => {
                            let grew = l1.saturating_sub(l0);
                            let share = if grew > 0 {
                                grew as f64 / (grew + handled) as f64
                            } else {
                                0.0
                            };
                            Some((share, grew, handled))
                        }
                        _ => None,
                    };
                    let value = match (queue, lag.map(|l| l.0)) {
                        (None, None) => None,
                        (q, l) => Some(q.unwrap_or(0.0).max(l.unwrap_or(0.0))),
                    };
                    let mut parts = Vec::new();
                    if let Some(q) = queue {
                        parts.push(format!("internal queue {} full", pct(q)));
                    }
                    if let Some((share, grew, handled)) = lag {
                        parts.push(format!(
                            "consumer lag grew by {grew} while {handled} records were handled in the last {w} (share piling up {})",
                            pct(share)
                        ));
                    }
                    let summary = match value {
                        Some(v) => format!(
                            "backpressure level {v:.2}: {}; monitoring.alerts.loadThreshold is {threshold}",
                            parts.join(", ")
                        ),
                        None => "backpressure not measured".to_owned(),
                    };
                    (value, summary)
                }
                Alert::DeadLetters => match delta(b.dead_letters, n.dead_letters) {
                    Some(d) => (
                        Some(d as f64),
                        format!("{d} records went to the dead letters in the last {w}"),
                    ),
                    None => (None, "dead letters not counted".to_owned()),
                },
            };
            Measure {
                alert,
                value,
                threshold,
                summary,
            }
        })
        .collect()
}

/// What happened to an alert at an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// The rule started to hold: first notification.
    Fire,
    /// Still holding, `repeatIntervalMs` after the last notification.
    Repeat,
    /// Clear for `keepFiringForMs`: the alert is over.
    Resolve,
}

impl Transition {
    /// `"fire"`, `"repeat"`, `"resolve"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Fire => "fire",
            Transition::Repeat => "repeat",
            Transition::Resolve => "resolve",
        }
    }
}

/// A notification due: what the webhook receives and the log says.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub transition: Transition,
    pub alert: Alert,
    /// The value at this evaluation (for a resolve: the value that cleared it).
    pub value: Option<f64>,
    pub threshold: f64,
    pub summary: String,
    /// When the alert fired.
    pub starts_at: DateTime<Utc>,
    /// When this notification was decided.
    pub at: DateTime<Utc>,
}

impl Notification {
    /// The webhook body. `text` is one line for chat webhooks that show only that field.
    pub fn to_json(&self, service: &str, instance: &str) -> Value {
        let status = if self.transition == Transition::Resolve {
            "resolved"
        } else {
            "firing"
        };
        let severity = self.alert.severity().as_str();
        json!({
            "version": 1,
            "source": "rtdp",
            "service": service,
            "instance": instance,
            "alert": self.alert.as_str(),
            "severity": severity,
            "status": status,
            "event": self.transition.as_str(),
            "value": self.value,
            "threshold": self.threshold,
            "summary": self.summary,
            "startsAt": self.starts_at,
            "endsAt": (self.transition == Transition::Resolve).then_some(self.at),
            "timestamp": self.at,
            "text": format!(
                "[{}] rtdp {service} on {instance}: {} ({severity}): {}",
                status.to_uppercase(),
                self.alert.as_str(),
                self.summary
            ),
        })
    }
}

/// An alert that is firing, as `/status` shows it (`details.alerts[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    pub alert: Alert,
    pub severity: Severity,
    /// The latest value (also while it is clear but not yet resolved).
    pub value: Option<f64>,
    pub threshold: f64,
    /// The latest summary.
    pub message: String,
    /// When it fired.
    pub since: DateTime<Utc>,
    /// The rule is clear; the alert resolves after `keepFiringForMs` unless it holds again.
    pub resolving: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Firing {
    since: DateTime<Utc>,
    last_sent: DateTime<Utc>,
    clear_since: Option<DateTime<Utc>>,
    latest: Measure,
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

/// Most samples kept for the window: they are spaced at least `window / HISTORY` apart.
const HISTORY: u32 = 256;

/// The rules of one service and their state.
#[derive(Debug, Clone)]
pub struct Evaluator {
    rules: Rules,
    alerts: Vec<Alert>,
    history: VecDeque<(DateTime<Utc>, Snapshot)>,
    firing: BTreeMap<Alert, Firing>,
}

impl Evaluator {
    /// An evaluator of `alerts` (the rules that make sense for the service).
    pub fn new(rules: Rules, alerts: &[Alert]) -> Evaluator {
        let mut list: Vec<Alert> = alerts.to_vec();
        list.sort();
        list.dedup();
        Evaluator {
            rules,
            alerts: list,
            history: VecDeque::new(),
            firing: BTreeMap::new(),
        }
    }

    /// The rules evaluated.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The rules' configuration.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Records `snap` taken at `at`, measures every rule over the window and returns the
    /// notifications due. Disabled rules: nothing, ever.
    pub fn evaluate(&mut self, at: DateTime<Utc>, snap: Snapshot) -> Vec<Notification> {
        if !self.rules.enabled {
            self.firing.clear();
            self.history.clear();
            return Vec::new();
        }
        let measures = {
            let window =
                chrono::Duration::from_std(self.rules.window).unwrap_or(chrono::Duration::MAX);
            let cutoff = at
                .checked_sub_signed(window)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            // Keep as baseline the newest sample at or before the window's start.
            while self.history.len() > 1 && self.history[1].0 <= cutoff {
                self.history.pop_front();
            }
            let ms = match self.history.front() {
                Some((t, base)) => measure(&self.rules, &self.alerts, (*t, base), (at, &snap)),
                None => measure(&self.rules, &self.alerts, (at, &snap), (at, &snap)),
            };
            let spacing = self.rules.window / HISTORY;
            let due = self
                .history
                .back()
                .is_none_or(|(t, _)| elapsed(*t, at) >= spacing);
            if due {
                self.history.push_back((at, snap));
            }
            ms
        };
        self.step(at, &measures)
    }

    /// The state machine alone: applies one evaluation's measures at `at`. Measures of
    /// rules this evaluator does not handle are ignored.
    pub fn step(&mut self, at: DateTime<Utc>, measures: &[Measure]) -> Vec<Notification> {
        let mut out = Vec::new();
        if !self.rules.enabled {
            self.firing.clear();
            return out;
        }
        for m in measures.iter().filter(|m| self.alerts.contains(&m.alert)) {
            let note = |transition, since| Notification {
                transition,
                alert: m.alert,
                value: m.value,
                threshold: m.threshold,
                summary: m.summary.clone(),
                starts_at: since,
                at,
            };
            match (self.firing.get_mut(&m.alert), m.holds()) {
                (None, false) => {}
                (None, true) => {
                    out.push(note(Transition::Fire, at));
                    self.firing.insert(
                        m.alert,
                        Firing {
                            since: at,
                            last_sent: at,
                            clear_since: None,
                            latest: m.clone(),
                        },
                    );
                }
                (Some(f), true) => {
                    f.clear_since = None;
                    f.latest = m.clone();
                    if elapsed(f.last_sent, at) >= self.rules.repeat_interval {
                        f.last_sent = at;
                        out.push(note(Transition::Repeat, f.since));
                    }
                }
                (Some(f), false) => {
                    f.latest = m.clone();
                    let clear_since = *f.clear_since.get_or_insert(at);
                    if elapsed(clear_since, at) >= self.rules.keep_firing_for {
                        out.push(note(Transition::Resolve, f.since));
                        self.firing.remove(&m.alert);
                    }
                }
            }
        }
        out
    }

    /// Whether `alert` is firing (including while it is clear but not yet resolved).
    pub fn is_firing(&self, alert: Alert) -> bool {
        self.firing.contains_key(&alert)
    }

    /// The firing alerts, in table order.
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.firing
            .iter()
            .map(|(a, f)| ActiveAlert {
                alert: *a,
                severity: a.severity(),
                value: f.latest.value,
                threshold: f.latest.threshold,
                message: f.latest.summary.clone(),
                since: f.since,
                resolving: f.clear_since.is_some(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
