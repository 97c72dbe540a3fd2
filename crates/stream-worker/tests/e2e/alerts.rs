//! The built-in alerts end to end: a real worker, a real broker, and a webhook receiver
//! started here. Lag is induced by pausing the worker (SIGSTOP) while events arrive;
//! after SIGCONT it catches up, the rows commit late, and the `latency` alert must be
//! POSTed (fire, then repeats), shown in `/status` and `rtdp_alerts_firing`, and resolved
//! once the window holds no slow row any more. The receiver refuses the first POST (503),
//! so the retry is exercised too, and the token in the webhook URL must not reach the log.

use crate::common::*;
use rtdp_testkit::gen::{order_event_at, to_record};
use rtdp_testkit::{kafka, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);
const THRESHOLD_MS: i64 = 2_000;
const TOKEN: &str = "secret-tok-5f1e";

/// One POST the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    body: Value,
    answered: u16,
    at: Instant,
}

/// A webhook receiver on a free port: answers 503 to the first POST, 200 to the others.
fn receiver() -> (u16, Arc<Mutex<Vec<Post>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = BufReader::new(s.try_clone().expect("clone stream"));
            let mut request_line = String::new();
            if r.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let answered = if n == 0 { 503 } else { 200 };
            let _ = write!(
                s,
                "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let body: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("webhook body is not JSON: {e}"));
            g.lock().unwrap().push(Post {
                path: request_line
                    .split(' ')
                    .nth(1)
                    .unwrap_or_default()
                    .to_string(),
                body,
                answered,
                at: Instant::now(),
            });
        }
    });
    (port, got)
}

/// The latency notifications answered 200, in arrival order.
fn latency_posts(got: &Mutex<Vec<Post>>) -> Vec<Post> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|p| p.answered == 200 && p.body["alert"] == "latency")
        .cloned()
        .collect()
}

fn produce_now(topic: &str, range: std::ops::Range<u64>) {
    let now = now_ms();
    let p = Producer::new(topic);
    for i in range {
        let (key, value) = to_record(&order_event_at("gen", "orders", i, now));
        p.send(Some(&key), Some(&value), Some(0));
    }
    p.flush();
}

