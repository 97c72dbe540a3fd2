//! The worker's health server as a probe, Prometheus and an operator see it: readiness
//! follows partition assignment, liveness is up from the start, `/metrics` is Prometheus
//! text with every worker metric, `/status` carries latency quantiles and partitions.

use crate::common::*;
use rtdp_testkit::gen::{order_event_at, to_record};
use rtdp_testkit::{kafka, wait_until};
use std::collections::BTreeSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

/// Every metric name constant of `src/metrics.rs` (read from the source, so a metric
/// added there is checked here without editing this test).
fn worker_metric_names() -> Vec<String> {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs"),
    )
    .unwrap();
    let names: Vec<String> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter(|l| l.contains(": &str = \""))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(names.len() >= 16, "metric constants found: {names:?}");
    names
}

/// The metric families of a Prometheus text exposition (names of `# TYPE` lines), after
/// checking every sample line parses as `name[{labels}] value`.
fn families(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let ty = it.next().unwrap_or("");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                "bad TYPE line: {line}"
            );
            out.insert(name);
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line: {line}"));
            let name = key.split('{').next().unwrap();
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in: {line}"
            );
            assert!(
                value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                "bad sample value in: {line}"
            );
        }
    }
    out
}

#[test]
fn readiness_waits_for_partitions_and_liveness_does_not() {
    let k = kafka();
    // The topic does not exist yet: the worker runs but owns no partition.
    let topic = k.unique_topic("health-ready");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "health-ready", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let w = Worker::start(&e, &dir.path().join("w.log"));
    wait_until(LONG, "/health/live answers 200", || {
        matches!(w.get("/health/live"), Some((200, _)))
    });
    wait_until(LONG, "state running", || {
        w.status()
            .is_some_and(|s| s["state"] == "running" && s["details"]["partitions"].is_array())
    });
    let (code, body) = w.get("/health/ready").unwrap();
    assert_eq!(code, 503, "not ready without partitions: {body}");
    assert!(
        body.contains("partitions_assigned"),
        "names the failing check: {body}"
    );
    assert_eq!(w.get("/health").map(|r| r.0), Some(503));
    assert_eq!(w.status().unwrap()["ready"], false);
    assert_eq!(w.partitions(), Vec::<i64>::new());

    k.create_topic(&topic, 2);
    let created = std::time::Instant::now();
    wait_until(
        LONG,
        "ready once the new topic's partitions are assigned",
        || matches!(w.get("/health/ready"), Some((200, _))),
    );
    eprintln!("ready {:?} after the topic was created", created.elapsed());
    assert_eq!(w.get("/health/live").map(|r| r.0), Some(200));
    assert_eq!(w.get("/health").map(|r| r.0), Some(200));
    assert_eq!(w.partitions(), vec![0, 1]);
    assert_eq!(w.metric("rtdp_assigned_partitions"), Some(2.0));
    // And it works.
    produce_orders(&topic, 0..100);
    w.wait_metric("rtdp_records_out_total", 100.0, LONG);
    w.stop_ok();
    assert_exactly_once(&out, 100);
}

