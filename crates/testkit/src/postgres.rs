//! A real PostgreSQL 15 server for tests (logical decoding included).
//!
//! What this module owns:
//! - [`postgres()`]: one PostgreSQL 15 server per test process, started lazily on first
//!   use: `initdb` into a fresh temp directory, then the `postgres` binary itself (not
//!   `pg_ctl`, so the pid is ours) on a free port of 127.0.0.1 with `wal_level=logical`,
//!   64 replication slots and WAL senders (every test chain leaves a slot, and the
//!   e2e suite runs dozens on one server), and durability switched off (`fsync`,
//!   `synchronous_commit`, `full_page_writes`) for speed. Authentication is `trust` for
//!   the superuser `postgres`. With `synchronous_commit=off` a commit reaches logical
//!   decoding (SQL functions and walsenders alike) only once the WAL writer has flushed
//!   it, up to `wal_writer_delay` (200 ms) later: tests poll for changes.
//! - [`PgServer::start`]: a dedicated server with the same set-up, for tests that stop or
//!   restart it (the shared one is used by tests running in parallel); it is shut down
//!   and its directory removed on drop.
//! - [`PgServer::psql`], [`PgServer::create_database`], [`PgServer::unique_name`]: run
//!   SQL through the real `psql` client and give each test its own database.
//!
//! Binaries: `/usr/lib/postgresql/15/bin` (Debian `postgresql-15`, installed by
//! `shell/ensure-tools.sh`), else `pg_config --bindir`, else `PATH`. When the test runs
//! as root (initdb and postgres refuse to), the server runs as the `postgres` system
//! user (created if missing) and the temp directory is handed to that user.
//!
//! What it promises:
//! - The server dies when the test process exits, however it exits (normal exit, panic,
//!   SIGKILL): an external watchdog polls the test process once a second, then shuts
//!   the current postmaster down (SIGQUIT, SIGKILL after 5 s), and removes the
//!   directory. It finds the postmaster through a pid file this module rewrites on
//!   every start, and signals it only while its command line names our data directory.
//! - Waiting is on conditions with deadlines (`pg_isready`), never fixed sleeps; a
//!   failed start reports the tail of the server log.
//! - Everything is synchronous and may be called from inside a tokio runtime.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use crate::{free_port, ChildGuard};

/// How long a start (initdb excluded) or a shutdown may take.
const START_TIMEOUT: Duration = Duration::from_secs(60);

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The PostgreSQL server of this test process, started on first call (about a second),
/// shared by all tests of the process. Panics if it cannot be started (with the server
/// log tail). Do not stop or restart it: tests run in parallel against it; use
/// [`PgServer::start`] for a server of your own.
pub fn postgres() -> &'static PgServer {
    match SERVER.get_or_init(|| PgServer::start().map_err(|e| format!("{e:#}"))) {
        Ok(s) => s,
        Err(e) => panic!("could not start the test PostgreSQL server: {e}"),
    }
}

/// A PostgreSQL 15 server in a temp directory; see [`postgres()`] and
/// [`PgServer::start`].
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    /// Temp root: socket directory, `server.log`, `server.pid`, `data/`.
    dir: PathBuf,
    data: PathBuf,
    bindir: Option<PathBuf>,
    /// `(uid, gid)` to run initdb/postgres as, when we are root.
    run_as: Option<(u32, u32)>,
    /// Extra `-c name=value` settings, applied after the defaults (so they win).
    settings: Vec<String>,
    child: Mutex<Option<ChildGuard>>,
}

