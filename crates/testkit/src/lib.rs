//! Test harness for rtdp: real servers, started by the tests themselves.
//!
//! What this crate owns:
//! - [`kafka()`]: one real Apache Kafka broker (single node, KRaft) per test process,
//!   started lazily on first use through `shell/local-kafka.sh start` in a fresh temp
//!   directory on a free port. Topics are never auto-created; use
//!   [`KafkaBroker::create_topic`] with names from [`KafkaBroker::unique_topic`] so tests
//!   sharing the broker never see each other's data.
//! - [`python()`]: the Python interpreter with `pyarrow` and `duckdb` (independent readers
//!   of the files we write), set up by `shell/ensure-tools.sh`.
//! - Small process and timing helpers: [`free_port`], [`repo_root`], [`wait_until`],
//!   [`ChildGuard`].
//!
//! What it promises:
//! - The broker dies when the test process exits, however it exits (normal exit, panic,
//!   SIGKILL): an external watchdog process polls the test process once a second and
//!   SIGKILLs the broker and removes its directory once the test process is gone.
//! - Every helper that waits does so on a condition with a deadline and panics naming
//!   what it waited for; nothing here sleeps for a fixed time hoping things are ready.
//! - Helpers are synchronous and may be called from inside a tokio runtime (async admin
//!   calls run on a private thread with their own runtime).

pub mod gen;
pub mod postgres;

pub use postgres::{postgres, PgServer};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// How long broker-side operations (metadata, offsets, flush) may take before a helper
/// gives up.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Root of the repository (the workspace directory holding `shell/` and `crates/`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// Polls `f` every 50 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until<F: FnMut() -> bool>(timeout: Duration, what: &str, mut f: F) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Python interpreter with `pyarrow` and `duckdb`: `$RTDP_PYTHON` if set, else
/// `<root>/.tools/venv/bin/python`. Panics (telling to run `shell/ensure-tools.sh`) if
/// neither exists.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RTDP_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".tools/venv/bin/python");
    if venv.exists() {
        return venv;
    }
    panic!(
        "no Python with pyarrow/duckdb: RTDP_PYTHON is not set and {} does not exist; \
         run shell/ensure-tools.sh",
        venv.display()
    );
}

/// `GET path` on 127.0.0.1:`port` with a fresh connection: (status code, body), the body
/// de-chunked. `None` when nothing answers. For the health servers in tests.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_full(port, path).map(|(code, _, body)| (code, body))
}

/// [`http_get`] with the response head too: (status code, head in lower case, body).
pub fn http_get_full(port: u16, path: &str) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((buf.as_str(), ""));
    let head = head.to_ascii_lowercase();
    // The server may answer chunked; bodies here are small, strip the chunk framing.
    if !head.contains("transfer-encoding: chunked") {
        return Some((code, head, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    Some((code, head, out))
}

/// Sum of a metric's samples over all labels in a Prometheus text exposition; `None`
/// when the metric is absent or a line does not parse.
pub fn metric_sum(body: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (key, val) = line.rsplit_once(' ')?;
        if key.split('{').next().unwrap_or(key) == name {
            *sum.get_or_insert(0.0) += val.parse::<f64>().ok()?;
        }
    }
    sum
}

/// Runs the independent reader of our output files (`crates/stream-worker/tests/py/
/// read_output.py`: pyarrow, duckdb, python json) over `files`: one JSON document per
/// file, in order (its docstring has the shape).
pub fn read_output_with_python(files: &[PathBuf]) -> Vec<serde_json::Value> {
    let script = repo_root().join("crates/stream-worker/tests/py/read_output.py");
    let out = Command::new(python())
        .arg(&script)
        .args(files)
        .output()
        .expect("run read_output.py");
    assert!(
        out.status.success(),
        "read_output.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("read_output.py prints UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("read_output.py prints JSON lines"))
        .collect()
}

/// Starts a service binary the way the e2e tests run them: a clean environment (`PATH`,
/// `MONITORING_PORT` = a free port, `NO_COLOR=1`, then `env`), stdout and stderr
/// appended to `log`. Returns the child (SIGKILLed on drop) and its health port.
pub fn spawn_service(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: &Path,
) -> (ChildGuard, u16) {
    let port = free_port();
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MONITORING_PORT", port.to_string())
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup log file"))
        .stderr(logf);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    (ChildGuard::new(child), port)
}

/// A child process that is SIGKILLed and reaped when dropped, so a failing test never
/// leaves it behind.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl From<Child> for ChildGuard {
    fn from(child: Child) -> Self {
        ChildGuard(child)
    }
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// True while the child has not exited (reaps it if it has).
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (no-op if the child already exited and was reaped).
    pub fn sigterm(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGKILL (no-op if the child already exited and was reaped).
    pub fn sigkill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    /// Sends `sig` to the child unless it has already been reaped (its pid could then
    /// belong to another process).
    #[allow(unsafe_code)]
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.is_running() {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
            // un-reaped child, so it cannot have been reused.
            unsafe {
                libc::kill(self.0.id() as libc::pid_t, sig);
            }
        }
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => {}
                Err(e) => panic!("waiting for child {}: {e}", self.0.id()),
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs a future to completion on a private thread with its own tokio runtime, so this
/// works whether or not the caller is inside a runtime.
fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build tokio runtime")
                .block_on(fut)
        })
        .join()
        .expect("admin thread panicked")
    })
}

