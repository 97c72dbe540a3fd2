//! Harness for the collector's end-to-end tests: a real PostgreSQL 15 (per test a
//! database of its own, or a dedicated server), the real Kafka broker of
//! `rtdp_testkit`, the real `cdc-collector` and `stream-worker` binaries, and `verify`
//! (the library function the `verify` subcommand runs) as the judge.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cdc_collector::source::pg::{verify, PgSettings};
use cdc_collector::verify::Report;
use rtdp_core::secret::Secret;
use rtdp_testkit::postgres::PgServer;
use rtdp_testkit::{kafka, wait_until, ChildGuard};

pub const COLLECTOR: &str = env!("CARGO_BIN_EXE_cdc-collector");

/// The stream-worker binary next to ours (built on first use when missing, e.g. under
/// `cargo test -p cdc-collector`).
pub fn worker_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let ours = PathBuf::from(COLLECTOR);
        let bin = ours.with_file_name("stream-worker");
        if !bin.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "stream-worker", "--bin", "stream-worker"])
                .current_dir(rtdp_testkit::repo_root())
                .status()
                .expect("cargo build stream-worker");
            assert!(status.success(), "building stream-worker failed");
        }
        bin
    })
    .clone()
}

/// One pipeline under test: a database, a topic, an output folder, and the processes.
pub struct Chain {
    pub pg: &'static PgServer,
    pub db: String,
    pub name: String,
    pub topic: String,
    pub dir: tempfile::TempDir,
    pub collector_env: Vec<(String, String)>,
    pub worker_env: Vec<(String, String)>,
    pub collector: Option<Proc>,
    pub worker: Option<Proc>,
    runs: AtomicU64,
}

