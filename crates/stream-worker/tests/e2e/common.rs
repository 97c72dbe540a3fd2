//! Harness for end-to-end tests: the real `stream-worker` binary against the real Kafka
//! broker of `rtdp_testkit`, and readers of what it committed.

#![allow(dead_code)]

use rtdp_testkit::{kafka, wait_until, ChildGuard};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
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
        Worker::start_with_args(&[], env, log)
    }

    /// GET a path of the health server: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// Sum of a metric's samples over all labels, from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        rtdp_testkit::metric_sum(&body, name)
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

pub use rtdp_testkit::http_get;

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

// ---------------------------------------------------------------------------------------
// Additions for the format, Debezium, rolling, dead-letter, config and health tests.
// ---------------------------------------------------------------------------------------

impl Worker {
    /// Like [`Worker::start`], with command-line arguments (e.g. `--config FILE`).
    pub fn start_with_args(args: &[&str], env: &[(String, String)], log: &Path) -> Worker {
        let (child, port) = rtdp_testkit::spawn_service(Path::new(WORKER), args, env, log);
        Worker {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    /// Waits until the metric (summed over labels) reaches `at_least`.
    pub fn wait_metric(&self, name: &str, at_least: f64, timeout: Duration) {
        wait_until(timeout, &format!("{name} >= {at_least}"), || {
            self.metric(name).is_some_and(|v| v >= at_least)
        });
    }

    /// One labelled sample of a metric, e.g. `("rtdp_failed_records_count_total",
    /// "stage=\"decode\"")`; `None` when absent.
    pub fn metric_sample(&self, name: &str, labels: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let want = format!("{name}{{{labels}}}");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .find(|(k, _)| *k == want)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// SIGTERM, expect exit code 0 within 60 s, and say so with the log tail otherwise.
    pub fn stop_ok(self) {
        let log = self.log.clone();
        let code = self.stop(Duration::from_secs(60));
        if code != Some(0) {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: String = text
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("worker exit code {code:?} after SIGTERM (expected 0); log tail:\n{tail}");
        }
    }
}

/// The independent reader (`tests/py/read_output.py`) over `files`: one document each.
pub fn read_output(files: &[PathBuf]) -> Vec<serde_json::Value> {
    if files.is_empty() {
        return Vec::new();
    }
    let docs = crate::readback_common::read_with_python(files);
    assert_eq!(docs.len(), files.len(), "one reader document per file");
    docs
}

/// `(topic, partition, first offset, last offset)` of a committed file's name.
pub fn file_offsets(path: &Path) -> (String, i32, i64, i64) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    stream_worker::layout::parse_final_name(&name)
        .unwrap_or_else(|| panic!("not a final file name: {}", path.display()))
}

/// Path of `p` relative to `root`, with `/` separators.
pub fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Default)]
struct DeliveryCount {
    failed: std::sync::atomic::AtomicU64,
}

impl rdkafka::ClientContext for DeliveryCount {}

impl rdkafka::producer::ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A producer kept open across sends: for records with a null value (Kafka tombstones),
/// and for a trickle of records over time.
pub struct Producer {
    inner: rdkafka::producer::BaseProducer<DeliveryCount>,
    topic: String,
}

impl Producer {
    pub fn new(topic: &str) -> Producer {
        let inner = kafka()
            .client_config()
            .set("linger.ms", "0")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "60000")
            .create_with_context(DeliveryCount::default())
            .expect("create producer");
        Producer {
            inner,
            topic: topic.to_string(),
        }
    }

    /// Queues one record (`value: None` is a tombstone).
    pub fn send(&self, key: Option<&[u8]>, value: Option<&[u8]>, partition: Option<i32>) {
        use rdkafka::producer::BaseRecord;
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        loop {
            match self.inner.send(rec) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    rec = r;
                    self.inner.poll(Duration::from_millis(20));
                }
                Err((e, _)) => panic!("produce to {}: {e}", self.topic),
            }
        }
        self.inner.poll(Duration::ZERO);
    }

    /// Waits until everything queued is delivered; panics if any record failed.
    pub fn flush(&self) {
        use rdkafka::producer::Producer as _;
        self.inner
            .flush(Duration::from_secs(60))
            .expect("flush producer");
        let failed = self
            .inner
            .context()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(failed, 0, "{failed} records were not delivered");
    }
}

/// Kafka key and value of generator event `i`.
pub fn order_record(i: u64) -> (Vec<u8>, Vec<u8>) {
    rtdp_testkit::gen::to_record(&rtdp_testkit::gen::order_event(i))
}
