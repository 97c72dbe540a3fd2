//! cdc-collector binary: load and validate the configuration, start logging and the
//! health/metrics server, run the capture loop until SIGTERM/SIGINT. `verify` compares
//! the source tables with the files the workers wrote. Nothing else lives here.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdc_collector::metrics::Metrics;
use cdc_collector::publish::PublishSettings;
use cdc_collector::run::{Runner, StopReason};
use cdc_collector::source::oracle::session::{OracleSettings, OracleSource};
use cdc_collector::source::pg::{PgSettings, PostgresSource};
use cdc_collector::source::ChangeSource;
use clap::{Parser, Subcommand};
use rtdp_core::config::{
    self, DatabaseType, OffsetStore, PipelineConfig, ProducerMode, Service, SnapshotMode,
};
use rtdp_core::health::{self, Health};
use rtdp_core::model::JobState;
use rtdp_core::status::CollectorMetrics;

#[derive(Parser, Debug)]
#[command(
    name = "cdc-collector",
    version,
    about = "Captures committed database changes into Kafka, exactly once"
)]
struct Cli {
    /// YAML configuration file (environment variables override it).
    #[arg(long, short = 'c', env = "RTDP_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Capture changes (the default).
    Run,
    /// Validate the configuration (file + environment), print every problem, and exit.
    CheckConfig,
    /// Oracle tools for operators (need no configuration).
    #[command(subcommand)]
    Oracle(OracleCommand),
    /// Compare the captured source tables with the state rebuilt from the output files;
    /// print a report; exit 0 only when they match.
    Verify {
        /// Output root the workers write to (default: output.path).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Also print the keys of mismatching rows (they are row values).
        #[arg(long)]
        show_keys: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OracleCommand {
    /// Read LogMiner SQL_REDO statements, one per line, on stdin; print one JSON object
    /// per line (`{"op","schema","table","before","after"}`, or `{"error"}` for a
    /// statement that cannot be read, and go on).
    ParseRedo,
    /// Run recorded V$LOGMNR_CONTENTS rows (JSON lines, keys = the view's column names in
    /// lower case) through the source's transaction buffer and event building; print the
    /// change events in publish order as JSON lines (docs/ORACLE.md, "Support tools").
    Replay(ReplayArgs),
}

/// `cdc-collector oracle replay` arguments.
#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The recorded rows (`-` for stdin).
    file: PathBuf,
    /// Table columns: `{"OWNER.TABLE": {"columns": [{"name","data_type","precision",
    /// "scale","nullable"}], "key": ["ID"]}}` (ALL_TAB_COLUMNS). Without it, tables
    /// are read as text columns with an unknown key.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Also print `{"checkpoint": …}` at each `{"window_end": SCN}` line and at the end.
    #[arg(long)]
    checkpoints: bool,
    /// Resume after this checkpoint (JSON, as printed with --checkpoints or stored by
    /// the collector).
    #[arg(long)]
    from: Option<String>,
    /// Collector name used in event ids.
    #[arg(long, default_value = "replay")]
    collector: String,
    /// Changes held for open transactions before it stops (oracle.maxBufferedChanges).
    #[arg(long, default_value_t = 500_000)]
    max_buffered: usize,
    /// Capture LOB columns (oracle.lobEnabled).
    #[arg(long)]
    lob: bool,
}

/// `oracle replay`: exit 0 when every change was read, 1 when some printed an error,
/// 2 when the input or the options cannot be read.
/// The `oracle` tools (they need no configuration).
fn oracle(cmd: OracleCommand) -> ExitCode {
    match cmd {
        OracleCommand::ParseRedo => parse_redo(),
        OracleCommand::Replay(args) => replay(args),
    }
}

fn replay(args: ReplayArgs) -> ExitCode {
    use cdc_collector::source::oracle::logminer::{SchemaEntry, StaticCatalog};
    use cdc_collector::source::oracle::replay::{replay, ReplayOptions};
    let ReplayArgs {
        file,
        schema,
        checkpoints,
        from,
        collector,
        max_buffered,
        lob,
    } = args;
    let fail = |m: String| {
        eprintln!("cdc-collector oracle replay: {m}");
        ExitCode::from(2)
    };
    let mut catalog = match schema {
        None => StaticCatalog {
            infer_unknown: true,
            ..Default::default()
        },
        Some(p) => {
            let parsed = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
                .and_then(|t| {
                    serde_json::from_str::<std::collections::BTreeMap<String, SchemaEntry>>(&t)
                        .map_err(|e| format!("{}: not a schema file: {e}", p.display()))
                })
                .and_then(|m| StaticCatalog::from_schema(&m, lob).map_err(|e| e.to_string()));
            match parsed {
                Ok(c) => c,
                Err(e) => return fail(e),
            }
        }
    };
    let from = match from.map(|f| serde_json::from_str(&f)) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return fail(format!("--from is not a checkpoint: {e}")),
    };
    let opts = ReplayOptions {
        collector,
        checkpoints,
        from,
        max_buffered,
        lob_enabled: lob,
    };
    let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&file) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return fail(format!("cannot open {}: {e}", file.display())),
        }
    };
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    match replay(input, out, &mut catalog, &opts) {
        Ok(s) => {
            eprintln!(
                "replayed {} rows: {} transactions committed, {} events, {} errors",
                s.rows, s.transactions, s.events, s.problems
            );
            if s.problems > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// `oracle parse-redo`: stdin → stdout, line by line; needs no configuration.
fn parse_redo() -> ExitCode {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let Ok(line) = line else {
            eprintln!("cdc-collector oracle parse-redo: stdin is not UTF-8 text");
            return ExitCode::from(2);
        };
        if line.trim().is_empty() {
            continue;
        }
        let v = match cdc_collector::source::oracle::redo::parse(&line) {
            Ok(r) => r.to_json(),
            Err(e) => serde_json::json!({ "error": e }),
        };
        if writeln!(out, "{v}").is_err() {
            return ExitCode::SUCCESS; // the reader went away (e.g. `| head`)
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn owned(v: Vec<&str>) -> Vec<String> {
    v.into_iter().map(str::to_owned).collect()
}

fn pg_settings(cfg: &PipelineConfig) -> PgSettings {
    let db = &cfg.database;
    PgSettings {
        host: db.host.clone(),
        port: db.port,
        user: db.username.clone(),
        password: db.password.clone(),
        dbname: if db.name.trim().is_empty() {
            db.username.clone()
        } else {
            db.name.clone()
        },
        default_schema: db.schema.trim().to_owned(),
        include: owned(db.table_list()),
        exclude: owned(db.exclude_table_list()),
        slot: cfg.collector.effective_slot_name(),
        publication: cfg.collector.effective_publication_name(),
        collector: cfg.collector.name.clone(),
        snapshot: cfg.collector.snapshot_mode == SnapshotMode::Initial,
        chunk_rows: cfg.collector.snapshot_chunk_rows,
        max_batch_changes: cfg.collector.max_batch_changes,
    }
}

fn publish_settings(cfg: &PipelineConfig) -> PublishSettings {
    let c = &cfg.collector;
    PublishSettings {
        client_properties: cfg.kafka_client_properties(),
        topic: cfg.effective_topic(),
        offsets_topic: c.offsets_topic.clone(),
        collector: c.name.clone(),
        transactional: c.producer_mode == ProducerMode::Transactional,
        offset_file: (c.offset_store == OffsetStore::File).then(|| c.offset_file.clone()),
        partitions: c.topic_partitions,
        replication_factor: c.topic_replication_factor,
        transaction_timeout_ms: c.transaction_timeout_ms,
        create_topics: !cfg.datahub.enabled,
    }
}

fn oracle_settings(cfg: &PipelineConfig) -> OracleSettings {
    let db = &cfg.database;
    let o = &cfg.oracle;
    OracleSettings {
        host: db.host.clone(),
        port: db.port,
        service: db.name.clone(),
        user: db.username.clone(),
        password: db.password.clone(),
        pdb: Some(db.pdb.trim().to_owned()).filter(|p| !p.is_empty()),
        default_schema: db.schema.trim().to_owned(),
        include: owned(db.table_list()),
        exclude: owned(db.exclude_table_list()),
        collector: cfg.collector.name.clone(),
        snapshot: cfg.collector.snapshot_mode == SnapshotMode::Initial,
        chunk_rows: cfg.collector.snapshot_chunk_rows,
        window_scns: o.window_scns,
        fetch_size: o.fetch_size,
        max_buffered: usize::try_from(o.max_buffered_changes).unwrap_or(usize::MAX),
        lob_enabled: o.lob_enabled,
    }
}

/// Why OceanBase cannot be captured (yet): its Oracle mode has no open-source change log.
const OCEANBASE: &str =
    "database.type=oceanbase: OceanBase's Oracle mode has no open-source change-log \
     interface (LogProxy/oblogproxy serves Oracle mode only in the enterprise edition, \
     and Flink CDC has deprecated its OceanBase connector built on it), so rtdp cannot \
     capture it; OceanBase's MySQL mode will be read through the MySQL source and \
     OceanBase's binlog service (obbinlog) once that source exists (docs/ORACLE.md, \
     \"OceanBase\")";

/// The source for `database.type`: one exhaustive match, so a new database type is a
/// compile error here until it is given a source (never quietly another database's).
fn build_source(cfg: &PipelineConfig) -> Result<Box<dyn ChangeSource>, String> {
    match cfg.database.kind {
        DatabaseType::PostgreSql => Ok(Box::new(PostgresSource::new(pg_settings(cfg)))),
        DatabaseType::Oracle => Ok(Box::new(OracleSource::new(oracle_settings(cfg)))),
        DatabaseType::OceanBase => Err(OCEANBASE.into()),
        DatabaseType::MySql => Err(
            "database.type=mysql: the MySQL / MariaDB binlog source is not implemented yet \
             (PostgreSQL and Oracle are); it comes with its own issue"
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The Oracle tools run before (and without) the configuration.
    let command = match cli.command {
        Some(Command::Oracle(cmd)) => return oracle(cmd),
        other => other.unwrap_or(Command::Run),
    };
    let cfg = match config::load_and_validate_from_env(cli.config.as_deref(), Service::Collector) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Oracle(cmd) => oracle(cmd),
        Command::CheckConfig => {
            println!("Configuration is valid.");
            ExitCode::SUCCESS
        }
        Command::Verify { output, show_keys } => {
            rtdp_core::telemetry::init_logging("warn", cfg.logging.format);
            let root = output.unwrap_or_else(|| cfg.output.path.clone());
            let result = match cfg.database.kind {
                DatabaseType::PostgreSql => {
                    cdc_collector::source::pg::verify::run(&pg_settings(&cfg), &root)
                }
                DatabaseType::Oracle => {
                    eprintln!(
                        "cdc-collector verify: reads PostgreSQL sources only so far; for Oracle \
                         compare counts with the queries in docs/ORACLE.md"
                    );
                    return ExitCode::from(2);
                }
                DatabaseType::OceanBase | DatabaseType::MySql => {
                    let msg = build_source(&cfg).err().unwrap_or_default();
                    eprintln!("cdc-collector verify: {msg}");
                    return ExitCode::from(2);
                }
            };
            match result {
                Ok(report) => {
                    print!("{}", report.render(show_keys));
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("cdc-collector verify: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run => {
            rtdp_core::telemetry::init_logging(cfg.logging.level.as_str(), cfg.logging.format);
            let source = match build_source(&cfg) {
                Ok(s) => s,
                Err(msg) => {
                    tracing::error!("{msg}");
                    eprintln!("cdc-collector: {msg}");
                    return ExitCode::from(2);
                }
            };
            match run(cfg, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(RunError::Stop(StopReason::Setup(m))) => {
                    tracing::error!(error = %m, "cdc-collector cannot start");
                    eprintln!("cdc-collector: {m}");
                    ExitCode::from(2)
                }
                Err(RunError::Stop(StopReason::Fenced(m))) => {
                    tracing::error!(error = %m, "cdc-collector stopped");
                    ExitCode::from(3)
                }
                Err(RunError::Other(e)) => {
                    tracing::error!(error = format!("{e:#}"), "cdc-collector failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

enum RunError {
    Stop(StopReason),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Other(e)
    }
}

fn run(cfg: PipelineConfig, source: Box<dyn ChangeSource>) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("rtdp-http")
        .build()
        .map_err(anyhow::Error::from)?;
    let health = Health::new(&cfg.collector.name);
    health.set_state(JobState::Starting);
    health.set_ready("database", false);
    health.set_ready("kafka", false);
    health.set_metrics_enabled(cfg.monitoring.metrics.enabled);
    let metrics = Metrics::register(health.registry()).map_err(anyhow::Error::from)?;
    cdc_collector::run::start_alerts(rt.handle(), &health, &cfg, metrics.clone())?;
    let status = Arc::new(Mutex::new(CollectorMetrics::new(
        cfg.collector.name.clone(),
    )));
    {
        let status = status.clone();
        health.set_status_provider(move || {
            status
                .lock()
                .ok()
                .and_then(|s| serde_json::to_value(&*s).ok())
                .unwrap_or_default()
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (_addr, server) = rt
        .block_on(health::serve(health.clone(), cfg.monitoring.port, async {
            let _ = rx.await;
        }))
        .map_err(|e| RunError::Other(anyhow::anyhow!("starting the health server: {e}")))?;
    // The batch in flight finishes (or Kafka aborts its transaction and it is published
    // again on the next start); do not wait for ever.
    rtdp_core::signals::stop_on_signal(
        &rt,
        stop.clone(),
        Duration::from_millis(cfg.shutdown.timeout_ms + 5_000),
    );
    let p = publish_settings(&cfg);
    tracing::info!(
        collector = %cfg.collector.name,
        database = %format!("{}:{}/{}", cfg.database.host, cfg.database.port, cfg.database.name),
        topic = %p.topic,
        producer_mode = cfg.collector.producer_mode.as_str(),
        offset_store = cfg.collector.offset_store.as_str(),
        "cdc-collector starting"
    );
    let runner = Runner {
        source,
        publish: p,
        metrics,
        health: health.clone(),
        status,
        poll_interval: Duration::from_millis(cfg.collector.poll_interval_ms),
        stop,
    };
    let result = runner.run();
    health.set_state(if result.is_ok() {
        JobState::Stopped
    } else {
        JobState::Failed
    });
    let _ = tx.send(());
    let _ = rt.block_on(server);
    result.map_err(RunError::Stop)
}