impl PgServer {
    /// Starts a dedicated server (initdb + start, retried on a new port up to 3 times).
    /// It is shut down (immediate mode) and its directory removed when dropped.
    pub fn start() -> anyhow::Result<PgServer> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with extra server settings (`"wal_level=replica"`), which
    /// win over the defaults above.
    pub fn start_with(settings: &[&str]) -> anyhow::Result<PgServer> {
        let bindir = find_bindir();
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let mut last_err = None;
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("rtdp-pg-")
                .tempdir()
                .context("create temp dir for PostgreSQL")?
                .keep();
            let server = PgServer {
                port: free_port(),
                data: dir.join("data"),
                dir,
                bindir: bindir.clone(),
                run_as,
                settings: settings.iter().map(|s| s.to_string()).collect(),
                child: Mutex::new(None),
            };
            // On failure the drop stops whatever started and removes the directory.
            match server.init_and_start() {
                Ok(()) => return Ok(server),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no attempt made")))
    }

    fn init_and_start(&self) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to the postgres user", self.dir.display()))?;
        }
        spawn_watchdog(&self.dir, &self.data)?;
        let t0 = Instant::now();
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output()
            .context("run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let t_init = t0.elapsed();
        self.start_server()?;
        eprintln!(
            "rtdp-testkit: PostgreSQL at 127.0.0.1:{} (pid {}, dir {}; initdb {:?}, start {:?})",
            self.port,
            self.pid().unwrap_or(0),
            self.dir.display(),
            t_init,
            t0.elapsed() - t_init
        );
        Ok(())
    }

    /// A command for one of the server binaries, run as the postgres user when we are
    /// root, in its own process group (a Ctrl-C at the terminal is left to the
    /// watchdog), with the PG* variables that could redirect it removed.
    fn command(&self, tool: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(self.tool(tool));
        c.current_dir(&self.dir).process_group(0);
        clear_pg_env(&mut c);
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        c
    }

