//! The alert task of a service: samples its numbers every
//! `monitoring.alerts.evaluationIntervalMs`, runs the [`Evaluator`], logs every
//! transition, shows the firing alerts in `/status` (`details.alerts`) and in
//! `rtdp_alerts_firing`, and hands notifications to the webhook [`Notifier`].
//!
//! It runs on the service's HTTP runtime, not on its pipeline thread: sampling reads
//! counters and `/proc`, and the webhook queue never waits (see [`super::notify`]).

use std::time::Duration;

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::time::MissedTickBehavior;

use super::notify::{Delivery, Notifier, Webhook};
use super::{Alert, Evaluator, Notification, Rules, Snapshot, Transition};
use crate::config::AlertsConfig;
use crate::health::Health;

/// 1 while the alert is firing (label `alert`), for every rule the service evaluates.
pub const ALERTS_FIRING: &str = "rtdp_alerts_firing";
/// Webhook notifications by `result` = `sent` | `retried` | `failed` | `dropped`.
pub const ALERT_NOTIFICATIONS: &str = "rtdp_alert_notifications_total";
/// Every metric of this module, for the documentation test.
pub const ALL_METRICS: &[&str] = &[ALERTS_FIRING, ALERT_NOTIFICATIONS];
/// The values of `result` in [`ALERT_NOTIFICATIONS`].
pub const NOTIFICATION_RESULTS: &[&str] = &["sent", "retried", "failed", "dropped"];

/// Handles to the alert metrics.
#[derive(Clone, Debug)]
pub struct AlertMetrics {
    pub firing: IntGaugeVec,
    pub notifications: IntCounterVec,
}

impl AlertMetrics {
    /// Registers both metrics on `registry`, every `alert` and `result` at 0, so the
    /// series exist before anything fires.
    pub fn register(registry: &Registry, alerts: &[Alert]) -> prometheus::Result<AlertMetrics> {
        let firing = IntGaugeVec::new(
            Opts::new(ALERTS_FIRING, "1 while the alert is firing"),
            &["alert"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                ALERT_NOTIFICATIONS,
                "Alert webhook notifications by result (sent, retried, failed, dropped)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(firing.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        for a in alerts {
            firing.with_label_values(&[a.as_str()]).set(0);
        }
        for r in NOTIFICATION_RESULTS {
            notifications.with_label_values(&[r]).inc_by(0);
        }
        Ok(AlertMetrics {
            firing,
            notifications,
        })
    }
}

/// The name this process goes by in notifications: `$HOSTNAME` (the container id under
/// Docker), else the kernel's host name, else `unknown`.
pub fn instance_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn log(n: &Notification) {
    let (alert, severity) = (n.alert.as_str(), n.alert.severity().as_str());
    match n.transition {
        Transition::Fire => {
            tracing::warn!(alert, severity, summary = %n.summary, "alert firing")
        }
        Transition::Repeat => {
            tracing::warn!(alert, severity, summary = %n.summary, since = %n.starts_at, "alert still firing")
        }
        Transition::Resolve => {
            tracing::info!(alert, severity, summary = %n.summary, since = %n.starts_at, "alert resolved")
        }
    }
}

/// Starts the alerts of the service behind `health`: registers the metrics and, unless
/// `monitoring.alerts.enabled` is false, evaluates `alerts` on `rt` with the numbers
/// `snapshot` returns (keep it quick: it runs on the HTTP runtime).
pub fn spawn<F>(
    rt: &tokio::runtime::Handle,
    health: &Health,
    cfg: &AlertsConfig,
    alerts: &[Alert],
    mut snapshot: F,
) -> prometheus::Result<()>
where
    F: FnMut() -> Snapshot + Send + 'static,
{
    let metrics = AlertMetrics::register(health.registry(), alerts)?;
    if !cfg.enabled {
        tracing::info!("alerts are disabled (monitoring.alerts.enabled is false)");
        return Ok(());
    }
    let notifier = match Webhook::parse(cfg.webhook.expose()) {
        Ok(Some(w)) => {
            tracing::info!(webhook = %w.redacted(), "alerts are POSTed to the webhook");
            Some(Notifier::start(
                rt,
                w,
                metrics.notifications.clone(),
                Delivery::default(),
            ))
        }
        Ok(None) => None,
        Err(e) => {
            // validate() refuses this; say so rather than panic if it got here anyway.
            tracing::error!(error = %e, "monitoring.alerts.webhook is not usable; alerts are not sent");
            None
        }
    };
    let mut evaluator = Evaluator::new(Rules::from_config(cfg), alerts);
    let names: Vec<&str> = evaluator.alerts().iter().map(|a| a.as_str()).collect();
    tracing::info!(
        rules = %names.join(","),
        every_ms = cfg.evaluation_interval_ms,
        window_ms = cfg.window_ms,
        "alert rules evaluated"
    );
    let every = Duration::from_millis(cfg.evaluation_interval_ms.max(100));
    let health = health.clone();
    let service = health.service().to_owned();
    let instance = instance_name();
    rt.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snap = snapshot();
            for n in evaluator.evaluate(chrono::Utc::now(), snap) {
                log(&n);
                if let Some(notifier) = &notifier {
                    notifier.send(n.alert.as_str(), &n.to_json(&service, &instance));
                }
            }
            for a in evaluator.alerts() {
                metrics
                    .firing
                    .with_label_values(&[a.as_str()])
                    .set(i64::from(evaluator.is_firing(*a)));
            }
            health.set_alerts(evaluator.active());
        }
    });
    Ok(())
}