#[test]
fn latency_alert_fires_repeats_and_resolves_over_the_webhook() {
    let k = kafka();
    let topic = k.unique_topic("alerts");
    k.create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (port, got) = receiver();

    let mut e = env(&topic, "alerts", &out);
    // Rows commit ~0.3 s after they arrive, so only a paused worker makes them late.
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let hook = format!("http://127.0.0.1:{port}/hooks/rtdp?token={TOKEN}");
    for (k, v) in [
        ("PIPELINE_MONITORING_ALERTS_WEBHOOK", hook.as_str()),
        (
            "PIPELINE_MONITORING_ALERTS_LATENCY_THRESHOLD_MS",
            &THRESHOLD_MS.to_string(),
        ),
        ("PIPELINE_MONITORING_ALERTS_EVALUATION_INTERVAL_MS", "200"),
        ("PIPELINE_MONITORING_ALERTS_WINDOW_MS", "4000"),
        ("PIPELINE_MONITORING_ALERTS_REPEAT_INTERVAL_MS", "1000"),
        ("PIPELINE_MONITORING_ALERTS_KEEP_FIRING_FOR_MS", "500"),
    ] {
        set(&mut e, k, v);
    }
    let mut w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_ready(LONG);
    assert_eq!(
        w.metric_sample("rtdp_alerts_firing", "alert=\"latency\""),
        Some(0.0),
        "every rule has a series from the start"
    );

    // Warm-up: rows committed fast raise nothing.
    produce_now(&topic, 0..100);
    w.wait_metric("rtdp_records_out_total", 100.0, LONG);

    // Watch /status and the gauge from here on, so a short firing period is not missed.
    let stop_watch = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new((None::<Value>, false)));
    let watcher = {
        let (stop, seen, port) = (stop_watch.clone(), seen.clone(), w.port);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some((200, body)) = http_get(port, "/status") {
                    let v: Value = serde_json::from_str(&body).unwrap_or_default();
                    if let Some(a) = v["details"]["alerts"]
                        .as_array()
                        .and_then(|a| a.iter().find(|a| a["alert"] == "latency"))
                    {
                        seen.lock().unwrap().0.get_or_insert(a.clone());
                    }
                }
                if let Some((_, body)) = http_get(port, "/metrics") {
                    if body.contains("rtdp_alerts_firing{alert=\"latency\"} 1") {
                        seen.lock().unwrap().1 = true;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Pause the worker (well within the group's session timeout) while 500 events
    // arrive, and keep it paused until they are older than the threshold.
    w.child.signal(libc::SIGSTOP);
    let paused = Instant::now();
    let produced_at = now_ms();
    produce_now(&topic, 100..600);
    wait_until(
        Duration::from_secs(30),
        "the paused events to be older than the threshold",
        || now_ms() - produced_at > THRESHOLD_MS + 1_000,
    );
    w.child.signal(libc::SIGCONT);
    eprintln!("worker paused for {:?}", paused.elapsed());

    wait_until(LONG, "the latency alert at the webhook", || {
        !latency_posts(&got).is_empty()
    });
    let fire = latency_posts(&got)[0].clone();
    let b = &fire.body;
    assert_eq!(b["event"], "fire", "{b}");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["severity"], "high");
    assert_eq!(b["service"], "stream-worker");
    assert_eq!(b["threshold"], THRESHOLD_MS as f64);
    assert!(
        b["value"].as_f64().unwrap() > THRESHOLD_MS as f64,
        "value above the threshold: {b}"
    );
    assert!(b["summary"].as_str().unwrap().contains("p99"), "{b}");
    assert!(b["startsAt"].is_string() && b["endsAt"].is_null(), "{b}");
    assert_eq!(fire.path, format!("/hooks/rtdp?token={TOKEN}"));
    // It fired once its late rows were committed: the worker had caught up.
    assert!(w.metric("rtdp_records_out_total").unwrap() >= 600.0);

    wait_until(LONG, "the latency alert resolved at the webhook", || {
        latency_posts(&got)
            .iter()
            .any(|p| p.body["event"] == "resolve")
    });
    let posts = latency_posts(&got);
    let events: Vec<&str> = posts
        .iter()
        .map(|p| p.body["event"].as_str().unwrap())
        .collect();
    eprintln!("latency notifications: {events:?}");
    let resolve = posts
        .iter()
        .position(|p| p.body["event"] == "resolve")
        .unwrap();
    assert_eq!(events[0], "fire");
    assert!(
        events[1..resolve].iter().all(|e| *e == "repeat"),
        "fire, repeats, resolve: {events:?}"
    );
    // Held for the 4 s window, repeated every 1 s.
    assert!(
        resolve >= 2,
        "at least one repeat while it held: {events:?}"
    );
    for p in &posts[..=resolve] {
        assert_eq!(
            p.body["startsAt"], fire.body["startsAt"],
            "one alert: {events:?}"
        );
    }
    let r = &posts[resolve].body;
    assert_eq!(r["status"], "resolved");
    assert!(r["endsAt"].is_string(), "{r}");
    assert!(posts[resolve].at >= fire.at);

    // /status showed it while it fired, and shows nothing now.
    stop_watch.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let (status_alert, gauge_seen) = seen.lock().unwrap().clone();
    let a = status_alert.expect("/status listed the latency alert while it fired");
    assert_eq!(a["severity"], "high");
    assert_eq!(a["threshold"], THRESHOLD_MS as f64);
    assert!(a["since"].is_string() && a["message"].is_string(), "{a}");
    assert!(
        gauge_seen,
        "rtdp_alerts_firing{{alert=\"latency\"}} was 1 while it fired"
    );
    wait_until(LONG, "no alert in /status", || {
        w.status().is_some_and(|s| {
            s["details"]["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().all(|a| a["alert"] != "latency"))
        })
    });
    assert_eq!(
        w.metric_sample("rtdp_alerts_firing", "alert=\"latency\""),
        Some(0.0)
    );

    // The first POST was refused and retried; nothing failed or was dropped.
    assert_eq!(got.lock().unwrap()[0].answered, 503);
    let n = |r: &str| {
        w.metric_sample("rtdp_alert_notifications_total", &format!("result=\"{r}\""))
            .unwrap_or(-1.0)
    };
    assert!(n("retried") >= 1.0, "retried {}", n("retried"));
    assert!(n("sent") >= 3.0, "sent {}", n("sent"));
    assert_eq!((n("failed"), n("dropped")), (0.0, 0.0));

    // Caught up: everything committed once, no lag left.
    w.wait_metric("rtdp_records_out_total", 600.0, LONG);
    wait_until(LONG, "consumer lag 0", || {
        w.metric("rtdp_consumer_lag") == Some(0.0)
    });
    let log = w.log_text();
    assert!(
        log.contains("alert firing") && log.contains("alert resolved"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the webhook token reached the log");
    w.stop_ok();
}