/// A record read back from Kafka by [`KafkaBroker::read_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// The test process's Kafka broker; see [`kafka()`].
pub struct KafkaBroker {
    bootstrap: String,
    dir: PathBuf,
    java_pid: u32,
    admin: AdminClient<DefaultClientContext>,
    meta: BaseConsumer,
}

impl std::fmt::Debug for KafkaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBroker")
            .field("bootstrap", &self.bootstrap)
            .field("dir", &self.dir)
            .field("java_pid", &self.java_pid)
            .finish()
    }
}

static BROKER: OnceLock<Result<KafkaBroker, String>> = OnceLock::new();

/// The broker of this test process, started on first call (a few seconds), shared by
/// all tests of the process. Panics if it cannot be started (with the broker log tail).
pub fn kafka() -> &'static KafkaBroker {
    match BROKER.get_or_init(|| start_broker().map_err(|e| format!("{e:#}"))) {
        Ok(b) => b,
        Err(e) => panic!("could not start the test Kafka broker: {e}"),
    }
}

fn start_broker() -> anyhow::Result<KafkaBroker> {
    let root = repo_root();
    let script = root.join("shell/local-kafka.sh");
    let mut last_err = None;
    for _attempt in 0..3 {
        let dir = tempfile::Builder::new()
            .prefix("rtdp-kafka-")
            .tempdir()
            .context("create temp dir for Kafka")?
            .keep();
        match start_in(&script, &dir) {
            Ok(b) => return Ok(b),
            Err(e) => {
                // The watchdog of this attempt is still armed; it only fires when the
                // test process exits. Clean up eagerly.
                let _ = Command::new("bash")
                    .arg(&script)
                    .arg("stop")
                    .env("RTDP_KAFKA_DIR", &dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let _ = std::fs::remove_dir_all(&dir);
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow!("no attempt made")))
}

fn start_in(script: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<KafkaBroker> {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let child = Command::new("bash")
        .arg(script)
        .arg("start")
        .env("RTDP_KAFKA_DIR", dir)
        .env("KAFKA_PORT", port.to_string())
        // Own process group, inherited by the broker: the watchdog can kill a start that
        // is still in progress, and a Ctrl-C at the terminal leaves the cleanup to it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", script.display()))?;
    spawn_watchdog(child.id(), dir)?;
    let out = child
        .wait_with_output()
        .context("wait for local-kafka.sh")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "local-kafka.sh start failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
    }
    let bootstrap = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("bootstrap="))
        .next_back()
        .ok_or_else(|| anyhow!("no bootstrap= line from local-kafka.sh:\n{stdout}\n{stderr}"))?
        .trim()
        .to_string();
    let java_pid = std::fs::read_to_string(dir.join("kafka.pid"))
        .context("read kafka.pid")?
        .trim()
        .parse()
        .context("parse kafka.pid")?;
    let admin: AdminClient<DefaultClientContext> = base_config(&bootstrap)
        .create()
        .context("create Kafka admin client")?;
    let meta: BaseConsumer = base_config(&bootstrap)
        .set("group.id", "rtdp-testkit-meta")
        .create()
        .context("create Kafka metadata client")?;
    // The script waited for "Kafka Server started"; make sure a client really gets
    // metadata before handing the broker out.
    let deadline = Instant::now() + OP_TIMEOUT;
    loop {
        match meta.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) if !md.brokers().is_empty() => break,
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => {
                bail!("broker at {bootstrap} does not answer metadata requests: {e}")
            }
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            bail!("broker at {bootstrap} reports no brokers in metadata");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "rtdp-testkit: Kafka broker at {bootstrap} (pid {java_pid}, dir {})",
        dir.display()
    );
    Ok(KafkaBroker {
        bootstrap,
        dir: dir.to_path_buf(),
        java_pid,
        admin,
        meta,
    })
}

