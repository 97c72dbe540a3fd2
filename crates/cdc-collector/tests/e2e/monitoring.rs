//! Monitoring against the real thing: a real Prometheus (Debian's `/usr/bin/prometheus`)
//! scrapes a running collector and stream-worker and loads `deploy/prometheus/alerts.yml`.
//! It must see every metric `docs/METRICS.md` documents, from the service the doc puts it
//! under; every metric the alert rules and the Grafana dashboard
//! (`deploy/grafana/dashboards/rtdp.json`) query must be in the binaries' `/metrics`; every
//! rule must evaluate without error and every dashboard query must return data.
//!
//! Labelled series appear only once something happened, so the chain is made to produce
//! each first: snapshot and streamed changes (per-table counters, positions, checkpoints by
//! reason, consumer lag), a record the worker cannot decode and a tombstone (failures by
//! stage, skips by reason, dead letters), and a killed database session (reconnects by
//! component).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtdp_testkit::{free_port, http_get, kafka, repo_root, wait_until, ChildGuard};
use serde_json::Value;

use crate::common::{mixed_step, Chain, MIX_TABLE};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const WORKER_JOB: &str = "rtdp-stream-worker";
const COLLECTOR_JOB: &str = "rtdp-collector";

/// Documented metrics that may be absent from a scrape, with the reason. Each must still be
/// documented. Empty: every documented metric appears in this test.
const MAY_BE_ABSENT: &[(&str, &str)] = &[];

/// Series the rules or the dashboard query that no rtdp binary exports, with where they
/// come from.
const NOT_FROM_RTDP: &[(&str, &str)] = &[
    ("up", "Prometheus' own scrape health series, one per target"),
    (
        "ALERTS",
        "Prometheus' own series of pending and firing alerts",
    ),
];

