//! The health/metrics server, bound to a real port and spoken to in plain HTTP/1.1.

use std::net::SocketAddr;
use std::time::Duration;

use rtdp_core::health::{serve, Health};
use rtdp_core::status::{JobState, JobStatus};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Reply {
    code: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", addr.port()))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("reply within 10s")
        .expect("read");
    let text = String::from_utf8(raw).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    Reply {
        code,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

async fn start(health: Health) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, task) = serve(health, 0, async move {
        let _ = rx.await;
    })
    .await
    .expect("bind");
    assert_ne!(addr.port(), 0, "port 0 must become a real port");
    (addr, tx, task)
}

#[tokio::test]
async fn readiness_follows_the_checks() {
    let health = Health::new("stream-worker");
    let (addr, stop, task) = start(health.clone()).await;

    let r = get(addr, "/health/ready").await;
    assert_eq!(r.code, 503, "no check registered yet: {}", r.body);
    assert_eq!(r.json()["status"], "DOWN");

    health.set_ready("kafka", true);
    health.set_ready("output", false);
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.code, 503);
    assert_eq!(r.json()["failing"], json!(["output"]));

    let r = get(addr, "/health").await;
    assert_eq!(r.code, 503);
    let body = r.json();
    assert_eq!(body["status"], "DOWN");
    assert_eq!(body["live"], true);
    assert_eq!(body["ready"], false);
    assert_eq!(body["failing"], json!(["output"]));

    health.set_ready("output", true);
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "UP");
    assert_eq!(r.json()["checks"], json!({"kafka": true, "output": true}));

    let r = get(addr, "/health").await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "UP");
    assert_eq!(r.json()["service"], "stream-worker");
    assert!(
        r.headers.contains("content-type: application/json"),
        "{}",
        r.headers
    );

    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops on shutdown")
        .expect("no panic");
}

#[tokio::test]
async fn liveness() {
    let health = Health::new("svc");
    health.set_ready("x", true);
    let (addr, stop, _task) = start(health.clone()).await;
    let r = get(addr, "/health/live").await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json(), json!({"status": "UP"}));

    health.set_live(false);
    let r = get(addr, "/health/live").await;
    assert_eq!(r.code, 503);
    assert_eq!(r.json(), json!({"status": "DOWN"}));
    let r = get(addr, "/health").await;
    assert_eq!(r.code, 503, "not live means not healthy even when ready");
    let _ = stop.send(());
}

#[tokio::test]
async fn metrics_in_prometheus_text_format() {
    let health = Health::new("cdc-collector");
    let counter = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "rtdp_events_published_total",
            "Events acknowledged by Kafka.",
        ),
        &["table"],
    )
    .expect("counter");
    health
        .registry()
        .register(Box::new(counter.clone()))
        .expect("register");
    counter.with_label_values(&["hr.employees"]).inc_by(42);
    let (addr, stop, _task) = start(health.clone()).await;

    let r = get(addr, "/metrics").await;
    assert_eq!(r.code, 200);
    assert!(
        r.headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    assert!(
        r.body
            .contains("# TYPE rtdp_events_published_total counter"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("rtdp_events_published_total{table=\"hr.employees\"} 42"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("rtdp_ready{service=\"cdc-collector\"} 0"),
        "{}",
        r.body
    );
    if cfg!(target_os = "linux") {
        let rss = r
            .body
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap_or_else(|| panic!("no RSS in {}", r.body));
        let rss: f64 = rss.trim().parse().expect("number");
        assert!(
            rss > 1_000_000.0,
            "a tokio test process uses more than 1 MB: {rss}"
        );
        assert!(r.body.contains("process_open_fds "), "{}", r.body);
    }
    let _ = stop.send(());
}

#[tokio::test]
async fn status_reports_state_and_details() {
    let health = Health::new("stream-worker");
    health.set_ready("kafka", true);
    health.set_state(JobState::Running);
    health.set_status_provider(|| json!({"assignedPartitions": [0, 2], "openFiles": 3}));
    let (addr, stop, _task) = start(health.clone()).await;

    let r = get(addr, "/status").await;
    assert_eq!(r.code, 200);
    let status: JobStatus = serde_json::from_str(&r.body).expect("JobStatus JSON");
    assert_eq!(status.service, "stream-worker");
    assert_eq!(status.state, JobState::Running);
    assert!(status.ready);
    assert_eq!(status.details["assignedPartitions"], json!([0, 2]));
    assert_eq!(status.details["openFiles"], 3);
    assert_eq!(status.details["checks"], json!({"kafka": true}));
    assert_eq!(r.json()["state"], "running");
    assert!(r.json()["startedAt"].is_string());

    health.set_state(JobState::Draining);
    assert_eq!(get(addr, "/status").await.json()["state"], "draining");
    let _ = stop.send(());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let (addr, stop, _task) = start(Health::new("svc")).await;
    assert_eq!(get(addr, "/nope").await.code, 404);
    let _ = stop.send(());
}

#[tokio::test]
async fn a_taken_port_is_an_error_not_a_panic() {
    let (addr, stop, _task) = start(Health::new("a")).await;
    let second = serve(Health::new("b"), addr.port(), std::future::pending()).await;
    assert!(second.is_err(), "binding a port in use must fail");
    let _ = stop.send(());
}