/// Starts a detached process that waits for this test process to exit, then SIGKILLs
/// the broker and removes its directory. The start script runs in its own process group
/// (pgid = its pid) which the broker inherits, so a start still in progress is killed
/// as a whole; the group is only signalled while a member is provably ours.
fn spawn_watchdog(script_pid: u32, dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    const WATCHDOG: &str = r#"
while kill -0 "$TESTPID" 2>/dev/null; do sleep 1; done
is_cmd() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q "$2"; }
if is_cmd "$SCRIPTPID" "$SCRIPTPAT"; then
  kill -9 -- "-$SCRIPTPID" 2>/dev/null
fi
pid=$(cat "$KDIR/kafka.pid" 2>/dev/null)
if [ -n "$pid" ] && is_cmd "$pid" "$JAVAPAT"; then
  kill -9 "$pid" 2>/dev/null
fi
if [ -n "$pid" ]; then
  while is_cmd "$pid" "$JAVAPAT"; do sleep 0.1; done
fi
rm -rf "$KDIR"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .env("TESTPID", std::process::id().to_string())
        .env("SCRIPTPID", script_pid.to_string())
        .env("KDIR", dir)
        // Patterns passed by environment so the watchdog's own command line does not
        // match `pgrep -f kafka.Kafka`.
        .env("SCRIPTPAT", "local-kafka.sh")
        .env("JAVAPAT", "kafka.Kafka")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C aimed at the test must not kill the watchdog.
        .process_group(0)
        .spawn()
        .context("spawn Kafka watchdog")?;
    // The watchdog is deliberately never waited on: once the test process exits it is
    // re-parented to init, which reaps it.
    Ok(())
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("log_level", "3");
    c
}

#[derive(Default)]
struct CountingContext {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, msg)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(format!(
                    "{e} (topic {}, partition {})",
                    msg.topic(),
                    msg.partition()
                ));
            }
        }
    }
}

impl KafkaBroker {
    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The broker's state directory (server.properties, logs/server.log, data).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Pid of the broker's JVM.
    pub fn pid(&self) -> u32 {
        self.java_pid
    }

    /// A client config with `bootstrap.servers` set, to build producers and consumers.
    pub fn client_config(&self) -> ClientConfig {
        base_config(&self.bootstrap)
    }

    /// A topic name no other test (in this or another process) uses:
    /// `<prefix>-<pid>-<millis>-<counter>`. Does not create the topic.
    pub fn unique_topic(&self, prefix: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("{prefix}-{}-{millis}-{n}", std::process::id())
    }

