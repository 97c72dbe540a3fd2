//! The health and metrics HTTP server every rtdp service runs.
//!
//! Owns [`Health`] (liveness, named readiness checks, life-cycle state, a Prometheus
//! registry and an optional status provider) and [`serve`], which exposes them:
//!
//! | route           | 200 when                       | body                                  |
//! |-----------------|--------------------------------|---------------------------------------|
//! | `/health`       | live and ready                 | JSON `{"status":"UP"/"DOWN", …}`      |
//! | `/health/live`  | live                           | JSON                                  |
//! | `/health/ready` | every registered check is ok   | JSON with the failing check names     |
//! | `/metrics`      | always                         | Prometheus text format 0.0.4          |
//! | `/status`       | always                         | [`JobStatus`] JSON                    |
//!
//! Promises: a service with no readiness check registered is not ready (so a pod is not
//! sent traffic before the service has said anything); readiness flips the moment
//! [`Health::set_ready`] is called; responses carry names, states and counts only — no
//! configuration values, so no secrets. `/metrics` adds cheap process metrics read from
//! `/proc/self` (Linux) to the registry's own metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use prometheus::{Encoder, Gauge, IntGauge, Opts, Registry, TextEncoder};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use crate::alerts::ActiveAlert;
use crate::status::{JobState, JobStatus};

/// Resident set size in bytes (from `/proc/self/status` VmRSS).
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Virtual memory size in bytes (from `/proc/self/status` VmSize).
pub const PROCESS_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
/// Number of threads (from `/proc/self/status` Threads).
pub const PROCESS_THREADS: &str = "process_threads";
/// Number of open file descriptors (entries of `/proc/self/fd`).
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// CPU time used by the process, user + system, seconds (from `/proc/self/stat`).
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
/// CPUs the process may use (cgroup quota or CPU count), what the `load` alert divides by;
/// Prometheus divides `rate(process_cpu_seconds_total[5m])` by it the same way.
pub const PROCESS_CPUS_AVAILABLE: &str = "process_cpus_available";
/// 1 when the service is ready, else 0 (label `service`).
pub const RTDP_READY: &str = "rtdp_ready";
/// 1 when the service is live, else 0 (label `service`).
pub const RTDP_LIVE: &str = "rtdp_live";
/// Seconds since the service started (label `service`).
pub const RTDP_UPTIME_SECONDS: &str = "rtdp_uptime_seconds";

type StatusProvider = Arc<dyn Fn() -> Value + Send + Sync>;

struct Inner {
    service: String,
    registry: Registry,
    live: AtomicBool,
    metrics_enabled: AtomicBool,
    checks: Mutex<BTreeMap<String, bool>>,
    state: Mutex<JobState>,
    started_at: DateTime<Utc>,
    started: Instant,
    provider: RwLock<Option<StatusProvider>>,
    alerts: Mutex<Vec<ActiveAlert>>,
}

