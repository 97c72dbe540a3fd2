//! Harness for end-to-end tests: the real `stream-worker` binary against the real Kafka
//! broker of `rtdp_testkit`, and readers of what it committed.

#![allow(dead_code)]

use rtdp_testkit::{free_port, kafka, wait_until, ChildGuard};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const WORKER: &str = env!("CARGO_BIN_EXE_stream-worker");

/// A running worker process (SIGKILLed on drop).
pub struct Worker {
    pub child: ChildGuard,
    pub port: u16,
    pub log: PathBuf,
}

/// Environment for a worker reading `topic` in `group` into `out`.
pub fn env(topic: &str, group: &str, out: &Path) -> Vec<(String, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS".into(), kafka().bootstrap().into()),
        ("KAFKA_TOPIC".into(), topic.into()),
        ("KAFKA_GROUP_ID".into(), group.into()),
        ("OUTPUT_PATH".into(), out.display().to_string()),
        ("OUTPUT_FORMAT".into(), "json".into()),
        ("LOG_LEVEL".into(), "info".into()),
        ("PIPELINE_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
    ]
}

pub fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(key, _)| key != k);
    env.push((k.into(), v.into()));
}

impl Worker {
    pub fn start(env: &[(String, String)], log: &Path) -> Worker {
        let port = free_port();
        let logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = Command::new(WORKER);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MONITORING_PORT", port.to_string())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn stream-worker");
        Worker {
            child: ChildGuard::new(child),
            port,
            log: log.to_path_buf(),
        }
    }

    /// GET a path of the health server: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// Sum of a metric's samples over all labels, from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let mut sum = None;
        for line in body.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (key, val) = line.rsplit_once(' ')?;
            let metric = key.split('{').next().unwrap_or(key);
            if metric == name {
                *sum.get_or_insert(0.0) += val.parse::<f64>().ok()?;
            }
        }
        sum
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, body) = self.get("/status")?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// Partitions this worker owns, per `/status`.
    pub fn partitions(&self) -> Vec<i64> {
        self.status()
            .and_then(|s| {
                s.pointer("/details/partitions")?
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p["partition"].as_i64()).collect())
            })
            .unwrap_or_default()
    }

    pub fn wait_ready(&self, timeout: Duration) {
        wait_until(timeout, "worker ready", || {
            matches!(self.get("/health/ready"), Some((200, _)))
        });
    }

    /// SIGTERM and wait for the exit; returns the exit code.
    pub fn stop(mut self, timeout: Duration) -> Option<i32> {
        self.child.sigterm();
        let st = self.child.wait_timeout(timeout);
        st.and_then(|s| s.code())
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // The server may answer chunked; bodies here are small, strip chunk framing.
    let body = if buf
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Some((code, body))
}

fn dechunk(b: &str) -> String {
    let mut out = String::new();
    let mut rest = b;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Produces events `range` of the generator (table `orders`) keyed by primary key.
pub fn produce_orders(topic: &str, range: std::ops::Range<u64>) {
    kafka()
        .produce(
            topic,
            range.map(|i| {
                let (k, v) = rtdp_testkit::gen::to_record(&rtdp_testkit::gen::order_event(i));
                (Some(k), v, None)
            }),
        )
        .expect("produce");
}

/// Every committed data file under `out` (not `_tmp`, `_state`, `_dlq`).
pub fn data_files(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(out, &mut files);
    files.retain(|p| {
        let rel = p.strip_prefix(out).unwrap_or(p);
        !rel.components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('_'))
    });
    files.sort();
    files
}

/// Every committed dead-letter file.
pub fn dlq_files(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&out.join("_dlq"), &mut files);
    files.sort();
    files
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Lines of a committed JSON-lines file (plain, .gz or .zst). Panics if the file is not
/// complete: a truncated compressed stream, a last line without newline, or a line
/// that is not JSON — a partial file under a final name.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.to_string_lossy();
    let text = if name.ends_with(".gz") {
        let mut s = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut s)
            .unwrap_or_else(|e| panic!("partial gzip {}: {e}", path.display()));
        s
    } else if name.ends_with(".zst") {
        zstd::decode_all(&raw[..])
            .unwrap_or_else(|e| panic!("partial zstd {}: {e}", path.display()))
    } else {
        raw
    };
    assert!(
        text.is_empty() || text.ends_with(b"\n"),
        "partial file (no final newline): {}",
        path.display()
    );
    BufReader::new(&text[..])
        .lines()
        .map(|l| {
            let l = l.expect("utf8 line");
            serde_json::from_str(&l)
                .unwrap_or_else(|e| panic!("partial or bad line in {}: {e}", path.display()))
        })
        .collect()
}

/// Occurrences of each `_event_id` in the committed JSON data files.
pub fn committed_event_ids(out: &Path) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for f in data_files(out) {
        for row in json_lines(&f) {
            let id = row["_event_id"].as_str().expect("_event_id").to_string();
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

/// Asserts every event `0..n` of the generator is committed exactly once, and nothing else.
pub fn assert_exactly_once(out: &Path, n: u64) {
    let ids = committed_event_ids(out);
    let doubled: Vec<_> = ids.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(
        doubled.is_empty(),
        "events committed more than once: {doubled:?}"
    );
    let mut missing = 0;
    for i in 0..n {
        if !ids.contains_key(&rtdp_testkit::gen::order_event(i).event_id) {
            missing += 1;
        }
    }
    assert_eq!(missing, 0, "{missing} of {n} events missing");
    assert_eq!(ids.len() as u64, n, "unexpected extra events");
}