    /// Creates `name` with `partitions` partitions (replication factor 1) and waits until
    /// metadata shows every partition with a leader. Panics on failure, including when
    /// the topic already exists.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.try_create_topic(name, partitions, &[])
            .unwrap_or_else(|e| panic!("create topic {name}: {e:#}"));
    }

    /// Like [`create_topic`](Self::create_topic) with topic configs
    /// (e.g. `("cleanup.policy", "compact")`), returning errors instead of panicking.
    pub fn try_create_topic(
        &self,
        name: &str,
        partitions: i32,
        config: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(OP_TIMEOUT));
        let results = block_on(self.admin.create_topics([&topic], &opts))
            .with_context(|| format!("CreateTopics {name}"))?;
        for r in results {
            r.map_err(|(t, code)| anyhow!("CreateTopics {t}: {code}"))?;
        }
        let deadline = Instant::now() + OP_TIMEOUT;
        loop {
            if self.partitions_with_leaders(name) == Some(partitions as usize) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "topic {name}: not all {partitions} partitions got a leader in {OP_TIMEOUT:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Deletes a topic (errors are returned, e.g. when it does not exist).
    pub fn delete_topic(&self, name: &str) -> anyhow::Result<()> {
        let opts = AdminOptions::new().operation_timeout(Some(OP_TIMEOUT));
        let results = block_on(self.admin.delete_topics(&[name], &opts))
            .with_context(|| format!("DeleteTopics {name}"))?;
        for r in results {
            r.map_err(|(t, code)| anyhow!("DeleteTopics {t}: {code}"))?;
        }
        Ok(())
    }

    /// Number of partitions of `topic` that have a leader, `None` if metadata does not
    /// (yet) know the topic.
    fn partitions_with_leaders(&self, topic: &str) -> Option<usize> {
        let md = self
            .meta
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        if t.error().is_some() {
            return None;
        }
        Some(
            t.partitions()
                .iter()
                .filter(|p| p.leader() >= 0 && p.error().is_none())
                .count(),
        )
    }

    /// Number of partitions of an existing topic; panics if the topic is unknown.
    pub fn partition_count(&self, topic: &str) -> i32 {
        let md = self
            .meta
            .fetch_metadata(Some(topic), OP_TIMEOUT)
            .unwrap_or_else(|e| panic!("metadata for {topic}: {e}"));
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .unwrap_or_else(|| panic!("topic {topic} not in metadata"));
        if let Some(e) = t.error() {
            panic!("metadata for {topic}: {e:?}");
        }
        t.partitions().len() as i32
    }

    /// Produces `(key, value, partition)` records (partition `None`: the default
    /// partitioner decides) with an idempotent `acks=all` producer, flushes, and fails if
    /// any record was not delivered.
    pub fn produce<I>(&self, topic: &str, records: I) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>, Option<i32>)>,
    {
        let producer: BaseProducer<CountingContext> = self
            .client_config()
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "60000")
            .create_with_context(CountingContext::default())
            .context("create producer")?;
        let mut sent: u64 = 0;
        for (key, value, partition) in records {
            let mut rec: BaseRecord<'_, Vec<u8>, Vec<u8>> = BaseRecord::to(topic).payload(&value);
            if let Some(k) = key.as_ref() {
                rec = rec.key(k);
            }
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            let deadline = Instant::now() + OP_TIMEOUT;
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        if Instant::now() >= deadline {
                            bail!("producer queue stayed full for {OP_TIMEOUT:?}");
                        }
                        rec = r;
                        producer.poll(Duration::from_millis(20));
                    }
                    Err((e, _)) => bail!("produce to {topic} (record #{sent}): {e}"),
                }
            }
            sent += 1;
            // Serve delivery callbacks now and then so their queue stays small.
            if sent & 1023 == 0 {
                producer.poll(Duration::ZERO);
            }
        }
        producer
            .flush(Duration::from_secs(60))
            .with_context(|| format!("flush {sent} records to {topic}"))?;
        let ctx = producer.context();
        let failed = ctx.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = ctx
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            bail!("{failed} of {sent} records to {topic} failed; first error: {first}");
        }
        Ok(())
    }

    /// High watermark of every partition of `topic` (index = partition). Note that with
    /// transactions the high watermark also counts commit/abort markers.
    pub fn end_offsets(&self, topic: &str) -> Vec<i64> {
        (0..self.partition_count(topic))
            .map(|p| {
                // Right after a topic is created the client's metadata may still name no
                // (or an old) leader: NotLeaderForPartition and the like are transient, so
                // ask again until OP_TIMEOUT.
                let deadline = Instant::now() + OP_TIMEOUT;
                loop {
                    match self.meta.fetch_watermarks(topic, p, OP_TIMEOUT) {
                        Ok((_, high)) => break high,
                        // Poll the condition "leader known" like wait_until does.
                        Err(_) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        Err(e) => panic!("watermarks of {topic}/{p}: {e}"),
                    }
                }
            })
            .collect()
    }

    /// Offsets committed by consumer group `group` for each partition of `topic`
    /// (index = partition); `-1` where the group has committed nothing.
    pub fn committed_offsets(&self, group: &str, topic: &str) -> Vec<i64> {
        let n = self.partition_count(topic);
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("create consumer for committed offsets");
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            tpl.add_partition(topic, p);
        }
        let got = consumer
            .committed_offsets(tpl, OP_TIMEOUT)
            .unwrap_or_else(|e| panic!("committed offsets of group {group} on {topic}: {e}"));
        (0..n)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect()
    }

    /// Reads every record currently visible in `topic` with `isolation.level =
    /// read_committed` (records of open or aborted transactions are not returned),
    /// ordered by partition, then offset.
    pub fn read_all(&self, topic: &str) -> anyhow::Result<Vec<ConsumedRecord>> {
        self.read_all_with(topic, "read_committed")
    }

    /// Like [`read_all`](Self::read_all) with `read_uncommitted`.
    pub fn read_all_uncommitted(&self, topic: &str) -> anyhow::Result<Vec<ConsumedRecord>> {
        self.read_all_with(topic, "read_uncommitted")
    }

    fn read_all_with(&self, topic: &str, isolation: &str) -> anyhow::Result<Vec<ConsumedRecord>> {
        let n = self.partition_count(topic);
        let consumer: BaseConsumer = self
            .client_config()
            .set(
                "group.id",
                format!("rtdp-testkit-reader-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", isolation)
            .set("fetch.wait.max.ms", "50")
            .create()
            .context("create reader")?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut at_eof = vec![false; n as usize];
        let mut out = Vec::new();
        let deadline = Instant::now() + OP_TIMEOUT;
        while at_eof.iter().any(|e| !e) {
            if Instant::now() >= deadline {
                bail!("reading {topic}: partitions {at_eof:?} did not reach the end in {OP_TIMEOUT:?}");
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    let m: OwnedMessage = m.detach();
                    out.push(ConsumedRecord {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(e) = at_eof.get_mut(p as usize) {
                        *e = true;
                    }
                }
                Some(Err(e)) => bail!("reading {topic}: {e}"),
            }
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        Ok(out)
    }
}