    fn tool(&self, name: &str) -> PathBuf {
        match &self.bindir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    fn start_server(&self) -> anyhow::Result<()> {
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            bail!("PostgreSQL is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("open server.log")?;
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "wal_level=logical",
                "-c",
                "max_replication_slots=64",
                "-c",
                "max_wal_senders=64",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("dup server.log")?)
            .stderr(log)
            .spawn()
            .context("spawn postgres")?;
        let mut child = ChildGuard::new(child);
        // The watchdog reads this to find the current postmaster.
        write_atomic(
            &self.dir.join("server.pid"),
            format!("{}\n", child.pid()).as_bytes(),
        )?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !child.is_running() {
                bail!(
                    "postgres exited during start-up; server.log:\n{}",
                    self.log_tail()
                );
            }
            if self.is_ready() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres on port {} not ready after {START_TIMEOUT:?}; server.log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *slot = Some(child);
        Ok(())
    }

    /// True when `pg_isready` reports the server accepting connections.
    fn is_ready(&self) -> bool {
        let mut c = Command::new(self.tool("pg_isready"));
        clear_pg_env(&mut c);
        c.args([
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    }

    /// Port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `postgresql://postgres@127.0.0.1:PORT/<db>` (trust authentication, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The temp directory: `data/` (PGDATA), `server.log`, the Unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pid of the running postmaster, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let c = slot.as_mut()?;
        c.is_running().then(|| c.pid())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The last 40 lines of the server log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A database (or other identifier) name no other test uses:
    /// `<prefix>_<pid>_<counter>`, lower case, at most 63 bytes. Does not create it.
    pub fn unique_name(&self, prefix: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("_{}_{n}", std::process::id());
        let prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(63 - suffix.len())
            .collect();
        format!("{prefix}{suffix}")
    }

    /// Creates database `name` (fails if it exists; pick names with
    /// [`unique_name`](Self::unique_name)).
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        self.psql("postgres", &format!("CREATE DATABASE {quoted}"))
            .map(|_| ())
    }

    /// Runs `sql` (one or more `;`-separated statements, each in its own transaction
    /// unless the script says `BEGIN`) with `psql -X -q -At -v ON_ERROR_STOP=1` as
    /// `postgres` on database `db`; returns stdout (rows as `a|b`, one per line). The
    /// error carries psql's stderr.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let mut c = Command::new(self.tool("psql"));
        clear_pg_env(&mut c);
        let mut child = c
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-U", "postgres", "-f", "-"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn psql")?;
        {
            let mut stdin = child.stdin.take().context("psql stdin")?;
            // A write error (psql exited early) shows up in its exit status and stderr.
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child.wait_with_output().context("wait for psql")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "psql on {db} failed ({}): {}\nSQL: {sql}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(stdout)
    }

    /// Fast shutdown (SIGINT: open sessions are terminated, a shutdown checkpoint is
    /// written) and waits for the postmaster to exit. No-op when already stopped.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut child) = slot.take() else {
            return Ok(());
        };
        child.signal(libc::SIGINT);
        if child.wait_timeout(START_TIMEOUT).is_none() {
            // Dropping the guard SIGKILLs it.
            bail!(
                "postgres (pid {}) did not shut down within {START_TIMEOUT:?}; killed",
                child.pid()
            );
        }
        Ok(())
    }

    /// Starts a stopped server again on the same port and data directory and waits
    /// until it accepts connections.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.start_server()
    }

    /// [`stop`](Self::stop) then [`resume`](Self::resume): committed data survives;
    /// replication slots survive too (confirmed positions as of the shutdown
    /// checkpoint). Every open connection is cut.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.stop()?;
        self.resume()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let slot = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = slot.take() {
            // Immediate shutdown: the postmaster takes its backends down with it.
            child.signal(libc::SIGQUIT);
            // Dropping the guard SIGKILLs it if still running.
            let _ = child.wait_timeout(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/usr/lib/postgresql/15/bin` if it has `postgres`, else `pg_config --bindir` if that
/// has it, else `None` (use `PATH`).
fn find_bindir() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian.join("postgres").is_file() {
        return Some(debian);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && dir.join("postgres").is_file()).then_some(dir)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `(uid, gid)` of the `postgres` system user, creating it if missing.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, "postgres"]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/usr/sbin/nologin", "postgres"])
            .output()
            .context("run useradd postgres")?;
        // Another test process may have created it meanwhile; re-check below.
        if !out.status.success() && id("-u").is_none() {
            bail!(
                "running as root and could not create the postgres user: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    match (id("-u"), id("-g")) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => bail!("cannot read uid/gid of the postgres user"),
    }
}

fn clear_pg_env(c: &mut Command) {
    for v in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSERVICE",
        "PGOPTIONS",
        "PGDATA",
        "PGSSLMODE",
    ] {
        c.env_remove(v);
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

/// Starts a detached process that waits for this test process to exit, then shuts down
/// the postmaster named in `<dir>/server.pid` (SIGQUIT, then SIGKILL after 5 s; only
/// while its command line names `data`, so a reused pid is never signalled) and
/// removes `dir`.
fn spawn_watchdog(dir: &Path, data: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    const WATCHDOG: &str = r#"
while kill -0 "$TESTPID" 2>/dev/null; do sleep 1; done
is_ours() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$PGDIR_DATA"; }
pid=$(cat "$PGDIR/server.pid" 2>/dev/null)
if [ -n "$pid" ] && is_ours "$pid"; then
  kill -QUIT "$pid" 2>/dev/null
  n=0
  while is_ours "$pid" && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  if is_ours "$pid"; then kill -9 "$pid" 2>/dev/null; fi
  while is_ours "$pid"; do sleep 0.1; done
fi
rm -rf "$PGDIR"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .env("TESTPID", std::process::id().to_string())
        .env("PGDIR", dir)
        // Passed by environment so the watchdog's own command line never matches.
        .env("PGDIR_DATA", data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C aimed at the test must not kill the watchdog.
        .process_group(0)
        .spawn()
        .context("spawn PostgreSQL watchdog")?;
    // Never waited on: once the test process exits it is re-parented and reaped by init.
    Ok(())
}