#[test]
fn metrics_and_status_show_the_work() {
    let k = kafka();
    let topic = k.unique_topic("health-metrics");
    k.create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "health-metrics", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_ready(LONG);

    // Before any record: liveness, the exposition, no latency yet.
    let (code, head, body) = rtdp_testkit::http_get_full(w.port, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let before = families(&body);
    let status = w.status().unwrap();
    assert_eq!(status["details"]["latency"]["p50"], serde_json::Value::Null);

    // Work of every kind: events committed with a source time of now, a dead letter, a
    // tombstone (so labelled metrics have a sample).
    let now = now_ms();
    let p = Producer::new(&topic);
    for i in 0..500u64 {
        let (key, value) = to_record(&order_event_at("gen", "orders", i, now));
        p.send(Some(&key), Some(&value), Some(0));
    }
    p.send(Some(b"bad"), Some(b"not json"), Some(0));
    p.send(Some(b"gone"), None, Some(0));
    p.flush();
    w.wait_metric("rtdp_records_out_total", 500.0, LONG);
    w.wait_metric("rtdp_dlq_records_count_total", 1.0, LONG);

    let names = worker_metric_names();
    let mut last = BTreeSet::new();
    // The lag gauge is set from librdkafka statistics, every 5 s.
    wait_until(
        Duration::from_secs(30),
        "every worker metric in /metrics",
        || {
            last = w
                .get("/metrics")
                .map(|(_, b)| families(&b))
                .unwrap_or_default();
            names.iter().all(|n| last.contains(n))
        },
    );
    for n in [
        rtdp_core::health::RTDP_READY,
        rtdp_core::health::RTDP_LIVE,
        rtdp_core::health::RTDP_UPTIME_SECONDS,
        rtdp_core::health::PROCESS_RESIDENT_MEMORY_BYTES,
        rtdp_core::health::PROCESS_OPEN_FDS,
    ] {
        assert!(last.contains(n), "{n} missing from /metrics");
    }
    let absent_before: Vec<&String> = names.iter().filter(|n| !before.contains(*n)).collect();
    eprintln!("metric families absent before the first sample: {absent_before:?}");

    assert_eq!(w.metric("rtdp_records_in_total"), Some(502.0));
    assert_eq!(w.metric("rtdp_failed_records_count_total"), Some(1.0));
    assert_eq!(w.metric("rtdp_records_skipped_total"), Some(1.0));
    wait_until(Duration::from_secs(30), "consumer lag 0", || {
        w.metric("rtdp_consumer_lag") == Some(0.0)
    });
    assert!(w.metric("rtdp_latency_ms_count") >= Some(500.0));
    assert!(w.metric("rtdp_checkpoint_count_total") >= Some(1.0));
    assert!(w.metric("rtdp_bytes_out_total") > Some(0.0));

    let status = w.status().unwrap();
    assert_eq!(status["service"], "stream-worker");
    assert_eq!(status["state"], "running");
    assert_eq!(status["ready"], true);
    let d = &status["details"];
    let q = |k: &str| {
        d["latency"][k]
            .as_f64()
            .unwrap_or_else(|| panic!("details.latency.{k} is not a number: {d}"))
    };
    let (p50, p95, p99) = (q("p50"), q("p95"), q("p99"));
    assert!(
        0.0 <= p50 && p50 <= p95 && p95 <= p99 && p99 < 120_000.0,
        "latency quantiles {p50} {p95} {p99}"
    );
    let parts = d["partitions"].as_array().expect("details.partitions");
    assert_eq!(parts.len(), 1, "{d}");
    assert_eq!(parts[0]["partition"], 0);
    assert_eq!(parts[0]["nextOffset"], 502);
    assert_eq!(d["records"]["out"], 500);
    assert_eq!(d["records"]["deadLetters"], 1);
    assert_eq!(d["topic"], topic.as_str());
    w.stop_ok();
}

#[test]
fn without_a_broker_the_worker_is_live_not_ready_and_stops_cleanly() {
    // A port nobody listens on: the broker never answers.
    let dead = rtdp_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env("cdc-events", "health-nobroker", &out);
    set(
        &mut e,
        "KAFKA_BOOTSTRAP_SERVERS",
        &format!("127.0.0.1:{dead}"),
    );
    let mut w = Worker::start(&e, &dir.path().join("w.log"));
    wait_until(LONG, "/health/live answers 200", || {
        matches!(w.get("/health/live"), Some((200, _)))
    });
    wait_until(LONG, "state running", || {
        w.status().is_some_and(|s| s["state"] == "running")
    });
    let (code, body) = w.get("/health/ready").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(w.child.is_running());
    let started = std::time::Instant::now();
    w.stop_ok();
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
}
