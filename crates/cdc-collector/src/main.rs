//! cdc-collector binary. Its change sources (PostgreSQL, Oracle/OceanBase, MySQL) arrive
//! with their own issues; until then it validates its configuration (`check-config`)
//! and refuses to run with a clear message instead of pretending to capture anything.

use clap::{Parser, Subcommand};
use rtdp_core::config::{self, Service};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "cdc-collector",
    version,
    about = "Captures database changes into Kafka (sources not implemented yet)"
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match config::load_and_validate_from_env(cli.config.as_deref(), Service::Collector) {
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
    eprintln!(
        "cdc-collector: no change source is implemented yet for database.type={} \
         (the PostgreSQL, Oracle and MySQL sources come with their own issues). \
         Use a Debezium connector meanwhile: stream-worker reads its topics.",
        cfg.database.kind.as_str()
    );
    ExitCode::from(3)
}