#[test]
fn prometheus_scrapes_every_documented_metric_and_every_queried_metric_exists() {
    let prometheus = prometheus_binary();
    let documented = documented_metrics();
    assert!(
        documented.len() > 20,
        "parsed only {} metrics from docs/METRICS.md",
        documented.len()
    );
    for (name, why) in MAY_BE_ABSENT {
        assert!(
            documented.iter().any(|m| m.name == *name),
            "{name} is allowed to be absent ({why}) but is not documented"
        );
    }

    // The chain, and something happening in it for every labelled series.
    let mut c = Chain::new("mon");
    c.sql(MIX_TABLE);
    c.sql("INSERT INTO mix SELECT -g, 'pre', g FROM generate_series(1, 500) g;");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    for i in 0..20 {
        c.sql(&mixed_step(i));
    }
    c.wait_verified(Duration::from_secs(120));
    // A record the worker cannot decode (a dead letter, stage=decode) and a tombstone
    // (skipped, reason=tombstone), next to the collector's events.
    kafka()
        .produce(
            &c.topic,
            [
                (None, b"not json".to_vec(), None),
                (None, b"null".to_vec(), None),
            ],
        )
        .expect("produce a bad record and a tombstone");
    // Kill the collector's database session: it reconnects (component=database).
    c.sql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'rtdp-collector:{}'",
        c.name
    ));
    wait_until(
        Duration::from_secs(60),
        "the collector counting a reconnect",
        || {
            c.collector()
                .metric("rtdp_collector_reconnects_total")
                .is_some_and(|n| n >= 1.0)
        },
    );
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql(&mixed_step(20));
    let worker_port = c.worker.as_ref().expect("worker").port;
    let collector_port = c.collector().port;
    wait_until(
        Duration::from_secs(60),
        "the worker committing the dead letter",
        || {
            c.worker
                .as_ref()
                .and_then(|w| w.metric("rtdp_dlq_records_count_total"))
                .is_some_and(|n| n >= 1.0)
        },
    );

    // Prometheus, scraping both every second with the real rules.
    let prom = Prometheus::start(&prometheus, c.dir.path(), worker_port, collector_port);
    wait_until(
        Duration::from_secs(60),
        "Prometheus scraping both targets",
        || {
            let Some(t) = prom.api("/api/v1/targets") else {
                return false;
            };
            let up: BTreeSet<String> = t["data"]["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["health"] == "up")
                .filter_map(|t| t["labels"]["job"].as_str().map(str::to_owned))
                .collect();
            up.contains(WORKER_JOB) && up.contains(COLLECTOR_JOB)
        },
    );

    // 1. Every documented metric, from the job the doc puts it under.
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let worker = prom.names(WORKER_JOB);
        let collector = prom.names(COLLECTOR_JOB);
        let missing: Vec<String> = documented
            .iter()
            .filter(|m| !MAY_BE_ABSENT.iter().any(|(n, _)| *n == m.name))
            .flat_map(|m| {
                m.jobs
                    .iter()
                    .filter(|job| {
                        let have = if **job == WORKER_JOB {
                            &worker
                        } else {
                            &collector
                        };
                        !m.sample_names().iter().all(|s| have.contains(s))
                    })
                    .map(move |job| format!("{} ({}) from job {job}", m.name, m.kind))
            })
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        missing.is_empty(),
        "Prometheus did not see these documented metrics (docs/METRICS.md):\n  {}\n\
         worker /metrics:\n{}\ncollector /metrics:\n{}\nPrometheus log:\n{}",
        missing.join("\n  "),
        metrics_text(worker_port),
        metrics_text(collector_port),
        prom.log_tail(20)
    );

    // 2. Every metric a rule or a panel queries is exported by a binary (or is listed with
    //    where else it comes from).
    let exported: BTreeSet<String> = [worker_port, collector_port]
        .into_iter()
        .flat_map(|p| sample_names(&metrics_text(p)))
        .collect();
    let rules = prom.rules_evaluated();
    let dashboard = dashboard_queries();
    assert!(rules.len() >= 16, "only {} rules loaded", rules.len());
    assert!(
        dashboard.len() >= 20,
        "only {} dashboard queries",
        dashboard.len()
    );
    let mut unknown = Vec::new();
    for (what, expr) in rules
        .iter()
        .map(|(n, e)| (format!("rule {n}"), e))
        .chain(dashboard.iter().map(|(t, e)| (format!("panel {t:?}"), e)))
    {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{what}: no metric found in {expr}");
        for n in names {
            if !exported.contains(&n) && !NOT_FROM_RTDP.iter().any(|(x, _)| *x == n) {
                unknown.push(format!("{what}: {n}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "queried metrics that neither binary exports:\n  {}",
        unknown.join("\n  ")
    );

    // 3. Every dashboard query runs and (except the alert table, empty when all is well)
    //    returns data from this chain.
    let deadline = Instant::now() + Duration::from_secs(60);
    let empty = loop {
        let mut empty = Vec::new();
        for (title, expr) in &dashboard {
            let v = prom
                .api(&format!("/api/v1/query?query={}", urlencode(expr)))
                .unwrap_or_else(|| panic!("Prometheus did not answer the query of {title:?}"));
            assert_eq!(v["status"], "success", "panel {title:?}: {expr}: {v}");
            let n = v["data"]["result"].as_array().map_or(0, Vec::len);
            if n == 0 && !expr.contains("ALERTS") {
                empty.push(format!("{title:?}: {expr}"));
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break empty;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        empty.is_empty(),
        "dashboard queries with no data although the chain ran:\n  {}",
        empty.join("\n  ")
    );

    c.stop_all();
}

/// A metric documented in docs/METRICS.md: its name, type column, and the jobs that must
/// export it (from the section it is in).
struct Documented {
    name: String,
    kind: String,
    jobs: Vec<&'static str>,
}

impl Documented {
    /// The sample names Prometheus stores for it (a histogram's three series).
    fn sample_names(&self) -> Vec<String> {
        if self.kind.starts_with("histogram") {
            ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect()
        } else {
            vec![self.name.clone()]
        }
    }
}

/// The metric tables of docs/METRICS.md (`## Metrics` up to the next `## `): rows
/// `| \`name\` | type | …`, the job from the `### …` heading above them.
fn documented_metrics() -> Vec<Documented> {
    let path = repo_root().join("docs/METRICS.md");
    let doc =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    let mut in_metrics = false;
    let mut jobs: Vec<&'static str> = vec![WORKER_JOB, COLLECTOR_JOB];
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            in_metrics = h.trim() == "Metrics";
            continue;
        }
        if !in_metrics {
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            jobs = if h.contains("stream-worker") {
                vec![WORKER_JOB]
            } else if h.contains("cdc-collector") {
                vec![COLLECTOR_JOB]
            } else if h.to_ascii_lowercase().contains("every service") {
                vec![WORKER_JOB, COLLECTOR_JOB]
            } else {
                panic!(
                    "docs/METRICS.md: metric section {h:?} does not say which service \
                     (stream-worker, cdc-collector, every service); the test needs it"
                );
            };
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `name` | type | labels | meaning |" -> ["", "`name`", "type", …]
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let Some(name) = cells[1].strip_prefix('`').and_then(|s| s.strip_suffix('`')) else {
            continue;
        };
        if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            out.push(Documented {
                name: name.to_owned(),
                kind: cells[2].to_owned(),
                jobs: jobs.clone(),
            });
        }
    }
    out
}

/// (panel title, expr) of every query of the Grafana dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo_root().join("deploy/grafana/dashboards/rtdp.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let d: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("?").to_owned(), e.to_owned()));
            }
        }
    }
    out
}