/// Shared health state of one service. Cheap to clone; all clones see the same state.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("service", &self.inner.service)
            .field("live", &self.is_live())
            .field("checks", &*lock(&self.inner.checks))
            .field("state", &self.state())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    /// Health of `service`: live, not ready (no checks yet), state `starting`, with an
    /// empty Prometheus registry of its own.
    pub fn new(service: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                registry: Registry::new(),
                live: AtomicBool::new(true),
                metrics_enabled: AtomicBool::new(true),
                checks: Mutex::new(BTreeMap::new()),
                state: Mutex::new(JobState::Starting),
                started_at: Utc::now(),
                started: Instant::now(),
                provider: RwLock::new(None),
                alerts: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The service name given to [`Health::new`].
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The registry whose metrics `/metrics` serves. Register the service's metrics here.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.inner.registry
    }

    /// Registers or updates the named readiness check.
    pub fn set_ready(&self, check: &str, ok: bool) {
        lock(&self.inner.checks).insert(check.to_owned(), ok);
    }

    /// Sets liveness (false = "restart me").
    pub fn set_live(&self, ok: bool) {
        self.inner.live.store(ok, Ordering::SeqCst);
    }

    /// `monitoring.metrics.enabled`: when false, `/metrics` answers 404.
    pub fn set_metrics_enabled(&self, on: bool) {
        self.inner.metrics_enabled.store(on, Ordering::SeqCst);
    }

    /// Sets the life-cycle state reported by `/status`.
    pub fn set_state(&self, s: JobState) {
        *lock(&self.inner.state) = s;
    }

    /// Installs a function whose JSON is merged into `/status` `details` on each request.
    /// It runs on the server's task: keep it quick and non-blocking.
    pub fn set_status_provider(&self, f: impl Fn() -> Value + Send + Sync + 'static) {
        let mut slot = self
            .inner
            .provider
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *slot = Some(Arc::new(f));
    }

    /// Replaces the firing alerts `/status` shows in `details.alerts`.
    pub fn set_alerts(&self, alerts: Vec<ActiveAlert>) {
        *lock(&self.inner.alerts) = alerts;
    }

    /// The firing alerts, as last set by the alert task.
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        lock(&self.inner.alerts).clone()
    }

    /// True unless [`Health::set_live`] said otherwise.
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// True iff at least one readiness check is registered and all are ok.
    pub fn is_ready(&self) -> bool {
        let checks = lock(&self.inner.checks);
        !checks.is_empty() && checks.values().all(|ok| *ok)
    }

    /// The current life-cycle state.
    pub fn state(&self) -> JobState {
        *lock(&self.inner.state)
    }

    /// Names of the readiness checks that are not ok.
    pub fn failing_checks(&self) -> Vec<String> {
        lock(&self.inner.checks)
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn checks(&self) -> BTreeMap<String, bool> {
        lock(&self.inner.checks).clone()
    }

    /// What `/status` returns.
    pub fn status(&self) -> JobStatus {
        let mut details = Map::new();
        details.insert("checks".into(), json!(self.checks()));
        let provider = self
            .inner
            .provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(provider) = provider {
            match provider() {
                Value::Object(extra) => details.extend(extra),
                Value::Null => {}
                other => {
                    details.insert("value".into(), other);
                }
            }
        }
        details.insert("alerts".into(), json!(self.alerts()));
        JobStatus {
            service: self.inner.service.clone(),
            state: self.state(),
            started_at: self.inner.started_at,
            uptime_s: self.inner.started.elapsed().as_secs(),
            ready: self.is_ready(),
            details: Value::Object(details),
        }
    }

    /// The Prometheus text exposition of the registry plus process and health metrics.
    pub fn render_metrics(&self) -> String {
        let mut families = self.inner.registry.gather();
        let extra = Registry::new();
        let taken: Vec<String> = families.iter().map(|f| f.name().to_owned()).collect();
        let add_int = |name: &str, help: &str, value: Option<i64>, service_label: bool| {
            let Some(value) = value else { return };
            if taken.iter().any(|t| t == name) {
                return;
            }
            let mut opts = Opts::new(name, help);
            if service_label {
                opts = opts.const_label("service", self.inner.service.clone());
            }
            if let Ok(g) = IntGauge::with_opts(opts) {
                g.set(value);
                let _ = extra.register(Box::new(g));
            }
        };
        let proc_status = std::fs::read_to_string("/proc/self/status").ok();
        let field = |name: &str| {
            proc_status
                .as_deref()
                .and_then(|s| proc_status_field(s, name))
        };
        add_int(
            PROCESS_RESIDENT_MEMORY_BYTES,
            "Resident memory size in bytes.",
            field("VmRSS:").map(|kb| kb.saturating_mul(1024)),
            false,
        );
        add_int(
            PROCESS_VIRTUAL_MEMORY_BYTES,
            "Virtual memory size in bytes.",
            field("VmSize:").map(|kb| kb.saturating_mul(1024)),
            false,
        );
        add_int(
            PROCESS_THREADS,
            "Number of OS threads in the process.",
            field("Threads:"),
            false,
        );
        let fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| i64::try_from(d.count()).unwrap_or(i64::MAX));
        add_int(
            PROCESS_OPEN_FDS,
            "Number of open file descriptors.",
            fds,
            false,
        );
        if let Some(cpu) = process_cpu_seconds() {
            let opts = Opts::new(
                PROCESS_CPU_SECONDS_TOTAL,
                "CPU time used by the process (user + system), seconds.",
            );
            if !taken.iter().any(|t| t == PROCESS_CPU_SECONDS_TOTAL) {
                if let Ok(c) = prometheus::Counter::with_opts(opts) {
                    c.inc_by(cpu);
                    let _ = extra.register(Box::new(c));
                }
            }
        }
        add_int(
            PROCESS_CPUS_AVAILABLE,
            "CPUs the process may use (cgroup quota or CPU count).",
            Some(available_cpus() as i64),
            false,
        );
        add_int(
            RTDP_READY,
            "1 when every readiness check passes.",
            Some(i64::from(self.is_ready())),
            true,
        );
        add_int(
            RTDP_LIVE,
            "1 while the service is live.",
            Some(i64::from(self.is_live())),
            true,
        );
        if !taken.iter().any(|t| t == RTDP_UPTIME_SECONDS) {
            let opts = Opts::new(RTDP_UPTIME_SECONDS, "Seconds since the service started.")
                .const_label("service", self.inner.service.clone());
            if let Ok(g) = Gauge::with_opts(opts) {
                g.set(self.inner.started.elapsed().as_secs_f64());
                let _ = extra.register(Box::new(g));
            }
        }
        families.extend(extra.gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// CPU time the process has used, user + system, in seconds: fields 14 and 15 of
/// `/proc/self/stat`, in clock ticks of 1/100 s (Linux's `USER_HZ` on every architecture
/// rtdp ships for). `None` off Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    proc_stat_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// utime + stime of a `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn proc_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11, stime (15) 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPUs this process may use: the cgroup quota or the CPU count (at least 1).
pub fn available_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// A numeric field of `/proc/self/status` (`VmRSS:   1234 kB` -> 1234).
fn proc_status_field(text: &str, name: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

fn up_down(ok: bool) -> (StatusCode, &'static str) {
    if ok {
        (StatusCode::OK, "UP")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "DOWN")
    }
}

fn readiness_body(health: &Health) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("checks".into(), json!(health.checks()));
    body.insert("failing".into(), json!(health.failing_checks()));
    if health.checks().is_empty() {
        body.insert("reason".into(), json!("no readiness checks registered yet"));
    }
    body
}

async fn health_all(State(health): State<Health>) -> Response {
    let live = health.is_live();
    let ready = health.is_ready();
    let (code, status) = up_down(live && ready);
    let mut body = Map::new();
    body.insert("status".into(), json!(status));
    body.insert("service".into(), json!(health.service()));
    body.insert("state".into(), json!(health.state()));
    body.insert("live".into(), json!(live));
    body.insert("ready".into(), json!(ready));
    body.extend(readiness_body(&health));
    (code, Json(Value::Object(body))).into_response()
}

async fn health_live(State(health): State<Health>) -> Response {
    let (code, status) = up_down(health.is_live());
    (code, Json(json!({ "status": status }))).into_response()
}

async fn health_ready(State(health): State<Health>) -> Response {
    let (code, status) = up_down(health.is_ready());
    let mut body = Map::new();
    body.insert("status".into(), json!(status));
    body.extend(readiness_body(&health));
    (code, Json(Value::Object(body))).into_response()
}

async fn metrics(State(health): State<Health>) -> Response {
    if !health.inner.metrics_enabled.load(Ordering::SeqCst) {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "metrics are disabled (monitoring.metrics.enabled=false)\n",
        )
            .into_response();
    }
    let text = health.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn status(State(health): State<Health>) -> Response {
    Json(health.status()).into_response()
}

/// The routes of the server, for embedding into another axum app.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/health", get(health_all))
        .route("/health/live", get(health_live))
        .route("/health/ready", get(health_ready))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(health)
}