/// A running process with its health port and log file (SIGKILLed on drop).
pub struct Proc {
    pub child: ChildGuard,
    pub port: u16,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(bin: &Path, args: &[&str], env: &[(String, String)], log: &Path) -> Proc {
        let (child, port) = rtdp_testkit::spawn_service(bin, args, env, log);
        Proc {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        rtdp_testkit::metric_sum(&body, name)
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let (_, body) = self.get("/status")?;
        serde_json::from_str(&body).ok()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

pub use rtdp_testkit::http_get;

impl Chain {
    /// A new database on the shared server, a topic and an output folder.
    pub fn new(prefix: &str) -> Chain {
        Chain::on(rtdp_testkit::postgres::postgres(), prefix)
    }

    /// The same on a given server (a dedicated one for restart tests; leaked so the
    /// chain can hold a `'static` reference).
    pub fn on(pg: &'static PgServer, prefix: &str) -> Chain {
        let db = pg.unique_name(prefix);
        pg.create_database(&db).expect("create database");
        let topic = kafka().unique_topic(prefix);
        let name = format!("c-{topic}");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let collector_env = vec![
            ("DATABASE_HOST".into(), pg.host().into()),
            ("DATABASE_PORT".into(), pg.port().to_string()),
            ("DATABASE_USERNAME".into(), "postgres".into()),
            // trust authentication: any password is accepted; the collector requires one.
            ("DATABASE_PASSWORD".into(), "unused-with-trust".into()),
            ("DATABASE_NAME".into(), db.clone()),
            ("DATABASE_TABLES".into(), "*".into()),
            ("KAFKA_BOOTSTRAP_SERVERS".into(), kafka().bootstrap().into()),
            ("KAFKA_TOPIC".into(), topic.clone()),
            ("COLLECTOR_NAME".into(), name.clone()),
            ("COLLECTOR_OFFSETS_TOPIC".into(), format!("{topic}-offsets")),
            ("COLLECTOR_POLL_INTERVAL".into(), "50".into()),
            ("LOG_LEVEL".into(), "info".into()),
        ];
        let worker_env = vec![
            ("KAFKA_BOOTSTRAP_SERVERS".into(), kafka().bootstrap().into()),
            ("KAFKA_TOPIC".into(), topic.clone()),
            ("KAFKA_GROUP_ID".into(), format!("w-{topic}")),
            ("OUTPUT_PATH".into(), out.display().to_string()),
            ("OUTPUT_FORMAT".into(), "json".into()),
            ("OUTPUT_ROLLING_INACTIVITY".into(), "300".into()),
            ("CHECKPOINT_INTERVAL".into(), "1000".into()),
            ("PIPELINE_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("LOG_LEVEL".into(), "info".into()),
        ];
        Chain {
            pg,
            db,
            name,
            topic,
            dir,
            collector_env,
            worker_env,
            collector: None,
            worker: None,
            runs: AtomicU64::new(0),
        }
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn sql(&self, sql: &str) -> String {
        self.pg
            .psql(&self.db, sql)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn set_collector(&mut self, k: &str, v: &str) {
        self.collector_env.retain(|(key, _)| key != k);
        self.collector_env.push((k.into(), v.into()));
    }

    pub fn set_worker(&mut self, k: &str, v: &str) {
        self.worker_env.retain(|(key, _)| key != k);
        self.worker_env.push((k.into(), v.into()));
    }

    pub fn start_collector(&mut self) {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.path().join(format!("collector-{n}.log"));
        self.collector = Some(Proc::spawn(
            Path::new(COLLECTOR),
            &[],
            &self.collector_env,
            &log,
        ));
    }

    pub fn start_worker(&mut self) {
        let log = self.dir.path().join("worker.log");
        self.worker = Some(Proc::spawn(&worker_bin(), &[], &self.worker_env, &log));
    }

    /// The collector's slot (and default publication) name, as the collector derives it
    /// from `collector.name`.
    pub fn slot(&self) -> String {
        let folded: String = self
            .name
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() {
                    ch.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("rtdp_{folded}")
    }

    /// Starts the collector and waits until it exits by itself: its exit code and log.
    pub fn run_to_exit(&mut self) -> (Option<i32>, String) {
        self.start_collector();
        let p = self.collector.as_mut().expect("collector");
        let st = p
            .child
            .wait_timeout(Duration::from_secs(90))
            .unwrap_or_else(|| panic!("collector did not stop:\n{}", p.log_tail(30)));
        (
            st.code(),
            std::fs::read_to_string(&p.log).unwrap_or_default(),
        )
    }

    pub fn collector(&self) -> &Proc {
        self.collector.as_ref().expect("collector running")
    }

    /// Waits until the collector reports ready (connected to both sides).
    pub fn wait_collector_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.collector.as_mut().expect("collector");
            if let Some(st) = c.child.wait_timeout(Duration::ZERO) {
                panic!("collector exited ({st}):\n{}", c.log_tail(40));
            }
            if c.get("/health/ready").is_some_and(|(code, _)| code == 200) {
                return;
            }
            if Instant::now() > deadline {
                panic!("collector not ready in {timeout:?}:\n{}", c.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn settings(&self) -> PgSettings {
        PgSettings {
            host: self.pg.host().into(),
            port: self.pg.port(),
            user: "postgres".into(),
            password: Secret::new("unused-with-trust".to_string()),
            dbname: self.db.clone(),
            default_schema: "public".into(),
            include: vec!["*".into()],
            exclude: vec![],
            slot: String::new(),
            publication: String::new(),
            collector: self.name.clone(),
            snapshot: true,
            chunk_rows: 1000,
            max_batch_changes: 1000,
        }
    }

    pub fn verify(&self) -> Report {
        verify::run(&self.settings(), &self.out()).unwrap_or_else(|e| panic!("verify: {e:#}"))
    }

    /// Waits until `verify` matches, or panics with its last report and the logs.
    pub fn wait_verified(&self, timeout: Duration) -> Report {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.verify();
            if r.ok() && !r.tables.is_empty() {
                return r;
            }
            if Instant::now() > deadline {
                panic!(
                    "verify did not match within {timeout:?}:\n{}\ncollector log:\n{}\nworker log:\n{}",
                    r.render(true),
                    self.collector.as_ref().map(|c| c.log_tail(40)).unwrap_or_default(),
                    self.worker.as_ref().map(|c| c.log_tail(20)).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every event in the topic (read_committed): no position and no event id twice.
    /// Returns the number of events.
    pub fn assert_topic_exactly_once(&self) -> usize {
        let records = kafka().read_all(&self.topic).expect("read topic");
        let mut positions = HashSet::new();
        let mut ids = HashSet::new();
        for r in &records {
            let v: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().unwrap_or_default()).expect("event JSON");
            let s = &v["source"];
            let pos = (
                s["commit_lsn"].as_u64().expect("commit_lsn"),
                s["snapshot"].as_bool().unwrap_or(false),
                s["index"].as_u64().expect("index"),
            );
            assert!(positions.insert(pos), "position {pos:?} twice in the topic");
            assert!(
                ids.insert(v["eventId"].as_str().unwrap_or_default().to_owned()),
                "event id twice in the topic"
            );
        }
        records.len()
    }

    /// SIGTERM to the collector; it must exit 0 within 30 s.
    pub fn stop_collector_ok(&mut self) {
        let p = self.collector.as_mut().expect("collector");
        p.child.sigterm();
        let st = p.child.wait_timeout(Duration::from_secs(30));
        assert_eq!(
            st.and_then(|s| s.code()),
            Some(0),
            "collector did not exit 0 on SIGTERM:\n{}",
            p.log_tail(30)
        );
    }

    pub fn stop_all(&mut self) {
        for p in [self.collector.as_mut(), self.worker.as_mut()]
            .into_iter()
            .flatten()
        {
            p.child.sigterm();
            let _ = p.child.wait_timeout(Duration::from_secs(30));
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!(
                "test directory kept for inspection: {}",
                dir.keep().display()
            );
        }
    }
}

/// A background writer: runs `step(i)` (SQL) against the database in a loop until
/// stopped; tolerates errors when `tolerate` (the server restarts under it).
pub struct Load {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Load {
    /// At most `per_second` transactions a second (paced, so the collector under test
    /// is not simply outrun by a writer with no limit).
    pub fn start(
        pg: &'static PgServer,
        db: &str,
        tolerate: bool,
        step: impl Fn(u64) -> String + Send + 'static,
    ) -> Load {
        Load::paced(pg, db, tolerate, 300, step)
    }

    pub fn paced(
        pg: &'static PgServer,
        db: &str,
        tolerate: bool,
        per_second: u64,
        step: impl Fn(u64) -> String + Send + 'static,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let url = format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5",
            pg.port()
        );
        let handle = std::thread::spawn(move || {
            let mut done = 0u64;
            let mut client: Option<postgres::Client> = None;
            let mut i = 0u64;
            let t0 = Instant::now();
            while !s.load(Ordering::SeqCst) {
                let due = t0 + Duration::from_micros(i * 1_000_000 / per_second.max(1));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if client.is_none() {
                    match postgres::Client::connect(&url, postgres::NoTls) {
                        Ok(c) => client = Some(c),
                        Err(e) if tolerate => {
                            let _ = e;
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                        Err(e) => panic!("load: connect: {e}"),
                    }
                }
                let sql = step(i);
                match client.as_mut().map(|c| c.batch_execute(&sql)) {
                    Some(Ok(())) => {
                        done += 1;
                        i += 1;
                    }
                    // The step's COMMIT reached the server but its answer was lost with
                    // the connection (a restart): the retry of the same step finds its
                    // rows, so it was committed. Without this the writer retried that
                    // step for ever and the load stopped.
                    Some(Err(e))
                        if tolerate
                            && e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                    {
                        done += 1;
                        i += 1;
                    }
                    Some(Err(e)) if tolerate => {
                        let _ = e;
                        client = None;
                    }
                    Some(Err(e)) => panic!("load step {i}: {e}"),
                    None => {}
                }
            }
            done
        });
        Load {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the writer; returns the number of transactions it committed.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().expect("load thread"))
            .unwrap_or(0)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One transaction of the standard mixed load on table `mix(id int primary key, v text,
/// n numeric(12,2))`: inserts, an update, a primary-key change and a delete.
pub fn mixed_step(i: u64) -> String {
    let base = i * 10;
    format!(
        "BEGIN;\
         INSERT INTO mix SELECT g, 'v' || g, g * 1.25 FROM generate_series({a}, {b}) g;\
         UPDATE mix SET v = v || '*', n = n + 1 WHERE id = {u};\
         UPDATE mix SET id = id + 1000000000 WHERE id = {k};\
         DELETE FROM mix WHERE id = {d};\
         COMMIT;",
        a = base,
        b = base + 9,
        u = base + 1,
        k = base + 2,
        d = base + 3
    )
}

pub const MIX_TABLE: &str =
    "CREATE TABLE mix (id bigint PRIMARY KEY, v text, n numeric(12,2)); ALTER TABLE mix REPLICA IDENTITY FULL;";

/// Waits until `table` has at least `n` rows (a condition, not a fixed delay).
pub fn wait_rows(c: &Chain, table: &str, n: u64) {
    wait_until(
        Duration::from_secs(120),
        &format!("{table} has {n} rows"),
        || {
            c.pg.psql(&c.db, &format!("SELECT count(*) FROM {table}"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|have| have >= n)
        },
    );
}