/// The metric (series) names a PromQL expression selects: identifiers that are not
/// functions, aggregations, keywords, label names in `by (…)`/`on (…)`, label matchers,
/// strings, numbers or durations.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN",
    ];
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening delimiter to its closing one, over quoted strings.
    let skip = |mut i: usize, close: u8| -> usize {
        while i < b.len() && b[i] != close {
            if matches!(b[i], b'"' | b'\'' | b'`') {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' => i = skip(i + 1, b'}'),
            b'[' => i = skip(i + 1, b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                // A Grafana variable ($__rate_interval): not a metric.
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let call = j < b.len() && b[j] == b'(';
                if LABEL_LISTS.contains(&word) {
                    if call {
                        i = skip(j + 1, b')');
                    }
                } else if !call && !AGGREGATIONS.contains(&word) && !KEYWORDS.contains(&word) {
                    names.insert(word.to_owned());
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_metric_names_finds_selectors_only() {
    let n = |e: &str| promql_metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        n(
            r#"histogram_quantile(0.95, sum by (le) (rate(rtdp_latency_ms_bucket{job="a", le!="x y"}[5m]))) > 6e4"#
        ),
        ["rtdp_latency_ms_bucket"]
    );
    assert_eq!(
        n("a_total - ignoring (kind) b{kind=\"c\"} unless on (instance, job) c == 1 and d offset 5m"),
        ["a_total", "b", "c", "d"]
    );
    assert_eq!(
        n("(sum(x) or vector(0)) == 0 and count without(job)(y) / z group_left(t) w"),
        ["w", "x", "y", "z"]
    );
    assert_eq!(n("sum(rate(q[$__rate_interval]))"), ["q"]);
    assert_eq!(n(r#"ALERTS{alertstate=~"firing|pending"}"#), ["ALERTS"]);
}

/// Sample names in a Prometheus text exposition (`name{…} value` lines).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn metrics_text(port: u16) -> String {
    match http_get(port, "/metrics") {
        Some((200, body)) => body,
        other => panic!("GET /metrics on port {port}: {other:?}"),
    }
}

/// Percent-encodes a query parameter value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/usr/bin/prometheus`, installed with apt-get (Debian package `prometheus`) when missing;
/// fails the test, saying how to install it, when it cannot be.
fn prometheus_binary() -> PathBuf {
    let bin = PathBuf::from(PROMETHEUS);
    if bin.exists() {
        return bin;
    }
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("env")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "env"]);
            c
        };
        cmd.arg("DEBIAN_FRONTEND=noninteractive")
            .arg("apt-get")
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    let install = [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "prometheus",
    ];
    let mut result = apt(&install);
    if !bin.exists() {
        let _ = apt(&["update", "-qq"]);
        result = apt(&install);
    }
    if bin.exists() {
        return bin;
    }
    let detail = match result {
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    panic!(
        "this test needs a real Prometheus at {PROMETHEUS} (Debian package `prometheus`), \
         and installing it with `sudo apt-get install prometheus` failed: {detail}\n\
         Install it (shell/ensure-tools.sh does) and run the test again."
    );
}

/// A Prometheus server on a free port with a temporary configuration.
struct Prometheus {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, worker_port: u16, collector_port: u16) -> Prometheus {
        // The job names are the ones of the compose configuration the rules match on.
        let compose_cfg = repo_root().join("deploy/prometheus/prometheus.yml");
        let compose =
            std::fs::read_to_string(&compose_cfg).expect("deploy/prometheus/prometheus.yml");
        for job in [WORKER_JOB, COLLECTOR_JOB] {
            assert!(
                compose.contains(&format!("job_name: {job}")),
                "{} has no job {job}",
                compose_cfg.display()
            );
        }
        let rules = repo_root().join("deploy/prometheus/alerts.yml");
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n\
                 \x20 - job_name: {WORKER_JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{worker_port}']\n\
                 \x20 - job_name: {COLLECTOR_JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{collector_port}']\n",
                rules = rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let logf = std::fs::File::create(&log).expect("prometheus log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log"))
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut p = Prometheus {
            child: ChildGuard::new(child),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = p.child.wait_timeout(Duration::ZERO) {
                panic!("Prometheus exited ({st}):\n{}", p.log_tail(30));
            }
            if http_get(port, "/-/ready").is_some_and(|(code, _)| code == 200) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready in 60 s:\n{}",
                p.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET an API path; the JSON answer, or `None` when Prometheus does not answer.
    fn api(&self, path: &str) -> Option<Value> {
        let (_, body) = http_get(self.port, path)?;
        serde_json::from_str(&body).ok()
    }

    /// Every series name Prometheus holds for `job`.
    fn names(&self, job: &str) -> BTreeSet<String> {
        let q = urlencode(&format!("{{job=\"{job}\"}}"));
        self.api(&format!("/api/v1/label/__name__/values?match[]={q}"))
            .and_then(|v| {
                v["data"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// (alert name, query) of every loaded rule, once each has been evaluated without an
    /// error (panics naming any rule whose evaluation failed).
    fn rules_evaluated(&self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.api("/api/v1/rules").expect("GET /api/v1/rules");
            let rules: Vec<&Value> = v["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            for r in &rules {
                assert_ne!(
                    r["health"], "err",
                    "rule {} failed to evaluate: {}",
                    r["name"], r["lastError"]
                );
            }
            if !rules.is_empty() && rules.iter().all(|r| r["health"] == "ok") {
                return rules
                    .iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or("?").to_owned(),
                            r["query"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect();
            }
            if Instant::now() > deadline {
                panic!("rules not all evaluated in 30 s: {v}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
