//! Logging set-up for rtdp binaries.
//!
//! Owns the process-wide `tracing` subscriber. Promises: logs go to stderr (stdout stays
//! free for command output), as human-readable text or one JSON object per line;
//! `RUST_LOG`, when set and valid, wins over the configured level; calling
//! [`init_logging`] twice (or after a test installed a subscriber) is harmless.
//!
//! What is logged is the callers' business, with one house rule: structured fields,
//! never row values, never secrets.

use tracing_subscriber::EnvFilter;

pub use crate::config::LogFormat;

/// Installs the global subscriber with `level` (`trace` … `error`, or any `EnvFilter`
/// directive such as `info,rdkafka=warn`) unless `RUST_LOG` is set. An invalid level
/// falls back to `info`. Returns false when a global subscriber was already installed.
pub fn init_logging(level: &str, format: LogFormat) -> bool {
    let filter = filter_for(std::env::var("RUST_LOG").ok().as_deref(), level);
    // Colours only on a terminal (not in files, journald or container logs).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.is_ok()
}

fn filter_for(rust_log: Option<&str>, level: &str) -> EnvFilter {
    rust_log
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_new(level.trim().to_ascii_lowercase()).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_precedence() {
        assert_eq!(filter_for(None, "DEBUG").to_string(), "debug");
        assert_eq!(filter_for(Some("warn"), "debug").to_string(), "warn");
        assert_eq!(filter_for(Some(""), "error").to_string(), "error");
        assert_eq!(
            filter_for(Some("x=notalevel"), "error").to_string(),
            "error"
        );
        assert_eq!(filter_for(None, "x=notalevel").to_string(), "info");
    }

    #[test]
    fn init_is_idempotent() {
        let first = init_logging("info", LogFormat::Text);
        assert!(
            !init_logging("debug", LogFormat::Json),
            "second install must be refused"
        );
        let _ = first;
    }
}