/// Binds `0.0.0.0:port` (0 = a free port), serves the routes until `shutdown` completes,
/// and returns the bound address and the server task.
pub async fn serve(
    health: Health,
    port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
    let addr = listener.local_addr()?;
    let service = health.service().to_owned();
    let app = router(health);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(service, error = %e, "health server stopped with an error");
        }
    });
    tracing::info!(%addr, "health and metrics server listening");
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_a_check_and_all_ok() {
        let h = Health::new("t");
        assert!(!h.is_ready(), "no checks registered: not ready");
        h.set_ready("kafka", true);
        assert!(h.is_ready());
        h.set_ready("files", false);
        assert!(!h.is_ready());
        assert_eq!(h.failing_checks(), vec!["files".to_owned()]);
        h.set_ready("files", true);
        assert!(h.is_ready());
    }

    #[test]
    fn status_merges_provider_details() {
        let h = Health::new("svc");
        h.set_ready("a", true);
        h.set_state(JobState::Running);
        h.set_status_provider(|| json!({"partitions": [0, 1]}));
        let s = h.status();
        assert_eq!(s.service, "svc");
        assert_eq!(s.state, JobState::Running);
        assert!(s.ready);
        assert_eq!(s.details["partitions"], json!([0, 1]));
        assert_eq!(s.details["checks"], json!({"a": true}));
    }

    #[test]
    fn proc_stat_cpu_parsing() {
        // A command name with spaces and a parenthesis.
        let line =
            "1234 (rtdp (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 0 0";
        assert_eq!(proc_stat_cpu_ticks(line), Some(300));
        assert_eq!(proc_stat_cpu_ticks("garbage"), None);
        assert_eq!(proc_stat_cpu_ticks("1 (a) S 1 2"), None);
        if cfg!(target_os = "linux") {
            let cpu = process_cpu_seconds().expect("cpu seconds on Linux");
            assert!(cpu >= 0.0);
        }
        assert!(available_cpus() >= 1.0);
    }

    #[test]
    fn status_lists_the_firing_alerts() {
        let h = Health::new("svc");
        assert_eq!(h.status().details["alerts"], json!([]));
        let mut e = crate::alerts::Evaluator::new(
            crate::alerts::Rules::default(),
            &[crate::alerts::Alert::Latency],
        );
        e.evaluate(
            Utc::now(),
            crate::alerts::Snapshot {
                latency_ms: Some(120_000.0),
                ..Default::default()
            },
        );
        h.set_alerts(e.active());
        let s = h.status();
        assert_eq!(s.details["alerts"][0]["alert"], "latency");
        assert_eq!(s.details["alerts"][0]["severity"], "high");
        // The alert task owns the key: a provider's own "alerts" does not hide it.
        h.set_status_provider(|| json!({"alerts": "from provider"}));
        assert_eq!(h.status().details["alerts"][0]["alert"], "latency");
    }

    #[test]
    fn proc_status_parsing() {
        let text = "Name:\tx\nVmSize:\t  2000 kB\nVmRSS:\t  1234 kB\nThreads:\t7\n";
        assert_eq!(proc_status_field(text, "VmRSS:"), Some(1234));
        assert_eq!(proc_status_field(text, "Threads:"), Some(7));
        assert_eq!(proc_status_field(text, "Nope:"), None);
    }

    #[test]
    fn metrics_include_registry_and_process() {
        let h = Health::new("svc");
        let c = prometheus::IntCounter::new("rtdp_test_total", "test").expect("counter");
        h.registry()
            .register(Box::new(c.clone()))
            .expect("register");
        c.inc_by(3);
        let text = h.render_metrics();
        assert!(text.contains("rtdp_test_total 3"), "{text}");
        assert!(text.contains("rtdp_ready{service=\"svc\"} 0"), "{text}");
        if cfg!(target_os = "linux") {
            assert!(
                text.contains("# TYPE process_resident_memory_bytes gauge"),
                "{text}"
            );
            assert!(
                text.contains("# TYPE process_cpu_seconds_total counter"),
                "{text}"
            );
        }
    }
}
