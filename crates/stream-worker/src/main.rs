//! stream-worker binary: load and validate the configuration, start logging and the
//! health/metrics server, run the consumer until SIGTERM/SIGINT. Nothing else.

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rtdp_core::config::{self, PipelineConfig, Service};
use rtdp_core::health::{self, Health};
use rtdp_core::model::JobState;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use stream_worker::consumer::{Worker, WorkerSettings};
use stream_worker::manifest::Store;
use stream_worker::metrics::Metrics;
use stream_worker::roll::RollPolicy;
use stream_worker::sink::{self, SinkOptions};

#[derive(Parser, Debug)]
#[command(
    name = "stream-worker",
    version,
    about = "Kafka change events to exactly-once rolling JSON / CSV / Parquet files"
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
    /// Validate the configuration (file + environment), print every problem, and exit.
    CheckConfig,
}

fn settings(cfg: &PipelineConfig) -> WorkerSettings {
    let o = &cfg.output;
    WorkerSettings {
        topic: cfg.effective_topic(),
        group_id: cfg.effective_group_id(),
        client_properties: cfg.kafka_client_properties(),
        session_timeout_ms: cfg.kafka.session_timeout_ms,
        sink: SinkOptions {
            format: match o.format {
                config::OutputFormat::Json => sink::Format::Json,
                config::OutputFormat::Csv => sink::Format::Csv,
                config::OutputFormat::Parquet => sink::Format::Parquet,
            },
            compression: match o.compression {
                config::Compression::None => sink::Compression::None,
                config::Compression::Gzip => sink::Compression::Gzip,
                config::Compression::Snappy => sink::Compression::Snappy,
                config::Compression::Zstd => sink::Compression::Zstd,
            },
            parquet_row_group_bytes: o.parquet.row_group_bytes as usize,
        },
        roll: RollPolicy {
            size_bytes: o.rolling.size_bytes,
            interval_ms: o.rolling.interval_ms,
            inactivity_ms: o.rolling.inactivity_ms,
            checkpoint_interval_ms: cfg.checkpoint.interval_ms,
        },
        max_record_bytes: o.max_record_bytes as usize,
        shutdown_timeout: std::time::Duration::from_millis(cfg.shutdown.timeout_ms),
        max_retries: o.max_retries,
        checkpoint_timeout: std::time::Duration::from_millis(cfg.checkpoint.timeout_ms),
        max_open_files: stream_worker::consumer::open_files_budget(),
    }
}

/// Creates the output root and proves it writable with a probe file.
fn probe_output(root: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    // Unique per process: several workers (all pid 1 in their containers) may share the
    // output volume and probe at the same moment.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = root.join(format!(".rtdp-write-probe-{}-{nanos}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match config::load_and_validate_from_env(cli.config.as_deref(), Service::Worker) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        println!("Configuration is valid.");
        return ExitCode::SUCCESS;
    }
    rtdp_core::telemetry::init_logging(cfg.logging.level.as_str(), cfg.logging.format);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stream-worker failed");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: PipelineConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("rtdp-http")
        .build()?;
    let health = Health::new("stream-worker");
    health.set_state(JobState::Starting);
    health.set_ready("partitions_assigned", false);
    health.set_ready("output_writable", false);
    health.set_metrics_enabled(cfg.monitoring.metrics.enabled);
    let metrics = Metrics::register(health.registry())?;

    let root = cfg.output.path.clone();
    probe_output(&root)
        .map_err(|e| anyhow::anyhow!("output.path {} is not writable: {e}", root.display()))?;
    health.set_ready("output_writable", true);

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (_addr, server) =
        rt.block_on(health::serve(health.clone(), cfg.monitoring.port, async {
            let _ = rx.await;
        }))?;

    // The drain honours shutdown.timeoutMs between partitions; should one checkpoint hang
    // on a stuck disk, stop anyway (what is not committed is re-consumed on the next start).
    rtdp_core::signals::stop_on_signal(
        &rt,
        stop.clone(),
        std::time::Duration::from_millis(cfg.shutdown.timeout_ms + 5_000),
    );

    let s = settings(&cfg);
    tracing::info!(
        topic = %s.topic,
        group_id = %s.group_id,
        output = %root.display(),
        format = cfg.output.format.as_str(),
        compression = cfg.output.compression.as_str(),
        "stream-worker starting"
    );
    // Every rule of the alert table applies to the worker (docs/METRICS.md#alerts).
    let numbers = metrics.clone();
    rtdp_core::alerts::spawn(
        rt.handle(),
        &health,
        &cfg.monitoring.alerts,
        &rtdp_core::alerts::Alert::ALL,
        move || numbers.alert_snapshot(),
    )?;
    let worker = Worker::new(s, Store::new(root), metrics, health.clone())?;
    health.set_status_provider(worker.status_provider());
    health.set_state(JobState::Running);
    let result = worker.run(stop);
    health.set_state(if result.is_ok() {
        JobState::Stopped
    } else {
        JobState::Failed
    });
    let _ = tx.send(());
    let _ = rt.block_on(server);
    result
}
